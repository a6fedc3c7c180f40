"""Shared fixtures. Tests never touch the network or a real token, and never read the developer's
`.env` or environment: every META_* / INSIGHTS_* variable is cleared for each test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from insights_core.settings import Settings
from insights_core.sources.stub import StubSource
from insights_core.store.warehouse import Warehouse
from tests.helpers import SMALL_SHAPE, make_settings


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith(("META_", "INSIGHTS_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no stray .env is read, and relative data dirs land in tmp


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """A small stub account (6 x 3 x 2) in a temporary data dir."""
    return make_settings(tmp_path / "data", **SMALL_SHAPE)


@pytest.fixture
def stub_source(settings: Settings) -> StubSource:
    return StubSource.from_settings(settings)


@pytest.fixture
def warehouse(settings: Settings):
    wh = Warehouse(settings.db_path)
    yield wh
    wh.close()
