"""Live breakdowns in process, real SDK against the emulator: every family and level sums to the
totals, reach stays as reported, refused families and old windows follow Meta's rules, faults
change nothing, and requests do not grow with the number of entities."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from graph_emulator import AccountShape, FaultRule, Faults, GraphEmulator, Malformation
from graph_emulator.breakdowns import months_back
from insights_core.errors import EntityError
from insights_core.levels import LEVELS
from insights_core.models import (
    BREAKDOWN_FAMILIES,
    BREAKDOWN_SOURCE_COLUMNS,
    BreakdownBatch,
    BreakdownFamily,
    DateWindow,
    Scope,
)
from insights_core.settings import Settings
from insights_core.sources.live import LiveSource
from insights_core.sources.live.api import start_report_run
from insights_core.sources.live.throttle import InvalidBreakdownError
from tests.live.helpers import SHAPE, FakeClock, entities_under, live_settings

WINDOW = DateWindow(dt.date(2026, 11, 1), dt.date(2026, 11, 7))
ADDITIVE = ("spend", "impressions", "clicks", "conversions", "revenue")
KEYS = ["entity_id", "date_start", "key_1", "key_2"]
FULL = Scope({}, is_full=True)


def fetch_breakdowns(
    settings: Settings,
    window: DateWindow = WINDOW,
    families: tuple[BreakdownFamily, ...] = BREAKDOWN_FAMILIES,
    scope: Scope = FULL,
    clock: FakeClock | None = None,
) -> tuple[list[BreakdownBatch], LiveSource]:
    source = LiveSource(settings, sleep=clock.sleep, clock=clock.now) if clock else LiveSource(settings)
    try:
        account = source.fetch_accounts()[0]
        batches = list(source.fetch_breakdowns(account, window, scope, families, "sync-1"))
    finally:
        source.close()
    return batches, source


def rows_of(batches: list[BreakdownBatch], level: str, family: str) -> pd.DataFrame:
    mine = [b.rows for b in batches if b.level == level and b.family == family]
    frame = pd.concat(mine, ignore_index=True)
    assert list(frame.columns) == list(BREAKDOWN_SOURCE_COLUMNS)
    frame["date_start"] = pd.to_datetime(frame["date_start"]).dt.date
    return frame


def failures_of(batches: list[BreakdownBatch], level: str, family: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for batch in batches:
        if batch.level == level and batch.family == family:
            found.update(batch.failures)
    return found


def assert_sums_equal_totals(rows: pd.DataFrame, totals: pd.DataFrame, without: set[str] = frozenset()) -> None:
    """For every entity and day of the totals, the segments' additive metrics add up to them, to the cent."""
    totals = totals[~totals["entity_id"].isin(without)]
    sums = rows.groupby(["entity_id", "date_start"], as_index=False)[list(ADDITIVE)].sum()
    merged = totals.merge(sums, on=["entity_id", "date_start"], how="outer", suffixes=("_total", "_segments"))
    assert not merged.isna().any().any(), merged[merged.isna().any(axis=1)].head()
    for metric in ADDITIVE:
        diff = (merged[f"{metric}_total"].astype(float) - merged[f"{metric}_segments"].astype(float)).abs()
        assert (diff < 0.005).all(), merged.loc[diff >= 0.005, ["entity_id", "date_start", f"{metric}_total"]].head()


def assert_equals_segment_truth(rows: pd.DataFrame, truth: pd.DataFrame, reach: bool = True) -> None:
    """Same segments (no duplicate keys), same metrics to the cent, and reach as the emulator reported it."""
    assert not rows.duplicated(KEYS).any(), rows[rows.duplicated(KEYS, keep=False)].head()
    merged = truth.merge(rows, on=KEYS, how="outer", suffixes=("_truth", "_got"), indicator=True)
    assert (merged["_merge"] == "both").all(), merged.loc[merged["_merge"] != "both", [*KEYS, "_merge"]].head()
    for metric in ADDITIVE:
        diff = (merged[f"{metric}_truth"].astype(float) - merged[f"{metric}_got"].astype(float)).abs()
        assert (diff < 0.005).all(), metric
    if reach:
        assert (merged["reach_truth"].astype("int64") == merged["reach_got"].astype("int64")).all()


@pytest.mark.parametrize("family", BREAKDOWN_FAMILIES)
def test_each_family_at_every_level_equals_the_truth_and_sums_to_the_totals(
    tmp_path: Path, emulator: GraphEmulator, family: BreakdownFamily
) -> None:
    batches, source = fetch_breakdowns(live_settings(tmp_path, emulator, insights_page_size=40), families=(family,))
    assert {b.level for b in batches} == set(LEVELS) and {b.family for b in batches} == {family}
    for level in LEVELS:
        assert failures_of(batches, level, family) == {}
        rows = rows_of(batches, level, family)
        assert set(rows["breakdown"]) == {family} and set(rows["entity_type"]) == {level}
        assert_equals_segment_truth(rows, emulator.breakdown_truth(level, family, WINDOW.since, WINDOW.until))
        assert_sums_equal_totals(rows, emulator.ground_truth(level, WINDOW.since, WINDOW.until))
        if family in ("country", "device_platform"):
            assert set(rows["key_2"]) == {""}
    # one report run per level (the window fits one run), whatever the number of entities
    assert [r.level for r in emulator.report_runs] == list(LEVELS)
    assert all(r.params.get("breakdowns") for r in emulator.report_runs)


def test_unknown_segments_are_kept_as_sent_and_reach_is_never_summed(tmp_path: Path, emulator: GraphEmulator) -> None:
    batches, _ = fetch_breakdowns(live_settings(tmp_path, emulator))
    unknown = {"age_gender": ("Unknown", "unknown"), "country": ("unknown", ""), "placement": ("unknown", "unknown")}
    unknown["device_platform"] = ("unknown", "")
    for family, key in unknown.items():
        for level in LEVELS:
            rows = rows_of(batches, level, family)
            truth = emulator.breakdown_truth(level, family, WINDOW.since, WINDOW.until)
            expected = truth[(truth["key_1"] == key[0]) & (truth["key_2"] == key[1])]
            got = rows[(rows["key_1"] == key[0]) & (rows["key_2"] == key[1])]
            assert len(expected) > 0 and len(got) == len(expected), (family, level)
            # reach per segment is what Meta reported; its sum is not the entity's de-duplicated reach
            totals = emulator.ground_truth(level, WINDOW.since, WINDOW.until)
            summed = rows.groupby(["entity_id", "date_start"], as_index=False)["reach"].sum()
            merged = totals.merge(summed, on=["entity_id", "date_start"], suffixes=("_entity", "_segments"))
            assert (merged["reach_entity"] != merged["reach_segments"]).mean() > 0.9, (family, level)


def test_a_family_meta_refuses_fails_alone_with_a_clear_reason(tmp_path: Path) -> None:
    with GraphEmulator(SHAPE, faults=Faults(refused_breakdowns=frozenset({"country"}))) as emulator:
        settings = live_settings(tmp_path, emulator, report_max_days=3)
        batches, _ = fetch_breakdowns(settings)
        for level in LEVELS:
            failures = failures_of(batches, level, "country")
            assert set(failures) == {e["id"] for e in emulator.account.entities[level]}
            reason = next(iter(failures.values()))
            assert "country breakdowns (country) not collected" in reason and "1504041" in reason
            assert "\n" not in reason
            assert rows_of(batches, level, "country").empty
            for family in ("age_gender", "placement", "device_platform"):
                assert failures_of(batches, level, family) == {}
                assert_sums_equal_totals(
                    rows_of(batches, level, family), emulator.ground_truth(level, WINDOW.since, WINDOW.until)
                )
        # refused once, then not asked again for the other levels and windows
        refused = [r for r in emulator.report_runs if r.params.get("breakdowns") == '["country"]']
        assert refused == [] and emulator.requests["report_start"] == 1 + 3 * 3 * 3


def test_an_invalid_combination_is_told_apart_from_other_errors(tmp_path: Path, emulator: GraphEmulator) -> None:
    source = LiveSource(live_settings(tmp_path, emulator))
    params = {
        "level": "ad",
        "time_range": {"since": "2026-11-01", "until": "2026-11-02"},
        "time_increment": 1,
        "fields": ["ad_id", "spend"],
    }
    try:
        with pytest.raises(InvalidBreakdownError, match="combination of breakdowns.*subcode 1504041"):
            start_report_run(source.api, emulator.account.account_id, {**params, "breakdowns": ["age", "country"]})
        with pytest.raises(InvalidBreakdownError):  # needs an opt-in since August 2026
            start_report_run(source.api, emulator.account.account_id, {**params, "breakdowns": ["impression_device"]})
        with pytest.raises(EntityError) as other:
            start_report_run(source.api, emulator.account.account_id, {**params, "time_increment": 7})
        assert not isinstance(other.value, InvalidBreakdownError)
    finally:
        source.close()


@pytest.mark.parametrize("months", [12, 14])
def test_reach_is_left_null_when_meta_omits_it_over_13_months_back(
    tmp_path: Path, emulator: GraphEmulator, months: int
) -> None:
    emulator.today = months_back(WINDOW.since, -months) + dt.timedelta(days=1)  # `months` later
    omitted = WINDOW.since < months_back(emulator.today, 13)
    assert omitted == (months == 14)
    batches, _ = fetch_breakdowns(live_settings(tmp_path, emulator), families=("age_gender",))
    for level in LEVELS:
        rows = rows_of(batches, level, "age_gender")
        truth = emulator.breakdown_truth(level, "age_gender", WINDOW.since, WINDOW.until)
        assert_equals_segment_truth(rows, truth, reach=not omitted)
        assert_sums_equal_totals(rows, emulator.ground_truth(level, WINDOW.since, WINDOW.until))
        if omitted:
            assert rows["reach"].isna().all()  # never invented, never 0
        else:
            assert rows["reach"].notna().all()


def test_a_malformed_segment_fails_its_entity_and_drops_its_whole_day(tmp_path: Path) -> None:
    ads = GraphEmulator(SHAPE).account.ids["ad"]
    bad_day = WINDOW.since + dt.timedelta(days=2)
    broken = {
        ads[0]: (
            "missing_breakdown_key",
            {"placement": "publisher_platform is missing", "age_gender": "age is missing"},
        ),
        ads[4]: ("spend_text", {"placement": "spend is '12,50 USD'", "age_gender": "spend is '12,50 USD'"}),
        ads[6]: ("breakdown_key_not_text", {"placement": "publisher_platform is {", "age_gender": "age is {"}),
    }
    faults = Faults(malformed=[Malformation("ad", ad, bad_day, kind) for ad, (kind, _) in broken.items()])
    with GraphEmulator(SHAPE, faults=faults) as emulator:
        batches, _ = fetch_breakdowns(live_settings(tmp_path, emulator), families=("placement", "age_gender"))
        totals = emulator.ground_truth("ad", WINDOW.since, WINDOW.until)
        delivered = set(totals.loc[totals["date_start"] == bad_day, "entity_id"])
        bad = set(broken) & delivered
        assert bad, "the shape must have a broken ad that delivered that day"
        for family in ("placement", "age_gender"):
            failures = failures_of(batches, "ad", family)
            assert set(failures) == bad
            for ad in bad:
                assert broken[ad][1][family] in failures[ad] and str(bad_day) in failures[ad]
                assert "\n" not in failures[ad]
            rows = rows_of(batches, "ad", family)
            assert rows[rows["entity_id"].isin(bad) & (rows["date_start"] == bad_day)].empty
            kept = totals[~(totals["entity_id"].isin(bad) & (totals["date_start"] == bad_day))]
            assert_sums_equal_totals(rows, kept)


def test_a_fault_storm_still_yields_exact_sums(tmp_path: Path) -> None:
    faults = Faults(
        rules=[
            FaultRule("throttle", every=4, regain_minutes=2),
            FaultRule("transient", every=7, code=2, subcode=None, http_status=500),
        ],
        job_failed_first=2,
        job_skipped_first=2,
        too_large_over_days=3,
        usage_pct=90,
    )
    clock = FakeClock()
    with GraphEmulator(SHAPE, faults=faults) as emulator:
        settings = live_settings(tmp_path, emulator, insights_page_size=30, max_retries=8)
        batches, source = fetch_breakdowns(settings, clock=clock)
        for level in LEVELS:
            for family in BREAKDOWN_FAMILIES:
                assert failures_of(batches, level, family) == {}, (level, family)
                rows = rows_of(batches, level, family)
                assert_equals_segment_truth(rows, emulator.breakdown_truth(level, family, WINDOW.since, WINDOW.until))
                assert_sums_equal_totals(rows, emulator.ground_truth(level, WINDOW.since, WINDOW.until))
        assert source.stats.rate_limit_hits > 0 and source.stats.retries > source.stats.rate_limit_hits
        assert max(clock.sleeps) >= 120  # Meta's estimated_time_to_regain_access was waited out
        assert min(r.days for r in emulator.report_runs if r.outcome == "completed") <= 3  # split


def request_counts(tmp_path: Path, shape: AccountShape, families: tuple[BreakdownFamily, ...]) -> dict[str, int]:
    with GraphEmulator(shape) as emulator:
        settings = live_settings(tmp_path / f"{shape.campaigns}", emulator, insights_page_size=5000)
        source = LiveSource(settings)
        try:
            account = source.fetch_accounts()[0]
            source.fetch_entities(account)
            emulator.reset_counts()
            batches = list(source.fetch_breakdowns(account, WINDOW, FULL, families, "sync-1"))
        finally:
            source.close()
        assert sum(len(b.rows) for b in batches) > 0 and not any(b.failures for b in batches)
        return dict(emulator.requests)


def test_requests_stay_flat_in_the_number_of_entities(tmp_path: Path) -> None:
    """Report runs and polls do not depend on entities; pages grow with rows only (here one page per run)."""
    small = request_counts(tmp_path, AccountShape(1, 2, 2), BREAKDOWN_FAMILIES)
    large = request_counts(tmp_path, AccountShape(8, 3, 2), BREAKDOWN_FAMILIES)  # 12x the entities
    assert small == large
    assert small["report_start"] == small["report_page"] == len(LEVELS) * len(BREAKDOWN_FAMILIES)


def test_a_scoped_read_keeps_to_the_scope_with_account_level_reports(tmp_path: Path, emulator: GraphEmulator) -> None:
    campaign = emulator.account.ids["campaign"][0]
    ids = entities_under(emulator, campaign)
    scope = Scope({level: frozenset(ids[level]) for level in LEVELS}, is_full=False)
    batches, _ = fetch_breakdowns(live_settings(tmp_path, emulator), families=("device_platform",), scope=scope)
    for level in LEVELS:
        rows = rows_of(batches, level, "device_platform")
        assert set(rows["entity_id"]) <= ids[level]
        totals = emulator.ground_truth(level, WINDOW.since, WINDOW.until)
        assert_sums_equal_totals(rows, totals[totals["entity_id"].isin(ids[level])])
    assert emulator.requests["report_start"] == len(LEVELS)
    assert all(f'"{r.level}.id"' in r.params["filtering"] for r in emulator.report_runs)
