"""The read endpoints on a synced stub store: figures equal the store's sums, every role may read,
and bad input answers 400/401/404 as JSON, never 500."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from insights_core.dashboard.scoring import efficiency_score
from insights_core.roles import ROLES
from insights_core.settings import Settings
from insights_core.store import queries
from insights_core.store.snapshots import connect_snapshot, resolve_current_snapshot
from tests.api.helpers import (
    PREFIX,
    Store,
    TestClient,
    api_client,
    bearer,
    build_api_data_dir,
    query_store,
    role_tokens,
)
from tests.dashboard.app_harness import AD, ADSET, CAMPAIGN

SUMS = "sum(spend)::DOUBLE, sum(impressions), sum(clicks), sum(conversions)::DOUBLE, sum(revenue)::DOUBLE"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    settings = build_api_data_dir(tmp_path_factory.mktemp("api") / "data")
    yield settings, role_tokens(settings)


@pytest.fixture
def client(store: Store) -> Iterator[TestClient]:
    with api_client(store[0]) as client:
        yield client


def _last_day(settings: Settings) -> dt.date:
    return query_store(settings, "SELECT max(date_start) FROM meta_ad_insights WHERE entity_type = 'campaign'")[0][0]


def _sums(settings: Settings, where: str, params: list[object]) -> dict[str, float]:
    row = query_store(settings, f"SELECT {SUMS} FROM meta_ad_insights WHERE {where}", params)[0]
    return dict(zip(("spend", "impressions", "clicks", "conversions", "revenue"), (float(v or 0) for v in row)))


def _assert_metrics(block: dict, sums: dict[str, float]) -> None:
    for metric, value in sums.items():
        assert block[metric] == pytest.approx(value), metric
    assert block["ctr"] == pytest.approx(sums["clicks"] / sums["impressions"] * 100)
    assert block["cpc"] == pytest.approx(sums["spend"] / sums["clicks"])
    assert block["roas"] == pytest.approx(sums["revenue"] / sums["spend"])


def test_overview_endpoint_ok(store: Store, client: TestClient) -> None:
    settings, tokens = store
    answer = client.get(f"{PREFIX}/overview", headers=bearer(tokens["viewer"]))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    # the dashboard's default period: the last 30 complete days; the stub syncs through today, so yesterday ends it
    until = _last_day(settings) - dt.timedelta(days=1)
    since = until - dt.timedelta(days=29)
    assert body["date_range"] == {"start": since.isoformat(), "end": until.isoformat()}
    sums = _sums(settings, "entity_type = 'campaign' AND date_start BETWEEN ? AND ?", [since, until])
    _assert_metrics(body["global_metrics"], sums)
    ((total, active),) = query_store(
        settings, "SELECT count(*), count(*) FILTER (WHERE effective_status = 'ACTIVE') FROM campaigns"
    )
    assert (body["total_campaigns"], body["active_campaigns"]) == (total, active) == (6, 5)
    top = body["top_campaigns"]
    assert [c["spend"] for c in top] == sorted((c["spend"] for c in top), reverse=True) and len(top) == 6
    first = top[0]
    mine = _sums(
        settings,
        "entity_type = 'campaign' AND entity_id = ? AND date_start BETWEEN ? AND ?",
        [first["campaign_id"], since, until],
    )
    assert first["spend"] == pytest.approx(mine["spend"])
    assert sum(c["spend"] for c in top) == pytest.approx(sums["spend"])
    assert all(0 <= c["efficiency_score"] <= 100 for c in top) and first["campaign_name"]
    ((sync_id,),) = query_store(settings, "SELECT sync_id FROM sync_runs ORDER BY sync_timestamp DESC LIMIT 1")
    assert body["last_sync"]["sync_id"] == sync_id and body["last_sync"]["status"] == "succeeded"
    assert body["last_sync"]["campaigns"] == {"processed": 6, "success": 6, "errors": 0}
    assert isinstance(body["alerts"], list)
    assert dt.datetime.fromisoformat(body["timestamp"]).tzinfo is not None


def test_overview_period_and_account(store: Store, client: TestClient) -> None:
    settings, tokens = store
    last = _last_day(settings)
    since, until = last - dt.timedelta(days=9), last - dt.timedelta(days=3)
    for account in ("act_1000000000001", "1000000000001"):
        body = client.get(
            f"{PREFIX}/overview",
            params={"since": since.isoformat(), "until": until.isoformat(), "account_id": account},
            headers=bearer(tokens["analyst"]),
        ).json()
        assert body["date_range"] == {"start": since.isoformat(), "end": until.isoformat()}
        assert body["account_id"] == "act_1000000000001"
        sums = _sums(settings, "entity_type = 'campaign' AND date_start BETWEEN ? AND ?", [since, until])
        _assert_metrics(body["global_metrics"], sums)
        previous = body["previous_period"]
        assert previous["date_range"] == {
            "start": (since - dt.timedelta(days=7)).isoformat(),
            "end": (since - dt.timedelta(days=1)).isoformat(),
        }
    only_since = client.get(
        f"{PREFIX}/overview", params={"since": since.isoformat()}, headers=bearer(tokens["analyst"])
    ).json()
    assert only_since["date_range"] == {"start": since.isoformat(), "end": last.isoformat()}
    by_roas = client.get(
        f"{PREFIX}/overview", params={"sort_by": "roas", "top": "2"}, headers=bearer(tokens["analyst"])
    ).json()["top_campaigns"]
    assert len(by_roas) == 2 and by_roas[0]["roas"] >= by_roas[1]["roas"]


@pytest.mark.parametrize(
    "params, status, words",
    [
        ({"account_id": "act_999"}, 404, "unknown ad account act_999"),
        ({"account_id": "acct-1"}, 400, "account_id must be"),
        ({"since": "2026-13-01"}, 400, "not a calendar date"),
        ({"since": "yesterday"}, 400, "YYYY-MM-DD"),
        ({"since": "٢٠٢٦-١١-٠١"}, 400, "YYYY-MM-DD"),
        ({"since": "0001-01-01"}, 400, "from 2000-01-01"),
        ({"since": "2026-11-10", "until": "2026-11-01"}, 400, "is after"),
        ({"top": "0"}, 400, "top must be"),
        ({"sort_by": "name"}, 400, "sort_by must be"),
    ],
)
def test_overview_bad_parameters(
    store: Store, client: TestClient, params: dict[str, str], status: int, words: str
) -> None:
    answer = client.get(f"{PREFIX}/overview", params=params, headers=bearer(store[1]["viewer"]))
    assert answer.status_code == status and words in answer.json()["error"]


def test_campaign_endpoint_ok(store: Store, client: TestClient) -> None:
    settings, tokens = store
    answer = client.get(f"{PREFIX}/campaign/{CAMPAIGN}", params={"days": "7"}, headers=bearer(tokens["manager"]))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    last = _last_day(settings)
    since = last - dt.timedelta(days=6)
    ((name, status),) = query_store(
        settings, "SELECT name, effective_status FROM campaigns WHERE campaign_id = ?", [CAMPAIGN]
    )
    assert (body["campaign_id"], body["campaign_name"], body["status"]) == (CAMPAIGN, name, status)
    assert body["date_range"] == {"start": since.isoformat(), "end": last.isoformat()}
    insights = body["campaign_insights"]
    assert insights["entity_id"] == CAMPAIGN and insights["entity_type"] == "campaign"
    sums = _sums(
        settings, "entity_type = 'campaign' AND entity_id = ? AND date_start BETWEEN ? AND ?", [CAMPAIGN, since, last]
    )
    assert insights["total_spend"] == pytest.approx(sums["spend"])
    assert insights["avg_roas"] == pytest.approx(sums["revenue"] / sums["spend"])  # from sums, not a daily average
    _assert_metrics(insights["totals"], sums)
    days = insights["insights"]
    assert [d["date"] for d in days] == [(since + dt.timedelta(days=i)).isoformat() for i in range(7)]
    assert sum(d["spend"] for d in days) == pytest.approx(sums["spend"])
    assert all(d["ctr"] == pytest.approx(d["clicks"] / d["impressions"] * 100) for d in days if d["impressions"])
    # children: the campaign's ad sets and ads add up to it
    assert (body["adsets_count"], body["ads_count"]) == (3, 6)
    assert sum(a["spend"] for a in body["adsets"]) == pytest.approx(sums["spend"])
    # the efficiency score is the pages' function over every campaign that spent in the period
    with connect_snapshot(resolve_current_snapshot(settings.current_snapshot_link)) as con:
        prev_since, prev_until = since - dt.timedelta(days=7), since - dt.timedelta(days=1)
        summary = queries.fetch_campaign_summary(con.cursor(), since, last, prev_since, prev_until)
    expected = efficiency_score(sums, summary[summary["spend"] > 0])
    assert body["performance_summary"]["efficiency_score"] == pytest.approx(expected)
    assert 0 <= expected <= 100


def test_adset_endpoint_ok(store: Store, client: TestClient) -> None:
    settings, tokens = store
    body = client.get(f"{PREFIX}/adset/{ADSET}", headers=bearer(tokens["viewer"])).json()
    ((age_min, age_max, countries, campaign_id),) = query_store(
        settings, "SELECT age_min, age_max, countries, campaign_id FROM adsets WHERE adset_id = ?", [ADSET]
    )
    assert body["adset_id"] == ADSET and body["campaign_id"] == campaign_id == CAMPAIGN
    targeting = body["targeting"]
    assert (targeting["age_min"], targeting["age_max"]) == (age_min, age_max)
    assert targeting["countries"] == countries.split(",") and isinstance(targeting["spec"], dict)
    last = _last_day(settings)
    sums = _sums(
        settings,
        "entity_type = 'adset' AND entity_id = ? AND date_start BETWEEN ? AND ?",
        [ADSET, last - dt.timedelta(days=29), last],
    )
    _assert_metrics(body["adset_insights"]["totals"], sums)
    assert body["ads_count"] == 2 and sum(a["spend"] for a in body["ads"]) == pytest.approx(sums["spend"])


def test_ad_endpoint_ok(store: Store, client: TestClient) -> None:
    settings, tokens = store
    body = client.get(f"{PREFIX}/ad/{AD}", params={"days": "30"}, headers=bearer(tokens["analyst"])).json()
    assert (body["ad_id"], body["adset_id"], body["campaign_id"]) == (AD, ADSET, CAMPAIGN)
    last = _last_day(settings)
    sums = _sums(
        settings,
        "entity_type = 'ad' AND entity_id = ? AND date_start BETWEEN ? AND ?",
        [AD, last - dt.timedelta(days=29), last],
    )
    _assert_metrics(body["ad_insights"]["totals"], sums)
    comparison = body["peer_comparison"]
    for scope, column, parent in (("adset", "adset_id", ADSET), ("campaign", "campaign_id", CAMPAIGN)):
        ((delivered,),) = query_store(
            settings,
            f"SELECT count(DISTINCT entity_id) FROM meta_ad_insights WHERE entity_type = 'ad'"
            f" AND {column} = ? AND entity_id <> ? AND date_start BETWEEN ? AND ?",
            [parent, AD, last - dt.timedelta(days=29), last],
        )
        assert comparison[scope]["peers_delivered"] == delivered, scope
    assert comparison["campaign"]["peers_delivered"] >= 3
    by_metric = {row["metric"]: row for row in comparison["campaign"]["metrics"]}
    assert set(by_metric) == {"ctr", "cpc", "roas"}
    assert by_metric["roas"]["value"] == pytest.approx(sums["revenue"] / sums["spend"])
    assert by_metric["ctr"]["peers"] == comparison["campaign"]["peers_delivered"]
    assert 0 <= by_metric["ctr"]["percentile"] <= 100


def test_recent_insights_finds_the_level_and_counts_days(store: Store, client: TestClient) -> None:
    settings, tokens = store
    last = _last_day(settings)
    for entity_type in (None, "ad"):
        params = {"days": "5", **({"entity_type": entity_type} if entity_type else {})}
        body = client.get(f"{PREFIX}/recent-insights/{AD}", params=params, headers=bearer(tokens["viewer"])).json()
        assert body["entity_type"] == "ad" and body["entity_id"] == AD and body["days"] == 5
        assert body["date_range"] == {"start": (last - dt.timedelta(days=4)).isoformat(), "end": last.isoformat()}
        sums = _sums(settings, "entity_type = 'ad' AND entity_id = ? AND date_start > ?", [AD, last - dt.timedelta(5)])
        assert body["total_spend"] == pytest.approx(sums["spend"]) and len(body["insights"]) == 5
    wrong_level = client.get(
        f"{PREFIX}/recent-insights/{AD}", params={"entity_type": "campaign"}, headers=bearer(tokens["viewer"])
    )
    assert wrong_level.status_code == 404 and "unknown campaign id" in wrong_level.json()["error"]


@pytest.mark.parametrize(
    "path", ["/overview", f"/campaign/{CAMPAIGN}", f"/adset/{ADSET}", f"/ad/{AD}", f"/recent-insights/{CAMPAIGN}"]
)
@pytest.mark.parametrize("role", ROLES)
def test_every_role_reads_every_endpoint(store: Store, client: TestClient, path: str, role: str) -> None:
    answer = client.get(PREFIX + path, headers=bearer(store[1][role]))
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"


def test_rbac_protection(store: Store, client: TestClient) -> None:
    """No token or a bad one: 401 on every endpoint; a role without sync:run: 403 on sync-now."""
    tokens = store[1]
    for path in ("/overview", f"/campaign/{CAMPAIGN}", f"/ad/{AD}", "/sync-now/1"):
        for headers in (
            {},
            {"Authorization": "Basic YWRtaW46ZGVtbw=="},
            {"Authorization": "Bearer"},
            bearer("mi_" + "x" * 43),
            bearer("not-a-token"),
            {"Authorization": tokens["admin"]},
        ):
            answer = client.get(PREFIX + path, headers=headers)
            assert answer.status_code == 401, (path, headers)
            assert answer.json()["error"] and answer.headers["www-authenticate"].startswith("Bearer")
    for role in ("analyst", "viewer"):
        answer = client.post(f"{PREFIX}/sync-now", json={"days_back": 1}, headers=bearer(tokens[role]))
        assert answer.status_code == 403 and "needs sync:run" in answer.json()["error"]
        assert client.get(f"{PREFIX}/sync-now/1", headers=bearer(tokens[role])).status_code == 403
    # authentication comes before validation: a bad id does not tell an anonymous caller anything
    assert client.get(f"{PREFIX}/campaign/abc").status_code == 401


@pytest.mark.parametrize(
    "path, words",
    [
        ("/campaign/abc", "not a Meta object id"),
        ("/campaign/12a", "not a Meta object id"),
        ("/adset/١٢٣", "digits 0-9"),
        ("/ad/1%3BDROP%20TABLE%20ads", "not a Meta object id"),
        ("/ad/1,2", "one ad id"),
        (f"/campaign/{CAMPAIGN}?days=0", "from 1 to 365"),
        (f"/campaign/{CAMPAIGN}?days=366", "from 1 to 365"),
        (f"/adset/{ADSET}?days=x", "whole number"),
        (f"/ad/{AD}?days=7.5", "whole number"),
        (f"/recent-insights/{AD}?days=-1", "days back"),
        (f"/recent-insights/{AD}?entity_type=account", "entity type must be one of"),
        ("/sync-now/abc", "positive whole number"),
    ],
)
def test_malformed_input_is_400(store: Store, client: TestClient, path: str, words: str) -> None:
    answer = client.get(PREFIX + path, headers=bearer(store[1]["admin"]))
    assert answer.status_code == 400, answer.text
    assert words in answer.json()["error"]


@pytest.mark.parametrize(
    "path",
    [
        "/campaign/999",
        f"/adset/{CAMPAIGN}",
        f"/ad/{ADSET}",
        "/recent-insights/42",
        "/sync-now/999",
        "/nothing-here",
        "/campaign/1/extra",
    ],
)
def test_unknown_ids_and_paths_are_404(store: Store, client: TestClient, path: str) -> None:
    answer = client.get(PREFIX + path, headers=bearer(store[1]["admin"]))
    assert answer.status_code == 404 and answer.json()["error"]


def test_wrong_method_is_a_json_405(store: Store, client: TestClient) -> None:
    answer = client.post(f"{PREFIX}/overview", headers=bearer(store[1]["admin"]))
    assert answer.status_code == 405 and answer.headers["allow"] == "GET, HEAD" and answer.json()["error"]
    answer = client.get(f"{PREFIX}/sync-now", headers=bearer(store[1]["admin"]))
    assert answer.status_code == 405 and answer.headers["allow"] == "POST"


def test_before_the_first_sync_reads_answer_503(tmp_path: Path) -> None:
    from insights_core.auth import ensure_demo_auth_config
    from tests.api.helpers import issue_token
    from tests.helpers import make_settings

    settings = make_settings(tmp_path / "data")
    ensure_demo_auth_config(settings.auth_config_path)
    _, token = issue_token(settings, "viewer")
    with api_client(settings) as client:
        answer = client.get(f"{PREFIX}/overview", headers=bearer(token))
        assert answer.status_code == 503 and "No data has been published yet" in answer.json()["error"]
        assert client.get("/healthz").json() == {"status": "ok", "snapshot": "unavailable", "worker": "stopped"}
