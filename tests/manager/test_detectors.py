"""The detectors on hand-made frames (each rule's edge) and on the stub account: each finds the shape
INSIGHTS_STUB_SCENARIOS plants and stays quiet on the normal account."""

from __future__ import annotations

import datetime as dt

import duckdb
import numpy as np
import pandas as pd
import pytest

from insights_core.manager.anomalies import campaign_anomalies
from insights_core.manager.fatigue import FatigueThresholds, creative_fatigue, fatigue_from_week_sums
from insights_core.manager.pacing import budget_pacing, month_period, pacing_status
from insights_core.manager.reads import fetch_ad_two_week_sums
from insights_core.manager.stub_scenarios import _TARGETS
from tests.manager.stub_frames import ALL_SCENARIOS, AS_OF_DAYS, stub_frames

OVERPACING, FATIGUED_AD, ANOMALOUS = "120210000000000003", "120230000000000026", "120210000000000001"
"""Where the scenarios land in the small stub (6 x 3 x 2): the first active campaign with a campaign daily
budget (the first has a lifetime budget, the second is paused), the busiest active ad outside the two
campaigns, the active campaign with the largest expected spend besides the over-pacing one."""


def _entities(*rows: tuple[str, float, str]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"entity_id": i, "name": f"c{i}", "campaign_id": i, "effective_status": s, "daily_budget": b}
            for i, b, s in rows
        ]
    )


def _daily(entity_id: str, days: list[dt.date], **metrics: float | list[float]) -> pd.DataFrame:
    frame = pd.DataFrame({"entity_id": entity_id, "date": pd.to_datetime(days)})
    for name, value in metrics.items():
        frame[name] = value
    return frame


# pacing


def test_month_period_and_status() -> None:
    assert month_period(dt.date(2026, 2, 14)) == (dt.date(2026, 2, 1), dt.date(2026, 2, 28))
    assert pacing_status(0.16, 15) == "over" and pacing_status(0.15, 15) == "on pace"
    assert pacing_status(-0.151, 15) == "under" and pacing_status(float("nan"), 15) == "no budget"


def test_pacing_figures_on_a_hand_made_month() -> None:
    as_of = dt.date(2026, 11, 10)  # 10 of 30 days elapsed, 20 left
    days = [dt.date(2026, 11, d) for d in range(1, 11)]
    daily = pd.concat(
        [
            _daily("over", days, spend=150.0),  # 1,500 against 1,000 expected
            _daily("even", days, spend=100.0),
            _daily("under", days[:5], spend=100.0),  # 500; nothing in the last 5 days
            _daily("paused", days, spend=100.0),
        ]
    )
    entities = _entities(
        ("over", 100, "ACTIVE"),
        ("even", 100, "ACTIVE"),
        ("under", 100, "ACTIVE"),
        ("paused", 100, "PAUSED"),
        ("nobudget", float("nan"), "ACTIVE"),
    )
    out = budget_pacing(entities, daily, as_of).set_index("entity_id")
    assert list(out.index) == ["over", "under", "even"]  # worst deviation first, paused and unbudgeted left out
    over = out.loc["over"]
    assert over["status"] == "over" and over["deviation"] == pytest.approx(0.5)
    assert over["period_budget"] == 3000 and over["expected_to_date"] == 1000
    assert over["projected_spend"] == pytest.approx(1500 + 20 * 150)
    assert over["projected_low"] == pytest.approx(over["projected_high"])  # steady days: no spread
    assert over["needed_per_day"] == pytest.approx((3000 - 1500) / 20)
    assert out.loc["even", "status"] == "on pace"
    under = out.loc["under"]
    assert under["status"] == "under" and under["spend_to_date"] == 500
    # the last 7 days hold 2 of 100 and 5 without delivery: the projection uses that rate, with a spread
    assert under["projected_spend"] == pytest.approx(500 + 20 * 200 / 7)
    assert under["projected_low"] < under["projected_spend"] < under["projected_high"]


def test_pacing_on_the_last_day_needs_nothing_more() -> None:
    days = [dt.date(2026, 11, d) for d in range(1, 31)]
    out = budget_pacing(_entities(("a", 10, "ACTIVE")), _daily("a", days, spend=12.0), dt.date(2026, 11, 30))
    assert out.loc[0, "status"] == "over" and np.isnan(out.loc[0, "needed_per_day"])
    assert out.loc[0, "projected_spend"] == pytest.approx(360)


@pytest.mark.parametrize("as_of", AS_OF_DAYS)
def test_pacing_finds_the_overpacing_campaign_and_only_it(as_of: dt.date) -> None:
    entities, daily, _ = stub_frames(as_of)
    for level in ("campaign", "adset"):  # the normal account: every budget, daily or lifetime, on pace
        normal = budget_pacing(entities[level], daily[level], as_of)
        assert len(normal) > 0 and set(normal["status"]) == {"on pace"}, normal[["entity_id", "status"]]
    assert {"daily", "lifetime"} <= set(budget_pacing(entities["campaign"], daily["campaign"], as_of)["budget_type"])
    entities, daily, _ = stub_frames(as_of, ("overpacing",))
    planted = budget_pacing(entities["campaign"], daily["campaign"], as_of).set_index("entity_id")
    assert set(planted.index[planted["status"] != "on pace"]) == {OVERPACING}
    row = planted.loc[OVERPACING]
    assert row["status"] == "over" and 0.3 < row["deviation"] < 0.8  # planted at about 1.5x the daily budget
    assert row["projected_high"] > row["period_budget"]


# fatigue


def _two_weeks(as_of: dt.date, before: dict[str, float], after: dict[str, float]) -> pd.DataFrame:
    days = [as_of - dt.timedelta(days=k) for k in range(13, -1, -1)]
    rows = [{"entity_id": "ad1", "date": pd.Timestamp(d), **(before if i < 7 else after)} for i, d in enumerate(days)]
    return pd.DataFrame(rows)


AS_OF = dt.date(2026, 11, 20)
WEEK_BEFORE = {"spend": 10.0, "impressions": 1000.0, "clicks": 20.0, "reach": 800.0}


def test_fatigue_needs_high_frequency_and_a_falling_response() -> None:
    tired = {"spend": 10.0, "impressions": 1000.0, "clicks": 14.0, "reach": 300.0}  # CTR -30%, frequency 3.33
    found = creative_fatigue(_two_weeks(AS_OF, WEEK_BEFORE, tired), AS_OF)
    assert list(found["entity_id"]) == ["ad1"] and found.iloc[0]["severity"] == "critical"
    flags = " ".join(found.iloc[0]["flags"])
    assert "CTR down 30%" in flags and "frequency 3.33" in flags and "impressions-weighted" in flags
    # the same CTR drop with a fresh audience is not fatigue
    fresh = {**tired, "reach": 900.0}
    assert creative_fatigue(_two_weeks(AS_OF, WEEK_BEFORE, fresh), AS_OF).empty
    # a saturated audience whose CTR and CPM held is not fatigue either
    steady = {**WEEK_BEFORE, "reach": 300.0}
    assert creative_fatigue(_two_weeks(AS_OF, WEEK_BEFORE, steady), AS_OF).empty


def test_fatigue_warning_thresholds_and_minimum_spend() -> None:
    # frequency 2.5 (warning) and CPM up 20% (warning): a warning, not critical
    warm = {"spend": 12.0, "impressions": 1000.0, "clicks": 20.0, "reach": 400.0}
    found = creative_fatigue(_two_weeks(AS_OF, WEEK_BEFORE, warm), AS_OF)
    assert found.iloc[0]["severity"] == "warning"
    assert found.iloc[0]["cpm_change"] == pytest.approx(20.0)
    # under the minimum spend in a week, an ad is not judged
    assert creative_fatigue(_two_weeks(AS_OF, WEEK_BEFORE, warm), AS_OF, FatigueThresholds(min_spend=100)).empty


@pytest.mark.parametrize("as_of", AS_OF_DAYS)
def test_fatigue_finds_the_planted_ad_and_only_it(as_of: dt.date) -> None:
    _, daily, _ = stub_frames(as_of, days=14)
    assert creative_fatigue(daily["ad"], as_of).empty
    _, daily, _ = stub_frames(as_of, ALL_SCENARIOS, days=14)
    found = creative_fatigue(daily["ad"], as_of)
    assert list(found["entity_id"]) == [FATIGUED_AD]
    assert found.iloc[0]["severity"] == "critical" and found.iloc[0]["frequency"] > 2.8


# anomalies


def _steady_campaign(as_of: dt.date, weeks: int = 8, spend: float = 100.0) -> pd.DataFrame:
    days = [as_of - dt.timedelta(days=k) for k in range(7 * weeks, -1, -1)]
    rng = np.random.default_rng(7)
    frame = _daily("c1", days, spend=spend * (1 + 0.1 * rng.standard_normal(len(days))))
    frame["impressions"] = 20_000.0
    frame["clicks"] = 200.0
    frame["conversions"] = 10.0
    frame["revenue"] = 300.0
    return frame


def test_anomaly_reports_how_far_and_since_when() -> None:
    frame = _steady_campaign(AS_OF)
    frame.loc[frame["date"] >= pd.Timestamp(AS_OF - dt.timedelta(days=2)), "spend"] = 400.0
    found = campaign_anomalies(frame, AS_OF)
    spend = found[found["metric"] == "spend"].iloc[0]
    assert spend["direction"] == "up" and spend["z"] > 10
    assert spend["since"] == AS_OF - dt.timedelta(days=2) and spend["days"] == 3
    assert set(found["metric"]) == {"spend", "cpa", "roas"}  # same conversions: CPA up, ROAS down; CTR held
    assert campaign_anomalies(_steady_campaign(AS_OF), AS_OF).empty


def test_anomaly_stays_silent_on_thin_data() -> None:
    # three weeks of history: too few same-weekday points for a baseline
    short = _steady_campaign(AS_OF, weeks=3)
    short.loc[short["date"] == pd.Timestamp(AS_OF), "spend"] = 1000.0
    assert campaign_anomalies(short, AS_OF).empty
    # a campaign spending a few cents a day is not judged
    tiny = _steady_campaign(AS_OF, spend=1.0)
    tiny.loc[tiny["date"] == pd.Timestamp(AS_OF), "spend"] = 10.0
    assert campaign_anomalies(tiny, AS_OF, min_spend=10.0).empty


@pytest.mark.parametrize("as_of", AS_OF_DAYS)
def test_anomaly_finds_the_planted_day_and_stays_quiet_otherwise(as_of: dt.date) -> None:
    _, daily, _ = stub_frames(as_of, days=130)
    assert campaign_anomalies(daily["campaign"], as_of).empty
    _, daily, _ = stub_frames(as_of, ALL_SCENARIOS, days=130)
    found = campaign_anomalies(daily["campaign"], as_of)
    spend = found[(found["entity_id"] == ANOMALOUS) & (found["metric"] == "spend")]
    assert len(spend) == 1 and spend.iloc[0]["direction"] == "up" and spend.iloc[0]["days"] == 1
    # the over-pacing campaign spends more on every day, which is no anomaly
    assert OVERPACING not in set(found["entity_id"])


def test_scenario_targets_are_the_documented_ones() -> None:
    _TARGETS.clear()  # budgets follow the stub's today, so earlier tests left targets of other days
    stub_frames(AS_OF, ALL_SCENARIOS, days=1)
    (targets,) = [t for key, t in _TARGETS.items() if key[1:4] == (6, 36, 6)]
    assert (targets.overpacing_campaign, targets.fatigue_ad, targets.anomaly_campaign) == (2, 25, 0)


def test_fatigue_from_the_store_sums_matches_the_daily_rows() -> None:
    _, daily, _ = stub_frames(AS_OF, ALL_SCENARIOS, days=14)
    con = duckdb.connect()
    frame = daily["ad"]
    con.register("frame", frame)
    con.execute(
        "CREATE TABLE meta_ad_insights AS SELECT 'ad' AS entity_type, entity_id, CAST(date AS DATE) AS date_start, "
        "spend, impressions, clicks, reach FROM frame"
    )
    now, before = fetch_ad_two_week_sums(con, AS_OF, 7)
    from_store = fatigue_from_week_sums(now, before)
    from_rows = creative_fatigue(frame, AS_OF)
    assert list(from_store["entity_id"]) == list(from_rows["entity_id"]) == [FATIGUED_AD]
    assert from_store.iloc[0]["frequency"] == pytest.approx(from_rows.iloc[0]["frequency"])


def test_nan_median_matches_numpy() -> None:
    from insights_core.manager.anomalies import nan_median

    rng = np.random.default_rng(3)
    values = rng.standard_normal((50, 7, 9))
    values[rng.random(values.shape) < 0.4] = np.nan
    values[0, :, 0] = np.nan  # an empty slice
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
        expected = np.nanmedian(values, axis=1)
    assert np.allclose(nan_median(values, axis=1), expected, equal_nan=True)
