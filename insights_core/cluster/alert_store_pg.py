"""The alert store in the catalog's PostgreSQL, for many workers and dashboard replicas (INSIGHTS_STORE=ducklake).

Same meaning as the SQLite `insights_core.manager.alert_store.SqliteAlertStore`, as the shared tables
`alerts`, `alert_notifications`, `alert_deliveries` and `alert_evaluations` (declared in
`cluster.schema`): an acknowledgement or a mute made on one replica holds on every other at its next
page run, and every worker sees which alerts were already delivered.

Locks are session-level advisory locks on a connection of their own, so a worker that dies holding
one (while it sends) drops its connection and PostgreSQL releases the lock with it. Times are the
caller's, as in SQLite (the cooldown compares the worker's `now` with earlier workers' `now`: clocks
of machines that disagree by minutes move a cooldown of hours by minutes).
"""

from __future__ import annotations

import datetime as dt
import zlib
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

import pandas as pd
import psycopg

from insights_core.cluster.pg import connect_with_retry, describe
from insights_core.cluster.schema import SharedTables
from insights_core.errors import ControlChannelError, InputError
from insights_core.manager.alert_store import (
    LOCK_WAIT_SECONDS,
    AlertStoreError,
    EvaluationLog,
    StoredAlert,
    resolved_keys,
)
from insights_core.manager.rules import Finding

LOCK_CLASS = 0x1A51_A1E7
"""First key of the alert locks' two-key advisory locks (the second is the lock name's CRC-32); the
two-key space does not overlap the one-key locks of the lake's commit and the schema."""


def _iso(column: str) -> str:
    """SQL for `column` (timestamptz) as the SQLite store's text, so both give the pages the same frames."""
    return f"""to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"+00:00"')"""


def _seconds(moment: dt.datetime) -> dt.datetime:
    """`moment` to the second, as the SQLite store keeps it (so comparisons agree between the two)."""
    if moment.tzinfo is None:
        raise ValueError("alert times are timezone-aware")
    return moment.astimezone(dt.timezone.utc).replace(microsecond=0)


def _lock_key(name: str) -> int:
    """The lock name's CRC-32 as the signed int4 `pg_advisory_lock(int, int)` takes."""
    crc = zlib.crc32(name.encode())
    return crc - (1 << 32) if crc >= 1 << 31 else crc


class PostgresAlertStore:
    """Alerts, notifications, deliveries and evaluations in the shared schema of `url` (created on first use)."""

    def __init__(self, url: str) -> None:
        self._db = SharedTables(url, "shared alert state")
        with self._connect():
            pass

    @contextmanager
    def _connect(self) -> Iterator[psycopg.Connection[dict[str, Any]]]:
        """One transaction: committed on a clean exit, rolled back (and AlertStoreError) on a database error."""
        try:
            with self._db.connect() as con:
                yield con
        except ControlChannelError as exc:  # the shared tables' one error, reworded as the alert store's
            raise AlertStoreError(str(exc)) from None

    @contextmanager
    def hold_lock(self, name: str, wait_seconds: float = LOCK_WAIT_SECONDS) -> Iterator[None]:
        url = self._db.url
        try:
            con = connect_with_retry(url, autocommit=True)
        except ControlChannelError as exc:
            raise AlertStoreError(f"the alert lock {name!r} could not be taken: {exc}") from None
        try:
            try:
                con.execute(f"SET lock_timeout = '{int(wait_seconds * 1000)}ms'")  # a number we computed
                con.execute("SELECT pg_advisory_lock(%s, %s)", [LOCK_CLASS, _lock_key(name)])
            except psycopg.Error as exc:
                raise AlertStoreError(f"the alert lock {name!r} could not be taken: {describe(exc, url)}") from None
            yield
        finally:
            with suppress(Exception):  # closing the session releases the lock as well
                con.execute("SELECT pg_advisory_unlock(%s, %s)", [LOCK_CLASS, _lock_key(name)])
            con.close()

    def save_findings(
        self,
        findings: Iterable[Finding],
        now: dt.datetime,
        log: EvaluationLog | None = None,
        rules: Collection[str] | None = None,
    ) -> None:
        """See `AlertStore.save_findings`: the findings and the evaluation's row are one transaction."""
        at = _seconds(now)
        found = {f.key: f for f in findings}
        with self._connect() as con:
            # locked: two evaluations saving at once apply one after the other, each on the other's result
            rows = con.execute("SELECT key, active, rule FROM alerts FOR UPDATE").fetchall()
            known = {row["key"]: bool(row["active"]) for row in rows}
            rule_of = {row["key"]: row["rule"] for row in rows}
            with con.cursor() as cur:
                cur.executemany(
                    """
                    INSERT INTO alerts (key, rule, severity, message, entity_type, entity_id, first_seen, last_seen,
                                        active)
                    VALUES (%(key)s, %(rule)s, %(severity)s, %(message)s, %(entity_type)s, %(entity_id)s, %(at)s,
                            %(at)s, true)
                    ON CONFLICT (key) DO UPDATE SET rule = excluded.rule, severity = excluded.severity,
                        message = excluded.message, entity_type = excluded.entity_type,
                        entity_id = excluded.entity_id, last_seen = excluded.last_seen,
                        -- fired again after it resolved: a new episode, which asks for attention again
                        first_seen = CASE WHEN alerts.active THEN alerts.first_seen ELSE excluded.first_seen END,
                        acknowledged_at = CASE WHEN alerts.active THEN alerts.acknowledged_at END,
                        acknowledged_by = CASE WHEN alerts.active THEN alerts.acknowledged_by END,
                        resolved_at = NULL, active = true
                    """,
                    [
                        {
                            "key": key,
                            "rule": f.rule,
                            "severity": f.severity,
                            "message": f.message,
                            "entity_type": f.entity_type,
                            "entity_id": f.entity_id,
                            "at": at,
                        }
                        for key, f in found.items()
                    ],
                )
            gone = resolved_keys(known, rule_of, found, rules)
            if gone:
                con.execute("UPDATE alerts SET active = false, resolved_at = %s WHERE key = ANY(%s)", [at, gone])
            if log is not None:
                con.execute(
                    "INSERT INTO alert_evaluations (at, sync_id, seconds, findings, errors)"
                    " VALUES (%s, %s, %s, %s, %s)",
                    [at, log.sync_id, log.seconds, log.findings, "\n".join(log.errors) or None],
                )

    def fetch_due(self, channel: str, now: dt.datetime, cooldown: dt.timedelta) -> list[StoredAlert]:
        at = _seconds(now)
        with self._connect() as con:
            rows = con.execute(
                """
                SELECT a.* FROM alerts AS a
                LEFT JOIN alert_notifications AS n ON n.alert_key = a.key AND n.channel = %s
                WHERE a.active AND a.acknowledged_at IS NULL
                  AND (a.muted_until IS NULL OR a.muted_until <= %s)
                  AND (n.notified_at IS NULL OR n.notified_at <= %s)
                ORDER BY a.first_seen, a.key
                """,
                [channel, at, _seconds(now - cooldown)],
            ).fetchall()
        return [
            StoredAlert(
                row["key"],
                row["rule"],
                row["severity"],
                row["message"],
                row["entity_type"],
                row["entity_id"],
                row["first_seen"],
                row["last_seen"],
                row["active"],
            )
            for row in rows
        ]

    def save_delivery(
        self, channel: str, alert_key: str, ok: bool, attempts: int, error: str | None, now: dt.datetime
    ) -> None:
        at = _seconds(now)
        with self._connect() as con:
            con.execute(
                "INSERT INTO alert_deliveries (at, channel, alert_key, ok, attempts, error)"
                " VALUES (%s, %s, %s, %s, %s, %s)",
                [at, channel, alert_key, ok, attempts, error],
            )
            if ok:
                con.execute(
                    "INSERT INTO alert_notifications (alert_key, channel, notified_at) VALUES (%s, %s, %s)"
                    " ON CONFLICT (alert_key, channel) DO UPDATE SET notified_at = excluded.notified_at",
                    [alert_key, channel, at],
                )

    def acknowledge(self, key: str, by: str, now: dt.datetime) -> None:
        self._update_one(key, "acknowledged_at = %s, acknowledged_by = %s", (_seconds(now), by))

    def mute(self, key: str, by: str, until: dt.datetime) -> None:
        self._update_one(key, "muted_until = %s, muted_by = %s", (_seconds(until), by))

    def unmute(self, key: str) -> None:
        self._update_one(key, "muted_until = NULL, muted_by = NULL", ())

    def _update_one(self, key: str, assignments: str, values: tuple[object, ...]) -> None:
        with self._connect() as con:
            # `assignments` is one of the literals above, never user input
            changed = con.execute(f"UPDATE alerts SET {assignments} WHERE key = %s", [*values, key]).rowcount
        if changed != 1:
            raise InputError(f"no alert with key {key!r}")

    def fetch_alerts(self, include_resolved: bool = False) -> pd.DataFrame:
        return self._frame(
            f"""
            SELECT a.key, a.rule, a.severity, a.message, a.entity_type, a.entity_id,
                   {_iso("a.first_seen")} AS first_seen, {_iso("a.last_seen")} AS last_seen,
                   a.active::int AS active, {_iso("a.resolved_at")} AS resolved_at,
                   {_iso("a.acknowledged_at")} AS acknowledged_at, a.acknowledged_by,
                   {_iso("a.muted_until")} AS muted_until, a.muted_by,
                   (SELECT string_agg(n.channel || ' ' || {_iso("n.notified_at")}, ', ' ORDER BY n.channel)
                    FROM alert_notifications AS n WHERE n.alert_key = a.key) AS notified
            FROM alerts AS a WHERE a.active OR %s
            ORDER BY a.active DESC, a.last_seen DESC, a.key
            """,
            [include_resolved],
        )

    def fetch_deliveries(self, limit: int = 200, failed_only: bool = False) -> pd.DataFrame:
        return self._frame(
            f"SELECT {_iso('at')} AS at, channel, alert_key, ok::int AS ok, attempts, error FROM alert_deliveries"
            " WHERE NOT ok OR NOT %s ORDER BY id DESC LIMIT %s",
            [failed_only, limit],
        )

    def fetch_evaluations(self, limit: int = 50) -> pd.DataFrame:
        return self._frame(
            f"SELECT {_iso('at')} AS at, sync_id, seconds, findings, errors FROM alert_evaluations"
            " ORDER BY id DESC LIMIT %s",
            [limit],
        )

    def _frame(self, query: str, params: list[object]) -> pd.DataFrame:
        """The rows as the SQLite store's `pd.read_sql_query` gives them (columns even when there is no row)."""
        with self._connect() as con:
            cur = con.execute(query, params)  # built from constants above, never from user input
            columns = [column.name for column in cur.description or ()]
            rows = cur.fetchall()
        return pd.DataFrame([[row[c] for c in columns] for row in rows], columns=columns)
