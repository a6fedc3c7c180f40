"""Connections to the PostgreSQL that holds the lake's catalog and the shared state (INSIGHTS_CATALOG_URL).

Shared state lives in the schema `insights` of the catalog's database (DuckLake's own tables are
`ducklake_*` in `public`). Connections are short-lived and per call, like the SQLite control channel,
so any thread can use this module; a server that is restarting is retried for a few seconds before
the caller gets a ControlChannelError naming the cause (never the password).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from insights_core.errors import ControlChannelError

SCHEMA = "insights"
CONNECT_ATTEMPTS = 6
"""A restart of the server takes about a second; 6 attempts with a doubling wait cover ~6 s."""


@contextmanager
def shared_state(url: str, *, autocommit: bool = False) -> Iterator[psycopg.Connection]:
    """A connection with `search_path` at the shared schema; committed on a clean exit, rolled back otherwise."""
    con = connect_with_retry(url, autocommit=autocommit)
    try:
        with con:  # psycopg commits on a clean exit and rolls back on an exception, then closes
            yield con
    except psycopg.OperationalError as exc:
        raise ControlChannelError(f"the shared state database failed: {describe(exc, url)}") from exc


def connect_with_retry(url: str, *, autocommit: bool = False) -> psycopg.Connection:
    delay = 0.2
    for attempt in range(CONNECT_ATTEMPTS):
        try:
            con = psycopg.connect(url, autocommit=autocommit, connect_timeout=5)
            con.execute(f"SET search_path TO {SCHEMA}, public")
            return con
        except psycopg.OperationalError as exc:
            if attempt == CONNECT_ATTEMPTS - 1:
                raise ControlChannelError(f"cannot reach the shared state database: {describe(exc, url)}") from exc
            time.sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")


SCHEMA_LOCK_KEY = 0x1A51_6875
"""Advisory lock held while creating the shared schema and tables: concurrent `CREATE ... IF NOT EXISTS`
from several processes can fail with a unique violation in PostgreSQL's catalog instead of waiting."""


def ensure_shared_schema(con: psycopg.Connection[Any]) -> None:
    """Create the shared schema; tables created after it in the same transaction (not autocommit) are
    serialised with every other process doing the same, until that transaction ends."""
    con.execute("SELECT pg_advisory_xact_lock(%s)", [SCHEMA_LOCK_KEY])
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")


def describe(exc: BaseException, url: str) -> str:
    """The first line of `exc`, with the URL's password blanked wherever it appears."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    password = re.match(r"^[a-z]+://[^:/@]+:([^@]+)@", url)
    return text.replace(password.group(1), "***") if password else text
