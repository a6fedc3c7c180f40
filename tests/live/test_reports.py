"""Live source in process, real SDK against the emulator: report runs, paging, scope and every fault class."""

from __future__ import annotations

import datetime as dt
import math
from fractions import Fraction
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pytest
from facebook_business.crashreporter import CrashReporter

from graph_emulator import HARMLESS_MALFORMATIONS, MALFORMATIONS, FaultRule, GraphEmulator, Malformation
from insights_core.engine import run_sync
from insights_core.levels import LEVELS
from insights_core.models import DateWindow, Scope, SyncReport, SyncRequest
from insights_core.settings import Settings
from insights_core.sources.live import LiveSource
from insights_core.sources.live.reports import MAX_FILTER_IDS, ReportChunk, plan_chunks, scope_filters, split_chunk
from insights_core.store.warehouse import Warehouse
from tests.live.helpers import (
    TOKEN,
    FakeClock,
    assert_equals_truth,
    entities_under,
    live_settings,
    stored_rows,
    window_of,
)

DAY = dt.date(2026, 11, 10)


def live_sync(
    settings: Settings,
    request: SyncRequest = SyncRequest(days_back=10),
    clock: FakeClock | None = None,
    progress: list | None = None,
) -> tuple[SyncReport, LiveSource]:
    source = LiveSource(settings, sleep=clock.sleep, clock=clock.now) if clock else LiveSource(settings)
    warehouse = Warehouse(settings.db_path)
    try:
        report = run_sync(
            request,
            source=source,
            warehouse=warehouse,
            settings=settings,
            on_progress=progress.append if progress is not None else None,
        )
    finally:
        warehouse.close()
        source.close()
    return report, source


def check_all_levels(
    settings: Settings, emulator: GraphEmulator, report: SyncReport, without: dict[str, set[str]] | None = None
) -> None:
    since, until = window_of(report.to_dict())
    for level in LEVELS:
        assert_equals_truth(
            stored_rows(settings.db_path, level),
            emulator.ground_truth(level, since, until),
            without=(without or {}).get(level, set()),
        )


def test_plan_chunks_cuts_long_windows_and_shares_add_up() -> None:
    chunks = plan_chunks(["campaign", "ad"], DateWindow(dt.date(2026, 1, 1), dt.date(2026, 3, 11)), max_days=31)
    windows = sorted({(c.window.since, c.window.days) for c in chunks})
    assert windows == [(dt.date(2026, 1, 1), 31), (dt.date(2026, 2, 1), 31), (dt.date(2026, 3, 4), 8)]
    assert sum(c.share for c in chunks if c.level == "ad") == 1


@pytest.mark.parametrize(
    ("days", "campaign_ids", "expected"),
    [
        (5, None, [((DAY, 2), None), ((DAY + dt.timedelta(days=2), 3), None)]),
        (2, ("c1",), [((DAY, 1), ("c1",)), ((DAY + dt.timedelta(days=1), 1), ("c1",))]),
        (1, None, [((DAY, 1), ("c1", "c2")), ((DAY, 1), ("c3", "c4", "c5"))]),
        (1, ("c1", "c2"), [((DAY, 1), ("c1",)), ((DAY, 1), ("c2",))]),
        (1, ("c3",), []),
    ],
)
def test_split_chunk_halves_the_window_then_the_campaigns(
    days: int, campaign_ids: tuple | None, expected: list
) -> None:
    chunk = ReportChunk("ad", DateWindow(DAY, DAY + dt.timedelta(days=days - 1)), campaign_ids, Fraction(1, 2))
    parts = split_chunk(chunk, ["c1", "c2", "c3", "c4", "c5"])
    assert [((p.window.since, p.window.days), p.campaign_ids) for p in parts] == expected
    if parts:
        assert sum(p.share for p in parts) == Fraction(1, 2)


def test_scope_filters_use_ids_or_their_campaigns() -> None:
    full = Scope({}, is_full=True)
    assert scope_filters("ad", full, {}) == []
    few = Scope(
        {"campaign": frozenset({"c1"}), "adset": frozenset({"s1"}), "ad": frozenset({"a2", "a1"})}, is_full=False
    )
    assert scope_filters("ad", few, {}) == [{"field": "ad.id", "operator": "IN", "value": ["a1", "a2"]}]
    many_ads = {f"a{i}" for i in range(MAX_FILTER_IDS + 1)}
    many = Scope({"campaign": frozenset({"c1", "c2"}), "ad": frozenset(many_ads)}, is_full=False)
    campaign_of = {a: ("c1" if i % 2 else "c2") for i, a in enumerate(sorted(many_ads))}
    assert scope_filters("ad", many, campaign_of) == [{"field": "campaign.id", "operator": "IN", "value": ["c1", "c2"]}]


def test_full_sync_equals_the_truth_at_every_level_deleted_and_archived_included(
    tmp_path: Path, emulator: GraphEmulator
) -> None:
    settings = live_settings(tmp_path / "data", emulator, insights_page_size=7)
    progress: list[dict] = []
    report, source = live_sync(settings, progress=progress)
    assert report.success and report.errors == [] and report.mode == "live"
    assert (report.campaigns.processed, report.adsets.processed, report.ads.processed) == (4, 12, 24)
    check_all_levels(settings, emulator, report)
    since, until = window_of(report.to_dict())
    for level in LEVELS:  # the non-additive columns are stored as reported, too
        assert_equals_truth(
            stored_rows(settings.db_path, level),
            emulator.ground_truth(level, since, until),
            columns=("reach", "unique_clicks"),
        )
    statuses = {e["id"]: e["effective_status"] for lvl in LEVELS for e in emulator.account.entities[lvl]}
    stored_ids = set().union(*(stored_rows(settings.db_path, lvl)["entity_id"] for lvl in LEVELS))
    assert {"ARCHIVED", "DELETED"} <= {statuses[i] for i in stored_ids}
    with duckdb.connect(str(settings.db_path), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM campaigns WHERE status = 'DELETED'").fetchone()[0] == 1
        assert con.execute("SELECT count(*) FROM ads").fetchone()[0] == 24
        adset = con.execute(
            "SELECT age_min, age_max, genders, countries, placements FROM adsets WHERE adset_id = '238520000000000002'"
        ).fetchone()
        account = con.execute("SELECT timezone_name, currency FROM ad_accounts").fetchone()
    assert adset == (25, 44, "female", "US,CA", "facebook_feed,instagram_stream,instagram_story")
    assert account == ("America/Los_Angeles", "USD")
    # every run was polled until "Job Completed", past the "Job Running" at 100 % before it
    assert all(run.polls >= emulator.polls_to_complete for run in emulator.report_runs)
    assert all(
        run.params["time_increment"] == "1" and run.params["use_unified_attribution_setting"] == "true"
        for run in emulator.report_runs
    )
    assert any("report" in p["message"] and "%" in p["message"] for p in progress)
    assert report.api_requests == emulator.total_requests == source.stats.api_requests
    assert CrashReporter.reporter_instance is None  # crash_log=False: no excepthook posting to Meta


def test_requests_grow_with_result_pages_not_with_entities(tmp_path: Path, emulator: GraphEmulator) -> None:
    counts = {}
    for page_size in (5, 50):
        emulator.reset_counts()
        settings = live_settings(
            tmp_path / f"data{page_size}", emulator, insights_page_size=page_size, INSIGHTS_BREAKDOWNS=""
        )  # the totals' requests (tests/live/test_breakdowns.py counts the breakdowns')
        report, _ = live_sync(settings)
        since, until = window_of(report.to_dict())
        rows = {lvl: len(emulator.ground_truth(lvl, since, until)) for lvl in LEVELS}
        entities = {lvl: len(emulator.account.entities[lvl]) for lvl in LEVELS}
        assert emulator.requests["report_page"] == sum(math.ceil(n / page_size) for n in rows.values())
        assert emulator.requests["entities"] == sum(math.ceil(n / page_size) for n in entities.values())
        assert emulator.requests["report_start"] == 3
        assert emulator.requests["report_status"] == 3 * emulator.polls_to_complete
        assert emulator.requests["entity_insights"] == 0
        counts[page_size] = report.api_requests
    assert counts[50] < counts[5] < 40 + sum(rows.values()) / 5 + 3


def test_a_campaign_scope_reads_only_its_tree_through_filters(tmp_path: Path, emulator: GraphEmulator) -> None:
    campaign = emulator.account.ids["campaign"][0]
    settings = live_settings(tmp_path / "data", emulator)
    report, _ = live_sync(settings, SyncRequest(days_back=10, entity_type="campaign", entity_ids=(campaign,)))
    assert report.success, report.errors
    tree = entities_under(emulator, campaign)
    assert (report.campaigns.processed, report.adsets.processed, report.ads.processed) == (1, 3, 6)
    since, until = window_of(report.to_dict())
    for level in LEVELS:
        truth = emulator.ground_truth(level, since, until)
        assert_equals_truth(stored_rows(settings.db_path, level), truth[truth["entity_id"].isin(tree[level])])
    filters = {run.level: run.filtering for run in emulator.report_runs}
    assert {"field": "campaign.id", "operator": "IN", "value": [campaign]} in filters["campaign"]
    assert {"field": "ad.id", "operator": "IN", "value": sorted(tree["ad"])} in filters["ad"]


def test_throttling_waits_what_meta_announces_then_the_sync_succeeds(tmp_path: Path, emulator: GraphEmulator) -> None:
    rule = FaultRule("throttle", every=4, code=80000, regain_minutes=2)
    emulator.faults.rules.append(rule)
    clock = FakeClock()
    settings = live_settings(tmp_path / "data", emulator, rate_limit_retry_delay=30)
    report, source = live_sync(settings, clock=clock)
    assert report.success and report.errors == []
    assert rule.hits >= 5 and report.rate_limit_hits == rule.hits
    assert sum(1 for s in clock.sleeps if s >= 120) >= rule.hits  # never less than estimated_time_to_regain_access
    check_all_levels(settings, emulator, report)


@pytest.mark.parametrize("code", [4, 17, 32, 613, 80004])
def test_every_throttling_code_is_retried(tmp_path: Path, emulator: GraphEmulator, code: int) -> None:
    emulator.faults.rules.append(FaultRule("throttle", every=3, code=code, subcode=None))
    report, _ = live_sync(live_settings(tmp_path / "data", emulator), clock=FakeClock())
    assert report.success and report.errors == [] and report.rate_limit_hits > 0


def test_high_usage_slows_requests_down_before_meta_blocks(tmp_path: Path, emulator: GraphEmulator) -> None:
    emulator.faults.usage_pct = 90
    clock = FakeClock()
    report, source = live_sync(live_settings(tmp_path / "data", emulator, rate_limit_retry_delay=60), clock=clock)
    assert report.success and report.rate_limit_hits == 0
    paced = [s for s in clock.sleeps if s >= 39]  # 60 s x (90 - 80) / 15 = 40 s before each next request
    assert len(paced) == report.api_requests - 1
    assert source.stats.throttle_wait_seconds >= 40 * (report.api_requests - 1) - 1


def test_transient_errors_are_retried_with_backoff(tmp_path: Path, emulator: GraphEmulator) -> None:
    emulator.faults.rules += [
        FaultRule("transient", every=3, http_status=500),
        FaultRule("transient", every=7, http_status=503, endpoint="report_page"),
    ]
    settings = live_settings(tmp_path / "data", emulator, insights_page_size=10)
    report, source = live_sync(settings)
    assert report.success and report.errors == [], report.errors
    assert source.stats.retries == sum(r.hits for r in emulator.faults.rules) > 5
    check_all_levels(settings, emulator, report)


def test_failed_jobs_are_split_and_skipped_jobs_resubmitted(tmp_path: Path, emulator: GraphEmulator) -> None:
    emulator.faults.job_failed_first = 2
    emulator.faults.job_skipped_first = 2
    settings = live_settings(tmp_path / "data", emulator)
    report, _ = live_sync(settings)
    assert report.success and report.errors == []
    outcomes = [(run.outcome, run.level, run.days) for run in emulator.report_runs]
    assert [o for o, _, _ in outcomes[:4]] == ["failed", "failed", "skipped", "skipped"]
    failed_levels = {level for o, level, _ in outcomes[:2]}
    assert all(any(lvl == level and days == 5 for _, lvl, days in outcomes) for level in failed_levels)
    check_all_levels(settings, emulator, report)


def test_too_much_data_splits_the_window(tmp_path: Path, emulator: GraphEmulator) -> None:
    emulator.faults.too_large_over_days = 3
    settings = live_settings(tmp_path / "data", emulator)
    report, _ = live_sync(settings)
    assert report.success and report.errors == []
    assert max(run.days for run in emulator.report_runs) <= 3
    check_all_levels(settings, emulator, report)


def test_a_campaign_that_always_fails_is_reported_per_entity_and_the_rest_is_stored(
    tmp_path: Path, emulator: GraphEmulator
) -> None:
    broken = emulator.account.ids["campaign"][0]
    emulator.faults.failing_campaigns = frozenset({broken})
    settings = live_settings(tmp_path / "data", emulator)
    report, _ = live_sync(settings, SyncRequest(days_back=4))
    tree = entities_under(emulator, broken)
    assert (report.campaigns.errors, report.adsets.errors, report.ads.errors) == (1, 3, 6)
    assert report.success and len(report.errors) == 10
    assert all("Job Failed" in e and "even for one day and one campaign" in e for e in report.errors)
    assert {e.split(":")[0].split()[1] for e in report.errors} == set().union(*tree.values())
    check_all_levels(settings, emulator, report, without=tree)
    for level in LEVELS:
        assert not stored_rows(settings.db_path, level)["entity_id"].isin(tree[level]).any()
    single = [
        run
        for run in emulator.report_runs
        if run.days == 1
        and run.filtering
        and {"field": "campaign.id", "operator": "IN", "value": [broken]} in run.filtering
    ]
    assert {run.level for run in single} == set(LEVELS)


def test_when_retries_run_out_the_entities_of_the_report_fail_precisely(
    tmp_path: Path, emulator: GraphEmulator
) -> None:
    emulator.faults.rules.append(FaultRule("transient", endpoint="report_page", http_status=500))
    report, source = live_sync(live_settings(tmp_path / "data", emulator, max_retries=2, INSIGHTS_BREAKDOWNS=""))
    assert (report.campaigns.errors, report.adsets.errors, report.ads.errors) == (4, 12, 24)
    assert report.errors[0] == "40 of 40 entities failed (more than 50%); nothing was read"
    assert len(report.errors) == 41
    assert all(
        "reading the report failed: Meta answered with a temporary error and retries ran out" in e
        for e in report.errors[1:]
    )
    assert not report.success and report.rows_read == 0
    assert emulator.requests["report_page"] == 3 * 3  # one try and two retries per level


@pytest.mark.parametrize("kind", sorted(MALFORMATIONS))
def test_malformed_values_fail_their_entity_or_read_as_the_truth(
    tmp_path: Path, emulator: GraphEmulator, kind: str
) -> None:
    settings = live_settings(tmp_path / "data", emulator)
    today = dt.datetime.now(ZoneInfo(emulator.account.timezone_name)).date()
    truth = emulator.ground_truth("ad", today - dt.timedelta(days=9), today)
    target = truth.iloc[len(truth) // 2]
    emulator.faults.malformed = [Malformation("ad", target["entity_id"], target["date_start"], kind)]
    report, _ = live_sync(settings)
    assert window_of(report.to_dict()) == (today - dt.timedelta(days=9), today)
    stored = stored_rows(settings.db_path, "ad")
    if kind in HARMLESS_MALFORMATIONS:
        assert report.errors == []
        check_all_levels(settings, emulator, report)
        row = stored[(stored["entity_id"] == target["entity_id"]) & (stored["date_start"] == target["date_start"])]
        assert row["reach"].isna().item() == (kind == "missing_reach")
    else:
        assert report.ads.errors == 1 and report.campaigns.errors == report.adsets.errors == 0
        assert report.errors[0].startswith(
            f"Ad {target['entity_id']}: malformed insights row for {target['date_start']}"
        )
        # the bad day is not stored; the ad's other days and every other entity equal the truth
        key = (target["entity_id"], target["date_start"])
        assert_equals_truth(stored, truth, without_rows={key})
        assert stored["entity_id"].eq(target["entity_id"]).sum() == truth["entity_id"].eq(target["entity_id"]).sum() - 1
        check_all_levels(settings, emulator, report, without={"ad": {target["entity_id"]}})


def test_a_bad_token_stops_the_sync_at_once_with_what_to_fix(tmp_path: Path, emulator: GraphEmulator) -> None:
    emulator.faults.bad_token = True
    report, _ = live_sync(live_settings(tmp_path / "data", emulator))
    assert not report.success and report.status == "failed"
    assert report.errors[0].startswith("Meta rejected the access token (HTTP 400, code 190, subcode 463")
    assert "set META_ACCESS_TOKEN" in report.errors[0]
    assert TOKEN not in report.errors[0] and TOKEN in emulator.tokens_seen  # the emulator echoed it back
    assert emulator.total_requests == 1


def test_a_missing_permission_stops_the_sync_at_once(tmp_path: Path, emulator: GraphEmulator) -> None:
    emulator.faults.missing_permission = True
    report, _ = live_sync(live_settings(tmp_path / "data", emulator))
    assert not report.success
    assert "lacks a permission" in report.errors[0] and "ads_read" in report.errors[0]
    assert emulator.total_requests == 1


def test_an_unknown_ad_account_fails_the_sync_with_graphs_reason(tmp_path: Path, emulator: GraphEmulator) -> None:
    report, _ = live_sync(live_settings(tmp_path / "data", emulator, ad_account_ids="act_999"))
    assert not report.success
    assert "code 100, subcode 33" in report.errors[0] and "'act_999' does not exist" in report.errors[0]
