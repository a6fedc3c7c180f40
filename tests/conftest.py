"""Shared fixtures. Tests never touch the network or a real token, and never read the developer's
`.env` or environment: every META_* / INSIGHTS_* variable is cleared for each test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import streamlit.runtime.scriptrunner.script_runner as script_runner_module
from streamlit.runtime.pages_manager import PagesManager

from insights_core.settings import Settings
from insights_core.sources.stub import StubSource
from insights_core.store.warehouse import Warehouse
from tests.helpers import SMALL_SHAPE, make_settings
from tests.postgres import catalog_url, lake_settings, lake_template, postgres_server  # noqa: F401  (fixtures)


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


class _NavigationMode(PagesManager):
    uses_pages_directory = False


@pytest.fixture
def entrypoint_runs_every_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every AppTest run go through app.py, as every run does on a live server.

    A folder named pages/ next to app.py puts Streamlit in its legacy multipage mode, where a
    rerun of a page runs only that page's file; a server leaves that mode for good the first time
    app.py calls st.navigation, but AppTest re-enters it on every run, so reruns after a click
    would skip app.py (login, navigation, logout). The pages' own guard covers the legacy mode.
    """
    monkeypatch.setattr(script_runner_module, "PagesManager", _NavigationMode)
