"""The shared-state tables of many workers (schema `insights` of the catalog's PostgreSQL).

Sync requests and heartbeats mirror the SQLite control channel; `account_leases` says which worker
syncs which ad account, and when each account's scheduled sync last ran; `lake_maintenance_runs`
keeps what each lake maintenance pass did (`store.lake_maintenance`); `alerts`, `alert_notifications`,
`alert_deliveries` and `alert_evaluations` are the alert store (`cluster.alert_store_pg`). Times are the server's
(`now()`), so workers on machines whose clocks disagree still agree on who holds a lease.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.rows import dict_row

from insights_core.cluster.pg import SCHEMA, describe, ensure_shared_schema, shared_state
from insights_core.errors import ControlChannelError

_TABLES = """
CREATE TABLE IF NOT EXISTS {schema}.sync_requests (
    id           bigserial PRIMARY KEY,
    created_at   timestamptz NOT NULL DEFAULT now(),
    requested_by text,
    params       text NOT NULL,
    params_key   text NOT NULL,
    status       text NOT NULL CHECK (status IN ('pending', 'running', 'succeeded', 'failed', 'cancelled')),
    claimed_at   timestamptz,
    claimed_by   text,
    finished_at  timestamptz,
    sync_id      text,
    progress     text,
    report       text,
    error        text
);
CREATE UNIQUE INDEX IF NOT EXISTS one_open_request_per_params
    ON {schema}.sync_requests (params_key) WHERE status IN ('pending', 'running');
CREATE TABLE IF NOT EXISTS {schema}.worker_heartbeats (
    worker_id        text PRIMARY KEY,
    pid              integer NOT NULL,
    hostname         text NOT NULL,
    mode             text NOT NULL,
    started_at       timestamptz NOT NULL,
    heartbeat_at     timestamptz NOT NULL,
    state            text NOT NULL,
    interval_minutes integer,
    sync_enabled     boolean,
    next_run_at      timestamptz,
    current_sync_id  text,
    progress         text,
    last_report      text
);
CREATE TABLE IF NOT EXISTS {schema}.account_leases (
    account_id        text PRIMARY KEY,
    holder            text,
    expires_at        timestamptz,
    fence             bigint NOT NULL DEFAULT 0,
    last_scheduled_at timestamptz,
    retry_at          timestamptz
);
CREATE TABLE IF NOT EXISTS {schema}.lake_maintenance_runs (
    id                  bigserial PRIMARY KEY,
    started_at          timestamptz NOT NULL,
    seconds             double precision NOT NULL,
    worker              text NOT NULL,
    files_before        bigint,
    files_after         bigint,
    bytes_before        bigint,
    bytes_after         bigint,
    delete_files_before bigint,
    files_merged        bigint,
    files_rewritten     bigint,
    snapshots_expired   bigint,
    files_deleted       bigint,
    error               text
);
CREATE TABLE IF NOT EXISTS {schema}.alerts (
    key             text PRIMARY KEY,
    rule            text NOT NULL,
    severity        text NOT NULL,
    message         text NOT NULL,
    entity_type     text,
    entity_id       text,
    first_seen      timestamptz NOT NULL,
    last_seen       timestamptz NOT NULL,
    active          boolean NOT NULL,
    resolved_at     timestamptz,
    acknowledged_at timestamptz,
    acknowledged_by text,
    muted_until     timestamptz,
    muted_by        text
);
CREATE TABLE IF NOT EXISTS {schema}.alert_notifications (
    alert_key   text NOT NULL,
    channel     text NOT NULL,
    notified_at timestamptz NOT NULL,
    PRIMARY KEY (alert_key, channel)
);
CREATE TABLE IF NOT EXISTS {schema}.alert_deliveries (
    id        bigserial PRIMARY KEY,
    at        timestamptz NOT NULL,
    channel   text NOT NULL,
    alert_key text NOT NULL,
    ok        boolean NOT NULL,
    attempts  integer NOT NULL,
    error     text
);
CREATE TABLE IF NOT EXISTS {schema}.alert_evaluations (
    id       bigserial PRIMARY KEY,
    at       timestamptz NOT NULL,
    sync_id  text,
    seconds  double precision NOT NULL,
    findings integer NOT NULL,
    errors   text
);
"""


def ensure_cluster_tables(con: psycopg.Connection[Any]) -> None:
    """Create the schema and tables if missing; safe to run from many processes at once.

    Runs in the caller's transaction (the advisory lock is released at its commit).
    """
    ensure_shared_schema(con)  # takes the advisory lock that serialises schema work across processes
    for statement in _TABLES.format(schema=SCHEMA).split(";"):
        if statement.strip():
            con.execute(statement)  # constant DDL, no user input


class SharedTables:
    """Per-call connections to the shared tables of `url`, created on the first call (and again after a
    failure, in case they were dropped). Every database error raises one ControlChannelError prefixed
    with `what`, without the password."""

    def __init__(self, url: str, what: str) -> None:
        self.url = url
        self._what = what
        self._ready = False

    @contextmanager
    def connect(self) -> Iterator[psycopg.Connection[dict[str, Any]]]:
        try:
            with shared_state(self.url) as plain:
                con: psycopg.Connection[dict[str, Any]] = plain  # type: ignore[assignment]
                con.row_factory = dict_row
                if not self._ready:
                    ensure_cluster_tables(con)
                    con.commit()
                    self._ready = True
                yield con
        except psycopg.Error as exc:
            self._ready = False
            raise ControlChannelError(f"{self._what}: {describe(exc, self.url)}") from None
