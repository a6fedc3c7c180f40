"""The emulator's own contract, over plain HTTP: what the SDK and the tests rely on."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest
import requests

from graph_emulator import ACCOUNT_ID, FaultRule, GraphEmulator, SeededAccount
from graph_emulator.breakdowns import breakdown_truth
from tests.live.helpers import SHAPE, TOKEN

WINDOW = {"since": "2026-11-01", "until": "2026-11-07"}


def get(emulator: GraphEmulator, path: str, **params: object) -> requests.Response:
    return requests.get(f"{emulator.url}/v26.0/{path}", params={"access_token": TOKEN, **params}, timeout=10)


def start_run(emulator: GraphEmulator, **params: object) -> str:
    body = {"access_token": TOKEN, "level": "ad", "time_range": json.dumps(WINDOW), "time_increment": "1", **params}
    answer = requests.post(f"{emulator.url}/v26.0/{ACCOUNT_ID}/insights", data=body, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()["report_run_id"]


def test_a_report_run_says_job_completed_only_after_a_running_step_at_100_percent(emulator: GraphEmulator) -> None:
    run_id = start_run(emulator)
    assert get(emulator, f"{run_id}/insights").json()["error"]["code"] == 100  # not ready yet
    steps = [
        (s["async_status"], s["async_percent_completion"])
        for s in (get(emulator, f"{run_id}/").json() for _ in range(emulator.polls_to_complete))
    ]
    assert steps == [("Job Running", 50), ("Job Running", 100), ("Job Completed", 100)]
    first = get(emulator, f"{run_id}/insights", limit=40).json()
    assert len(first["data"]) == 40 and "next" in first["paging"]
    rows, after = list(first["data"]), first["paging"]["cursors"]["after"]
    while True:
        page = get(emulator, f"{run_id}/insights", limit=40, after=after).json()
        rows += page["data"]
        if "next" not in page["paging"]:
            break
        after = page["paging"]["cursors"]["after"]
    truth = emulator.ground_truth("ad", dt.date(2026, 11, 1), dt.date(2026, 11, 7))
    visible = {e["id"] for e in emulator.account.entities["ad"] if e["effective_status"] not in ("ARCHIVED", "DELETED")}
    assert len(rows) == truth["entity_id"].isin(visible).sum()  # hidden statuses need a filter, as on Graph
    assert all(isinstance(r["spend"], str) and r["date_start"] == r["date_stop"] for r in rows)


def test_status_filters_reveal_archived_and_deleted_entities(emulator: GraphEmulator) -> None:
    plain = get(emulator, f"{ACCOUNT_ID}/ads", fields="id,effective_status", limit=100).json()["data"]
    every = get(
        emulator,
        f"{ACCOUNT_ID}/ads",
        fields="id,effective_status",
        limit=100,
        effective_status=json.dumps(["ACTIVE", "PAUSED", "ADSET_PAUSED", "CAMPAIGN_PAUSED", "ARCHIVED", "DELETED"]),
    ).json()["data"]
    assert len(every) == len(emulator.account.entities["ad"]) > len(plain)
    assert {"ARCHIVED", "DELETED"} <= {e["effective_status"] for e in every}
    assert not {"ARCHIVED", "DELETED"} & {e["effective_status"] for e in plain}


def test_the_per_entity_edge_returns_one_entitys_days(emulator: GraphEmulator) -> None:
    ad = emulator.account.ids["ad"][0]
    rows = get(emulator, f"{ad}/insights", time_range=json.dumps(WINDOW), time_increment=1, limit=100).json()["data"]
    truth = emulator.ground_truth("ad", dt.date(2026, 11, 1), dt.date(2026, 11, 7))
    assert [r["date_start"] for r in rows] == [d.isoformat() for d in truth.loc[truth["entity_id"] == ad, "date_start"]]
    assert emulator.requests["entity_insights"] == 1


def test_throttling_answers_carry_usage_headers_and_the_regain_time(emulator: GraphEmulator) -> None:
    emulator.faults.rules.append(FaultRule("throttle", every=2, code=80000, regain_minutes=3))
    ok, throttled = get(emulator, ACCOUNT_ID), get(emulator, ACCOUNT_ID)
    assert ok.status_code == 200 and json.loads(ok.headers["x-app-usage"])["call_count"] == 3.0
    assert throttled.status_code == 400 and throttled.json()["error"]["code"] == 80000
    usage = json.loads(throttled.headers["x-business-use-case-usage"])["5550001"][0]
    assert usage["estimated_time_to_regain_access"] == 3 and usage["call_count"] == 100
    assert "x-fb-ads-insights-throttle" in throttled.headers


@pytest.mark.parametrize(("days", "answer"), [(3, 200), (4, 400)])
def test_too_long_windows_are_refused_with_1487534(emulator: GraphEmulator, days: int, answer: int) -> None:
    emulator.faults.too_large_over_days = 3
    window = {"since": "2026-11-01", "until": f"2026-11-0{days}"}
    body = {"access_token": TOKEN, "level": "ad", "time_range": json.dumps(window), "time_increment": "1"}
    result = requests.post(f"{emulator.url}/v26.0/{ACCOUNT_ID}/insights", data=body, timeout=10)
    assert result.status_code == answer
    if answer == 400:
        assert (result.json()["error"]["code"], result.json()["error"]["error_subcode"]) == (100, 1487534)


def test_requests_without_a_token_are_refused(emulator: GraphEmulator) -> None:
    answer = requests.get(f"{emulator.url}/v26.0/{ACCOUNT_ID}", timeout=10)
    assert answer.status_code == 400 and "access token" in answer.json()["error"]["message"]


@pytest.mark.parametrize("family", ["age_gender", "country", "placement", "device_platform"])
def test_breakdown_truth_splits_each_entity_day_exactly_and_keeps_reach_its_own(family: str) -> None:
    """The ground truth the live tests compare with: a pure function that obeys Meta's arithmetic."""
    account = SeededAccount(SHAPE)
    since, until = dt.date(2026, 11, 1), dt.date(2026, 11, 7)
    metrics = ["spend", "impressions", "clicks", "conversions", "revenue"]
    for level in ("campaign", "adset", "ad"):
        segments = breakdown_truth(account, level, family, since, until)
        assert segments.equals(breakdown_truth(SeededAccount(SHAPE), level, family, since, until))
        totals = account.ground_truth(level, since, until)
        sums = segments.groupby(["entity_id", "date_start"], as_index=False)[[*metrics, "reach"]].sum()
        merged = totals.merge(sums, on=["entity_id", "date_start"], how="outer", suffixes=("", "_seg"))
        assert not merged.isna().any().any()
        for metric in metrics:  # cents and counts are integers underneath: exact
            assert ((merged[metric] * 100).round() == (merged[f"{metric}_seg"] * 100).round()).all(), metric
        assert (merged["reach"] != merged["reach_seg"]).mean() > 0.9  # de-duplicated per segment
        assert (segments["clicks"] <= segments["impressions"]).all()
        assert (segments["conversions"] <= segments["clicks"]).all()
        assert (segments["reach"] <= segments["impressions"]).all() and (segments["reach"] >= 1).all()
        unknown = segments[segments["key_1"].str.lower() == "unknown"]
        assert len(unknown) >= len(totals) * 0.8  # nearly every entity-day has an unknown segment
    ads = breakdown_truth(account, "ad", family, since, until)
    adsets = breakdown_truth(account, "adset", family, since, until)
    parent = {e["id"]: e["adset_id"] for e in account.entities["ad"]}
    rolled = (
        ads.assign(entity_id=ads["entity_id"].map(parent))
        .groupby(["entity_id", "date_start", "key_1", "key_2"], as_index=False)[metrics]
        .sum()
    )
    merged = adsets.merge(rolled, on=["entity_id", "date_start", "key_1", "key_2"], suffixes=("", "_ads"))
    assert len(merged) == len(adsets) == len(rolled)
    assert ((merged["impressions"] - merged["impressions_ads"]).abs() == 0).all()
    assert ((merged["spend"] - merged["spend_ads"]).abs() < 0.005).all()


def test_invalid_breakdown_combinations_answer_code_100_subcode_1504041(emulator: GraphEmulator) -> None:
    body = {"access_token": TOKEN, "level": "ad", "time_range": json.dumps(WINDOW), "time_increment": "1"}
    for breakdowns in (["age", "country"], ["impression_device"], ["gender", "device_platform"]):
        answer = requests.post(
            f"{emulator.url}/v26.0/{ACCOUNT_ID}/insights",
            data={**body, "breakdowns": json.dumps(breakdowns)},
            timeout=10,
        )
        error = answer.json()["error"]
        assert (answer.status_code, error["code"], error["error_subcode"]) == (400, 100, 1504041), breakdowns
    run_id = start_run(emulator, breakdowns=json.dumps(["age", "gender"]))
    for _ in range(3):
        get(emulator, run_id)
    rows = get(emulator, f"{run_id}/insights", limit=5000).json()["data"]
    assert rows and all({"age", "gender", "reach"} <= set(r) for r in rows)


def test_breakdown_reports_leave_reach_out_over_13_months_back(emulator: GraphEmulator) -> None:
    emulator.today = dt.date(2027, 12, 15)  # 2026-11-01 is more than 13 months before
    run_id = start_run(emulator, breakdowns=json.dumps(["country"]))
    for _ in range(3):
        get(emulator, run_id)
    rows = get(emulator, f"{run_id}/insights", limit=5000).json()["data"]
    assert rows and not any("reach" in r or "frequency" in r for r in rows)
    totals = start_run(emulator)  # without breakdowns reach is still there
    for _ in range(3):
        get(emulator, totals)
    assert all("reach" in r for r in get(emulator, f"{totals}/insights", limit=5000).json()["data"])


def test_campaigns_and_ad_sets_carry_their_schedule_through_the_sdk(tmp_path, emulator: GraphEmulator) -> None:
    """Graph serves start_time and stop_time (an ad set's end_time); the live source stores them as naive UTC."""
    from insights_core.sources.live import LiveSource
    from tests.live.helpers import live_settings

    campaigns = get(emulator, f"{ACCOUNT_ID}/campaigns", fields="id,lifetime_budget,start_time,stop_time").json()
    by_id = {c["id"]: c for c in campaigns["data"]}
    lifetime = [c for c in by_id.values() if "lifetime_budget" in c]
    assert lifetime and all(c["stop_time"] > c["start_time"] for c in lifetime)
    assert all("stop_time" not in c for c in by_id.values() if "lifetime_budget" not in c)
    adsets = get(emulator, f"{ACCOUNT_ID}/adsets", fields="id,campaign_id,start_time,end_time").json()["data"]
    assert {a["end_time"] for a in adsets if a["campaign_id"] == lifetime[0]["id"]} == {lifetime[0]["stop_time"]}

    source = LiveSource(live_settings(tmp_path, emulator))
    try:
        tree = source.fetch_entities(source.fetch_accounts()[0])
    finally:
        source.close()
    stored = tree.campaigns.set_index("campaign_id")
    first = lifetime[0]["id"]
    assert stored.loc[first, "stop_time"] == dt.datetime.strptime(lifetime[0]["stop_time"], "%Y-%m-%dT%H:%M:%S+0000")
    assert stored.loc[first, "lifetime_budget"] > 0 and pd.isna(stored.loc[first, "daily_budget"])
    ad_set_stops = tree.adsets.set_index("adset_id")["stop_time"]
    every = emulator.account.entities["adset"]  # the source asks for every status, the plain edge hides some
    assert ad_set_stops.notna().sum() == sum("end_time" in a for a in every) > 0
