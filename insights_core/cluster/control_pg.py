"""The control channel in PostgreSQL, for many workers and dashboard replicas (INSIGHTS_STORE=ducklake).

Same interface as the SQLite `insights_core.control.ControlChannel`: Sync now requests with their
progress and report, and heartbeats; but every worker has its own heartbeat row (its `worker_id`),
and `fetch_worker_status` summarises them all. Claims use `FOR UPDATE SKIP LOCKED`, so each request
is taken by exactly one of N workers. Connections are short-lived and per call, so any thread can
use one object; every database error raises one ControlChannelError (never with the password).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import os
import socket
from typing import Any

from insights_core.cluster.schema import SharedTables
from insights_core.control import (
    ORPHANED_ERROR,
    STALE_AFTER_SECONDS,
    RequestRecord,
    WorkerStatus,
    claim_valid_request,
    new_worker_id,
    parse_json_opt,
    parse_report_opt,
    read_stored_request,
)
from insights_core.models import SyncReport, SyncRequest
from insights_core.sync_requests import request_params

log = logging.getLogger("meta_insights.control")

SHOWN_WORKERS_HOURS = 24
"""Workers whose last heartbeat is older than this are no longer listed (and their rows are pruned)."""


class PostgresControlChannel:
    """Sync requests and heartbeats of many workers in the shared schema of `url` (created on first use)."""

    def __init__(self, url: str, worker_id: str | None = None) -> None:
        self.worker_id = worker_id or new_worker_id()
        self._db = SharedTables(url, "shared control state")
        with self._db.connect():
            pass

    @property
    def url(self) -> str:
        return self._db.url

    def save_request(self, request: SyncRequest) -> tuple[int, bool]:
        """Queue a Sync now request; return (request id, created): an equal open request is returned instead."""
        params = request_params(request)
        key = json.dumps(params, sort_keys=True)
        while True:
            with self._db.connect() as con:
                row = con.execute(
                    "INSERT INTO sync_requests (requested_by, params, params_key, status)"
                    " VALUES (%s, %s, %s, 'pending')"
                    " ON CONFLICT (params_key) WHERE status IN ('pending', 'running') DO NOTHING RETURNING id",
                    [request.requested_by, json.dumps(params), key],
                ).fetchone()
                if row is not None:
                    return int(row["id"]), True
                existing = con.execute(
                    "SELECT id FROM sync_requests WHERE params_key = %s AND status IN ('pending', 'running')", [key]
                ).fetchone()
                if existing is not None:
                    return int(existing["id"]), False
            # the open one finished between the two statements: queue this one again

    def claim_next_request(self, max_days_back: int) -> SyncRequest | None:
        """Take the oldest pending request (skipping rows another worker is taking) and return it validated.

        A stored request that no longer validates is finished as failed and the next one is claimed.
        """

        def claim_row() -> Any:
            with self._db.connect() as con:
                return con.execute(
                    """
                    UPDATE sync_requests SET status = 'running', claimed_at = now(), claimed_by = %s
                    WHERE id = (SELECT id FROM sync_requests WHERE status = 'pending'
                                ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
                    RETURNING id, params, requested_by
                    """,
                    [self.worker_id],
                ).fetchone()

        return claim_valid_request(claim_row, self.finish_request, max_days_back)

    def save_request_progress(self, request_id: int, sync_id: str, progress: dict[str, Any]) -> None:
        with self._db.connect() as con:
            con.execute(
                "UPDATE sync_requests SET sync_id = %s, progress = %s WHERE id = %s",
                [sync_id, json.dumps(progress), request_id],
            )

    def finish_request(self, request_id: int, report: SyncReport | None, error: str | None = None) -> None:
        """Record the outcome: succeeded/failed/cancelled from the report, or failed with `error`."""
        status = report.status if report is not None and report.status != "running" else "failed"
        with self._db.connect() as con:
            con.execute(
                "UPDATE sync_requests SET status = %s, finished_at = now(), report = %s, error = %s, sync_id = %s"
                " WHERE id = %s",
                [
                    status,
                    json.dumps(report.to_dict()) if report else None,
                    error,
                    report.sync_id if report else None,
                    request_id,
                ],
            )

    def fail_orphaned_requests(self) -> int:
        """Fail requests left running by a worker whose heartbeat went stale (killed, or cut off).

        Requests of live workers are left alone, so any worker may call this at any time; one claimed
        less than STALE_AFTER_SECONDS ago is spared too (its worker may not have beaten yet).
        """
        with self._db.connect() as con:
            cur = con.execute(
                """
                UPDATE sync_requests r SET status = 'failed', finished_at = now(), error = %s
                WHERE r.status = 'running'
                  AND r.claimed_at < now() - make_interval(secs => %s)
                  AND NOT EXISTS (
                      SELECT 1 FROM worker_heartbeats w
                      WHERE w.worker_id = r.claimed_by AND w.state <> 'stopped'
                        AND w.heartbeat_at > now() - make_interval(secs => %s))
                """,
                [ORPHANED_ERROR, STALE_AFTER_SECONDS, STALE_AFTER_SECONDS],
            )
            return cur.rowcount

    def fetch_request(self, request_id: int) -> RequestRecord | None:
        with self._db.connect() as con:
            row = con.execute("SELECT * FROM sync_requests WHERE id = %s", [request_id]).fetchone()
        return _request_record(row) if row else None

    def fetch_recent_requests(self, limit: int = 20) -> list[RequestRecord]:
        with self._db.connect() as con:
            rows = con.execute("SELECT * FROM sync_requests ORDER BY id DESC LIMIT %s", [limit]).fetchall()
        return [_request_record(row) for row in rows]

    def save_heartbeat(
        self,
        *,
        mode: str,
        state: str,
        started_at: dt.datetime,
        interval_minutes: int | None,
        sync_enabled: bool,
        next_run_at: dt.datetime | None = None,
        current_sync_id: str | None = None,
        progress: dict[str, Any] | None = None,
        last_report: SyncReport | None = None,
    ) -> None:
        """Upsert this worker's row (the server's clock stamps it); rows silent for a day are pruned."""
        with self._db.connect() as con:
            con.execute(
                """
                INSERT INTO worker_heartbeats (worker_id, pid, hostname, mode, started_at, heartbeat_at, state,
                    interval_minutes, sync_enabled, next_run_at, current_sync_id, progress, last_report)
                VALUES (%s, %s, %s, %s, %s, now(), %s, %s, %s, %s, %s, %s, %s)
                ON CONFLICT (worker_id) DO UPDATE SET mode = excluded.mode, heartbeat_at = excluded.heartbeat_at,
                    state = excluded.state, interval_minutes = excluded.interval_minutes,
                    sync_enabled = excluded.sync_enabled, next_run_at = excluded.next_run_at,
                    current_sync_id = excluded.current_sync_id, progress = excluded.progress,
                    last_report = coalesce(excluded.last_report, worker_heartbeats.last_report)
                """,
                [
                    self.worker_id,
                    os.getpid(),
                    socket.gethostname(),
                    mode,
                    started_at,
                    state,
                    interval_minutes,
                    sync_enabled,
                    next_run_at,
                    current_sync_id,
                    json.dumps(progress) if progress else None,
                    json.dumps(last_report.to_dict()) if last_report else None,
                ],
            )
            con.execute(
                "DELETE FROM worker_heartbeats WHERE heartbeat_at < now() - make_interval(hours => %s)",
                [SHOWN_WORKERS_HOURS],
            )

    def fetch_worker_status(self) -> WorkerStatus | None:
        """Every worker seen lately, summarised: the fields describe a syncing live worker (else the
        freshest), `workers` lists them all with the accounts each holds a lease on now."""
        with self._db.connect() as con:
            rows = con.execute(
                """
                SELECT h.*, coalesce((SELECT array_agg(l.account_id ORDER BY l.account_id) FROM account_leases l
                                      WHERE l.holder = h.worker_id AND l.expires_at > now()), '{}') AS accounts
                FROM worker_heartbeats h
                WHERE h.heartbeat_at > now() - make_interval(hours => %s)
                ORDER BY h.heartbeat_at DESC, h.worker_id
                """,
                [SHOWN_WORKERS_HOURS],
            ).fetchall()
        workers = tuple(_worker_status(row) for row in rows)
        if not workers:
            return None
        alive = [worker for worker in workers if worker.is_alive()]
        syncing = [worker for worker in alive if worker.state == "syncing" or worker.current_sync_id]
        shown = (syncing or alive or list(workers))[0]
        return dataclasses.replace(shown, workers=workers)


def _worker_status(row: dict[str, Any]) -> WorkerStatus:
    return WorkerStatus(
        pid=row["pid"],
        hostname=row["hostname"],
        mode=row["mode"],
        started_at=row["started_at"],
        heartbeat_at=row["heartbeat_at"],
        state=row["state"],
        interval_minutes=row["interval_minutes"],
        sync_enabled=bool(row["sync_enabled"]),
        next_run_at=row["next_run_at"],
        current_sync_id=row["current_sync_id"],
        progress=parse_json_opt(row["progress"]),
        last_report=parse_report_opt(row["last_report"]),
        worker_id=row["worker_id"],
        accounts=tuple(row["accounts"]),
    )


def _request_record(row: dict[str, Any]) -> RequestRecord:
    return RequestRecord(
        id=row["id"],
        created_at=row["created_at"],
        requested_by=row["requested_by"],
        request=read_stored_request(row),
        status=row["status"],
        claimed_at=row["claimed_at"],
        finished_at=row["finished_at"],
        sync_id=row["sync_id"],
        progress=parse_json_opt(row["progress"]),
        report=parse_report_opt(row["report"]),
        error=row["error"],
    )
