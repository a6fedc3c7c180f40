"""The control channel: Sync now requests, their progress and report, and the worker heartbeat.

Each behaviour runs on both backends: SQLite in the data dir (one worker) and the shared PostgreSQL
(many workers, INSIGHTS_STORE=ducklake). `open_control()` opens another handle on the same store.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from insights_core.cluster.control_pg import PostgresControlChannel
from insights_core.cluster.pg import SCHEMA
from insights_core.control import ORPHANED_ERROR, STALE_AFTER_SECONDS, Control, ControlChannel
from insights_core.models import SyncReport, SyncRequest

MAX_DAYS = 365

OpenControl = Callable[[], Control]


@pytest.fixture(params=["sqlite", "postgres"])
def open_control(request: pytest.FixtureRequest, tmp_path: Path) -> OpenControl:
    if request.param == "sqlite":
        return lambda: ControlChannel(tmp_path / "control.sqlite")
    url = request.getfixturevalue("catalog_url")
    return lambda: PostgresControlChannel(url)


def _execute(control: Control, sql: str, params: list[Any]) -> Any:
    """Raw SQL on the channel's own database (`?` placeholders), as an older version or a hand edit would."""
    if isinstance(control, ControlChannel):
        with sqlite3.connect(control.path) as con:
            return con.execute(sql, params).fetchone()
    assert isinstance(control, PostgresControlChannel)
    with psycopg.connect(control.url) as pg:
        pg.execute(f"SET search_path TO {SCHEMA}")
        cur = pg.execute(sql.replace("?", "%s"), params)  # type: ignore[arg-type]
        return cur.fetchone() if cur.description else None


def test_an_equal_request_while_one_is_open_does_not_queue_a_second(open_control: OpenControl) -> None:
    control = open_control()
    first, created = control.save_request(SyncRequest(days_back=7, requested_by="ana"))
    again, created_again = control.save_request(SyncRequest(days_back=7, requested_by="bob"))
    other, created_other = control.save_request(SyncRequest(days_back=8))
    assert created and not created_again and created_other
    assert again == first and other != first
    claimed = control.claim_next_request(MAX_DAYS)
    assert claimed is not None and claimed.request_id == first and claimed.requested_by == "ana"
    # still open while running
    assert control.save_request(SyncRequest(days_back=7)) == (first, False)
    report = SyncReport(
        sync_id="s1",
        sync_timestamp="2026-11-20T00:00:00+00:00",
        sync_type="manual",
        mode="stub",
        status="succeeded",
        success=True,
    )
    control.finish_request(first, report)
    assert control.fetch_request(first).status == "succeeded"
    assert control.fetch_request(first).report["sync_id"] == "s1"
    # once finished, the same request queues again
    assert control.save_request(SyncRequest(days_back=7))[1] is True


def test_concurrent_double_clicks_queue_exactly_one_request(open_control: OpenControl) -> None:
    control = open_control()
    results: list[tuple[int, bool]] = []
    threads = [
        threading.Thread(target=lambda: results.append(open_control().save_request(SyncRequest(days_back=3))))
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(created for _, created in results) == 1
    assert len({request_id for request_id, _ in results}) == 1
    assert control.claim_next_request(MAX_DAYS) is not None and control.claim_next_request(MAX_DAYS) is None


def test_claims_go_oldest_first_and_only_once(open_control: OpenControl) -> None:
    control = open_control()
    ids = [control.save_request(SyncRequest(days_back=d))[0] for d in (1, 2, 3)]
    claimed = [control.claim_next_request(MAX_DAYS).request_id for _ in range(3)]
    assert claimed == ids and control.claim_next_request(MAX_DAYS) is None


def test_progress_and_failure_are_recorded(open_control: OpenControl) -> None:
    control = open_control()
    request_id, _ = control.save_request(SyncRequest(days_back=2))
    control.claim_next_request(MAX_DAYS)
    control.save_request_progress(request_id, "s9", {"sync_id": "s9", "levels": {"ad": {"done": 3, "total": 9}}})
    record = control.fetch_request(request_id)
    assert record.status == "running" and record.progress["levels"]["ad"] == {"done": 3, "total": 9}
    control.finish_request(request_id, None, error="unknown campaign id: 1")
    record = control.fetch_request(request_id)
    assert record.status == "failed" and record.error == "unknown campaign id: 1"


def test_orphaned_running_requests_are_failed_at_worker_start(open_control: OpenControl) -> None:
    control = open_control()
    request_id, _ = control.save_request(SyncRequest(days_back=2))
    control.claim_next_request(MAX_DAYS)
    # many workers: only a claim older than a heartbeat's staleness, by a worker with no fresh heartbeat, is orphaned
    _execute(
        control, "UPDATE sync_requests SET claimed_at = '2026-11-20T00:00:00.000+00:00' WHERE id = ?", [request_id]
    )
    assert control.fail_orphaned_requests() == 1
    record = control.fetch_request(request_id)
    assert record.status == "failed" and record.error == ORPHANED_ERROR


def test_the_claim_returns_the_request_that_was_saved(open_control: OpenControl) -> None:
    control = open_control()
    saved = SyncRequest(days_back=14, entity_type="adset", entity_ids=("22", "11"), force=True, requested_by="ana")
    request_id, _ = control.save_request(saved)
    claimed = control.claim_next_request(MAX_DAYS)
    assert claimed == SyncRequest(
        sync_type="manual",
        days_back=14,
        entity_type="adset",
        entity_ids=("22", "11"),
        force=True,
        request_id=request_id,
        requested_by="ana",
    )
    assert control.fetch_request(request_id).request == claimed


def _store_raw_request(control: Control, params: object) -> int:
    """A pending row as an older version or a hand edit might have left it."""
    row = _execute(
        control,
        "INSERT INTO sync_requests (created_at, requested_by, params, params_key, status)"
        " VALUES ('2026-11-20T00:00:00.000+00:00', 'old', ?, ?, 'pending') RETURNING id",
        [json.dumps(params), json.dumps(params) + "-raw"],
    )
    return int(row[0])


def test_a_stored_request_that_no_longer_validates_is_failed_at_the_claim_and_the_next_one_runs(
    open_control: OpenControl,
) -> None:
    control = open_control()
    too_long = _store_raw_request(control, {"days_back": 200, "entity_type": None, "entity_ids": [], "force": False})
    not_ids = _store_raw_request(
        control, {"days_back": 2, "entity_type": "ad", "entity_ids": ["1; DROP TABLE ads"], "force": False}
    )
    good, _ = control.save_request(SyncRequest(days_back=3))
    claimed = control.claim_next_request(max_days_back=100)  # INSIGHTS_MAX_DAYS_BACK lowered since it was queued
    assert claimed is not None and claimed.request_id == good and claimed.days_back == 3
    first, second = control.fetch_request(too_long), control.fetch_request(not_ids)
    assert first.status == "failed" and "days back must be from 1 to 100" in first.error
    assert second.status == "failed" and "is not a Meta object id" in second.error
    assert second.request is None  # shown as unreadable, never run
    assert control.claim_next_request(max_days_back=100) is None


def test_a_stored_report_with_the_old_rows_written_key_reads_as_rows_read(open_control: OpenControl) -> None:
    control = open_control()
    request_id, _ = control.save_request(SyncRequest(days_back=2))
    control.claim_next_request(MAX_DAYS)
    old = {
        "sync_id": "s1",
        "sync_timestamp": "2026-11-20T00:00:00+00:00",
        "sync_type": "manual",
        "mode": "stub",
        "status": "succeeded",
        "success": True,
        "rows_written": 1234,
    }
    _execute(
        control, "UPDATE sync_requests SET status = 'succeeded', report = ? WHERE id = ?", [json.dumps(old), request_id]
    )
    record = control.fetch_request(request_id)
    assert record.report["rows_read"] == 1234 and "rows_written" not in record.report
    assert SyncReport.from_dict(old).rows_read == 1234


def test_heartbeat_goes_stale(open_control: OpenControl) -> None:
    control = open_control()
    assert control.fetch_worker_status() is None
    start = dt.datetime.now(dt.timezone.utc)
    control.save_heartbeat(mode="stub", state="idle", started_at=start, interval_minutes=30, sync_enabled=True)
    status = control.fetch_worker_status()
    assert status.is_alive() and status.state == "idle" and status.mode == "stub"
    assert not status.is_alive(status.heartbeat_at + dt.timedelta(seconds=STALE_AFTER_SECONDS + 1))
    control.save_heartbeat(mode="stub", state="stopped", started_at=start, interval_minutes=30, sync_enabled=True)
    assert not control.fetch_worker_status().is_alive()


def test_an_opener_waits_for_a_database_being_created_and_leaves_its_wal_alone(tmp_path: Path) -> None:
    """Another process is creating the control database (its creation lock held, its WAL in use): an
    opener that found no file waits, then uses that database; it does not clear the WAL as stale
    (which failed the creator's connections with "disk I/O error", 3 of 400 openings in one CI run)."""
    path = tmp_path / "control.sqlite"
    lock = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(lock, fcntl.LOCK_EX)  # the other process, mid-creation
    failures: list[Exception] = []

    def open_channel() -> None:
        try:
            ControlChannel(path)
        except Exception as exc:
            failures.append(exc)

    opener = threading.Thread(target=open_channel)
    opener.start()
    opener.join(0.5)
    assert opener.is_alive() and not path.exists()  # it waits; it did not create a file of its own
    creator = sqlite3.connect(path, isolation_level=None)
    creator.execute("PRAGMA journal_mode=WAL")
    creator.execute("CREATE TABLE mine (x INTEGER)")
    fcntl.flock(lock, fcntl.LOCK_UN)
    os.close(lock)
    opener.join(10)
    creator.execute("INSERT INTO mine VALUES (1)")  # the creator's WAL is still there
    assert creator.execute("SELECT count(*) FROM mine").fetchone() == (1,)
    creator.close()
    assert failures == []
    with sqlite3.connect(path) as con:  # one database, with the creator's table and the channel's
        tables = {row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "mine" in tables and "sync_requests" in tables


def test_processes_creating_the_control_db_at_once_all_get_it(tmp_path: Path) -> None:
    """The worker and the dashboard start on a fresh data dir together: neither may fail with 'locked'."""
    failures: list[Exception] = []

    def open_channel(path: Path) -> None:
        try:
            ControlChannel(path)
        except Exception as exc:
            failures.append(exc)

    for attempt in range(100):
        path = tmp_path / f"run{attempt}" / "control.sqlite"
        threads = [threading.Thread(target=open_channel, args=(path,)) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert failures == []
