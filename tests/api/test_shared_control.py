"""With INSIGHTS_STORE=ducklake the API reads and writes the shared control channel in PostgreSQL:
/healthz and /metrics follow the heartbeats of many workers there, not a local control.sqlite."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from pydantic import SecretStr

from insights_core.cluster.control_pg import PostgresControlChannel
from tests.api.helpers import api_client
from tests.helpers import make_settings


def test_healthz_and_metrics_follow_the_workers_in_postgresql(tmp_path: Path, catalog_url: str) -> None:
    settings = make_settings(
        tmp_path / "data", store="ducklake", catalog_url=SecretStr(catalog_url), lake_data_path=str(tmp_path / "lake")
    )
    started = dt.datetime.now(dt.timezone.utc)
    with api_client(settings) as client:
        assert client.get("/healthz").json()["worker"] == "stopped"
        workers = [PostgresControlChannel(catalog_url, worker_id=f"w{n}") for n in range(2)]
        for worker in workers:
            worker.save_heartbeat(mode="stub", state="idle", started_at=started, interval_minutes=30, sync_enabled=True)
        assert client.get("/healthz").json()["worker"] == "running"
        assert "meta_insights_worker_up 1.0" in client.get("/metrics").text
        for worker in workers:
            worker.save_heartbeat(
                mode="stub", state="stopped", started_at=started, interval_minutes=30, sync_enabled=True
            )
        assert client.get("/healthz").json()["worker"] == "stopped"
    assert not (settings.data_dir / "control.sqlite").exists()
