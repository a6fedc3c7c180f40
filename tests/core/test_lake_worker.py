"""Many workers (INSIGHTS_STORE=ducklake) on one lake, against a real PostgreSQL: leases, claims,
fencing and takeover, and what ends up in the lake (each worker has its own data dir; they share
the catalog and the lake's data directory, `<tmp>/lake`)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import psycopg
import pytest

import insights_core.worker as worker_module
from insights_core.cluster.control_pg import PostgresControlChannel
from insights_core.cluster.leases import AccountLeases
from insights_core.cluster.pg import SCHEMA
from insights_core.cluster.postgres_server import PostgresServer
from insights_core.engine import run_sync
from insights_core.models import SyncRequest
from insights_core.settings import Settings
from insights_core.sources import open_source
from insights_core.sources.stub_accounts import stub_account
from insights_core.store.lake import connect_lake
from insights_core.store.warehouse import Warehouse
from insights_core.worker import SyncWorker
from tests.helpers import PYTHON, ROOT, make_settings, subprocess_env, wait_for

TINY = dict(stub_campaigns=2, stub_adsets_per_campaign=2, stub_ads_per_adset=1, backfill_days=5, breakdowns=())
TINY_ENV = {
    "INSIGHTS_STUB_CAMPAIGNS": "2",
    "INSIGHTS_STUB_ADSETS_PER_CAMPAIGN": "2",
    "INSIGHTS_STUB_ADS_PER_ADSET": "1",
    "INSIGHTS_BACKFILL_DAYS": "5",
    "INSIGHTS_BREAKDOWNS": "",
}


def _lake_settings(data_dir: Path, catalog_url: str, **overrides: object) -> Settings:
    fields: dict[str, object] = dict(TINY) | overrides
    return make_settings(
        data_dir, store="ducklake", catalog_url=catalog_url, lake_data_path=str(data_dir.parent / "lake"), **fields
    )


def _lake_env(data_dir: Path, catalog_url: str, **extra: str) -> dict[str, str]:
    return subprocess_env(
        data_dir,
        INSIGHTS_STORE="ducklake",
        INSIGHTS_CATALOG_URL=catalog_url,
        INSIGHTS_LAKE_DATA_PATH=str(data_dir.parent / "lake"),
        **(TINY_ENV | extra),
    )


def _start(data_dir: Path, catalog_url: str, lease_seconds: float, **extra: str) -> subprocess.Popen[bytes]:
    data_dir.mkdir(parents=True, exist_ok=True)
    log = open(data_dir.parent / f"{data_dir.name}.err", "wb")
    return subprocess.Popen(
        [PYTHON, str(ROOT / "tests" / "lake_worker.py"), str(lease_seconds)],
        env=_lake_env(data_dir, catalog_url, **extra),
        cwd=data_dir.parent,
        stdout=log,
        stderr=log,
    )


def _stop(worker: subprocess.Popen[bytes]) -> int:
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
    return worker.wait(timeout=60)


def _scheduled_accounts(catalog_url: str) -> set[str]:
    with psycopg.connect(catalog_url) as con:
        rows = con.execute(f"SELECT account_id FROM {SCHEMA}.account_leases WHERE last_scheduled_at IS NOT NULL")
        return {row[0] for row in rows.fetchall()}


@contextmanager
def _lake(tmp_path: Path, catalog_url: str) -> Iterator[duckdb.DuckDBPyConnection]:
    """The shared lake at its head, as the workers under `tmp_path` wrote it."""
    con = connect_lake(_lake_settings(tmp_path / "reader", catalog_url))
    try:
        yield con
    finally:
        con.close()


def _rows_by_account(tmp_path: Path, catalog_url: str) -> Counter[str]:
    with _lake(tmp_path, catalog_url) as con:
        rows = con.execute("SELECT account_id, count(*) FROM meta_ad_insights GROUP BY account_id").fetchall()
    return Counter(dict(rows))


def _duplicate_keys(tmp_path: Path, catalog_url: str) -> int:
    with _lake(tmp_path, catalog_url) as con:
        row = con.execute(
            "SELECT count(*) FROM (SELECT entity_type, entity_id, date_start FROM meta_ad_insights"
            " GROUP BY ALL HAVING count(*) > 1)"
        ).fetchone()
    return int(row[0]) if row else 0


def _run_accounts(tmp_path: Path, catalog_url: str, sync_type: str) -> list[list[str]]:
    """Each stored run of `sync_type`: the accounts it synced."""
    with _lake(tmp_path, catalog_url) as con:
        reports = con.execute("SELECT report_json FROM sync_runs WHERE sync_type = ?", [sync_type]).fetchall()
    return [json.loads(r[0])["accounts"] for r in reports]


@pytest.fixture
def reference_rows(tmp_path: Path) -> Iterator[Counter[str]]:
    """Rows per account one worker alone writes for 8 tiny stub accounts (the embedded store)."""
    settings = make_settings(tmp_path / "reference", stub_accounts=8, **TINY)
    warehouse = Warehouse(settings.db_path)
    try:
        report = run_sync(
            SyncRequest(sync_type="scheduled"), source=open_source(settings), warehouse=warehouse, settings=settings
        )
        assert report.success, report.errors
        rows = warehouse.con.execute("SELECT account_id, count(*) FROM meta_ad_insights GROUP BY account_id").fetchall()
    finally:
        warehouse.close()
    yield Counter(dict(rows))


def test_four_workers_share_eight_accounts_and_each_scheduled_sync_runs_once(
    tmp_path: Path, catalog_url: str, reference_rows: Counter[str]
) -> None:
    PostgresControlChannel(catalog_url)  # creates the shared tables the test polls
    dirs = [tmp_path / f"worker{n}" for n in range(4)]
    workers = [
        _start(d, catalog_url, 5, INSIGHTS_STUB_ACCOUNTS="8", INSIGHTS_SYNC_INTERVAL_MINUTES="600") for d in dirs
    ]
    try:
        wait_for(lambda: len(_scheduled_accounts(catalog_url)) == 8, timeout=120, what="8 scheduled syncs")
    finally:
        codes = [_stop(worker) for worker in workers]
    assert codes == [0, 0, 0, 0]
    runs = _run_accounts(tmp_path, catalog_url, "scheduled")
    # one scheduled sync per account in the interval, each of one account
    assert sorted(a for accounts in runs for a in accounts) == sorted(stub_account(n).account_id for n in range(8))
    assert all(len(accounts) == 1 for accounts in runs)
    assert _rows_by_account(tmp_path, catalog_url) == reference_rows  # exactly the rows one worker alone writes
    assert _duplicate_keys(tmp_path, catalog_url) == 0


def test_a_killed_workers_account_is_taken_over_after_its_lease_expires(tmp_path: Path, catalog_url: str) -> None:
    """kill -9 mid-sync: nothing of that sync is stored, and another worker syncs the account instead,
    leaving one sync's rows, none twice. (300 x 5 x 1 ads over 30 days: a sync of a few seconds, long
    enough to be caught in the middle.)"""
    big = {"INSIGHTS_STUB_CAMPAIGNS": "300", "INSIGHTS_STUB_ADSETS_PER_CAMPAIGN": "5", "INSIGHTS_BACKFILL_DAYS": "30"}
    control = PostgresControlChannel(catalog_url)
    victim = _start(tmp_path / "victim", catalog_url, 1.5, **big)
    try:
        wait_for(
            lambda: (s := control.fetch_worker_status()) is not None and s.state == "syncing" and s.accounts,
            timeout=60,
            what="the first worker syncing its leased account",
        )
    finally:
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait()
    assert _scheduled_accounts(catalog_url) == set()
    heir = _start(tmp_path / "heir", catalog_url, 1.5, **big)
    try:
        wait_for(lambda: _scheduled_accounts(catalog_url), timeout=120, what="the account synced by the other worker")
    finally:
        assert _stop(heir) == 0
    assert _run_accounts(tmp_path, catalog_url, "scheduled") == [[stub_account(0).account_id]]  # the heir's only
    rows = _rows_by_account(tmp_path, catalog_url)
    assert set(rows) == {stub_account(0).account_id} and rows[stub_account(0).account_id] > 0
    assert _duplicate_keys(tmp_path, catalog_url) == 0


def test_sync_now_skips_an_account_another_worker_holds_and_says_so(
    tmp_path: Path, catalog_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _lake_settings(tmp_path / "data", catalog_url, stub_accounts=2)
    other = AccountLeases(catalog_url, "other-host:42:abc", 30)
    held = other.claim([stub_account(1).account_id])
    monkeypatch.setattr(worker_module, "LEASE_WAIT_SECONDS", 0.5)  # wait half a second for the held account
    worker = SyncWorker(settings, lease_seconds=5)
    try:
        report = worker.run_once(SyncRequest(days_back=2))
        assert not report.success and report.accounts == [stub_account(0).account_id]
        assert "act_1000000000002: skipped, worker other-host:42:abc is syncing it" in report.errors[0]
        assert set(_rows_by_account_open(worker)) == {stub_account(0).account_id}
        other.release(held)
        report = worker.run_once(SyncRequest(days_back=2))
        assert report.success and sorted(report.accounts) == [stub_account(n).account_id for n in range(2)]
    finally:
        worker.close()
    assert AccountLeases(catalog_url, "x", 30).fetch_holders([stub_account(n).account_id for n in range(2)]) == {}


def test_sync_now_waits_for_an_account_another_worker_is_syncing(tmp_path: Path, catalog_url: str) -> None:
    settings = _lake_settings(tmp_path / "data", catalog_url)
    other = AccountLeases(catalog_url, "other-host:42:abc", 30)
    held = other.claim([stub_account(0).account_id])
    worker = SyncWorker(settings, lease_seconds=5)
    done = threading.Timer(1.0, other.release, args=(held,))  # the other worker's sync ends a second later
    done.start()
    try:
        report = worker.run_once(SyncRequest(days_back=2))
    finally:
        done.join()
        worker.close()
    assert report.success and report.errors == [] and report.accounts == [stub_account(0).account_id]


def test_a_sync_whose_lease_was_taken_over_commits_nothing(tmp_path: Path, catalog_url: str) -> None:
    """The fencing check before the commit: another worker took the account mid-sync (this one stalled
    past its lease), so this sync rolls back and says why."""
    settings = _lake_settings(tmp_path / "data", catalog_url)
    worker = SyncWorker(settings, lease_seconds=30)
    fetch = worker.source.fetch_insights

    def fetch_then_lose_the_lease(*args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        with psycopg.connect(catalog_url) as con:  # what a takeover after expiry does to the row
            con.execute(f"UPDATE {SCHEMA}.account_leases SET holder = 'thief', fence = fence + 1")
        return fetch(*args, **kwargs)

    worker.source.fetch_insights = fetch_then_lose_the_lease  # type: ignore[method-assign]
    try:
        report = worker.run_once(SyncRequest(days_back=2))
        assert not report.success and "another worker took over act_1000000000001" in report.errors[0]
        assert _rows_by_account_open(worker) == Counter()
    finally:
        worker.close()


def _rows_by_account_open(worker: SyncWorker) -> Counter[str]:
    rows = worker.warehouse.con.execute("SELECT account_id, count(*) FROM meta_ad_insights GROUP BY account_id")
    return Counter(dict(rows.fetchall()))


def test_requests_spread_over_workers_are_each_served_once_through_a_server_restart(
    tmp_path: Path, catalog_url: str, postgres_server: PostgresServer
) -> None:
    """Two workers in one process serve Sync now requests; PostgreSQL restarts between two batches."""
    workers = [
        SyncWorker(_lake_settings(tmp_path / f"w{n}", catalog_url, sync_enabled=False), lease_seconds=3)
        for n in range(2)
    ]
    threads = [threading.Thread(target=worker.run_forever) for worker in workers]
    control = PostgresControlChannel(catalog_url)
    for thread in threads:
        thread.start()
    try:
        first = [control.save_request(SyncRequest(days_back=days))[0] for days in (1, 2, 3)]
        wait_for(lambda: all(control.fetch_request(i).status == "succeeded" for i in first), 60, "the first batch")
        postgres_server.restart()
        second = [control.save_request(SyncRequest(days_back=days))[0] for days in (4, 5, 6)]
        wait_for(lambda: all(control.fetch_request(i).status == "succeeded" for i in second), 60, "the second batch")
        status = control.fetch_worker_status()
        assert status is not None and len(status.alive_workers()) == 2
    finally:
        for worker in workers:
            worker.stop_event.set()
        for thread in threads:
            thread.join()
        for worker in workers:
            worker.close()
    assert len(_run_accounts(tmp_path, catalog_url, "manual")) == 6  # each request ran once, on one worker
    assert _duplicate_keys(tmp_path, catalog_url) == 0


def test_a_failed_scheduled_sync_is_retried_soon_by_any_worker(
    tmp_path: Path, catalog_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worker_module, "FAILED_SCHEDULED_RETRY_SECONDS", 0.2)
    settings = _lake_settings(tmp_path / "data", catalog_url, stub_error_rate=1.0)  # every entity fails
    worker = SyncWorker(settings, lease_seconds=5)
    try:
        assert worker.leases is not None and worker._sync_due_accounts(worker.leases) is True
        assert worker.last_report is not None and worker.last_report.status == "failed"
    finally:
        worker.close()
    other = AccountLeases(catalog_url, "other", 5)
    retried = wait_for(lambda: other.claim_due(3600.0, 1), timeout=10, what="the failed account due again")
    assert [lease.account_id for lease in retried] == [stub_account(0).account_id]


def test_an_idle_worker_compacts_the_lake_once_and_the_rows_stay(tmp_path: Path, catalog_url: str) -> None:
    from insights_core.store.lake_maintenance import fetch_maintenance_runs

    settings = _lake_settings(tmp_path / "data", catalog_url, sync_enabled=False)
    worker = SyncWorker(settings, lease_seconds=5)
    try:
        for days in (3, 2, 4):  # three commits, the later ones restating days: files and delete files
            assert worker.run_once(SyncRequest(days_back=days)).success
        before = _rows_by_account(tmp_path, catalog_url)
        assert worker._run_one_step() is False  # idle: no request, no schedule; maintenance is due (never run)
        worker._next_maintenance_check = 0.0
        worker._run_one_step()  # asked again at once: ran less than INSIGHTS_LAKE_MAINTENANCE_HOURS ago
    finally:
        worker.close()
    runs = fetch_maintenance_runs(catalog_url)
    assert len(runs) == 1 and runs[0].error is None and runs[0].worker == worker.worker_id
    assert runs[0].files_after < runs[0].files_before
    assert _rows_by_account(tmp_path, catalog_url) == before and _duplicate_keys(tmp_path, catalog_url) == 0
