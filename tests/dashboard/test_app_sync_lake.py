"""The admin's Sync page on the lake (INSIGHTS_STORE=ducklake): the figures of a real maintenance run, a
lake where it never ran, a maintenance table that cannot be read, and the accounts each worker's run synced."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest

from insights_core.cluster.postgres_server import PostgresServer
from insights_core.models import SyncRequest
from insights_core.settings import Settings
from insights_core.sources.stub_accounts import stub_account
from insights_core.store.lake_maintenance import MaintenanceRun, fetch_maintenance_runs
from insights_core.worker import SyncWorker
from tests.dashboard.app_harness import CAMPAIGN, assert_clean, open_page, use_lake_data_dir
from tests.dashboard.markdown_text import shown_texts, unescape
from tests.helpers import SMALL_SHAPE, make_settings
from tests.postgres import clone_lake

pytestmark = pytest.mark.usefixtures("entrypoint_runs_every_time")


def use_lake(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    use_lake_data_dir(monkeypatch, settings, INSIGHTS_STUB_ACCOUNTS=str(settings.stub_accounts))


@dataclass
class MaintainedLake:
    settings: Settings
    run: MaintenanceRun
    full_sync: str
    scoped_sync: str


@pytest.fixture(scope="module")
def maintained_lake(
    postgres_server: PostgresServer, lake_template: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MaintainedLake]:
    """Two stub accounts synced by a lake worker (all of them, then one campaign's account), then the
    worker's own maintenance pass, keeping no old snapshot so that every step has something to do."""
    root = tmp_path_factory.mktemp("sync_lake")
    (root / "lake").mkdir()
    url = clone_lake(postgres_server, lake_template, root / "lake")
    settings = make_settings(
        root / "data",
        store="ducklake",
        catalog_url=url,
        lake_data_path=str(root / "lake"),
        stub_accounts=2,
        lake_snapshot_retention_hours=0,
        **SMALL_SHAPE,
    )
    worker = SyncWorker(settings)
    try:
        full = worker.run_once(SyncRequest(days_back=3))
        scoped = worker.run_once(SyncRequest(days_back=2, entity_type="campaign", entity_ids=(CAMPAIGN,)))
        assert full.success and scoped.success, full.errors + scoped.errors
        run = worker.warehouse.run_maintenance_if_due(worker.worker_id)  # type: ignore[attr-defined]
    finally:
        worker.close()
    assert run is not None and run.error is None
    yield MaintainedLake(settings, run, full.sync_id, scoped.sync_id)


def test_the_last_maintenance_run_and_the_next_one_are_shown(
    maintained_lake: MaintainedLake, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_lake(monkeypatch, maintained_lake.settings)
    run = maintained_lake.run
    assert run.files_after < run.files_before and run.snapshots_expired > 0 and run.files_deleted > 0
    at = open_page("admin", "pages/sync.py")
    assert_clean(at)
    assert "Lake maintenance" in [h.value for h in at.subheader]
    [last] = [unescape(s.value) for s in at.success if "Last run" in unescape(s.value)]
    assert f"by worker {run.worker}" in last
    assert f"{run.files_before:,} → {run.files_after:,} data files" in last
    assert f"{run.snapshots_expired:,} snapshots expired, {run.files_deleted:,} files deleted" in last
    due = run.started_at + dt.timedelta(hours=maintained_lake.settings.lake_maintenance_hours)
    assert f"next due {due.astimezone(dt.timezone.utc):%Y-%m-%d %H:%M} UTC" in shown_texts(at)
    history = next(d.value for d in at.dataframe if "Snapshots expired" in d.value.columns)
    assert history[["Worker", "Data files before", "Data files after", "Snapshots expired"]].values.tolist() == [
        [run.worker, run.files_before, run.files_after, run.snapshots_expired]
    ]
    assert not any(h.value == "Lake maintenance" for h in open_page("manager", "pages/sync.py").subheader)


def test_each_lake_run_lists_the_accounts_it_synced(
    maintained_lake: MaintainedLake, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_lake(monkeypatch, maintained_lake.settings)
    at = open_page("admin", "pages/sync.py")
    assert_clean(at)
    history = next(d.value for d in at.dataframe if "Sync id" in d.value.columns)
    accounts = dict(zip(history["Sync id"], history["Accounts"]))
    first, second = stub_account(0), stub_account(1)
    assert accounts == {
        maintained_lake.full_sync: f"{first.account_id} ({first.name}), {second.account_id} ({second.name})",
        maintained_lake.scoped_sync: f"{first.account_id} ({first.name})",  # the campaign's account only
    }


def test_a_lake_where_maintenance_never_ran_says_so(lake_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    use_lake(monkeypatch, lake_settings)
    at = open_page("admin", "pages/sync.py")
    assert_clean(at)
    assert "Lake maintenance" in [h.value for h in at.subheader]
    assert any("Lake maintenance has not run yet" in i.value and "due now" in i.value for i in at.info)
    assert not any("Snapshots expired" in d.value.columns for d in at.dataframe)


def test_a_maintenance_table_that_cannot_be_read_is_one_error_line(
    lake_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert lake_settings.catalog_url is not None
    url = lake_settings.catalog_url.get_secret_value()
    assert fetch_maintenance_runs(url) == []  # creates the shared tables
    with psycopg.connect(url, autocommit=True) as con:  # a table this version cannot read
        con.execute("ALTER TABLE insights.lake_maintenance_runs RENAME COLUMN files_merged TO merged")
    use_lake(monkeypatch, lake_settings)
    at = open_page("admin", "pages/sync.py")
    assert not at.exception, [e.value for e in at.exception]
    [error] = [unescape(e.value) for e in at.error]
    assert error.startswith("The lake maintenance runs cannot be read") and "files_merged" in error
    assert "Lake maintenance" in [h.value for h in at.subheader]
