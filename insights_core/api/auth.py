"""Who is calling: a bearer token, its user, and that user's current role from the users' store.

The users are read on every request (`auth_state`: the users file, parsed again only when it was
replaced; or PostgreSQL with the lake, read by every replica), so a removed user, a changed role or
a new password applies to the next request. The token itself is never logged, echoed or kept; only
its SHA-256 is looked up (`api_tokens`).
"""

from __future__ import annotations

from dataclasses import dataclass

from insights_core.api_tokens import user_fingerprint
from insights_core.auth import AuthConfig, check_users_for_mode
from insights_core.auth_state import ApiTokens, UserStore
from insights_core.errors import ApiAuthError, ApiForbiddenError
from insights_core.roles import Permission, Role, can, highest_role


@dataclass(frozen=True)
class Principal:
    """The caller: the token's user and their role at this request."""

    username: str
    role: Role
    token_id: str


class CurrentUsers:
    """The users as they are now, checked for the mode (a missing users file has no users)."""

    def __init__(self, store: UserStore, mode: str) -> None:
        self.store = store
        self.mode = mode

    def fetch(self) -> AuthConfig:
        """The current users; ConfigError when unreadable or unfit for the mode, StoreError when unreachable."""
        config = self.store.fetch_users(missing_ok=True)
        if config.users:
            check_users_for_mode(config, self.mode)
        return config


def bearer_token(header: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header; ApiAuthError for anything else."""
    if not header:
        raise ApiAuthError()
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiAuthError("the Authorization header must be `Bearer <token>`")
    return token.strip()


def authenticate(header: str | None, tokens: ApiTokens, users: CurrentUsers) -> Principal:
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
