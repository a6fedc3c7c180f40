"""Many workers (INSIGHTS_STORE=ducklake) on one lake, against a real PostgreSQL: leases, claims,
fencing and takeover, and what ends up in the lake (each worker has its own data dir; they share
the catalog and the lake's data directory, `<tmp>/lake`)."""

from __future__ import annotations

import datetime as dt
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
from insights_core.control import ORPHANED_ERROR
from insights_core.engine import run_sync
from insights_core.models import SyncRequest
from insights_core.settings import Settings
from insights_core.sources import open_source
from insights_core.sources.stub_accounts import stub_account
from insights_core.store.lake import LAKE, connect_lake
from insights_core.store.lake_maintenance import compact_lake
from insights_core.store.lake_warehouse import COMMIT_LOCK_KEY
from insights_core.store.warehouse import Warehouse
from insights_core.worker import SyncWorker
from tests.helpers import PYTHON, ROOT, make_settings, subprocess_env, wait_for
from tests.lake_worker import PAUSE_AT_COMMIT
from tests.postgres import clone_lake

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


SYNCED_TABLES = ("ad_accounts", "campaigns", "adsets", "ads", "synced_days")


def _fetch_synced(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[object, ...]]]:
    """What syncs stored, without the clock's columns: every insight row's numbers, and each entity
    and bookkeeping table's row count."""
    state: dict[str, list[tuple[object, ...]]] = {
        "meta_ad_insights": con.execute(
            "SELECT account_id, entity_type, entity_id, date_start, spend, impressions, clicks, conversions, revenue,"
            " reach, unique_clicks, frequency FROM meta_ad_insights ORDER BY ALL"
        ).fetchall()
    }
    for table in SYNCED_TABLES:
        state[table] = con.execute(f"SELECT count(*) FROM {table}").fetchall()
    return state


def _reference_state(tmp_path: Path, stub_accounts: int) -> dict[str, list[tuple[object, ...]]]:
    """What one clean scheduled sync of the tiny stub accounts stores (the embedded store)."""
    settings = make_settings(tmp_path / "reference", stub_accounts=stub_accounts, **TINY)
    warehouse = Warehouse(settings.db_path)
    try:
        report = run_sync(
            SyncRequest(sync_type="scheduled"), source=open_source(settings), warehouse=warehouse, settings=settings
        )
        assert report.success, report.errors
        return _fetch_synced(warehouse.con)
    finally:
        warehouse.close()


def _commit_lock_is_free(pg: psycopg.Connection) -> bool:
    row = pg.execute("SELECT pg_try_advisory_lock(%s)", [COMMIT_LOCK_KEY]).fetchone()
    if row is not None and row[0]:
        pg.execute("SELECT pg_advisory_unlock(%s)", [COMMIT_LOCK_KEY])
        return True
    return False


def _lake_head(pg: psycopg.Connection) -> int:
    row = pg.execute("SELECT max(snapshot_id) FROM public.ducklake_snapshot").fetchone()
    assert row is not None
    return int(row[0])


def _blocked_by(pg: psycopg.Connection, pid: int) -> tuple[int, str] | None:
    """The session waiting for a lock `pid` holds, and its statement."""
    row = pg.execute("SELECT pid, query FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))", [pid]).fetchone()
    return (int(row[0]), str(row[1])) if row else None


def _session_exists(pg: psycopg.Connection, pid: int) -> bool:
    return pg.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone() is not None


@pytest.fixture
def migrated_catalog_url(postgres_server: PostgresServer, lake_template: str, tmp_path: Path) -> str:
    """A catalog with the lake's schema already applied (the workers' lake is `<tmp>/lake`): a worker
    starts in seconds instead of migrating a new lake first."""
    return clone_lake(postgres_server, lake_template, tmp_path / "lake")


@pytest.mark.parametrize("point", ["holding the commit lock", "inside DuckLake's commit"])
def test_a_worker_killed_mid_commit_loses_nothing_and_its_account_is_synced_again(
    tmp_path: Path, migrated_catalog_url: str, point: str
) -> None:
    """kill -9 while a sync commits: before COMMIT with the lock held, or inside DuckLake's COMMIT (its
    catalog transaction has written the new snapshot row and is registering the data files; a lock the
    test holds on ducklake_data_file stops it there). The lock goes with the dead sessions, nothing of
    that sync is in the lake, its request is failed by another worker, and that worker syncs the
    account, leaving exactly what one clean sync leaves; maintenance afterwards removes the files the
    dead commit wrote."""
    catalog_url = migrated_catalog_url
    control = PostgresControlChannel(catalog_url)
    request_id, _ = control.save_request(SyncRequest(days_back=5))
    paused = tmp_path / "committing"
    victim = _start(
        tmp_path / "victim", catalog_url, 1.5, INSIGHTS_SYNC_ENABLED="false", **{PAUSE_AT_COMMIT: str(paused)}
    )
    blocker: psycopg.Connection | None = None
    with psycopg.connect(catalog_url, autocommit=True) as pg:
        try:
            wait_for(paused.exists, timeout=60, what="the worker at its sync's commit")
            assert not _commit_lock_is_free(pg), "the worker waits holding the commit lock"
            assert list((tmp_path / "lake" / "main" / "meta_ad_insights").glob("*.parquet")), "its files are written"
            head = _lake_head(pg)
            if point == "inside DuckLake's commit":
                blocker = psycopg.connect(catalog_url)
                blocker.execute("LOCK TABLE public.ducklake_data_file IN EXCLUSIVE MODE")  # reads still pass
                paused.with_name(paused.name + ".go").touch()
                blocked_pid, statement = wait_for(
                    lambda: _blocked_by(pg, blocker.info.backend_pid), timeout=30, what="the commit at the lock"
                )
                assert statement.startswith('INSERT INTO "public".ducklake_snapshot'), statement[:200]
        finally:
            os.kill(victim.pid, signal.SIGKILL)
            victim.wait()
            if blocker is not None:
                # released after the kill: the dead worker's catalog session goes on to its next read, finds
                # the client gone and rolls back (it cannot COMMIT: that is a statement of its own)
                blocker.rollback()
                blocker.close()
        wait_for(lambda: _commit_lock_is_free(pg), timeout=10, what="the commit lock released with the session")
        if point == "inside DuckLake's commit":
            wait_for(lambda: not _session_exists(pg, blocked_pid), timeout=10, what="the dead commit's session gone")
        assert _lake_head(pg) == head, "nothing of the killed sync was committed"

    heir = _start(tmp_path / "heir", catalog_url, 1.5, INSIGHTS_SYNC_INTERVAL_MINUTES="600")
    try:
        wait_for(lambda: _scheduled_accounts(catalog_url), timeout=60, what="the account synced by the other worker")
        record = wait_for(
            lambda: (r := control.fetch_request(request_id)) is not None and r.status != "running" and r,
            timeout=45,
            what="the killed worker's request no longer running",
        )
    finally:
        assert _stop(heir) == 0
    assert (record.status, record.error) == ("failed", ORPHANED_ERROR)
    assert _run_accounts(tmp_path, catalog_url, "manual") == []
    assert _run_accounts(tmp_path, catalog_url, "scheduled") == [[stub_account(0).account_id]]
    expected = _reference_state(tmp_path, stub_accounts=1)
    with _lake(tmp_path, catalog_url) as con:
        assert _fetch_synced(con) == expected
        assert _duplicate_keys(tmp_path, catalog_url) == 0
        compact_lake(con, LAKE, keep_snapshots=dt.timedelta(0), worker="test")  # raises on failure; no worker runs
        assert _fetch_synced(con) == expected
        files = con.execute(f"SELECT sum(file_count) + sum(delete_file_count) FROM ducklake_table_info('{LAKE}')")
        referenced = files.fetchone()
    # the files the killed commit wrote were referenced by no snapshot: maintenance deleted them
    assert referenced is not None and len(list((tmp_path / "lake").rglob("*.parquet"))) == referenced[0]


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


def test_accounts_leased_first_stay_leased_while_a_sync_now_waits_for_another(tmp_path: Path, catalog_url: str) -> None:
    """`--once` (no heartbeat thread) waiting for an account another worker holds: the account it leased
    at once is renewed meanwhile, so nobody takes it when its first lease period is over."""
    settings = _lake_settings(tmp_path / "data", catalog_url, stub_accounts=2)
    other = AccountLeases(catalog_url, "other-host:42:abc", 30)
    held = other.claim([stub_account(1).account_id])
    thief = AccountLeases(catalog_url, "thief:1:x", 30)
    stolen: list[object] = []
    worker = SyncWorker(settings, lease_seconds=2)
    # 3.5 s in (well past the 2 s lease), a third worker tries the account this one leased; at 5 s the
    # held account is released
    attempt = threading.Timer(3.5, lambda: stolen.extend(thief.claim([stub_account(0).account_id])))
    done = threading.Timer(5.0, other.release, args=(held,))
    attempt.start()
    done.start()
    try:
        report = worker.run_once(SyncRequest(days_back=2))
    finally:
        attempt.join()
        done.join()
        worker.close()
    assert stolen == []
    assert report.success and report.errors == []
    assert sorted(report.accounts) == [stub_account(n).account_id for n in range(2)]


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
