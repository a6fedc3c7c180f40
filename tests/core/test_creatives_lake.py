"""Creatives on the lake (INSIGHTS_STORE=ducklake): images kept in the lake's `creative_images` table, in the
sync's commit, so a dashboard replica with its own data dir (another machine) shows what any worker kept."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pytest

from insights_core.creatives import LakeImages, creatives_dir
from insights_core.dashboard.creatives import kept_image, thumbnails_for_ads
from insights_core.dashboard.data import current_snapshot
from insights_core.engine import run_sync
from insights_core.models import Account, Creative, SyncReport, SyncRequest
from insights_core.settings import Settings
from insights_core.sources.stub import StubSource
from insights_core.sources.stub_creatives import draw_creative_image, stub_creatives
from insights_core.store import lake_warehouse
from insights_core.store.creatives import StoredCreative
from insights_core.store.lake_reader import LakeReader
from insights_core.store.lake_warehouse import LakeWarehouse
from tests.helpers import FIXED_NOW
from tests.store.lake_writes import save_sync

ACCOUNT = "act_1000000000001"
AD = "120230000000000001"


def sync(
    settings: Settings, warehouse: LakeWarehouse, source: StubSource | None = None, **request: object
) -> SyncReport:
    return run_sync(
        SyncRequest(days_back=3, **request),  # type: ignore[arg-type]
        source=source or StubSource.from_settings(settings),
        warehouse=warehouse,
        settings=settings,
        now=FIXED_NOW,
    )


def stored_images(warehouse: LakeWarehouse) -> dict[str, bytes]:
    rows = warehouse.con.execute("SELECT image_file, content FROM creative_images").fetchall()
    names = [row[0] for row in rows]
    assert len(names) == len(set(names)), "an image is stored once"
    return {row[0]: bytes(row[1]) for row in rows}


def referenced(warehouse: LakeWarehouse) -> dict[str, str]:
    rows = warehouse.con.execute(
        "SELECT creative_id, image_file FROM meta_ad_creatives WHERE image_file IS NOT NULL"
    ).fetchall()
    return dict(rows)


def replica(settings: Settings, data_dir: Path) -> Settings:
    """The same lake seen from another machine: its own data dir."""
    return settings.model_copy(update={"data_dir": data_dir})


class OneImageStub(StubSource):
    """Every creative shows the same picture (an advertiser reusing one image across ads)."""

    def fetch_creatives(self, account, creative_ids):  # type: ignore[no-untyped-def]
        image = draw_creative_image("shared")
        return [
            Creative(**{**c.__dict__, "image_bytes": image}) for c in super().fetch_creatives(account, creative_ids)
        ]


class CaptionedStub(StubSource):
    """The creatives with new pictures (an advertiser replacing every image)."""

    def fetch_creatives(self, account, creative_ids):  # type: ignore[no-untyped-def]
        return [
            Creative(**{**c.__dict__, "image_bytes": draw_creative_image(c.creative_id, caption="Now 20% off")})
            for c in super().fetch_creatives(account, creative_ids)
        ]


def test_a_replica_with_its_own_data_dir_shows_the_image_a_worker_kept(lake_settings: Settings, tmp_path: Path) -> None:
    warehouse = LakeWarehouse(lake_settings)
    try:
        report = sync(lake_settings, warehouse)
        assert report.success and report.warnings == []
        images, rows = stored_images(warehouse), referenced(warehouse)
    finally:
        warehouse.close()
    assert len(rows) == 36 and set(rows.values()) == set(images)
    for creative_id, image_file in rows.items():
        expected = stub_creatives(ACCOUNT, [creative_id])[0].image_bytes
        assert images[image_file] == expected
        assert image_file == f"{hashlib.sha256(expected or b'').hexdigest()}.png"
    assert not creatives_dir(lake_settings.data_dir).exists(), "the worker's data dir keeps no image files"

    snapshot = current_snapshot(replica(lake_settings, tmp_path / "replica"))
    image_file = rows["120240000000000001"]
    assert kept_image(snapshot, image_file) == images[image_file]
    assert kept_image(snapshot, "0" * 64 + ".png") is None  # a well-formed name the lake does not hold
    assert kept_image(snapshot, "../lake") is None
    thumbs = thumbnails_for_ads(snapshot, [AD, "999"])
    assert thumbs[AD].startswith("data:image/png;base64,") and thumbs["999"] == ""


def test_a_rolled_back_sync_leaves_no_image_row(lake_settings: Settings) -> None:
    warehouse = LakeWarehouse(lake_settings)
    calls = iter(range(1000))
    try:
        report = run_sync(
            SyncRequest(days_back=3),
            source=StubSource.from_settings(lake_settings),
            warehouse=warehouse,
            settings=lake_settings,
            now=FIXED_NOW,
            should_stop=lambda: next(calls) >= 2,
        )
        assert report.status == "cancelled"
        assert referenced(warehouse) == {} and stored_images(warehouse) == {}
        assert sync(lake_settings, warehouse).success and len(stored_images(warehouse)) == 36
    finally:
        warehouse.close()


def test_one_image_of_many_creatives_is_stored_once_and_never_rewritten(lake_settings: Settings) -> None:
    source = OneImageStub.from_settings(lake_settings)
    warehouse = LakeWarehouse(lake_settings)
    try:
        assert sync(lake_settings, warehouse, source=source).success
        rows = referenced(warehouse)
        assert len(rows) == 36 and len(set(rows.values())) == 1
        assert list(stored_images(warehouse)) == list(set(rows.values()))
        first = warehouse.con.execute("SELECT kept_at FROM creative_images").fetchall()
        later = FIXED_NOW + dt.timedelta(hours=1)
        report = run_sync(
            SyncRequest(days_back=3, force=True), source=source, warehouse=warehouse, settings=lake_settings, now=later
        )
        assert report.success
        assert warehouse.con.execute("SELECT kept_at FROM creative_images").fetchall() == first
    finally:
        warehouse.close()


def test_images_no_creative_shows_are_deleted_and_older_snapshots_still_show_them(lake_settings: Settings) -> None:
    warehouse = LakeWarehouse(lake_settings)
    reader = LakeReader(lake_settings)
    try:
        assert sync(lake_settings, warehouse).success
        before = warehouse.publish(Path(), Path())
        old = set(stored_images(warehouse))
        assert sync(lake_settings, warehouse, source=CaptionedStub.from_settings(lake_settings), force=True).success
        assert set(stored_images(warehouse)) >= old  # the old images were still referenced when it began
        new = set(referenced(warehouse).values())
        assert new.isdisjoint(old) and len(new) == 36
        assert sync(lake_settings, warehouse).success  # the next sync deletes what nothing refers to
        assert set(stored_images(warehouse)) == new
        with reader.cursor(int(before)) as page_run:  # a page pinned before still reads its images
            assert page_run.execute("SELECT count(*) FROM creative_images").fetchone()[0] == 36
    finally:
        reader.close()
        warehouse.close()


def test_a_sync_stores_new_image_bytes_up_to_its_limit_and_the_next_keeps_the_rest(
    lake_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    size = len(draw_creative_image("120240000000000001"))
    monkeypatch.setattr("insights_core.creatives.LAKE_IMAGE_BYTES_PER_SYNC", 15 * size)
    warehouse = LakeWarehouse(lake_settings)
    try:
        report = sync(lake_settings, warehouse)
        assert report.success
        assert [w for w in report.warnings if "left for the next sync" in w and "MB of new images" in w]
        first = len(stored_images(warehouse))
        assert 0 < first < 36 and len(referenced(warehouse)) == first
        for _ in range(4):
            if len(stored_images(warehouse)) == 36:
                break
            assert sync(lake_settings, warehouse).success
        assert len(stored_images(warehouse)) == len(referenced(warehouse)) == 36
    finally:
        warehouse.close()


def test_images_written_in_a_commit_that_conflicts_are_written_again_by_its_replay(
    lake_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lake_warehouse, "SPILL_ROWS", 0)  # the image batch comes back from local Parquet
    one = LakeWarehouse(lake_settings)
    two = LakeWarehouse(replica(lake_settings, tmp_path / "worker-two"))
    image = draw_creative_image("replayed")
    try:
        save_sync(two, "act_2", 0)
        with one.transaction():
            images = LakeImages(one)
            kept = images.keep_image(image)
            assert images.save_kept_images(FIXED_NOW) == 1
            one.upsert_account(Account("act_1", "Account act_1", "USD", "UTC"), FIXED_NOW)
            save_sync(two, "act_2", 1)  # updates ad_accounts, which the open transaction writes too, and commits first
        assert one.replays == 1
        assert stored_images(one) == {kept.file_name: image}
        assert not list(one.temp_dir.glob("journal-*"))
    finally:
        one.close()
        two.close()


def test_an_image_two_workers_store_at_once_is_kept_once_after_the_next_cleanup(
    lake_settings: Settings, tmp_path: Path
) -> None:
    one = LakeWarehouse(lake_settings)
    two = LakeWarehouse(replica(lake_settings, tmp_path / "worker-two"))
    image = draw_creative_image("shared by two accounts")
    try:
        with one.transaction():
            mine = LakeImages(one)
            kept = mine.keep_image(image)
            mine.save_kept_images(FIXED_NOW)
            theirs = LakeImages(two)
            theirs.keep_image(image)
            theirs.save_kept_images(FIXED_NOW)  # outside a transaction: commits on its own, first
        copies = one.con.execute("SELECT count(*) FROM creative_images").fetchone()[0]
        assert (one.replays, copies) == (0, 2)  # appends to one table do not conflict: both commits stand
        creative = StoredCreative("c1", "act_1", None, None, None, None, None, kept.file_name, kept.sha256, None)
        one.upsert_creatives([creative], FIXED_NOW)
        assert LakeImages(one).delete_surplus() == 1
        assert stored_images(one) == {kept.file_name: image}
        assert LakeImages(one).delete_surplus() == 0
    finally:
        one.close()
        two.close()


def test_the_copy_to_the_lake_carries_the_embedded_stores_image_files(settings: Settings, lake_settings) -> None:
    from insights_core.store.copy import copy_to_lake
    from insights_core.store.warehouse import Warehouse

    embedded = Warehouse(settings.db_path)
    try:
        assert run_sync(
            SyncRequest(days_back=3), source=StubSource.from_settings(settings), warehouse=embedded,
            settings=settings, now=FIXED_NOW,
        ).success  # fmt: skip
        names = {n for (n,) in embedded.con.execute("SELECT DISTINCT image_file FROM meta_ad_creatives").fetchall()}
    finally:
        embedded.close()
    files = {f.name: f.read_bytes() for f in creatives_dir(settings.data_dir).iterdir()}
    assert names and names <= set(files)
    gone = sorted(names)[0]
    (creatives_dir(settings.data_dir) / gone).unlink()  # a file lost since: left out, not a failure

    checks = {c.table: c for c in copy_to_lake(lake_settings.model_copy(update={"data_dir": settings.data_dir}))}

    images = checks["creative_images (files)"]
    assert images.matches and images.lake_rows == len(names) - 1
    assert all(c.matches for c in checks.values())
    lake = LakeWarehouse(lake_settings)
    try:
        assert stored_images(lake) == {n: files[n] for n in names - {gone}}
    finally:
        lake.close()
    shown = kept_image(
        current_snapshot(replica(lake_settings, lake_settings.data_dir.parent / "replica")), sorted(names)[1]
    )
    assert shown == files[sorted(names)[1]], "a replica shows the copied image"
