"""Fixtures of the dashboard tests: stub data dirs built by the real worker (sync + publish) for the app to
read. AppTest runs go through app.py with `entrypoint_runs_every_time` (tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from insights_core.settings import Settings
from tests.dashboard.app_harness import use_data_dir
from tests.dashboard_data import build_stub_data_dir


@pytest.fixture(scope="module")
def data_dir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One stub data dir per module, shared by its tests (they only read it): the small account synced over
    the module's `STUB_DAYS_BACK` days. A module that needs other contents overrides this fixture."""
    path = tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1]) / "data"
    build_stub_data_dir(path, days_back=request.module.STUB_DAYS_BACK)
    return path


@pytest.fixture
def app_on_data_dir(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> Path:
    """Point the app at the module's `data_dir`, with the module's `APP_ENV` variables if it has any."""
    use_data_dir(monkeypatch, data_dir, **getattr(request.module, "APP_ENV", {}))
    return data_dir


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """A data dir of the test's own (10 days synced), for tests that write requests or break its files: what one
    test does never leaks into another. Overrides the root `settings` fixture for the dashboard tests."""
    settings = build_stub_data_dir(tmp_path / "data", days_back=10)
    use_data_dir(monkeypatch, settings.data_dir)
    return settings
