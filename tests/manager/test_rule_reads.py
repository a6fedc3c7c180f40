"""The rules' cheaper reads give each detector what its own query gave: fatigue's two weeks from one
GROUP BY, the performance sums from the campaign rows the other rules read, ad sets read only when
one has a budget; and every rule on a synced store finds what the detectors find on per-rule reads."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from insights_core.dashboard.alerts import performance_alerts
from insights_core.engine import run_sync
from insights_core.manager import reads
from insights_core.manager.anomalies import campaign_anomalies
from insights_core.manager.fatigue import FatigueThresholds, fatigue_from_week_sums
from insights_core.manager.pacing import budget_pacing, pacing_since
from insights_core.manager.rules import (
    anomaly_findings,
    campaign_period_sums,
    evaluate_rules,
    pacing_findings,
)
from insights_core.models import ADDITIVE_METRICS, SyncRequest
from insights_core.settings import Settings
from insights_core.sources.stub import StubSource
from insights_core.store import queries
from insights_core.store.warehouse import Warehouse
from tests.helpers import SMALL_SHAPE, make_settings
from tests.manager.stub_frames import ALL_SCENARIOS, AS_OF_DAYS, stub_frames

NOW = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)


def _synced(data_dir: Path) -> tuple[Settings, Warehouse]:
    settings = make_settings(data_dir, **SMALL_SHAPE, stub_scenarios=ALL_SCENARIOS, breakdowns=())
    warehouse = Warehouse(settings.db_path, settings.duckdb_memory_limit)
    report = run_sync(
        SyncRequest(days_back=70, force=True),
        source=StubSource.from_settings(settings),
        warehouse=warehouse,
        settings=settings,
    )
    assert report.success, report.errors
    return settings, warehouse


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, duckdb.DuckDBPyConnection]]:
    settings, warehouse = _synced(tmp_path_factory.mktemp("rules") / "data")
    yield settings, warehouse.con.cursor()
    warehouse.close()


def _ad_table(frame: pd.DataFrame) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.register("frame", frame)
    con.execute(
        "CREATE TABLE meta_ad_insights AS SELECT 'ad' AS entity_type, entity_id, CAST(date AS DATE) AS date_start, "
        "spend, impressions, clicks, reach FROM frame"
    )
    return con


def _pandas_week(frame: pd.DataFrame, start: dt.date, end: dt.date) -> pd.DataFrame:
    week = frame[(frame["date"] >= pd.Timestamp(start)) & (frame["date"] <= pd.Timestamp(end))].copy()
    week["freq_x_impr"] = [i * i / r if r > 0 else 0.0 for i, r in zip(week["impressions"], week["reach"])]
    return week.groupby("entity_id")[["spend", "impressions", "clicks", "freq_x_impr"]].sum().sort_index()


@pytest.mark.parametrize("as_of", AS_OF_DAYS)
def test_two_week_sums_in_one_query_equal_the_pandas_sums(as_of: dt.date) -> None:
    _, daily, _ = stub_frames(as_of, ALL_SCENARIOS, days=16)
    frame = daily["ad"]
    split = pd.Timestamp(as_of - dt.timedelta(days=7))
    both = set(frame.loc[frame["date"] <= split, "entity_id"]) & set(frame.loc[frame["date"] > split, "entity_id"])
    ids = sorted(both)
    # one ad only ran last week, one only the week before, one had no reach on some days
    frame = frame[~((frame["entity_id"] == ids[0]) & (frame["date"] <= split))]
    frame = frame[~((frame["entity_id"] == ids[1]) & (frame["date"] > split))]
    frame = frame.copy()
    frame.loc[(frame["entity_id"] == ids[2]) & (frame.index % 2 == 0), "reach"] = 0.0
    now, before = reads.fetch_ad_two_week_sums(_ad_table(frame), as_of, 7)
    expected_now = _pandas_week(frame, as_of - dt.timedelta(days=6), as_of)
    expected_before = _pandas_week(frame, as_of - dt.timedelta(days=13), as_of - dt.timedelta(days=7))
    assert ids[0] in now.index and ids[0] not in before.index
    assert ids[1] in before.index and ids[1] not in now.index
    pd.testing.assert_frame_equal(now.sort_index(), expected_now, check_names=False, check_dtype=False)
    pd.testing.assert_frame_equal(before.sort_index(), expected_before, check_names=False, check_dtype=False)


@pytest.mark.parametrize("as_of", AS_OF_DAYS)
def test_the_frequency_gate_keeps_every_ad_the_detector_looks_at(as_of: dt.date) -> None:
    _, daily, _ = stub_frames(as_of, ALL_SCENARIOS, days=14)
    con = _ad_table(daily["ad"])
    now, before = reads.fetch_ad_two_week_sums(con, as_of, 7)
    frequency = now["freq_x_impr"] / now["impressions"]
    for gate in (1.0, float(frequency.median()), 2.2, float(frequency.max())):
        gated_now, gated_before = reads.fetch_ad_two_week_sums(con, as_of, 7, gate)
        assert set(gated_now.index) == set(frequency[frequency >= gate - 1e-9].index)  # an ad exactly at it stays
        assert set(gated_before.index) == set(gated_now.index) & set(before.index)
        thresholds = FatigueThresholds(frequency=(gate, max(gate, 2.8)), min_spend=0.0)
        pd.testing.assert_frame_equal(
            fatigue_from_week_sums(gated_now, gated_before, thresholds),
            fatigue_from_week_sums(now, before, thresholds),
        )
    assert len(reads.fetch_ad_two_week_sums(con, as_of, 7, 2.2)[0]) < len(now)  # the gate leaves most ads out


def test_two_week_sums_of_an_empty_store_are_empty() -> None:
    _, daily, _ = stub_frames(AS_OF_DAYS[0], days=14)
    now, before = reads.fetch_ad_two_week_sums(_ad_table(daily["ad"]), AS_OF_DAYS[0] + dt.timedelta(days=30), 7)
    assert now.empty and before.empty
    assert list(now.columns) == list(before.columns) == ["spend", "impressions", "clicks", "freq_x_impr"]


@pytest.mark.parametrize(
    "period, previous",
    [((-6, 0), (-13, -7)), ((0, 0), (-28, -1)), ((-13, 0), (-20, -7)), ((1, 7), (-6, 0)), ((-6, 0), (-400, -373))],
    ids=["last-week", "one-day-vs-four-weeks", "overlapping", "current-period-empty", "previous-before-history"],
)
def test_campaign_period_sums_equal_the_overview_query(
    store: tuple[Settings, duckdb.DuckDBPyConnection], period: tuple[int, int], previous: tuple[int, int]
) -> None:
    _, con = store
    as_of = reads.fetch_last_day(con)
    assert as_of is not None
    since, until, prev_since, prev_until = (as_of + dt.timedelta(days=d) for d in (*period, *previous))
    daily = reads.fetch_daily(con, "campaign", min(since, prev_since), max(until, prev_until))
    ours = campaign_period_sums(daily, reads.fetch_entities(con, "campaign"), since, until, prev_since, prev_until)
    query = queries.fetch_campaign_summary(con, since, until, prev_since, prev_until)
    assert not query.empty
    columns = ["campaign_id", "name", *ADDITIVE_METRICS, *(f"prev_{m}" for m in ADDITIVE_METRICS)]
    pd.testing.assert_frame_equal(ours[columns], query[columns], check_dtype=False)
    assert performance_alerts(ours) == performance_alerts(query)


def test_every_rule_finds_what_the_detectors_find_on_their_own_reads(
    store: tuple[Settings, duckdb.DuckDBPyConnection],
) -> None:
    settings, con = store
    as_of = reads.fetch_last_day(con)
    assert as_of is not None
    evaluation = evaluate_rules(con, settings, NOW)
    assert not evaluation.errors
    by_rule: dict[str, list[tuple[str, str]]] = {}
    for f in evaluation.findings:
        by_rule.setdefault(f.rule, []).append((f.key, f.message))
    assert {"pacing", "fatigue", "anomaly"} <= set(by_rule)

    campaigns = reads.fetch_entities(con, "campaign")
    names = campaigns.set_index("entity_id")["name"]
    expected = []
    for level in ("campaign", "adset"):
        entities = reads.fetch_entities(con, level)
        daily = reads.fetch_daily(con, level, pacing_since(entities, as_of), as_of)
        pacing = budget_pacing(entities, daily, as_of, settings.pacing_tolerance_percent)
        expected += pacing_findings(pacing, level, entities.set_index("entity_id")["name"])
    assert sorted(by_rule["pacing"]) == sorted((f.key, f.message) for f in expected)

    weeks = settings.anomaly_baseline_weeks
    daily = reads.fetch_daily(con, "campaign", as_of - dt.timedelta(days=21 * weeks), as_of)
    found = campaign_anomalies(daily, as_of, settings.anomaly_z, weeks, settings.anomaly_min_spend)
    assert sorted(by_rule["anomaly"]) == sorted((f.key, f.message) for f in anomaly_findings(found, names))

    since = as_of - dt.timedelta(days=6)
    summary = queries.fetch_campaign_summary(
        con, since, as_of, since - dt.timedelta(days=7), since - dt.timedelta(days=1)
    )
    expected_codes = {f"performance:{a.code}:{a.campaign_id or 'account'}" for a in performance_alerts(summary)}
    assert {key for key, _ in by_rule.get("performance", [])} == expected_codes


def test_ad_sets_are_paced_once_one_has_a_budget(tmp_path: Path) -> None:
    settings, warehouse = _synced(tmp_path / "data")
    try:
        con = warehouse.con.cursor()
        assert reads.fetch_has_budget(con, "campaign") and reads.fetch_has_budget(con, "adset")
        assert not reads.fetch_has_budget(con, "ad")
        con.execute("UPDATE adsets SET daily_budget = NULL, lifetime_budget = NULL")  # budgets on campaigns only
        assert not reads.fetch_has_budget(con, "adset")
        assert not [f for f in evaluate_rules(con, settings, NOW).findings if f.entity_type == "adset"]
        as_of = reads.fetch_last_day(con)
        assert as_of is not None
        spent = reads.fetch_daily(con, "adset", as_of - dt.timedelta(days=2), as_of)
        adset_id = str(spent.groupby("entity_id")["spend"].sum().idxmax())
        con.execute("UPDATE adsets SET daily_budget = 0.01, effective_status = 'ACTIVE' WHERE adset_id = ?", [adset_id])
        assert reads.fetch_has_budget(con, "adset")
        found = [f for f in evaluate_rules(con, settings, NOW).findings if f.entity_type == "adset"]
        assert [(f.rule, f.entity_id) for f in found] == [("pacing", adset_id)]
        assert found[0].key.startswith(f"pacing:adset:{adset_id}:over:")
    finally:
        warehouse.close()
