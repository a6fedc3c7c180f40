"""Stub data dirs for dashboard tests: built once per module with the real worker (sync + publish)."""

from __future__ import annotations

from pathlib import Path

from insights_core.models import SyncReport, SyncRequest
from insights_core.settings import Settings
from insights_core.worker import SyncWorker
from tests.helpers import SMALL_SHAPE, make_settings


def build_stub_data_dir(
    data_dir: Path, days_back: int = 60, syncs: int = 1, require_success: bool = True, **overrides: object
) -> Settings:
    """Run `syncs` manual syncs of the small stub account into `data_dir`; each publishes a snapshot."""
    settings = make_settings(data_dir, **{**SMALL_SHAPE, **overrides})
    worker = SyncWorker(settings)
    try:
        for _ in range(syncs):
            report: SyncReport = worker.run_once(SyncRequest(days_back=days_back, force=True))
            assert report.success or not require_success, report.errors
    finally:
        worker.close()
    return settings
