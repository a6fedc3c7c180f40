"""Creatives with the stub source: deterministic, stored by a sync, images kept once in the data dir."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import time
from pathlib import Path

import pytest
from PIL import Image

from insights_core.creatives import (
    MAX_IMAGE_BYTES,
    UNREFERENCED_MIN_AGE_SECONDS,
    check_image,
    creatives_dir,
    delete_unreferenced_images,
    save_image,
)
from insights_core.engine import run_sync
from insights_core.errors import EntityError
from insights_core.models import Creative, SyncRequest
from insights_core.settings import Settings
from insights_core.sources.stub import StubSource
from insights_core.sources.stub_creatives import draw_creative_image, stub_creatives
from insights_core.store.warehouse import Warehouse
from tests.helpers import FIXED_NOW


def sync(settings: Settings, warehouse: Warehouse, source: StubSource | None = None, **request: object):
    return run_sync(
        SyncRequest(days_back=3, **request),  # type: ignore[arg-type]
        source=source or StubSource.from_settings(settings),
        warehouse=warehouse,
        settings=settings,
        now=FIXED_NOW,
    )


def stored(warehouse: Warehouse) -> dict[str, tuple]:
    rows = warehouse.con.execute(
        "SELECT creative_id, title, body, call_to_action, link_url, image_url, image_file, image_sha256,"
        " image_fetched_at, updated_at FROM meta_ad_creatives ORDER BY creative_id"
    ).fetchall()
    return {row[0]: row[1:] for row in rows}


def test_stub_creatives_are_a_pure_function_of_the_id() -> None:
    first = stub_creatives("act_1", ["120240000000000001", "120240000000000002"])
    again = stub_creatives("act_1", ["120240000000000002", "120240000000000001"])
    assert {c.creative_id: c for c in first} == {c.creative_id: c for c in again}
    a, b = first
    assert a.image_bytes and b.image_bytes and a.image_bytes != b.image_bytes
    assert a.image_url is None and a.call_to_action and a.link_url and a.link_url.startswith("https://")
    with Image.open(io.BytesIO(a.image_bytes)) as image:
        assert (image.format, image.size) == ("PNG", (600, 314))


def test_a_sync_stores_every_ads_creative_with_its_image_kept_private(settings: Settings, warehouse: Warehouse) -> None:
    report = sync(settings, warehouse)
    assert report.success and report.warnings == []
    ads = warehouse.con.execute("SELECT DISTINCT creative_id FROM ads").fetchall()
    rows = stored(warehouse)
    assert set(rows) == {r[0] for r in ads} and len(rows) == 36
    folder = creatives_dir(settings.data_dir)
    for creative_id, (title, _body, cta, _link, url, image_file, sha, fetched_at, _updated) in rows.items():
        expected = stub_creatives("act_1000000000001", [creative_id])[0]
        assert (title, cta, url) == (expected.title, expected.call_to_action, None)
        path = folder / image_file
        data = path.read_bytes()
        assert data == expected.image_bytes
        assert image_file == f"{hashlib.sha256(data).hexdigest()}.png" and sha == hashlib.sha256(data).hexdigest()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert fetched_at == FIXED_NOW.replace(tzinfo=None)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_a_forced_resync_rewrites_neither_rows_nor_files(settings: Settings, warehouse: Warehouse) -> None:
    sync(settings, warehouse)
    before = stored(warehouse)
    folder = creatives_dir(settings.data_dir)
    files = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.iterdir()}
    drawn: list[str] = []

    class CountingStub(StubSource):
        def fetch_creatives(self, account, creative_ids):  # type: ignore[no-untyped-def]
            drawn.extend(creative_ids)
            return super().fetch_creatives(account, creative_ids)

    source = CountingStub.from_settings(settings)
    report = sync(settings, warehouse, source=source)
    assert report.success and drawn == []  # nothing new, every image kept: nothing read again
    report = sync(settings, warehouse, source=source, force=True)
    assert report.success and len(drawn) == 36  # a forced sync reads them all ...
    assert stored(warehouse) == before  # ... and rewrites nothing: updated_at and image_fetched_at unchanged
    assert {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.iterdir()} == files


def test_a_creative_whose_file_went_missing_is_read_and_kept_again(settings: Settings, warehouse: Warehouse) -> None:
    sync(settings, warehouse)
    folder = creatives_dir(settings.data_dir)
    victim = sorted(folder.iterdir())[0]
    victim.unlink()
    report = sync(settings, warehouse)
    assert report.success and victim.is_file()


def test_a_scoped_sync_reads_only_the_scopes_creatives(settings: Settings, warehouse: Warehouse) -> None:
    sync(settings, warehouse, entity_type="ad", entity_ids=("120230000000000001",))
    assert list(stored(warehouse)) == ["120240000000000001"]


def test_an_image_the_source_sends_broken_is_a_warning_not_a_failed_sync(
    settings: Settings, warehouse: Warehouse
) -> None:
    class BrokenImages(StubSource):
        def fetch_creatives(self, account, creative_ids):  # type: ignore[no-untyped-def]
            good = super().fetch_creatives(account, creative_ids)
            return [Creative(**{**c.__dict__, "image_bytes": b"<html>nope</html>"}) for c in good[:1]] + good[1:]

    report = sync(settings, warehouse, source=BrokenImages.from_settings(settings))
    assert report.success and report.errors == []
    assert report.warnings == [
        "Creative 120240000000000001: image not kept: not an image Pillow can read (UnidentifiedImageError); "
        "no image kept yet"
    ]
    rows = stored(warehouse)
    assert rows["120240000000000001"][5] is None and rows["120240000000000001"][0]  # text kept, no image
    assert all(r[5] for c, r in rows.items() if c != "120240000000000001")
    assert "warnings" in warehouse.con.execute("SELECT report_json FROM sync_runs").fetchone()[0]


def test_check_image_refuses_what_pages_cannot_show(tmp_path: Path) -> None:
    png = draw_creative_image("1")
    assert check_image(png) == "png"
    with pytest.raises(EntityError, match="not an image"):
        check_image(b"GIF89a but not really")
    with pytest.raises(EntityError, match="larger than 5 MB"):
        check_image(png + b"\0" * MAX_IMAGE_BYTES)
    bmp = io.BytesIO()
    Image.new("RGB", (4, 4)).save(bmp, "BMP")
    with pytest.raises(EntityError, match="format BMP"):
        check_image(bmp.getvalue())
    with pytest.raises(EntityError):
        save_image(tmp_path, b"nope")
    assert list(tmp_path.iterdir()) == []  # refused bytes leave nothing behind


def test_unreferenced_images_are_deleted_only_once_an_hour_old(tmp_path: Path) -> None:
    kept = save_image(tmp_path, draw_creative_image("1"))
    orphan = save_image(tmp_path, draw_creative_image("2"))
    fresh = save_image(tmp_path, draw_creative_image("3"))
    old = time.time() - UNREFERENCED_MIN_AGE_SECONDS - 5
    for name in (kept.file_name, orphan.file_name):
        os.utime(tmp_path / name, (old, old))
    assert delete_unreferenced_images(tmp_path, {kept.file_name}) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([kept.file_name, fresh.file_name])


def test_a_rolled_back_sync_leaves_at_most_unreferenced_files(settings: Settings, warehouse: Warehouse) -> None:
    calls = iter(range(1000))
    report = run_sync(
        SyncRequest(days_back=3),
        source=StubSource.from_settings(settings),
        warehouse=warehouse,
        settings=settings,
        now=FIXED_NOW,
        should_stop=lambda: next(calls) >= 2,
    )
    assert report.status == "cancelled"
    assert stored(warehouse) == {}
    left = list(creatives_dir(settings.data_dir).iterdir())
    assert left  # drawn images were kept before the stop, and no row refers to them
    later = time.time() + UNREFERENCED_MIN_AGE_SECONDS + 5
    assert delete_unreferenced_images(creatives_dir(settings.data_dir), set(), now=later) == len(left)
    assert sync(settings, warehouse).success and len(stored(warehouse)) == 36


def test_creative_warnings_past_the_limit_are_summed_up_in_one_line(
    settings: Settings, warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("insights_core.creatives.MAX_WARNINGS_LISTED", 5)

    class NoImages(StubSource):
        def fetch_creatives(self, account, creative_ids):  # type: ignore[no-untyped-def]
            return [
                Creative(**{**c.__dict__, "image_bytes": b"x"}) for c in super().fetch_creatives(account, creative_ids)
            ]

    report = sync(settings, warehouse, source=NoImages.from_settings(settings))
    assert report.success and len(report.warnings) == 6
    assert report.warnings[-1] == "... and 31 more creative warnings"
