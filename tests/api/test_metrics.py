"""GET /metrics (Prometheus text format) and /healthz: sync facts from the snapshot and the heartbeat,
API latency per route template, page-run latency per page; no spend, names or ids anywhere."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from insights_core.api.metrics import PAGE_RUN, sync_run_metrics
from insights_core.control import ControlChannel
from insights_core.settings import Settings
from tests.api.helpers import PREFIX, TestClient, api_client, bearer, build_api_data_dir, query_store, role_tokens
from tests.dashboard.app_harness import AD, CAMPAIGN, new_app, use_data_dir
from tests.sync_run_frames import NOW, of, runs


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, dict[str, str]]:
    settings = build_api_data_dir(tmp_path_factory.mktemp("metrics") / "data", syncs=2)
    return settings, role_tokens(settings)


@pytest.fixture
def client(store: tuple[Settings, dict[str, str]]) -> Iterator[TestClient]:
    with api_client(store[0]) as client:
        yield client


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def _value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def test_sync_facts_equal_the_stored_runs(store: tuple[Settings, dict[str, str]], client: TestClient) -> None:
    settings = store[0]
    answer = client.get("/metrics")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    samples = _samples(answer.text)
    ((duration, ads, stamp),) = query_store(
        settings,
        "SELECT total_duration_seconds, ads_processed, epoch(sync_timestamp)"
        " FROM sync_runs ORDER BY sync_timestamp DESC LIMIT 1",
    )
    assert _value(samples, "meta_insights_sync_last_duration_seconds", sync_type="manual") == pytest.approx(duration)
    assert _value(samples, "meta_insights_sync_last_entities_processed", level="ad") == ads == 36
    assert _value(samples, "meta_insights_sync_last_entities_failed", level="campaign") == 0
    assert _value(samples, "meta_insights_sync_last_success") == 1
    assert _value(samples, "meta_insights_sync_last_timestamp_seconds") == pytest.approx(stamp, abs=1)
    assert _value(samples, "meta_insights_sync_coverage_ratio", level="adset") == 1.0
    assert _value(samples, "meta_insights_sync_consecutive_failures") == 0
    assert _value(samples, "meta_insights_sync_rate_limit_hits_last_hour") == 0
    assert _value(samples, "meta_insights_snapshot_available") == 1
    assert _value(samples, "meta_insights_worker_up") == 0  # no worker has written a heartbeat


def test_failures_in_a_row_with_many_workers_are_counted_per_account() -> None:
    """Two workers syncing one account each, in turns: act_1 failed its last three syncs while act_2's
    succeeded in between; the gauge says 3 (what the dashboard's alert fires on), not 0."""
    table = runs(
        *(
            {
                "ago": 60 - 10 * i,
                "report_json": of(account),
                "status": "failed" if account == "act_1" else "succeeded",
                **{f"{plural}_success": 0 for plural in ("campaigns", "adsets", "ads")},
            }
            for i in range(6)
            for account in [("act_1", "act_2")[i % 2]]
        )
    )
    gauges = {m.name: m.samples for m in sync_run_metrics(table, NOW)}
    assert [s.value for s in gauges["meta_insights_sync_consecutive_failures"]] == [3.0]


def test_worker_heartbeat_age(store: tuple[Settings, dict[str, str]], client: TestClient) -> None:
    control = ControlChannel(store[0].control_db_path)
    started = dt.datetime.now(dt.timezone.utc)
    control.save_heartbeat(mode="stub", state="idle", started_at=started, interval_minutes=30, sync_enabled=True)
    samples = _samples(client.get("/metrics").text)
    assert _value(samples, "meta_insights_worker_up") == 1
    assert 0 <= _value(samples, "meta_insights_worker_heartbeat_age_seconds") < 5
    assert client.get("/healthz").json() == {"status": "ok", "snapshot": "available", "worker": "running"}
    control.save_heartbeat(mode="stub", state="stopped", started_at=started, interval_minutes=30, sync_enabled=True)
    assert _value(_samples(client.get("/metrics").text), "meta_insights_worker_up") == 0


def test_api_latency_per_route_template(store: tuple[Settings, dict[str, str]], client: TestClient) -> None:
    tokens = store[1]
    for _ in range(3):
        client.get(f"{PREFIX}/campaign/{CAMPAIGN}", headers=bearer(tokens["viewer"]))
    client.get(f"{PREFIX}/ad/{AD}", headers=bearer(tokens["viewer"]))
    client.get(f"{PREFIX}/ad/{AD}")  # 401
    samples = _samples(client.get("/metrics").text)
    count = "meta_insights_api_request_duration_seconds_count"
    assert _value(samples, count, endpoint=f"{PREFIX}/campaign/{{campaign_id}}", method="GET") == 3
    assert _value(samples, count, endpoint=f"{PREFIX}/ad/{{ad_id}}", method="GET") == 2
    requests = "meta_insights_api_requests_total"
    assert _value(samples, requests, endpoint=f"{PREFIX}/ad/{{ad_id}}", method="GET", status="401") == 1
    assert _value(samples, requests, endpoint=f"{PREFIX}/ad/{{ad_id}}", method="GET", status="200") == 1


def test_metrics_and_healthz_expose_no_spend_names_or_ids(
    store: tuple[Settings, dict[str, str]], client: TestClient
) -> None:
    settings, tokens = store
    for path in (f"/campaign/{CAMPAIGN}", f"/ad/{AD}", "/campaign/987654321987", "/overview"):
        client.get(PREFIX + path, headers=bearer(tokens["admin"]))
    text = client.get("/metrics").text + client.get("/healthz").text
    names = [n for (n,) in query_store(settings, "SELECT name FROM campaigns UNION ALL SELECT name FROM ads")]
    ids = [i for (i,) in query_store(settings, "SELECT campaign_id FROM campaigns UNION ALL SELECT ad_id FROM ads")]
    ((spend,),) = query_store(
        settings, "SELECT sum(spend)::VARCHAR FROM meta_ad_insights WHERE entity_type = 'campaign'"
    )
    assert not [v for v in [*names, *ids, "act_1000000000001", "987654321987", spend] if v in text]
    assert "spend" not in text.lower() and "revenue" not in text.lower()


def test_page_runs_are_timed_per_page(
    store: tuple[Settings, dict[str, str]],
    client: TestClient,
    monkeypatch: pytest.MonkeyPatch,
    entrypoint_runs_every_time: None,
) -> None:
    """app.py times each script run under the page's key (AppTest runs it as a browser session would)."""
    use_data_dir(monkeypatch, store[0].data_dir)

    def runs(page: str) -> float:
        counts = [
            s.value
            for f in PAGE_RUN.collect()
            for s in f.samples
            if s.name.endswith("_count") and s.labels == {"page": page}
        ]
        return counts[0] if counts else 0.0

    before = {page: runs(page) for page in ("overview", "login", "campaign")}
    at = new_app("admin")
    at.run()
    assert not at.exception
    at.switch_page("pages/campaign.py").run()
    assert runs("overview") == before["overview"] + 1 and runs("campaign") == before["campaign"] + 1
    new_app(None).run()
    assert runs("login") == before["login"] + 1
    samples = _samples(client.get("/metrics").text)
    assert _value(samples, "meta_insights_page_run_duration_seconds_count", page="campaign") == runs("campaign")
