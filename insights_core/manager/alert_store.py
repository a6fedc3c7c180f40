"""Alert state: what fired, since when, who acknowledged or muted it, and every delivery attempt.

One interface (`AlertStore`), two places, chosen by `open_alert_store(settings)`:

- `INSIGHTS_STORE=duckdb`: its own SQLite file (`<data dir>/alerts.sqlite`, WAL mode, busy timeout)
  rather than DuckDB: the worker writes findings and deliveries after each sync while the dashboard
  writes acknowledgements and mutes, and the dashboard never writes the worker's DuckDB file.
- `INSIGHTS_STORE=ducklake`: tables in the catalog's PostgreSQL (`cluster.alert_store_pg`), so every
  worker and dashboard replica, on any machine, sees one set of alerts, acknowledgements and mutes.

Connections are short-lived and per call, so any thread may use a store. Every database error raises
one AlertStoreError. Unlike the control channel, the state is not disposable (acknowledgements and
mutes are people's decisions): a corrupt file is reported, never replaced.

Several processes may evaluate and deliver (many workers on the lake; on one data dir a worker and a
manual `evaluate_and_notify`), so `hold_lock(name)` serialises them across processes and machines:
`after_sync` holds `EVALUATION_LOCK` from evaluating the rules to saving the findings, and
`delivery_lock(channel)` from fetching a channel's due alerts to recording their deliveries.

An alert is one key (see `rules.Finding`). A finding seen again updates `last_seen`; an alert not
found by an evaluation is resolved; one found again after it was resolved starts a new episode
(new `first_seen`, acknowledgement cleared) but keeps its delivery times, so the cooldown also
damps an alert that flaps.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import sqlite3
import time
from collections.abc import Collection, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import pandas as pd

from insights_core.datadir import ensure_private_dir
from insights_core.errors import InputError, StoreError
from insights_core.manager.rules import Finding

if TYPE_CHECKING:
    from insights_core.settings import Settings

EVALUATION_LOCK = "evaluation"
LOCK_WAIT_SECONDS = 300.0
"""How long a worker waits for another's evaluation or delivery round before it gives up on this one
(a delivery round is bounded by one failing send's retries, or a send per due alert)."""


class AlertStoreError(StoreError):
    """The alert database could not be read or written."""


_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    key             TEXT PRIMARY KEY,
    rule            TEXT NOT NULL,
    severity        TEXT NOT NULL,
    message         TEXT NOT NULL,
    entity_type     TEXT,
    entity_id       TEXT,
    first_seen      TEXT NOT NULL,
    last_seen       TEXT NOT NULL,
    active          INTEGER NOT NULL,
    resolved_at     TEXT,
    acknowledged_at TEXT,
    acknowledged_by TEXT,
    muted_until     TEXT,
    muted_by        TEXT
);
CREATE TABLE IF NOT EXISTS notifications (
    alert_key   TEXT NOT NULL,
    channel     TEXT NOT NULL,
    notified_at TEXT NOT NULL,
    PRIMARY KEY (alert_key, channel)
);
CREATE TABLE IF NOT EXISTS deliveries (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    at        TEXT NOT NULL,
    channel   TEXT NOT NULL,
    alert_key TEXT NOT NULL,
    ok        INTEGER NOT NULL,
    attempts  INTEGER NOT NULL,
    error     TEXT
);
CREATE TABLE IF NOT EXISTS evaluations (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    at       TEXT NOT NULL,
    sync_id  TEXT,
    seconds  REAL NOT NULL,
    findings INTEGER NOT NULL,
    errors   TEXT
);
"""


def _text(moment: dt.datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("alert times are timezone-aware")
    return moment.astimezone(dt.timezone.utc).isoformat(timespec="seconds")


def _time(text: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(text) if text else None


@dataclass(frozen=True)
class StoredAlert:
    key: str
    rule: str
    severity: str
    message: str
    entity_type: str | None
    entity_id: str | None
    first_seen: dt.datetime
    last_seen: dt.datetime
    active: bool


@dataclass(frozen=True)
class EvaluationLog:
    """One evaluation's row (the Alerts page and the sync health view show the latest)."""

    sync_id: str | None
    seconds: float
    findings: int
    errors: tuple[str, ...] = ()


def _insert_evaluation(con: sqlite3.Connection, log: EvaluationLog, now: dt.datetime) -> None:
    con.execute(
        "INSERT INTO evaluations (at, sync_id, seconds, findings, errors) VALUES (?, ?, ?, ?, ?)",
        (_text(now), log.sync_id, log.seconds, log.findings, "\n".join(log.errors) or None),
    )


def delivery_lock(channel: str) -> str:
    """The lock name of one channel's delivery round (see `AlertStore.hold_lock`)."""
    return f"delivery:{channel}"


class AlertStore(Protocol):
    """What the worker and the dashboard do with alerts, whichever database holds them.

    Times are timezone-aware; the frames of `fetch_*` give them as UTC ISO text (`2026-11-20T12:00:00+00:00`).
    """

    def hold_lock(self, name: str, wait_seconds: float = LOCK_WAIT_SECONDS) -> AbstractContextManager[None]:
        """Hold the named lock against every other process using this store (AlertStoreError after
        `wait_seconds`). A process that dies holding it releases it."""
        ...

    def save_findings(
        self,
        findings: Iterable[Finding],
        now: dt.datetime,
        log: EvaluationLog | None = None,
        rules: Collection[str] | None = None,
    ) -> None:
        """Record one evaluation's findings: new ones open, known ones are seen again, missing ones resolve.

        Only alerts of `rules` (the rules that were evaluated to the end; None: every rule) can resolve,
        so a rule that failed this time does not close its alerts (and reopen them, unacknowledged,
        the next time). With `log`, the evaluation's row is written in the same transaction.
        """
        ...

    def fetch_due(self, channel: str, now: dt.datetime, cooldown: dt.timedelta) -> list[StoredAlert]:
        """Active alerts `channel` should carry now: not acknowledged, not muted, not sent within the cooldown."""
        ...

    def save_delivery(
        self, channel: str, alert_key: str, ok: bool, attempts: int, error: str | None, now: dt.datetime
    ) -> None:
        """Record one delivery attempt (with its retries); a success also restarts the alert's cooldown."""
        ...

    def acknowledge(self, key: str, by: str, now: dt.datetime) -> None:
        """Stop delivering this episode of the alert (a new episode is delivered again); InputError if unknown."""
        ...

    def mute(self, key: str, by: str, until: dt.datetime) -> None:
        """Deliver nothing about this alert until `until`, whatever its episodes; InputError if unknown."""
        ...

    def unmute(self, key: str) -> None: ...

    def fetch_alerts(self, include_resolved: bool = False) -> pd.DataFrame:
        """Alerts, active first and newest first, with their last delivery per channel (`notified`)."""
        ...

    def fetch_deliveries(self, limit: int = 200, failed_only: bool = False) -> pd.DataFrame:
        """The newest delivery attempts (the sync health view shows the failed ones)."""
        ...

    def fetch_evaluations(self, limit: int = 50) -> pd.DataFrame: ...


def open_alert_store(settings: Settings) -> AlertStore:
    """The alert store the settings ask for: the data dir's SQLite file, or the shared PostgreSQL (ducklake)."""
    if settings.store == "ducklake":
        from insights_core.cluster.alert_store_pg import PostgresAlertStore  # psycopg only when used

        assert settings.catalog_url is not None  # the settings refuse ducklake without it
        return PostgresAlertStore(settings.catalog_url.get_secret_value())
    return SqliteAlertStore(settings.alerts_db_path)


class SqliteAlertStore:
    """Alerts, notifications, deliveries and evaluations in `path` (created on first use)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        with self._connect():
            pass

    @contextmanager
    def hold_lock(self, name: str, wait_seconds: float = LOCK_WAIT_SECONDS) -> Iterator[None]:
        """An exclusive flock on `<file>.<name>.lock` beside the database (per open file, so two store
        objects in one process exclude each other too); the OS drops it when the holder dies."""
        lock_path = self.path.with_name(f"{self.path.name}.{name.replace(':', '-')}.lock")
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise AlertStoreError(f"the alert lock {lock_path} cannot be opened: {exc}") from None
        try:
            deadline = time.monotonic() + wait_seconds
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise AlertStoreError(
                            f"another process held the alert lock {name!r} for over {wait_seconds:g} s"
                        ) from None
                    time.sleep(0.05)
            yield
        finally:
            os.close(fd)  # releases the flock

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            ensure_private_dir(self.path.parent)
            if not self.path.exists():
                # sqlite gives its -wal and -shm files the database file's mode: create it private
                self.path.touch(mode=0o600)
            con = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        except (sqlite3.Error, OSError) as exc:
            raise AlertStoreError(f"the alert database {self.path} cannot be opened: {exc}") from None
        con.row_factory = sqlite3.Row
        try:
            con.execute("PRAGMA busy_timeout=10000")
            if con.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                con.execute("PRAGMA journal_mode=WAL")
            con.executescript(_SCHEMA)
            yield con
        except sqlite3.Error as exc:
            raise AlertStoreError(f"the alert database {self.path} cannot be used: {exc}") from None
        finally:
            con.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: everything in it lands together or not at all."""
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    def save_findings(
        self,
        findings: Iterable[Finding],
        now: dt.datetime,
        log: EvaluationLog | None = None,
        rules: Collection[str] | None = None,
    ) -> None:
        """See `AlertStore.save_findings`. The evaluation's row and its findings are one commit (one sync
        of the file to disk), never findings without the row that says when they were found."""
        at = _text(now)
        found = {f.key: f for f in findings}
        with self._write() as con:
            rows = con.execute("SELECT key, active, rule FROM alerts").fetchall()
            known = {row["key"]: bool(row["active"]) for row in rows}
            rule_of = {row["key"]: row["rule"] for row in rows}
            for key, f in found.items():
                described = (f.rule, f.severity, f.message, f.entity_type, f.entity_id)
                if key not in known:
                    con.execute(
                        "INSERT INTO alerts (rule, severity, message, entity_type, entity_id, key, first_seen,"
                        " last_seen, active) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1)",
                        (*described, key, at, at),
                    )
                elif known[key]:
                    con.execute(
                        "UPDATE alerts SET rule = ?, severity = ?, message = ?, entity_type = ?, entity_id = ?,"
                        " last_seen = ? WHERE key = ?",
                        (*described, at, key),
                    )
                else:  # fired again after it resolved: a new episode
                    con.execute(
                        "UPDATE alerts SET rule = ?, severity = ?, message = ?, entity_type = ?, entity_id = ?,"
                        " first_seen = ?, last_seen = ?, active = 1, resolved_at = NULL, acknowledged_at = NULL,"
                        " acknowledged_by = NULL WHERE key = ?",
                        (*described, at, at, key),
                    )
            gone = resolved_keys(known, rule_of, found, rules)
            con.executemany("UPDATE alerts SET active = 0, resolved_at = ? WHERE key = ?", [(at, k) for k in gone])
            if log is not None:
                _insert_evaluation(con, log, now)

    def fetch_due(self, channel: str, now: dt.datetime, cooldown: dt.timedelta) -> list[StoredAlert]:
        with self._connect() as con:
            rows = con.execute(
                """
                SELECT a.* FROM alerts AS a
                LEFT JOIN notifications AS n ON n.alert_key = a.key AND n.channel = ?
                WHERE a.active = 1 AND a.acknowledged_at IS NULL
                  AND (a.muted_until IS NULL OR a.muted_until <= ?)
                  AND (n.notified_at IS NULL OR n.notified_at <= ?)
                ORDER BY a.first_seen, a.key
                """,
                (channel, _text(now), _text(now - cooldown)),
            ).fetchall()
        return [_stored(row) for row in rows]

    def save_delivery(
        self, channel: str, alert_key: str, ok: bool, attempts: int, error: str | None, now: dt.datetime
    ) -> None:
        with self._write() as con:
            con.execute(
                "INSERT INTO deliveries (at, channel, alert_key, ok, attempts, error) VALUES (?, ?, ?, ?, ?, ?)",
                (_text(now), channel, alert_key, int(ok), attempts, error),
            )
            if ok:
                con.execute(
                    "INSERT INTO notifications (alert_key, channel, notified_at) VALUES (?, ?, ?)"
                    " ON CONFLICT (alert_key, channel) DO UPDATE SET notified_at = excluded.notified_at",
                    (alert_key, channel, _text(now)),
                )

    def acknowledge(self, key: str, by: str, now: dt.datetime) -> None:
        self._update_one(key, "acknowledged_at = ?, acknowledged_by = ?", (_text(now), by))

    def mute(self, key: str, by: str, until: dt.datetime) -> None:
        self._update_one(key, "muted_until = ?, muted_by = ?", (_text(until), by))

    def unmute(self, key: str) -> None:
        self._update_one(key, "muted_until = NULL, muted_by = NULL", ())

    def _update_one(self, key: str, assignments: str, values: tuple[object, ...]) -> None:
        with self._write() as con:
            # `assignments` is one of the literals above, never user input
            changed = con.execute(f"UPDATE alerts SET {assignments} WHERE key = ?", (*values, key)).rowcount
        if changed != 1:
            raise InputError(f"no alert with key {key!r}")

    def fetch_alerts(self, include_resolved: bool = False) -> pd.DataFrame:
        with self._connect() as con:
            frame = pd.read_sql_query(
                """
                SELECT a.*, (SELECT group_concat(channel || ' ' || notified_at, ', ') FROM notifications
                             WHERE alert_key = a.key) AS notified
                FROM alerts AS a WHERE a.active = 1 OR ?
                ORDER BY a.active DESC, a.last_seen DESC, a.key
                """,
                con,
                params=(int(include_resolved),),
            )
        return frame

    def fetch_deliveries(self, limit: int = 200, failed_only: bool = False) -> pd.DataFrame:
        with self._connect() as con:
            return pd.read_sql_query(
                "SELECT at, channel, alert_key, ok, attempts, error FROM deliveries WHERE ok = 0 OR NOT ?"
                " ORDER BY id DESC LIMIT ?",
                con,
                params=(int(failed_only), limit),
            )

    def fetch_evaluations(self, limit: int = 50) -> pd.DataFrame:
        with self._connect() as con:
            return pd.read_sql_query(
                "SELECT at, sync_id, seconds, findings, errors FROM evaluations ORDER BY id DESC LIMIT ?",
                con,
                params=(limit,),
            )


def resolved_keys(
    known: dict[str, bool], rule_of: dict[str, str], found: Collection[str], rules: Collection[str] | None
) -> list[str]:
    """The active alerts an evaluation resolves: not found again, and of a rule it evaluated to the end."""
    return [
        key for key, active in known.items() if active and key not in found and (rules is None or rule_of[key] in rules)
    ]


def _stored(row: sqlite3.Row) -> StoredAlert:
    first, last = _time(row["first_seen"]), _time(row["last_seen"])
    assert first is not None and last is not None
    return StoredAlert(
        row["key"],
        row["rule"],
        row["severity"],
        row["message"],
        row["entity_type"],
        row["entity_id"],
        first,
        last,
        bool(row["active"]),
    )
