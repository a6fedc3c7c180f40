"""The login state in the catalog's PostgreSQL (schema `insights`), for dashboard replicas on many machines.

Same meaning as the data dir's files (`auth_state`), as tables:

- `auth_users`: one row per user, the bcrypt hash as the users file keeps it; `auth_seeded` records
  that users were written once, so the stub mode's demo users are seeded exactly once even when
  several replicas start together (the second waits on the first's uncommitted key, then skips).
- `auth_logouts`: the last logout per user (a revocation timestamp; earlier sessions and cookies die).
- `auth_login_failures`: failed logins per (typed name, device); each update is one upsert, so
  replicas counting at once never lose a failure (the row lock serialises them).
- `auth_api_tokens`: SHA-256 of each token, never the token.
- `auth_secrets`: the stub mode's generated cookie key, so every replica signs and checks alike.

Every check reads the database (no cache across checks), so a change made on one replica applies on
every other at its next page run or request. Connections are kept for reuse: opening one costs
~14 ms (TCP and SCRAM), a query on an open one well under a millisecond.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from typing import TypeVar

import psycopg

from insights_core.api_tokens import TokenRecord, hash_token, looks_like_token, new_token_record
from insights_core.auth import (
    AuthConfig,
    User,
    demo_auth_config,
    new_cookie_key,
    parse_auth_config,
    validate_cookie_key,
)
from insights_core.auth_state import AuthState
from insights_core.auth_store import MAX_TRACKED_NAMES, UNTRUSTED, lockout_left, login_name_key
from insights_core.cluster.pg import SCHEMA, connect_with_retry, describe, ensure_shared_schema
from insights_core.errors import ConfigError, ControlChannelError
from insights_core.settings import Settings

T = TypeVar("T")

MAX_IDLE_CONNECTIONS = 4
USERS_WHERE = f"PostgreSQL (table {SCHEMA}.auth_users)"

_DDL = (
    f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.auth_users (
        username text PRIMARY KEY,
        name text NOT NULL,
        email text NOT NULL,
        roles text[] NOT NULL,
        password_hash text NOT NULL)""",
    f"CREATE TABLE IF NOT EXISTS {SCHEMA}.auth_seeded (what text PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())",
    f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.auth_logouts (
        username text PRIMARY KEY,
        logged_out_at double precision NOT NULL)""",
    f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.auth_login_failures (
        name text NOT NULL,
        device text NOT NULL,
        failures integer NOT NULL,
        last_at double precision NOT NULL,
        PRIMARY KEY (name, device))""",
    f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.auth_api_tokens (
        n bigint GENERATED ALWAYS AS IDENTITY,
        id text PRIMARY KEY,
        username text NOT NULL,
        created_at text NOT NULL,
        hint text NOT NULL,
        token_sha256 text NOT NULL UNIQUE,
        user_fingerprint text NOT NULL)""",
    f"CREATE TABLE IF NOT EXISTS {SCHEMA}.auth_secrets (name text PRIMARY KEY, value text NOT NULL)",
)


class SharedAuthDatabase:
    """Connections to one catalog database, reused across calls and threads (one thread per connection at a time).

    `run(work)` runs `work(con)` in one transaction. A reused connection that the server dropped (a
    restart) is replaced and the work run once more on a new one; each unit of work is one
    transaction, so a retry after a failure before the commit repeats nothing.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._idle: list[psycopg.Connection] = []
        self._lock = threading.Lock()
        self._ensured = False
        self.users_seeded = False
        """Seeding was checked once by this process: the demo users are written at most once anyway."""
        self.cookie_key: str | None = None
        """The generated cookie key, once read: it never changes."""

    def run(self, work: Callable[[psycopg.Connection], T]) -> T:
        if not self._ensured:
            self._run(ensure_auth_tables)
            self._ensured = True
        return self._run(work)

    def _run(self, work: Callable[[psycopg.Connection], T]) -> T:
        for attempt in range(2):
            con, reused = self._take()
            try:
                with con.transaction():
                    result = work(con)
            except psycopg.OperationalError as exc:
                con.close()
                if reused and attempt == 0:
                    self._close_idle()  # the server restarted: every kept connection is dead
                    continue
                raise ControlChannelError(f"the shared login state failed: {describe(exc, self.url)}") from exc
            except BaseException:
                self._give(con)  # the transaction was rolled back; the connection is fine
                raise
            self._give(con)
            return result
        raise AssertionError("unreachable")

    def _take(self) -> tuple[psycopg.Connection, bool]:
        with self._lock:
            while self._idle:
                con = self._idle.pop()
                if not con.closed and not con.broken:
                    return con, True
        return connect_with_retry(self.url, autocommit=True), False

    def _give(self, con: psycopg.Connection) -> None:
        if con.closed or con.broken:
            return
        with self._lock:
            if len(self._idle) < MAX_IDLE_CONNECTIONS:
                self._idle.append(con)
                return
        con.close()

    def _close_idle(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for con in idle:
            con.close()


_databases: dict[str, SharedAuthDatabase] = {}
_databases_lock = threading.Lock()


def shared_auth_database(url: str) -> SharedAuthDatabase:
    """One per URL and process, so its connections are reused by every page run and request."""
    with _databases_lock:
        database = _databases.get(url)
        if database is None:
            database = _databases[url] = SharedAuthDatabase(url)
        return database


def ensure_auth_tables(con: psycopg.Connection) -> None:
    """Create the schema and tables if missing; safe to run from many processes at once: the shared
    schema's advisory lock (held until the caller's transaction ends) serialises them with every other
    module's tables, since concurrent `CREATE ... IF NOT EXISTS` can fail on PostgreSQL's catalog keys."""
    ensure_shared_schema(con)
    for statement in _DDL:
        con.execute(statement)


def postgres_auth_state(settings: Settings) -> AuthState:
    if settings.catalog_url is None:
        raise ConfigError("INSIGHTS_STORE=ducklake needs INSIGHTS_CATALOG_URL (the users and sessions live there)")
    database = shared_auth_database(settings.catalog_url.get_secret_value())
    return AuthState(
        users=PostgresUsers(database),
        logouts=PostgresLogouts(database),
        throttle=PostgresThrottle(database, settings.login_max_attempts, settings.login_lockout_minutes * 60),
        tokens=PostgresTokens(database),
        ensure_generated_cookie_key=lambda: ensure_shared_cookie_key(database),
        logouts_where="the shared state database",
    )


class PostgresUsers:
    where = USERS_WHERE

    def __init__(self, database: SharedAuthDatabase) -> None:
        self.database = database

    def fetch_users(self, *, missing_ok: bool = False) -> AuthConfig:
        rows = self.database.run(
            lambda con: con.execute(
                "SELECT username, name, email, roles, password_hash FROM auth_users ORDER BY username"
            ).fetchall()
        )
        # parsed as the users file is, so a row written by hand is checked the same way
        document = {
            "credentials": {
                "usernames": {
                    username: {"name": name, "email": email, "roles": list(roles), "password": password_hash}
                    for username, name, email, roles, password_hash in rows
                }
            }
        }
        return parse_auth_config(document, USERS_WHERE)

    def ensure_demo_users(self) -> bool:
        if self.database.users_seeded:
            return False
        demo = demo_auth_config()  # hashed before the transaction: bcrypt does not hold locks

        def seed(con: psycopg.Connection) -> bool:
            claimed = con.execute(
                "INSERT INTO auth_seeded (what) VALUES ('users') ON CONFLICT DO NOTHING RETURNING what"
            ).fetchone()
            if claimed is None:
                return False
            for user in demo.users.values():
                _upsert_user(con, user, replace=False)
            return True

        seeded = self.database.run(seed)
        self.database.users_seeded = True
        return seeded

    def add_user(self, user: User, *, replace: bool) -> bool:
        def add(con: psycopg.Connection) -> bool:
            con.execute("INSERT INTO auth_seeded (what) VALUES ('users') ON CONFLICT DO NOTHING")
            return _upsert_user(con, user, replace=replace)

        return self.database.run(add)

    def update_user(self, user: User) -> bool:
        return self.database.run(
            lambda con: (
                con.execute(
                    "UPDATE auth_users SET name = %s, email = %s, roles = %s, password_hash = %s WHERE username = %s",
                    (user.name, user.email, list(user.roles), user.password_hash, user.username),
                ).rowcount
                == 1
            )
        )

    def remove_user(self, username: str) -> bool:
        return self.database.run(
            lambda con: con.execute("DELETE FROM auth_users WHERE username = %s", (username,)).rowcount == 1
        )


def _upsert_user(con: psycopg.Connection, user: User, *, replace: bool) -> bool:
    conflict = (
        "DO UPDATE SET name = excluded.name, email = excluded.email, roles = excluded.roles, "
        "password_hash = excluded.password_hash"
        if replace
        else "DO NOTHING"
    )
    cursor = con.execute(
        "INSERT INTO auth_users (username, name, email, roles, password_hash) VALUES (%s, %s, %s, %s, %s) "
        f"ON CONFLICT (username) {conflict}",
        (user.username, user.name, user.email, list(user.roles), user.password_hash),
    )
    return cursor.rowcount == 1


class PostgresLogouts:
    def __init__(self, database: SharedAuthDatabase) -> None:
        self.database = database

    def fetch_logouts(self) -> dict[str, float]:
        rows = self.database.run(lambda con: con.execute("SELECT username, logged_out_at FROM auth_logouts").fetchall())
        return {str(username): float(at) for username, at in rows}

    def save_logout(self, username: str, now: float) -> None:
        # GREATEST: a replica whose clock is behind never moves a revocation back
        self.database.run(
            lambda con: con.execute(
                "INSERT INTO auth_logouts (username, logged_out_at) VALUES (%s, %s) ON CONFLICT (username) "
                "DO UPDATE SET logged_out_at = GREATEST(auth_logouts.logged_out_at, excluded.logged_out_at)",
                (username.lower(), now),
            )
        )


class PostgresThrottle:
    """`auth_store.LoginThrottle`'s counts (see there for the rules), one row per (name, device)."""

    def __init__(self, database: SharedAuthDatabase, max_attempts: int, lockout_seconds: float) -> None:
        self.database = database
        self.max_attempts = max_attempts
        self.lockout_seconds = lockout_seconds

    def locked_for(self, name: str, device: str | None, now: float) -> float:
        row = self.database.run(
            lambda con: con.execute(
                "SELECT failures, last_at FROM auth_login_failures WHERE name = %s AND device = %s",
                (login_name_key(name), device or UNTRUSTED),
            ).fetchone()
        )
        return lockout_left(row[0], row[1], now, self.max_attempts, self.lockout_seconds) if row else 0.0

    def record_failure(self, name: str, device: str | None, now: float) -> None:
        values = {
            "name": login_name_key(name),
            "device": device or UNTRUSTED,
            "now": now,
            "window": self.lockout_seconds,
            "cap": MAX_TRACKED_NAMES,
        }

        def record(con: psycopg.Connection) -> None:
            con.execute("DELETE FROM auth_login_failures WHERE %(now)s - last_at >= %(window)s", values)
            # one statement: concurrent failures of one (name, device) queue on its row, none is lost
            con.execute(
                "INSERT INTO auth_login_failures AS f (name, device, failures, last_at) "
                "VALUES (%(name)s, %(device)s, 1, %(now)s) ON CONFLICT (name, device) DO UPDATE SET "
                "failures = CASE WHEN %(now)s - f.last_at < %(window)s THEN f.failures + 1 ELSE 1 END, "
                "last_at = %(now)s",
                values,
            )
            # a flood of invented names keeps only the most recent ones, as the file does
            con.execute(
                "DELETE FROM auth_login_failures WHERE name IN (SELECT name FROM auth_login_failures "
                "GROUP BY name ORDER BY max(last_at) DESC OFFSET %(cap)s)",
                values,
            )

        self.database.run(record)

    def record_success(self, name: str, device: str | None) -> None:
        if not device:
            return
        self.database.run(
            lambda con: con.execute(
                "DELETE FROM auth_login_failures WHERE name = %s AND device = %s", (login_name_key(name), device)
            )
        )

    def unlock(self, name: str) -> int:
        return self.database.run(
            lambda con: con.execute("DELETE FROM auth_login_failures WHERE name = %s", (login_name_key(name),)).rowcount
        )

    def locked_users(self, now: float) -> dict[str, float]:
        rows = self.database.run(
            lambda con: con.execute(
                "SELECT name, failures, last_at FROM auth_login_failures WHERE failures >= %s AND %s - last_at < %s",
                (self.max_attempts, now, self.lockout_seconds),
            ).fetchall()
        )
        locked: dict[str, float] = {}
        for name, failures, last_at in rows:
            left = lockout_left(failures, last_at, now, self.max_attempts, self.lockout_seconds)
            if left > 0:
                locked[name] = max(left, locked.get(name, 0.0))
        return locked


_TOKEN_COLUMNS = "id, username, created_at, hint, token_sha256, user_fingerprint"


class PostgresTokens:
    """`api_tokens.TokenStore`'s records (hashes only), read on every check."""

    def __init__(self, database: SharedAuthDatabase) -> None:
        self.database = database

    def fetch_tokens(self) -> list[TokenRecord]:
        rows = self.database.run(
            lambda con: con.execute(f"SELECT {_TOKEN_COLUMNS} FROM auth_api_tokens ORDER BY n").fetchall()
        )
        return [TokenRecord(*row) for row in rows]

    def create_token(
        self, username: str, password_hash: str, now: dt.datetime | None = None
    ) -> tuple[TokenRecord, str]:
        record, token = new_token_record(username, password_hash, now)
        self.database.run(
            lambda con: con.execute(
                f"INSERT INTO auth_api_tokens ({_TOKEN_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s)",
                (
                    record.id,
                    record.username,
                    record.created_at,
                    record.hint,
                    record.token_sha256,
                    record.user_fingerprint,
                ),
            )
        )
        return record, token

    def revoke_token(self, token_id: str) -> TokenRecord | None:
        row = self.database.run(
            lambda con: con.execute(
                f"DELETE FROM auth_api_tokens WHERE id = %s RETURNING {_TOKEN_COLUMNS}",
                (token_id,),
            ).fetchone()
        )
        return TokenRecord(*row) if row else None

    def find_token(self, token: str) -> TokenRecord | None:
        if not looks_like_token(token):
            return None
        row = self.database.run(
            lambda con: con.execute(
                f"SELECT {_TOKEN_COLUMNS} FROM auth_api_tokens WHERE token_sha256 = %s",
                (hash_token(token),),
            ).fetchone()
        )
        return TokenRecord(*row) if row else None


def ensure_shared_cookie_key(database: SharedAuthDatabase) -> str:
    """The stub mode's generated cookie key, the same for every replica (the first one to ask creates it)."""
    if database.cookie_key is not None:
        return database.cookie_key
    candidate = new_cookie_key()

    def fetch_or_create(con: psycopg.Connection) -> str:
        con.execute(
            "INSERT INTO auth_secrets (name, value) VALUES ('cookie_key', %s) ON CONFLICT DO NOTHING", (candidate,)
        )
        row = con.execute("SELECT value FROM auth_secrets WHERE name = 'cookie_key'").fetchone()
        return str(row[0]) if row else candidate

    database.cookie_key = validate_cookie_key(database.run(fetch_or_create))
    return database.cookie_key
