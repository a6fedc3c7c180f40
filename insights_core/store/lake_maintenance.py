"""Lake maintenance: compact small files, expire old snapshots, delete the files nothing points at.

Every sync commit writes its own Parquet files (and MERGE updates write delete files), so a lake that
syncs every 30 minutes grows thousands of small files a week; readers pay for each one. One worker
at a time runs maintenance (a PostgreSQL advisory lock), at most every INSIGHTS_LAKE_MAINTENANCE_HOURS,
and always holding the lake's commit lock: DuckLake has open reports of wrong results when a merge
runs beside a delete+insert commit (ducklake#1094), so no sync commits while files are rewritten.
Each run's figures go to `insights.lake_maintenance_runs` (declared with the other shared tables),
to the worker's log and to the admin's Sync page (`fetch_maintenance_history`).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from typing import Any

import duckdb
import psycopg

from insights_core.cluster.pg import describe, shared_state
from insights_core.cluster.schema import ensure_cluster_tables
from insights_core.errors import ControlChannelError

log = logging.getLogger("meta_insights.lake_maintenance")

MAINTENANCE_LOCK_KEY = 7_346_001
"""pg_try_advisory_lock key: the one worker that runs maintenance holds it (any other skips)."""
REWRITE_DELETE_THRESHOLD = 0.1
"""Rewrite a data file once a tenth of its rows are deleted (re-synced days update rows in place)."""


@dataclass
class MaintenanceRun:
    """One maintenance pass: the lake's data files before and after, and what each step did."""

    started_at: dt.datetime
    seconds: float
    worker: str
    files_before: int = 0
    files_after: int = 0
    bytes_before: int = 0
    bytes_after: int = 0
    delete_files_before: int = 0
    files_merged: int = 0
    files_rewritten: int = 0
    snapshots_expired: int = 0
    files_deleted: int = 0
    error: str | None = None


def _file_totals(con: duckdb.DuckDBPyConnection, catalog: str) -> tuple[int, int, int]:
    """(data files, their bytes, delete files) over every table of the lake."""
    row = con.execute(
        "SELECT coalesce(sum(file_count), 0), coalesce(sum(file_size_bytes), 0), coalesce(sum(delete_file_count), 0)"
        " FROM ducklake_table_info(?)",
        [catalog],
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


def compact_lake(
    con: duckdb.DuckDBPyConnection, catalog: str, *, keep_snapshots: dt.timedelta, worker: str
) -> MaintenanceRun:
    """Merge small files, rewrite files with many deleted rows, expire snapshots older than
    `keep_snapshots` and delete the files no kept snapshot reads (and orphans as old). The caller
    holds the commit lock. A reader pinned to a snapshot younger than `keep_snapshots` keeps working."""
    started, clock = dt.datetime.now(dt.timezone.utc), time.monotonic()
    run = MaintenanceRun(started_at=started, seconds=0.0, worker=worker)
    run.files_before, run.bytes_before, run.delete_files_before = _file_totals(con, catalog)
    cutoff = started - keep_snapshots
    run.files_merged = _sum_column(con, "CALL ducklake_merge_adjacent_files(?)", [catalog], "files_processed")
    run.files_rewritten = _sum_column(
        con,
        "CALL ducklake_rewrite_data_files(?, delete_threshold => ?)",
        [catalog, REWRITE_DELETE_THRESHOLD],
        "files_processed",
    )
    run.snapshots_expired = len(
        con.execute("CALL ducklake_expire_snapshots(?, older_than => ?)", [catalog, cutoff]).fetchall()
    )
    # files leave when they have been unreferenced for `keep_snapshots` (counted from the expiry that
    # unreferenced them), so a reader still on an expired snapshot has that long to finish
    grace = dt.datetime.now(dt.timezone.utc) - keep_snapshots
    run.files_deleted = len(
        con.execute("CALL ducklake_cleanup_old_files(?, older_than => ?)", [catalog, grace]).fetchall()
    )
    run.files_deleted += len(
        con.execute("CALL ducklake_delete_orphaned_files(?, older_than => ?)", [catalog, grace]).fetchall()
    )
    run.files_after, run.bytes_after, _ = _file_totals(con, catalog)
    run.seconds = round(time.monotonic() - clock, 3)
    return run


def _sum_column(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any], column: str) -> int:
    """The sum of `column` over a maintenance call's rows (one row per table it touched)."""
    cursor = con.execute(sql, params)
    names = [d[0] for d in cursor.description or []]
    rows = cursor.fetchall()
    if column not in names:
        return len(rows)
    index = names.index(column)
    return int(sum(int(r[index] or 0) for r in rows))


def run_lake_maintenance_if_due(
    catalog_url: str,
    con: duckdb.DuckDBPyConnection,
    catalog: str,
    *,
    every: dt.timedelta,
    keep_snapshots: dt.timedelta,
    worker: str,
    commit_lock: Callable[[], AbstractContextManager[object]],
) -> MaintenanceRun | None:
    """Run maintenance when no other worker runs it and the last run is older than `every`; save and
    return the run, or None when skipped. A failure is saved with its error and logged, never raised:
    maintenance must not stop syncs."""
    with shared_state(catalog_url, autocommit=True) as pg:
        _ensure_schema(pg)
        if not pg.execute("SELECT pg_try_advisory_lock(%s)", (MAINTENANCE_LOCK_KEY,)).fetchone()[0]:  # type: ignore[index]
            return None
        try:
            last = _fetch_last_success(pg)
            if last is not None and dt.datetime.now(dt.timezone.utc) - last < every:
                return None
            try:
                with commit_lock():
                    run = compact_lake(con, catalog, keep_snapshots=keep_snapshots, worker=worker)
            except duckdb.Error as exc:
                log.warning("lake maintenance failed: %s", exc)
                run = MaintenanceRun(
                    started_at=dt.datetime.now(dt.timezone.utc), seconds=0.0, worker=worker, error=str(exc)[:500]
                )
            _save_run(pg, run)
            return run
        finally:
            pg.execute("SELECT pg_advisory_unlock(%s)", (MAINTENANCE_LOCK_KEY,))


def fetch_maintenance_runs(catalog_url: str, limit: int = 10) -> list[MaintenanceRun]:
    """The newest runs first."""
    with shared_state(catalog_url) as pg:
        _ensure_schema(pg)
        return _select_runs(pg, limit)


@dataclass(frozen=True)
class MaintenanceHistory:
    """What the Sync page shows of maintenance: the newest runs, and when the last one that succeeded
    started (a failed run does not count: the next is due `every` after the last success)."""

    runs: list[MaintenanceRun]
    last_success_at: dt.datetime | None

    def next_due_at(self, every: dt.timedelta) -> dt.datetime | None:
        """When a worker runs maintenance next; None: due now (it never succeeded)."""
        return None if self.last_success_at is None else self.last_success_at + every


def fetch_maintenance_history(catalog_url: str, limit: int = 10) -> MaintenanceHistory:
    """The newest `limit` runs and the last success; ControlChannelError (without the password) when
    the shared state cannot be read."""
    try:
        with shared_state(catalog_url) as pg:
            _ensure_schema(pg)
            runs = _select_runs(pg, limit)
            last_success = _fetch_last_success(pg)
    except psycopg.Error as exc:
        raise ControlChannelError(f"lake maintenance runs: {describe(exc, catalog_url)}") from None
    return MaintenanceHistory(runs=runs, last_success_at=last_success)


def _fetch_last_success(pg: Any) -> dt.datetime | None:
    """When the last run without an error started: the schedule counts from it (a failed run is retried)."""
    row = pg.execute("SELECT max(started_at) FROM lake_maintenance_runs WHERE error IS NULL").fetchone()
    return row[0] if row else None


def _select_runs(pg: Any, limit: int) -> list[MaintenanceRun]:
    fields = list(MaintenanceRun.__dataclass_fields__)
    rows = pg.execute(
        f"SELECT {', '.join(fields)} FROM lake_maintenance_runs ORDER BY started_at DESC LIMIT %s", (limit,)
    ).fetchall()
    return [MaintenanceRun(**dict(zip(fields, row))) for row in rows]


def _ensure_schema(pg: Any) -> None:
    with pg.transaction():  # the shared tables are created under their advisory lock, released at commit
        ensure_cluster_tables(pg)


def _save_run(pg: Any, run: MaintenanceRun) -> None:
    values = asdict(run)
    columns = ", ".join(values)
    placeholders = ", ".join(["%s"] * len(values))
    pg.execute(f"INSERT INTO lake_maintenance_runs ({columns}) VALUES ({placeholders})", list(values.values()))
