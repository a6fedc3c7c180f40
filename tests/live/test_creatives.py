"""Creatives in live mode against the Graph emulator: batched reads, images downloaded and kept,
and kept when their URL stops answering."""

from __future__ import annotations

import hashlib
import json
import math
import stat
import time
from pathlib import Path

import duckdb
import pytest
import requests

from graph_emulator import GraphEmulator
from insights_core.creatives import MAX_IMAGE_BYTES, creatives_dir, fetch_image
from insights_core.engine import run_sync
from insights_core.errors import EntityError
from insights_core.models import SyncReport, SyncRequest
from insights_core.settings import Settings
from insights_core.sources.live import LiveSource
from insights_core.sources.live.creatives import IDS_PER_REQUEST, creative_from_json
from insights_core.store.warehouse import Warehouse
from tests.helpers import ROOT
from tests.live.helpers import TOKEN, live_settings

FIXTURE = ROOT / "tests" / "fixtures" / "live" / "creatives.json"


def live_sync(settings: Settings, **request: object) -> SyncReport:
    source = LiveSource(settings)
    warehouse = Warehouse(settings.db_path)
    try:
        return run_sync(SyncRequest(days_back=2, **request), source=source, warehouse=warehouse, settings=settings)  # type: ignore[arg-type]
    finally:
        warehouse.close()
        source.close()


def stored(settings: Settings) -> dict[str, dict]:
    with duckdb.connect(str(settings.db_path), read_only=True) as con:
        cursor = con.execute("SELECT * FROM meta_ad_creatives ORDER BY creative_id")
        names = [d[0] for d in cursor.description]
        return {row[0]: dict(zip(names, row)) for row in cursor.fetchall()}


def test_the_transform_reads_each_shape_graph_sends() -> None:
    records = json.loads(FIXTURE.read_text())
    got = {r["id"]: creative_from_json(r, "act_1") for r in records}
    top, link, video, bare = got.values()
    assert (top.title, top.body, top.call_to_action, top.link_url) == (
        "Spring sale",
        "Up to 40% off",
        "SHOP_NOW",
        "https://shop.example.com/spring",
    )
    assert top.image_url == "https://scontent.example.net/v/t45/1_n.jpg?oe=6A1B2C3D"
    assert (link.title, link.call_to_action, link.link_url) == ("Free shipping", "LEARN_MORE", "https://x.example.com/")
    assert link.image_url == "https://scontent.example.net/v/t45/2_n.jpg"  # the post's picture before the thumbnail
    assert (video.title, video.body, video.call_to_action) == ("Watch the demo", "See it in action", "WATCH_MORE")
    assert video.image_url == "https://scontent.example.net/v/t15/3_n.jpg"
    assert (bare.title, bare.body, bare.call_to_action, bare.link_url) == (None, None, None, None)
    assert bare.image_url == "https://external.example.net/thumb/4.jpg"  # only the thumbnail is left
    assert creative_from_json({"title": "no id"}, "act_1") is None


def test_a_live_sync_stores_creatives_and_keeps_their_images(tmp_path: Path, emulator: GraphEmulator) -> None:
    settings = live_settings(tmp_path / "data", emulator)
    report = live_sync(settings)
    assert report.success and report.warnings == []
    rows = stored(settings)
    creatives = emulator.creatives
    assert set(rows) == set(creatives.index) and len(rows) == 24
    assert creatives.reads == math.ceil(len(rows) / IDS_PER_REQUEST)  # batched, not one request per ad
    assert creatives.image_requests == len(rows)
    folder = creatives_dir(settings.data_dir)
    for creative_id, row in rows.items():
        expected = creatives.expected(creative_id)
        assert {k: row[k] for k in expected} == expected
        data = (folder / row["image_file"]).read_bytes()
        assert data == creatives.image_bytes(creative_id)
        assert row["image_file"] == f"{hashlib.sha256(data).hexdigest()}.png"
        assert stat.S_IMODE((folder / row["image_file"]).stat().st_mode) == 0o600
        assert row["image_url"].startswith(emulator.url)
    assert TOKEN not in json.dumps(report.to_dict())

    # a re-sync reads no creative again (all stored, every image kept) and downloads nothing
    again = live_sync(settings)
    assert again.success and creatives.reads == 1 and creatives.image_requests == len(rows)
    assert stored(settings) == rows


def test_creatives_are_read_in_batches_of_ids(
    tmp_path: Path, emulator: GraphEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("insights_core.sources.live.creatives.IDS_PER_REQUEST", 5)
    settings = live_settings(tmp_path / "data", emulator)
    assert live_sync(settings).success
    assert len(stored(settings)) == 24 and emulator.creatives.reads == math.ceil(24 / 5)


def test_an_image_is_kept_after_its_url_stops_answering(tmp_path: Path, emulator: GraphEmulator) -> None:
    settings = live_settings(tmp_path / "data", emulator)
    assert live_sync(settings).success
    before = stored(settings)
    folder = creatives_dir(settings.data_dir)
    files = {p.name: p.read_bytes() for p in folder.iterdir()}

    emulator.creatives.stop_image_urls()
    report = live_sync(settings, force=True)  # re-reads every creative: new URLs, each answering 404
    assert report.success and report.status == "succeeded" and report.errors == []
    assert len(report.warnings) == len(before)
    assert all(
        w.endswith("image not kept: image URL answered HTTP 404; the earlier image is kept") for w in report.warnings
    )
    after = stored(settings)
    for creative_id, row in after.items():
        assert row["image_file"] == before[creative_id]["image_file"]
        assert row["image_fetched_at"] == before[creative_id]["image_fetched_at"]
        assert row["image_url"] != before[creative_id]["image_url"]  # the new URL is recorded
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == files
    with duckdb.connect(str(settings.db_path), read_only=True) as con:
        stored_report = json.loads(
            con.execute("SELECT report_json FROM sync_runs ORDER BY sync_timestamp").fetchall()[-1][0]
        )
    assert stored_report["warnings"] == report.warnings


def test_a_creative_never_kept_is_tried_again_by_the_next_sync(tmp_path: Path, emulator: GraphEmulator) -> None:
    settings = live_settings(tmp_path / "data", emulator)
    emulator.creatives.image_answer = "not_image"
    first = live_sync(settings)
    assert first.success and len(first.warnings) == 24
    assert "image URL answered text/html, not an image; no image kept yet" in first.warnings[0]
    assert all(row["image_file"] is None for row in stored(settings).values())
    assert not creatives_dir(settings.data_dir).exists() or not list(creatives_dir(settings.data_dir).iterdir())
    emulator.creatives.image_answer = "png"
    second = live_sync(settings)
    assert second.success and second.warnings == []
    assert all(row["image_file"] for row in stored(settings).values())


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ("missing", "image URL answered HTTP 404"),
        ("not_image", "image URL answered text/html, not an image"),
        ("oversized", f"image larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MB"),
    ],
)
def test_fetch_image_refuses_with_one_line(emulator: GraphEmulator, answer: str, message: str) -> None:
    emulator.creatives.image_answer = answer  # type: ignore[assignment]
    creative_id = next(iter(emulator.creatives.index))
    url = f"{emulator.url}/creative_images/{creative_id}.png?gen=0"
    with requests.Session() as session, pytest.raises(EntityError) as caught:
        fetch_image(session, url, time.monotonic() + 30)
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)
    assert emulator.url not in str(caught.value)  # URLs (signed, possibly secret) stay out of messages


def test_fetch_image_reads_the_emulators_png(emulator: GraphEmulator) -> None:
    creative_id = next(iter(emulator.creatives.index))
    with requests.Session() as session:
        data = fetch_image(session, f"{emulator.url}/creative_images/{creative_id}.png", time.monotonic() + 30)
    assert data == emulator.creatives.image_bytes(creative_id)
    with requests.Session() as session, pytest.raises(EntityError, match="did not answer"):
        fetch_image(session, "http://127.0.0.2:9/x.png", time.monotonic() + 30)


def test_downloads_per_sync_are_bounded_and_the_rest_wait_for_the_next(
    tmp_path: Path, emulator: GraphEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("insights_core.creatives.MAX_DOWNLOADS_PER_SYNC", 10)
    settings = live_settings(tmp_path / "data", emulator)
    kept = []
    for expected_warning in ("14 creative images left for the next sync", "4 creative images left", None):
        report = live_sync(settings)
        assert report.success
        if expected_warning:
            assert len(report.warnings) == 1 and report.warnings[0].startswith(expected_warning)
        else:
            assert report.warnings == []
        kept.append(sum(1 for row in stored(settings).values() if row["image_file"]))
    assert kept == [10, 20, 24] and emulator.creatives.image_requests == 24
