"""PostgreSQL (the lake's catalog) restarting in the middle of a sync: the sync's commit finds its catalog
connection gone, replays its writes once the server is back, and leaves exactly the rows a sync without
the restart leaves."""

from __future__ import annotations

from contextlib import closing

from insights_core.cluster.postgres_server import PostgresServer
from insights_core.engine import run_sync
from insights_core.models import SyncRequest
from insights_core.settings import Settings
from insights_core.sources.stub import StubSource
from insights_core.store.lake_reader import LakeReader
from insights_core.store.lake_warehouse import LakeWarehouse
from insights_core.store.warehouse import Warehouse
from tests.helpers import FIXED_NOW
from tests.store.lake_writes import fetch_state, save_sync


def test_a_sync_whose_catalog_restarts_before_its_commit_replays_and_loses_nothing(
    settings: Settings, lake_settings: Settings, postgres_server: PostgresServer
) -> None:
    embedded = Warehouse(settings.db_path)
    lake = LakeWarehouse(lake_settings)
    try:
        for n in range(2):
            save_sync(embedded, "act_1", n)
        save_sync(lake, "act_1", 0)
        replays = lake.replays
        save_sync(lake, "act_1", 1, meanwhile=postgres_server.restart)  # the server goes down mid-sync
        assert lake.replays > replays, "the commit met the restart and was replayed"
        assert fetch_state(lake.con) == fetch_state(embedded.con)
    finally:
        lake.close()
        embedded.close()


def test_a_stub_sync_through_a_catalog_restart_succeeds_with_a_clean_syncs_rows(
    lake_settings: Settings, postgres_server: PostgresServer
) -> None:
    lake = LakeWarehouse(lake_settings)
    source = StubSource.from_settings(lake_settings)
    try:

        def sync(**hooks: object) -> dict[str, list[tuple]]:
            report = run_sync(
                SyncRequest(days_back=5, force=True), source=source, warehouse=lake, settings=lake_settings,
                now=FIXED_NOW, **hooks,  # type: ignore[arg-type]
            )  # fmt: skip
            assert report.success, report.errors
            state = fetch_state(lake.con)
            state.pop("sync_runs")  # each sync adds its own run
            return state

        clean = sync()
        replays = lake.replays
        assert sync(before_commit=postgres_server.restart) == clean
        assert lake.replays > replays
        [(runs, duplicates)] = lake.con.execute(
            "SELECT count(*), count(*) - count(DISTINCT (entity_type, entity_id, date_start)) FROM meta_ad_insights"
        ).fetchall()
        assert runs > 0 and duplicates == 0
    finally:
        lake.close()


def test_a_dashboard_reader_reads_on_after_the_catalog_restarts(
    lake_settings: Settings, postgres_server: PostgresServer
) -> None:
    lake = LakeWarehouse(lake_settings)
    reader = LakeReader(lake_settings)
    try:
        save_sync(lake, "act_1", 0)
        before = reader.fetch_published_snapshot()
        with closing(reader.cursor(before)) as cursor:
            seen = fetch_state(cursor)
        postgres_server.restart()
        save_sync(lake, "act_1", 1)
        after = reader.fetch_published_snapshot()  # the next page run after the restart
        assert after > before
        with closing(reader.cursor(before)) as cursor:
            assert fetch_state(cursor) == seen, "a snapshot read before the restart reads the same after it"
        with closing(reader.cursor(after)) as cursor:
            assert fetch_state(cursor) == fetch_state(lake.con)
    finally:
        reader.close()
        lake.close()
