"""Where the dashboard's login state lives: files in the data dir, or PostgreSQL when the lake is used.

Users and roles, logouts (cookie revocations), failed-login lockouts, API tokens and the stub mode's
generated cookie key are one `AuthState`, chosen once by `auth_state(settings)`:

- `INSIGHTS_STORE=duckdb`: today's files (`auth.yaml`, `auth_logouts.json`, `auth_lockouts.json`,
  `api_tokens.json`, `cookie_key`), which every process on this machine shares.
- `INSIGHTS_STORE=ducklake`: tables in the catalog's PostgreSQL (`insights.auth_*`,
  `cluster.auth_state`), so every dashboard replica, API server and CLI on any machine sees one
  set of users, and a logout, lockout, revocation or role change made on one applies on all at
  their next check. Nothing is cached across checks there: each page run reads what it needs.

Callers only use the protocols below, so the login code does not know which one it talks to.
"""

from __future__ import annotations

import datetime as dt
import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from insights_core.api_tokens import TokenRecord, TokenStore
from insights_core.auth import (
    AuthConfig,
    User,
    ensure_demo_auth_config,
    ensure_stub_cookie_key,
    load_auth_config,
    save_auth_config,
)
from insights_core.auth_store import LoginThrottle, exclusive_in, fetch_logouts, save_logout
from insights_core.settings import Settings


class UserStore(Protocol):
    where: str
    """Where the users are, for messages (a file path, or the PostgreSQL table)."""

    def fetch_users(self, *, missing_ok: bool = False) -> AuthConfig:
        """Every user; ConfigError for an unreadable store (or a missing users file unless `missing_ok`)."""
        ...

    def ensure_demo_users(self) -> bool:
        """Write the stub mode's demo users unless users were ever written; True when this call did it."""
        ...

    def add_user(self, user: User, *, replace: bool) -> bool:
        """Add `user` (or overwrite one of that name when `replace`); False when it exists and not `replace`."""
        ...

    def update_user(self, user: User) -> bool:
        """Overwrite the existing user of that name (roles, password); False when there is none."""
        ...

    def remove_user(self, username: str) -> bool:
        """False when there was no such user."""
        ...


class LogoutStore(Protocol):
    def fetch_logouts(self) -> dict[str, float]:
        """When each user last logged out (epoch seconds): sessions and cookies from before are void."""
        ...

    def save_logout(self, username: str, now: float) -> None:
        """Record a logout of `username` at `now` (OSError or StoreError when it cannot be written)."""
        ...


class Throttle(Protocol):
    max_attempts: int
    lockout_seconds: float

    def locked_for(self, name: str, device: str | None, now: float) -> float: ...

    def record_failure(self, name: str, device: str | None, now: float) -> None: ...

    def record_success(self, name: str, device: str | None) -> None: ...

    def unlock(self, name: str) -> int: ...

    def locked_users(self, now: float) -> dict[str, float]: ...


class ApiTokens(Protocol):
    def fetch_tokens(self) -> list[TokenRecord]: ...

    def create_token(
        self, username: str, password_hash: str, now: dt.datetime | None = None
    ) -> tuple[TokenRecord, str]: ...

    def revoke_token(self, token_id: str) -> TokenRecord | None: ...

    def find_token(self, token: str) -> TokenRecord | None: ...


@dataclass(frozen=True)
class AuthState:
    """One deployment's login state; see the module docstring for where each part lives."""

    users: UserStore
    logouts: LogoutStore
    throttle: Throttle
    tokens: ApiTokens
    ensure_generated_cookie_key: Callable[[], str]
    """The stub mode's random cookie key, created once (by exactly one process) and then shared."""
    logouts_where: str
    """Where logouts are recorded, for the message when one cannot be."""


def auth_state(settings: Settings) -> AuthState:
    """The login state of this deployment: PostgreSQL with the lake, the data dir's files otherwise."""
    if settings.store == "ducklake":
        from insights_core.cluster.auth_state import postgres_auth_state  # psycopg only when used

        return postgres_auth_state(settings)
    return file_auth_state(settings)


def file_auth_state(settings: Settings) -> AuthState:
    data_dir = settings.data_dir
    return AuthState(
        users=UsersFile(settings.auth_config_path),
        logouts=LogoutsFile(data_dir),
        throttle=LoginThrottle(data_dir, settings.login_max_attempts, settings.login_lockout_minutes * 60),
        tokens=TokenStore(data_dir),
        ensure_generated_cookie_key=functools.partial(ensure_stub_cookie_key, data_dir),
        logouts_where="auth_logouts.json in the data directory",
    )


_parsed_lock = threading.Lock()
_parsed: dict[Path, tuple[tuple[int, int, int], AuthConfig]] = {}


class UsersFile:
    """The users YAML file (streamlit-authenticator's layout), parsed once per version of the file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.where = str(path)

    def fetch_users(self, *, missing_ok: bool = False) -> AuthConfig:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            if missing_ok:
                return AuthConfig({})
            return load_auth_config(self.path)  # raises the "no users file" ConfigError with its fix
        key = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        with _parsed_lock:
            cached = _parsed.get(self.path)
            if cached is not None and cached[0] == key:
                return cached[1]
        config = load_auth_config(self.path)
        with _parsed_lock:
            _parsed[self.path] = (key, config)
        return config

    def ensure_demo_users(self) -> bool:
        return ensure_demo_auth_config(self.path)

    def add_user(self, user: User, *, replace: bool) -> bool:
        with exclusive_in(self.path.parent):
            users = dict(self.fetch_users(missing_ok=True).users)
            if user.username in users and not replace:
                return False
            users[user.username] = user
            save_auth_config(AuthConfig(users), self.path)
        return True

    def update_user(self, user: User) -> bool:
        with exclusive_in(self.path.parent):
            users = dict(self.fetch_users(missing_ok=True).users)
            if user.username not in users:
                return False
            users[user.username] = user
            save_auth_config(AuthConfig(users), self.path)
        return True

    def remove_user(self, username: str) -> bool:
        with exclusive_in(self.path.parent):
            users = dict(self.fetch_users(missing_ok=True).users)
            if users.pop(username, None) is None:
                return False
            save_auth_config(AuthConfig(users), self.path)
        return True


class LogoutsFile:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir

    def fetch_logouts(self) -> dict[str, float]:
        return fetch_logouts(self.data_dir)

    def save_logout(self, username: str, now: float) -> None:
        save_logout(self.data_dir, username, now)
