"""GET /meta/insights/breakdowns/{entity_type}/{id}: segment sums equal the store's, reach is never summed,
every role may read, and bad input answers 400/401/404 as JSON."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from insights_core.models import BREAKDOWN_FAMILIES
from insights_core.roles import ROLES
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


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    settings = build_api_data_dir(tmp_path_factory.mktemp("api-breakdowns") / "data", days_back=20)
    yield settings, role_tokens(settings)


@pytest.fixture
def client(store: Store) -> Iterator[TestClient]:
    with api_client(store[0]) as client:
        yield client


@pytest.mark.parametrize(("level", "entity_id"), [("campaign", CAMPAIGN), ("adset", ADSET), ("ad", AD)])
def test_segments_equal_the_store_and_add_up_to_the_totals(
    client: TestClient, store: Store, level: str, entity_id: str
) -> None:
    settings, tokens = store
    [(until,)] = query_store(settings, "SELECT max(date_start) FROM meta_ad_insights")
    since = until - dt.timedelta(days=6)
    answer = client.get(
        f"{PREFIX}/breakdowns/{level}/{entity_id}",
        params={"since": since.isoformat(), "until": until.isoformat()},
        headers=bearer(tokens["viewer"]),
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["date_range"] == {"start": since.isoformat(), "end": until.isoformat()}
    assert set(body["breakdowns"]) == set(BREAKDOWN_FAMILIES)
    [(spend, impressions)] = query_store(
        settings,
        "SELECT coalesce(sum(spend), 0)::DOUBLE, coalesce(sum(impressions), 0) FROM meta_ad_insights"
        " WHERE entity_type = ? AND entity_id = ? AND date_start BETWEEN ? AND ?",
        [level, entity_id, since, until],
    )
    for family, segments in body["breakdowns"].items():
        assert sum(s["impressions"] for s in segments) == impressions, family
        assert sum(s["spend"] for s in segments) == pytest.approx(spend), family
        assert all("reach" not in s for s in segments), "a period's segment reach is never a sum"
        for s in segments:
            if s["clicks"]:
                assert s["cpc"] == pytest.approx(s["spend"] / s["clicks"])
    reach = body["daily_reach"]["age_gender"]
    if level == "ad":
        assert reach and {"date_start", "key_1", "key_2", "reach"} <= set(reach[0])
    else:
        assert reach == [], "rolled-up levels have no reach"


def test_one_family_and_every_role(client: TestClient, store: Store) -> None:
    for role in ROLES:
        answer = client.get(
            f"{PREFIX}/breakdowns/ad/{AD}", params={"family": "country"}, headers=bearer(store[1][role])
        )
        assert answer.status_code == 200, (role, answer.text)
        assert list(answer.json()["breakdowns"]) == ["country"]


@pytest.mark.parametrize(
    ("path", "params", "status", "message"),
    [
        (f"breakdowns/creative/{AD}", {}, 400, "entity type must be one of"),
        ("breakdowns/ad/12ab", {}, 400, "ad id"),
        (f"breakdowns/ad/{AD}", {"family": "region"}, 400, "family must be one of"),
        (f"breakdowns/ad/{AD}", {"since": "2026-02-30"}, 400, "not a calendar date"),
        (f"breakdowns/ad/{AD}", {"since": "2026-11-10", "until": "2026-11-01"}, 400, "after until"),
        ("breakdowns/campaign/424242", {}, 404, "unknown campaign id 424242"),
    ],
)
def test_bad_input_is_a_json_error(
    client: TestClient, store: Store, path: str, params: dict, status: int, message: str
) -> None:
    answer = client.get(f"{PREFIX}/{path}", params=params, headers=bearer(store[1]["viewer"]))
    assert answer.status_code == status, answer.text
    assert message in answer.json()["error"]


def test_no_token_is_401(client: TestClient) -> None:
    answer = client.get(f"{PREFIX}/breakdowns/ad/{AD}")
    assert answer.status_code == 401 and "error" in answer.json()
