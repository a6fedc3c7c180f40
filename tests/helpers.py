"""Helpers shared by test modules (`from tests.helpers import ...`; pytest.ini puts the repo root on sys.path)."""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from insights_core.settings import Settings

ROOT = Path(__file__).resolve().parents[1]

FIXED_NOW = dt.datetime(2026, 11, 20, 15, 0, tzinfo=dt.timezone.utc)
"""A fixed 'now' for engine tests: 2026-11-20 10:00 in the stub account's New York time."""
SMALL_SHAPE = dict(stub_campaigns=6, stub_adsets_per_campaign=3, stub_ads_per_adset=2)
PYTHON = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() else sys.executable


def make_settings(data_dir: Path, **overrides: object) -> Settings:
    """Settings for tests: no .env, the given data dir, and any field overrides (by field name)."""
    return Settings(_env_file=None, data_dir=data_dir, **overrides)  # type: ignore[call-arg]


def subprocess_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """Environment for a child process (worker, app) on `data_dir`, with the repo importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("META_", "INSIGHTS_"))}
    env.update({"INSIGHTS_DATA_DIR": str(data_dir), "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """Poll `predicate` until it returns something truthy and return that; fail after `timeout` seconds
    naming `what` was awaited. Tests wait for an event this way instead of sleeping a fixed time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
