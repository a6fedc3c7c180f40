"""The real server: `streamlit run app.py` on a loopback port serves the pages and the API on that one
port; a token made with the CLI works there, and neither it nor its hash shows up in any output."""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from insights_core.api_tokens import hash_token
from tests.api.helpers import PREFIX, build_api_data_dir
from tests.dashboard.app_harness import CAMPAIGN
from tests.helpers import PYTHON, ROOT, subprocess_env
from tests.servers import start_dashboard, stop, wait_healthy

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Server:
    url: str
    data_dir: Path
    output: Path
    token: str


def _get(url: str, token: str | None = None, data: bytes | None = None) -> tuple[int, str, str]:
    request = urllib.request.Request(url, data=data, headers={"Authorization": f"Bearer {token}"} if token else {})
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, answer.headers.get("content-type", ""), answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("content-type", ""), error.read().decode()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp("server") / "data"
    settings = build_api_data_dir(data_dir)
    env = subprocess_env(data_dir, META_INSIGHTS_MODE="stub")
    created = subprocess.run(
        [PYTHON, "-m", "insights_core.auth", "new-token", "manager"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert created.returncode == 0, created.stderr
    token = created.stdout.splitlines()[-1]
    output = data_dir.parent / "app.out"
    app, url = start_dashboard(env, output, PYTHON)
    try:
        wait_healthy(app, url, 90, output)
        yield Server(url, settings.data_dir, output, token)
    finally:
        stop(app)


def test_pages_and_api_on_one_port(server: Server) -> None:
    status, kind, text = _get(f"{server.url}/_stcore/health")
    assert (status, text) == (200, "ok")
    status, kind, text = _get(f"{server.url}/")
    assert status == 200 and kind.startswith("text/html") and '<div id="root">' in text
    status, kind, text = _get(f"{server.url}{PREFIX}/overview", server.token)
    assert status == 200 and kind == "application/json"
    body = json.loads(text)
    assert body["total_campaigns"] == 6 and body["global_metrics"]["spend"] > 0
    status, _, text = _get(f"{server.url}{PREFIX}/campaign/{CAMPAIGN}?days=7", server.token)
    assert status == 200 and json.loads(text)["campaign_id"] == CAMPAIGN
    status, _, text = _get(f"{server.url}{PREFIX}/overview")
    assert status == 401 and "error" in json.loads(text)
    status, _, text = _get(f"{server.url}{PREFIX}/unknown", server.token)
    assert status == 404 and "error" in json.loads(text)  # JSON, not the dashboard's HTML
    status, _, text = _get(f"{server.url}{PREFIX}/sync-now", server.token, json.dumps({"days_back": 1}).encode())
    assert status == 202 and json.loads(text)["status_url"].startswith(f"{PREFIX}/sync-now/")
    status, _, text = _get(f"{server.url}/healthz")
    assert status == 200 and json.loads(text)["status"] == "ok"
    status, kind, text = _get(f"{server.url}/metrics")
    assert status == 200 and kind.startswith("text/plain")
    assert f'meta_insights_api_request_duration_seconds_count{{endpoint="{PREFIX}/overview",method="GET"}} 2.0' in text
    assert "meta_insights_sync_last_entities_processed" in text


def test_no_token_or_hash_in_server_output_or_logs(server: Server) -> None:
    for path in ("/overview", "/campaign/abc", "/ad/1"):
        _get(f"{server.url}{PREFIX}{path}", server.token)
        _get(f"{server.url}{PREFIX}{path}", server.token[:-3] + "abc")
    written = server.output.read_text(errors="replace") + "".join(
        p.read_text(errors="replace") for p in server.data_dir.rglob("*.log*") if p.is_file()
    )
    for secret in (server.token, server.token[3:], server.token[:-3] + "abc", hash_token(server.token)):
        assert secret not in written
