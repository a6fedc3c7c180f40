"""The control channel between the app and the worker: a small SQLite database in WAL mode.

It holds Sync now requests (with their progress and final report) and the worker's heartbeat.
It is deliberately not the DuckDB file: the app may write here while the worker writes insights.
Connections are short-lived and per call, so any thread (Streamlit's included) can use it.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import logging
import os
import secrets
import socket
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from insights_core.datadir import ensure_private_dir, make_private
from insights_core.errors import ControlChannelError, InputError
from insights_core.models import SyncReport, SyncRequest, upgrade_report_keys
from insights_core.sync_requests import parse_stored_request, request_params

if TYPE_CHECKING:
    from insights_core.settings import Settings

log = logging.getLogger("meta_insights.control")

WORKER_HEARTBEAT_SECONDS = 2.0
"""How often the worker writes its heartbeat row (the app reads it to tell whether the worker runs)."""
STALE_AFTER_SECONDS = 15.0
"""A heartbeat older than this means the worker is not running (or is stuck)."""
ORPHANED_ERROR = (
    "the worker stopped before it reported this sync: a sync it had not committed left nothing behind;"
    " one it had committed shows in the run history"
)
"""A worker can die after its commit and before it records the request's result (while it publishes
or sends alerts), so the message cannot say nothing was committed."""
"""The error of a request whose worker died while it ran (every backend writes the same words)."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sync_requests (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at   TEXT NOT NULL,
    requested_by TEXT,
    params       TEXT NOT NULL,
    params_key   TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('pending', 'running', 'succeeded', 'failed', 'cancelled')),
    claimed_at   TEXT,
    finished_at  TEXT,
    sync_id      TEXT,
    progress     TEXT,
    report       TEXT,
    error        TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS one_open_request_per_params
    ON sync_requests (params_key) WHERE status IN ('pending', 'running');
CREATE TABLE IF NOT EXISTS worker_status (
    id               INTEGER PRIMARY KEY CHECK (id = 1),
    pid              INTEGER NOT NULL,
    hostname         TEXT NOT NULL,
    mode             TEXT NOT NULL,
    started_at       TEXT NOT NULL,
    heartbeat_at     TEXT NOT NULL,
    state            TEXT NOT NULL,
    interval_minutes INTEGER,
    sync_enabled     INTEGER,
    next_run_at      TEXT,
    current_sync_id  TEXT,
    progress         TEXT,
    last_report      TEXT
);
"""


@dataclass(frozen=True)
class WorkerStatus:
    pid: int
    hostname: str
    mode: str
    started_at: dt.datetime
    heartbeat_at: dt.datetime
    state: str
    interval_minutes: int | None
    sync_enabled: bool
    next_run_at: dt.datetime | None
    current_sync_id: str | None
    progress: dict[str, Any] | None
    last_report: dict[str, Any] | None
    worker_id: str | None = None
    """Many workers (INSIGHTS_STORE=ducklake): this worker's id (host:pid:suffix); None for the single worker."""
    accounts: tuple[str, ...] = ()
    """Many workers: the ad accounts this worker holds a lease on now."""
    workers: tuple[WorkerStatus, ...] = ()
    """Many workers: every worker seen lately, this one included, freshest first. The fields above then
    describe the one the dashboard shows first (a syncing live worker, else the freshest)."""

    def is_alive(self, now: dt.datetime | None = None) -> bool:
        """False once the heartbeat is stale or the worker said it stopped."""
        now = now or _utcnow()
        return self.state != "stopped" and (now - self.heartbeat_at).total_seconds() <= STALE_AFTER_SECONDS

    def alive_workers(self, now: dt.datetime | None = None) -> list[WorkerStatus]:
        """The workers whose heartbeat is fresh (many workers), or this one alone when it is alive."""
        return [worker for worker in (self.workers or (self,)) if worker.is_alive(now)]


@dataclass(frozen=True)
class RequestRecord:
    """A Sync now request as the Sync page shows it: what was asked, its state, progress and report."""

    id: int
    created_at: dt.datetime
    requested_by: str | None
    request: SyncRequest | None
    """None when the stored row is not a request this version can read (it is refused at the claim)."""
    status: str
    claimed_at: dt.datetime | None
    finished_at: dt.datetime | None
    sync_id: str | None
    progress: dict[str, Any] | None
    report: dict[str, Any] | None
    """The finished report's JSON, with today's key names (`insights_core.models.upgrade_report_keys`)."""
    error: str | None

    @property
    def is_open(self) -> bool:
        return self.status in ("pending", "running")


_SCHEMA_ATTEMPTS = 20
"""Tries at creating the schema while another process creates it too (about 10 s in all)."""


def _create_schema(path: Path) -> None:
    con = sqlite3.connect(path, timeout=10, isolation_level=None)
    try:
        con.execute("PRAGMA busy_timeout=10000")
        con.execute("PRAGMA journal_mode=WAL")
        con.executescript(_SCHEMA)
    finally:
        con.close()


@contextmanager
def _holding_creation_lock(path: Path) -> Iterator[None]:
    """Hold `<path>.lock` (an exclusive flock: other processes and threads wait) while `path` is checked
    and created. Without it, a process that found no database removed the "stale" WAL and shared memory
    another had just created for its new database, and that one's connections failed with "disk I/O
    error" (the worker and the dashboard start together on a fresh data dir)."""
    fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def new_worker_id() -> str:
    """host:pid plus a random suffix: a pid reused on the same host after a kill is another worker."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class ControlChannel:
    """Sync requests and the worker heartbeat, in `path` (created on first use).

    The file is disposable: requests and heartbeats are short-lived. Every SQLite error raises one
    ControlChannelError; the next call recreates a deleted file and moves a corrupt one aside
    (`control.sqlite.corrupt-<time>`), so neither the worker nor the dashboard dies with it.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._schema_ready = False
        with self._connect():
            pass

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            self._ensure_schema()
            con = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        except (sqlite3.Error, OSError) as exc:
            raise self._failure(exc) from None
        con.row_factory = sqlite3.Row
        try:
            con.execute("PRAGMA busy_timeout=10000")
            yield con
        except sqlite3.Error as exc:
            raise self._failure(exc) from None
        finally:
            con.close()

    def _ensure_schema(self) -> None:
        if self._schema_ready and self.path.exists():
            return
        ensure_private_dir(self.path.parent)
        with _holding_creation_lock(self.path):
            if not self.path.exists():
                # a WAL left by a deleted database must not be replayed into the new one
                for suffix in ("-wal", "-shm"):
                    Path(f"{self.path}{suffix}").unlink(missing_ok=True)
            for attempt in range(_SCHEMA_ATTEMPTS):
                try:
                    _create_schema(self.path)
                    break
                except sqlite3.OperationalError as exc:
                    # switching a new file to WAL while another process (the app, the worker) does the same
                    # fails at once with "database is locked": SQLite does not wait on its busy handler there
                    if "locked" not in str(exc) or attempt == _SCHEMA_ATTEMPTS - 1:
                        raise
                    time.sleep(0.05 * (attempt + 1))
            for suffix in ("", "-wal", "-shm"):
                make_private(Path(f"{self.path}{suffix}"))  # sqlite gives its wal and shm the database file's mode
        self._schema_ready = True

    def _failure(self, exc: Exception) -> ControlChannelError:
        """One error line; a corrupt file is moved aside so the next call starts a fresh one."""
        self._schema_ready = False
        message = f"control database {self.path}: {exc}"
        if getattr(exc, "sqlite_errorname", "") in ("SQLITE_NOTADB", "SQLITE_CORRUPT") and self.path.exists():
            aside = self.path.with_name(f"{self.path.name}.corrupt-{_utcnow():%Y%m%dT%H%M%S%f}")
            try:
                os.replace(self.path, aside)
                for suffix in ("-wal", "-shm"):
                    Path(f"{self.path}{suffix}").unlink(missing_ok=True)
                message += f" (moved aside to {aside.name}; a new one is created)"
            except OSError as move_error:
                message += f" (could not move it aside: {move_error})"
        return ControlChannelError(message)

    def save_request(self, request: SyncRequest) -> tuple[int, bool]:
        """Queue a Sync now request; return (request id, created).

        The same request while an equal one is pending or running returns that one's id with
        created=False, so a double click never starts two syncs.
        """
        params = request_params(request)
        key = json.dumps(params, sort_keys=True)
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            existing = con.execute(
                "SELECT id FROM sync_requests WHERE params_key = ? AND status IN ('pending', 'running')", [key]
            ).fetchone()
            if existing:
                con.execute("COMMIT")
                return int(existing["id"]), False
            cur = con.execute(
                "INSERT INTO sync_requests (created_at, requested_by, params, params_key, status)"
                " VALUES (?, ?, ?, ?, 'pending')",
                [_iso(_utcnow()), request.requested_by, json.dumps(params), key],
            )
            con.execute("COMMIT")
            return int(cur.lastrowid or 0), True

    def claim_next_request(self, max_days_back: int) -> SyncRequest | None:
        """Atomically mark the oldest pending request running and return it, validated (`request_id` set).

        A stored request that no longer passes validation (days back above `max_days_back`, a row
        from an older version) is finished as failed with the reason, and the next one is claimed.
        """

        def claim_row() -> Any:
            with self._connect() as con:
                return con.execute(
                    """
                    UPDATE sync_requests SET status = 'running', claimed_at = ?
                    WHERE id = (SELECT id FROM sync_requests WHERE status = 'pending' ORDER BY id LIMIT 1)
                    RETURNING id, params, requested_by
                    """,
                    [_iso(_utcnow())],
                ).fetchone()

        return claim_valid_request(claim_row, self.finish_request, max_days_back)

    def save_request_progress(self, request_id: int, sync_id: str, progress: dict[str, Any]) -> None:
        with self._connect() as con:
            con.execute(
                "UPDATE sync_requests SET sync_id = ?, progress = ? WHERE id = ?",
                [sync_id, json.dumps(progress), request_id],
            )

    def finish_request(self, request_id: int, report: SyncReport | None, error: str | None = None) -> None:
        """Record the outcome: succeeded/failed/cancelled from the report, or failed with `error`.

        A report and an error together: the sync failed before it started (unknown ids), and the
        report echoes the request with the error as its first line.
        """
        status = report.status if report is not None and report.status != "running" else "failed"
        with self._connect() as con:
            con.execute(
                "UPDATE sync_requests SET status = ?, finished_at = ?, report = ?, error = ?, sync_id = ? WHERE id = ?",
                [
                    status,
                    _iso(_utcnow()),
                    json.dumps(report.to_dict()) if report else None,
                    error,
                    report.sync_id if report else None,
                    request_id,
                ],
            )

    def fail_orphaned_requests(self) -> int:
        """Requests left 'running' by a worker that died (see ORPHANED_ERROR)."""
        with self._connect() as con:
            cur = con.execute(
                "UPDATE sync_requests SET status = 'failed', finished_at = ?, error = ? WHERE status = 'running'",
                [_iso(_utcnow()), ORPHANED_ERROR],
            )
            return cur.rowcount

    def fetch_request(self, request_id: int) -> RequestRecord | None:
        with self._connect() as con:
            row = con.execute("SELECT * FROM sync_requests WHERE id = ?", [request_id]).fetchone()
        return _request_record(row) if row else None

    def fetch_recent_requests(self, limit: int = 20) -> list[RequestRecord]:
        with self._connect() as con:
            rows = con.execute("SELECT * FROM sync_requests ORDER BY id DESC LIMIT ?", [limit]).fetchall()
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
        """Upsert the worker's single status row (fields left None keep no stale progress)."""
        with self._connect() as con:
            con.execute(
                """
                INSERT INTO worker_status (id, pid, hostname, mode, started_at, heartbeat_at, state,
                    interval_minutes, sync_enabled, next_run_at, current_sync_id, progress, last_report)
                VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (id) DO UPDATE SET pid = excluded.pid, hostname = excluded.hostname,
                    mode = excluded.mode, started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at,
                    state = excluded.state, interval_minutes = excluded.interval_minutes,
                    sync_enabled = excluded.sync_enabled, next_run_at = excluded.next_run_at,
                    current_sync_id = excluded.current_sync_id, progress = excluded.progress,
                    last_report = coalesce(excluded.last_report, worker_status.last_report)
                """,
                [
                    os.getpid(),
                    socket.gethostname(),
                    mode,
                    _iso(started_at),
                    _iso(_utcnow()),
                    state,
                    interval_minutes,
                    int(sync_enabled),
                    _iso(next_run_at) if next_run_at else None,
                    current_sync_id,
                    json.dumps(progress) if progress else None,
                    json.dumps(last_report.to_dict()) if last_report else None,
                ],
            )

    def fetch_worker_status(self) -> WorkerStatus | None:
        with self._connect() as con:
            row = con.execute("SELECT * FROM worker_status WHERE id = 1").fetchone()
        if row is None:
            return None
        return WorkerStatus(
            pid=row["pid"],
            hostname=row["hostname"],
            mode=row["mode"],
            started_at=_parse(row["started_at"]),
            heartbeat_at=_parse(row["heartbeat_at"]),
            state=row["state"],
            interval_minutes=row["interval_minutes"],
            sync_enabled=bool(row["sync_enabled"]),
            next_run_at=_parse_opt(row["next_run_at"]),
            current_sync_id=row["current_sync_id"],
            progress=parse_json_opt(row["progress"]),
            last_report=parse_report_opt(row["last_report"]),
        )


class Control(Protocol):
    """What the app, the API and the worker use of a control channel: `ControlChannel` (SQLite, one
    machine) or `insights_core.cluster.control_pg.PostgresControlChannel` (many workers). Open one
    with `open_control_channel(settings)`."""

    def save_request(self, request: SyncRequest) -> tuple[int, bool]: ...

    def claim_next_request(self, max_days_back: int) -> SyncRequest | None: ...

    def save_request_progress(self, request_id: int, sync_id: str, progress: dict[str, Any]) -> None: ...

    def finish_request(self, request_id: int, report: SyncReport | None, error: str | None = None) -> None: ...

    def fail_orphaned_requests(self) -> int: ...

    def fetch_request(self, request_id: int) -> RequestRecord | None: ...

    def fetch_recent_requests(self, limit: int = 20) -> list[RequestRecord]: ...

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
    ) -> None: ...

    def fetch_worker_status(self) -> WorkerStatus | None: ...


def open_control_channel(settings: Settings, worker_id: str | None = None) -> Control:
    """The control channel the settings ask for: SQLite in the data dir (INSIGHTS_STORE=duckdb) or the
    shared PostgreSQL (ducklake), where `worker_id` names this process's heartbeat row and claims."""
    if settings.store == "ducklake":
        from insights_core.cluster.control_pg import PostgresControlChannel

        assert settings.catalog_url is not None  # the settings refuse ducklake without it
        return PostgresControlChannel(settings.catalog_url.get_secret_value(), worker_id=worker_id)
    return ControlChannel(settings.control_db_path)


_DISPLAY_DAYS_BOUND = 999_999
"""Reading a request back to show it: the days-back bound was checked when it was queued and is
checked again when it is claimed, so only the format is checked here."""


def claim_valid_request(
    claim_row: Callable[[], Any], finish_request: Callable[..., None], max_days_back: int
) -> SyncRequest | None:
    """Claim rows (id, params, requested_by) with `claim_row` until one validates, and return it (None
    when none is pending). A stored request that no longer validates (days back above `max_days_back`,
    a row from an older version) is finished as failed with the reason, and the next one is claimed."""
    while True:
        row = claim_row()
        if row is None:
            return None
        request_id = int(row["id"])
        try:
            return parse_stored_request(
                parse_json_object(row["params"]),
                max_days_back=max_days_back,
                request_id=request_id,
                requested_by=row["requested_by"],
            )
        except InputError as exc:
            log.warning("request %d refused: %s", request_id, exc)
            finish_request(request_id, None, error=str(exc))


def read_stored_request(row: Any) -> SyncRequest | None:
    """The request a stored row (a sqlite3.Row or a PostgreSQL dict row) holds; None when unreadable."""
    try:
        return parse_stored_request(
            parse_json_object(row["params"]),
            max_days_back=_DISPLAY_DAYS_BOUND,
            request_id=int(row["id"]),
            requested_by=row["requested_by"],
        )
    except InputError:
        return None


def _request_record(row: sqlite3.Row) -> RequestRecord:
    return RequestRecord(
        id=row["id"],
        created_at=_parse(row["created_at"]),
        requested_by=row["requested_by"],
        request=read_stored_request(row),
        status=row["status"],
        claimed_at=_parse_opt(row["claimed_at"]),
        finished_at=_parse_opt(row["finished_at"]),
        sync_id=row["sync_id"],
        progress=parse_json_opt(row["progress"]),
        report=parse_report_opt(row["report"]),
        error=row["error"],
    )


def parse_json_object(text: str) -> dict[str, Any]:
    """A stored JSON object; anything else is a request this version cannot read."""
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise InputError("the stored request is not a JSON object")
    return value


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).isoformat(timespec="milliseconds")


def _parse(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def _parse_opt(text: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(text) if text else None


def parse_json_opt(text: str | None) -> dict[str, Any] | None:
    return json.loads(text) if text else None


def parse_report_opt(text: str | None) -> dict[str, Any] | None:
    report = parse_json_opt(text)
    return upgrade_report_keys(report) if report is not None else None
