"""Helpers for the API tests: a stub data dir with demo users, tokens per role, a TestClient on the routes."""

from __future__ import annotations

import warnings
from pathlib import Path

import duckdb

from insights_core.api.routes import api_routes
from insights_core.api_tokens import TokenStore
from insights_core.auth import ensure_demo_auth_config, load_auth_config
from insights_core.roles import ROLES
from insights_core.settings import Settings
from tests.dashboard_data import build_stub_data_dir

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette suggests httpx2; httpx 0.29 is what it runs on here
    from starlette.applications import Starlette
    from starlette.testclient import TestClient

PREFIX = "/meta/insights"
Store = tuple[Settings, dict[str, str]]
"""A synced data dir and a token per role."""
__all__ = ["Starlette", "TestClient"]


def build_api_data_dir(data_dir: Path, **overrides: object) -> Settings:
    """The small stub account synced 60 days back, and the four demo users (one per role)."""
    settings = build_stub_data_dir(data_dir, **overrides)
    ensure_demo_auth_config(settings.auth_config_path)
    return settings


def issue_token(settings: Settings, username: str) -> tuple[str, str]:
    """(token id, token) for an existing user, as the CLI and the Users page create them."""
    user = load_auth_config(settings.auth_config_path).user(username)
    assert user is not None
    record, token = TokenStore(settings.data_dir).create_token(username, user.password_hash)
    return record.id, token


def role_tokens(settings: Settings) -> dict[str, str]:
    return {role: issue_token(settings, role)[1] for role in ROLES}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def api_client(settings: Settings) -> TestClient:
    return TestClient(Starlette(routes=api_routes(settings)))


def query_store(settings: Settings, sql: str, params: list[object] | None = None) -> list[tuple[object, ...]]:
    """Read the published snapshot directly (what the figures must equal)."""
    with duckdb.connect(str(settings.current_snapshot_link), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()
