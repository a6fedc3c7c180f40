"""Who is calling: a bearer token, its user, and that user's current role from the users file.

The users file is read again whenever it is replaced (cached on its inode, mtime and size), so a
removed user, a changed role or a new password applies to the next request. The token itself is
never logged, echoed or kept; only its SHA-256 is looked up (`api_tokens`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from insights_core.api_tokens import TokenStore, user_fingerprint
from insights_core.auth import AuthConfig, check_auth_config_for_mode, load_auth_config
from insights_core.errors import ApiAuthError, ApiForbiddenError
from insights_core.roles import Permission, Role, can, highest_role


@dataclass(frozen=True)
class Principal:
    """The caller: the token's user and their role at this request."""

    username: str
    role: Role
    token_id: str


class UsersFile:
    """The users file, parsed once per version of the file (a missing file has no users)."""

    def __init__(self, path: Path, mode: str) -> None:
        self.path = path
        self.mode = mode
        self._key: tuple[int, int, int] | None = None
        self._config = AuthConfig({})
        self._lock = threading.Lock()

    def fetch(self) -> AuthConfig:
        """The current users; raises ConfigError when the file is unreadable or unfit for the mode."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return AuthConfig({})
        key = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        with self._lock:
            if key != self._key:
                config = load_auth_config(self.path)
                check_auth_config_for_mode(config, self.mode)
                self._config, self._key = config, key
            return self._config


def bearer_token(header: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header; ApiAuthError for anything else."""
    if not header:
        raise ApiAuthError()
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiAuthError("the Authorization header must be `Bearer <token>`")
    return token.strip()


def authenticate(header: str | None, tokens: TokenStore, users: UsersFile) -> Principal:
    """The caller behind the header; ApiAuthError (401) for a missing, unknown, revoked or voided token."""
    record = tokens.find_token(bearer_token(header))
    if record is None:
        raise ApiAuthError("invalid or revoked API token")
    user = users.fetch().user(record.username)
    if user is None or user_fingerprint(user.password_hash) != record.user_fingerprint:
        raise ApiAuthError(
            "this token's user was removed or has a new password since it was created: create a new token"
        )
    role = highest_role(user.roles)
    if role is None:
        raise ApiForbiddenError("this token's user has no role")
    return Principal(user.username, role, record.id)


def require(principal: Principal, permission: Permission) -> None:
    """ApiForbiddenError (403) unless the caller's current role has `permission`."""
    if not can(principal.role, permission):
        raise ApiForbiddenError(f"the {principal.role} role may not do this (needs {permission})")
