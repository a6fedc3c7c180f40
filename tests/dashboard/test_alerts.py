"""Alerts as pure functions, fired and not fired on crafted sync runs and campaign sums."""

from __future__ import annotations

import pandas as pd
import pytest

from insights_core.dashboard import alerts
from tests.sync_run_frames import NOW, of, runs


def codes(found: list[alerts.Alert]) -> list[str]:
    return [a.code for a in found]


@pytest.mark.parametrize(
    ("statuses", "fires"),
    [
        (["failed", "failed", "failed"], True),
        (["succeeded", "failed", "failed", "failed"], True),
        (["failed", "failed"], False),
        (["failed", "failed", "failed", "succeeded"], False),
        (["failed", "failed", "cancelled", "failed"], True),  # a cancelled run neither breaks nor extends it
        ([], False),
    ],
)
def test_more_than_two_failures_in_a_row(statuses: list[str], fires: bool) -> None:
    table = runs(*({"ago": 100 - i, "status": s} for i, s in enumerate(statuses))) if statuses else runs()
    alert = alerts.consecutive_failures_alert(table) if statuses else None
    assert (alert is not None) is fires
    if alert:
        assert alert.severity == "error" and "in a row" in alert.message


@pytest.mark.parametrize(
    ("history", "latest", "fires"),
    [
        ([10, 10, 10], 21, True),
        ([10, 10, 10], 20, False),  # exactly twice is not more than twice
        ([10, 10], 100, False),  # too little history to judge
        ([5, 10, 15], 20, False),
        ([5, 10, 15], 20.5, True),
    ],
)
def test_duration_above_twice_the_average(history: list[float], latest: float, fires: bool) -> None:
    table = runs(
        *({"ago": 100 - i, "total_duration_seconds": d} for i, d in enumerate(history)),
        {"ago": 1, "total_duration_seconds": latest},
    )
    assert (alerts.slow_sync_alert(table) is not None) is fires


def test_duration_is_compared_with_syncs_of_the_same_kind() -> None:
    quick_manual = [
        {"ago": 100 - i, "sync_type": "manual", "entity_type": "ad", "total_duration_seconds": 1.0} for i in range(5)
    ]
    scheduled = [{"ago": 50 - i, "total_duration_seconds": 30.0} for i in range(3)]
    table = runs(*quick_manual, *scheduled, {"ago": 1, "total_duration_seconds": 40.0})
    assert alerts.slow_sync_alert(table) is None
    table = runs(*scheduled, {"ago": 1, "total_duration_seconds": 61.0})
    assert alerts.slow_sync_alert(table) is not None


@pytest.mark.parametrize(
    ("hits", "fires", "peak"),
    [
        ([(50, 6), (20, 5)], True, 11),  # 11 within 30 minutes
        ([(50, 5), (20, 5)], False, 10),  # exactly 10 is not more than 10
        ([(130, 6), (20, 5)], False, 6),  # 110 minutes apart: never 11 within one hour
        ([(60 * 30, 50), (20, 1)], False, 1),  # the big burst was more than a day ago
        ([(5, 11)], True, 11),
    ],
)
def test_more_than_ten_rate_limit_hits_in_an_hour(hits: list[tuple[int, int]], fires: bool, peak: int) -> None:
    table = runs(*({"ago": ago, "rate_limit_hits": n} for ago, n in hits))
    assert alerts.peak_rate_limit_hits(table, NOW)[0] == peak
    assert (alerts.rate_limit_alert(table, NOW) is not None) is fires


@pytest.mark.parametrize(
    ("errors", "fires"),
    [((0, 0, 0), False), ((5, 25, 70), False), ((5, 25, 71), True), ((100, 0, 0), False), ((0, 0, 200), True)],
)
def test_entity_errors_above_five_percent(errors: tuple[int, int, int], fires: bool) -> None:
    # 2000 entities processed: 5% is 100
    c, a, d = errors
    table = runs({"ago": 30, "ads_errors": 500}, {"ago": 1, "campaigns_errors": c, "adsets_errors": a, "ads_errors": d})
    assert (alerts.entity_error_alert(table) is not None) is fires


def test_healthy_runs_raise_no_alert_and_bad_ones_raise_each() -> None:
    healthy = runs(*({"ago": 300 - 30 * i} for i in range(8)))
    assert alerts.sync_alerts(healthy, NOW) == []
    bad = runs(
        *({"ago": 300 - 30 * i} for i in range(5)),
        {"ago": 40, "status": "failed", "rate_limit_hits": 6},
        {"ago": 20, "status": "failed", "rate_limit_hits": 6},
        {"ago": 1, "status": "failed", "total_duration_seconds": 99.0, "ads_errors": 300},
    )
    assert codes(alerts.sync_alerts(bad, NOW)) == ["sync_failing", "sync_slow", "rate_limited", "entity_errors"]
    assert alerts.sync_alerts(runs(), NOW) == []


def test_with_many_workers_one_accounts_failures_are_not_hidden_by_anothers_successes() -> None:
    # two workers, each syncing its own account, finishing in turns: act_1 fails every time
    table = runs(
        *(
            {"ago": 100 - 10 * i, "report_json": of(account), "status": "failed" if account == "act_1" else "succeeded"}
            for i in range(6)
            for account in [("act_1", "act_2")[i % 2]]
        )
    )
    alert = alerts.consecutive_failures_alert(table)
    assert alert is not None
    assert "1 ad account failed more than 2 times in a row: act_1 (3 in a row)" in alert.message
    assert "act_2" not in alert.message
    # a run that failed before reaching any account counts for each account
    table = runs(
        {"ago": 50, "report_json": of("act_1"), "status": "failed"},
        {"ago": 40, "report_json": of("act_2"), "status": "failed"},
        {"ago": 30, "report_json": of("act_1"), "status": "failed"},
        {"ago": 20, "report_json": of("act_2"), "status": "succeeded"},
        {"ago": 10, "report_json": of(), "status": "failed"},
    )
    alert = alerts.consecutive_failures_alert(table)
    assert alert is not None and "act_1 (3 in a row)" in alert.message and "act_2" not in alert.message


def test_one_worker_syncing_every_account_keeps_the_plain_messages() -> None:
    table = runs(*({"ago": 30 - i, "report_json": of("act_1", "act_2"), "status": "failed"} for i in range(3)))
    alert = alerts.consecutive_failures_alert(table)
    assert alert is not None and alert.message.startswith("The last 3 syncs failed in a row")


def test_with_many_workers_a_slow_account_is_found_even_when_another_finished_last() -> None:
    table = runs(
        *({"ago": 200 - i, "report_json": of("act_2"), "total_duration_seconds": 5.0} for i in range(4)),
        *({"ago": 100 - i, "report_json": of("act_1"), "total_duration_seconds": 30.0} for i in range(3)),
        {"ago": 10, "report_json": of("act_1"), "total_duration_seconds": 70.0},
        {"ago": 1, "report_json": of("act_2"), "total_duration_seconds": 5.0},  # the run that finished last
    )
    alert = alerts.slow_sync_alert(table)
    assert alert is not None
    assert alert.message == (
        "The latest scheduled sync of act_1 took 70.0 s, more than 2× the average of the 3 before it (30.0 s)."
    )


def test_with_many_workers_a_big_accounts_usual_sync_is_not_called_slow_against_small_ones() -> None:
    # act_1 always takes 30 s, act_2 5 s: mixed, 30 s is more than twice their 11.25 s average
    table = runs(
        *({"ago": 300 - i, "report_json": of("act_2"), "total_duration_seconds": 5.0} for i in range(9)),
        *({"ago": 100 - i, "report_json": of("act_1"), "total_duration_seconds": 30.0} for i in range(4)),
    )
    assert alerts.slow_sync_alert(table) is None


def test_with_many_workers_the_rate_limit_alert_names_the_throttled_accounts() -> None:
    table = runs(
        {"ago": 200, "report_json": of("act_3"), "rate_limit_hits": 5},  # hours before the peak hour
        {"ago": 40, "report_json": of("act_1"), "rate_limit_hits": 4},
        {"ago": 30, "report_json": of("act_2"), "rate_limit_hits": 7},
        {"ago": 20, "report_json": of("act_3")},
        {"ago": 10, "report_json": of("act_1"), "rate_limit_hits": 2},
    )
    alert = alerts.rate_limit_alert(table, NOW)
    assert alert is not None and "13 rate-limit hits within one hour" in alert.message
    assert "syncs of act_2 (7), act_1 (6) are being throttled by Meta" in alert.message
    # one worker syncing every account: nothing to name
    table = runs(*({"ago": 30 - i, "report_json": of("act_1", "act_2"), "rate_limit_hits": 4} for i in range(3)))
    alert = alerts.rate_limit_alert(table, NOW)
    assert alert is not None and alert.message.endswith("per hour: syncs are being throttled by Meta.")


def test_with_many_workers_entity_errors_are_judged_on_each_accounts_latest_run() -> None:
    table = runs(
        {"ago": 30, "report_json": of("act_1"), "ads_errors": 300},
        {"ago": 1, "report_json": of("act_2")},
    )
    alert = alerts.entity_error_alert(table)
    assert alert is not None
    assert alert.message.startswith("The latest sync of act_1 could not read 300 of 2,000 entities (15.0%)")


def campaigns(*rows: tuple[str, float, float, float, float]) -> pd.DataFrame:
    """(name, spend, revenue, previous spend, previous revenue); clicks and impressions held steady."""
    return pd.DataFrame(
        [
            {
                "campaign_id": str(i),
                "name": name,
                "spend": s,
                "revenue": r,
                "prev_spend": ps,
                "prev_revenue": pr,
                "impressions": 1000,
                "clicks": 20,
                "conversions": 1,
                "prev_impressions": 1000,
                "prev_clicks": 20,
                "prev_conversions": 1,
            }
            for i, (name, s, r, ps, pr) in enumerate(rows)
        ]
    )


def test_roas_drop_above_thirty_percent_fires_worst_first() -> None:
    table = campaigns(
        ("steady", 100, 200, 100, 200),
        ("down 30", 100, 140, 100, 200),  # exactly 30% is not more than 30%
        ("down 40", 100, 120, 100, 200),
        ("down 75", 100, 50, 100, 200),
        ("tiny spend", 5, 0, 5, 50),  # below the minimum spend: noise
        ("new", 100, 10, 0, 0),  # nothing to compare with
        ("up", 100, 400, 100, 200),
    )
    found = alerts.performance_alerts(table, metrics=("roas",))
    assert [a.campaign_id for a in found] == ["3", "2"]
    assert "fell 75%" in found[0].message and "(2.00 → 0.50)" in found[0].message


def test_ctr_drop_uses_clicks_over_impressions_sums() -> None:
    table = campaigns(("a", 100, 100, 100, 100)).assign(clicks=10)  # ctr 1% against 2% before
    assert codes(alerts.performance_alerts(table, metrics=("ctr",))) == ["ctr_drop"]
    assert alerts.performance_alerts(table.assign(clicks=15), metrics=("ctr",)) == []


def test_many_drops_are_summed_up_after_the_first_few() -> None:
    table = campaigns(*((f"c{i}", 100, 50, 100, 200) for i in range(alerts.MAX_LISTED + 3)))
    found = alerts.performance_alerts(table, metrics=("roas",))
    assert len(found) == alerts.MAX_LISTED + 1
    assert found[-1].severity == "info" and found[-1].message.startswith("3 more")


def test_period_change_gives_nan_without_a_previous_value() -> None:
    table = campaigns(("a", 100, 150, 100, 100), ("b", 100, 100, 0, 0), ("c", 0, 0, 100, 100))
    change = alerts.period_change(table, "roas")["change"]
    assert change.iloc[0] == pytest.approx(50.0)
    assert change.iloc[1:].isna().all()
