"""The sync engine with the stub source and a real DuckDB warehouse, in process."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest

from insights_core.engine import plan_window, run_sync
from insights_core.errors import FatalSyncError, InputError
from insights_core.models import DateWindow, SyncReport, SyncRequest
from insights_core.settings import Settings
from insights_core.sources.stub import StubSource
from insights_core.store.warehouse import Warehouse
from tests.helpers import FIXED_NOW, make_settings

TODAY = dt.date(2026, 11, 20)  # FIXED_NOW in the stub account's time zone


def sync(
    settings: Settings,
    warehouse: Warehouse,
    request: SyncRequest | None = None,
    *,
    source: StubSource | None = None,
    now: dt.datetime = FIXED_NOW,
    **kwargs,
):
    return run_sync(
        request or SyncRequest(days_back=10),
        source=source or StubSource.from_settings(settings),
        warehouse=warehouse,
        settings=settings,
        now=now,
        **kwargs,
    )


def table(warehouse: Warehouse, sql: str, *params) -> pd.DataFrame:
    return warehouse.con.execute(sql, list(params)).df()


def duplicate_keys(warehouse: Warehouse) -> int:
    return int(
        warehouse.con.execute(
            "SELECT count(*) FROM (SELECT entity_type, entity_id, date_start FROM meta_ad_insights"
            " GROUP BY ALL HAVING count(*) > 1)"
        ).fetchone()[0]
    )


def test_report_has_the_contract_keys_and_counts(settings: Settings, warehouse: Warehouse) -> None:
    report = sync(settings, warehouse).to_dict()
    for key in (
        "sync_id",
        "sync_timestamp",
        "sync_type",
        "mode",
        "campaigns",
        "adsets",
        "ads",
        "total_duration_seconds",
        "success",
        "errors",
    ):
        assert key in report
    assert report["sync_type"] == "manual" and report["mode"] == "stub" and report["success"] is True
    assert report["campaigns"] == {"processed": 6, "success": 6, "errors": 0}
    assert report["adsets"] == {"processed": 18, "success": 18, "errors": 0}
    assert report["ads"] == {"processed": 36, "success": 36, "errors": 0}
    assert (report["since"], report["until"]) == ("2026-11-11", "2026-11-20")
    stored = table(warehouse, "SELECT count(*) AS n FROM meta_ad_insights")["n"][0]
    assert report["rows_read"] == stored > 0
    runs = table(warehouse, "SELECT sync_id, success, campaigns_processed, ads_success FROM sync_runs")
    assert runs.to_dict("records") == [
        {"sync_id": report["sync_id"], "success": True, "campaigns_processed": 6, "ads_success": 36}
    ]


def test_two_syncs_of_one_window_leave_the_same_rows_and_no_duplicates(
    settings: Settings, warehouse: Warehouse
) -> None:
    first_report = sync(settings, warehouse, now=FIXED_NOW)
    first = table(warehouse, "SELECT entity_type, count(*) AS n FROM meta_ad_insights GROUP BY 1 ORDER BY 1")
    created = table(
        warehouse,
        "SELECT id, entity_type, entity_id, date_start, created_at, updated_at, spend"
        " FROM meta_ad_insights ORDER BY ALL",
    )
    later = FIXED_NOW + dt.timedelta(minutes=30)
    second_report = sync(settings, warehouse, now=later)
    second = table(warehouse, "SELECT entity_type, count(*) AS n FROM meta_ad_insights GROUP BY 1 ORDER BY 1")
    after = table(
        warehouse,
        "SELECT id, entity_type, entity_id, date_start, created_at, updated_at, spend"
        " FROM meta_ad_insights ORDER BY ALL",
    )
    pd.testing.assert_frame_equal(first, second)
    assert set(first["entity_type"]) == {"campaign", "adset", "ad"}
    assert duplicate_keys(warehouse) == 0
    assert (after["id"] == created["id"]).all(), "a re-synced row keeps its id"
    assert (after["created_at"] == created["created_at"]).all(), "created_at is kept"
    assert (after["updated_at"] == created["updated_at"]).all(), "unchanged rows are not rewritten"
    assert (first_report.rows_inserted, first_report.rows_updated) == (first_report.rows_read, 0)
    assert (second_report.rows_inserted, second_report.rows_updated) == (0, 0)
    assert second_report.rows_read == first_report.rows_read


def test_a_restated_row_is_corrected_and_its_updated_at_moves(settings: Settings, warehouse: Warehouse) -> None:
    sync(settings, warehouse, now=FIXED_NOW)
    key = table(
        warehouse,
        "SELECT entity_type, entity_id, date_start, spend, created_at FROM meta_ad_insights"
        " WHERE entity_type = 'ad' ORDER BY entity_id, date_start LIMIT 1",
    ).iloc[0]
    warehouse.con.execute(
        "UPDATE meta_ad_insights SET spend = spend + 1, clicks = clicks + 1"
        " WHERE entity_type = ? AND entity_id = ? AND date_start = ?",
        [key.entity_type, key.entity_id, key.date_start],
    )
    later = FIXED_NOW + dt.timedelta(minutes=30)
    report = sync(settings, warehouse, now=later)
    assert (report.rows_inserted, report.rows_updated, report.rows_deleted) == (0, 1, 0)
    row = table(
        warehouse,
        "SELECT spend, created_at, updated_at FROM meta_ad_insights"
        " WHERE entity_type = ? AND entity_id = ? AND date_start = ?",
        key.entity_type,
        key.entity_id,
        key.date_start,
    ).iloc[0]
    assert row.spend == key.spend and row.created_at == key.created_at
    assert row.updated_at == pd.Timestamp(later.replace(tzinfo=None))
    moved = table(warehouse, "SELECT count(*) AS n FROM meta_ad_insights WHERE updated_at > created_at")["n"][0]
    assert moved == 1


def test_migrations_rename_rows_written_and_level_and_keep_the_data(settings: Settings, tmp_path) -> None:
    path = tmp_path / "old.duckdb"
    warehouse = Warehouse(path)
    report = sync(settings, warehouse, SyncRequest(days_back=3))
    days = table(warehouse, "SELECT account_id, entity_type, day FROM synced_days ORDER BY ALL")
    warehouse.con.execute(
        "ALTER TABLE sync_runs RENAME COLUMN rows_read TO rows_written;"  # as version 1 had it
        "ALTER TABLE synced_days RENAME COLUMN entity_type TO level;"
        "DELETE FROM schema_migrations WHERE version IN (2, 3)"
    )
    stored_json = warehouse.con.execute("SELECT report_json FROM sync_runs").fetchone()[0]
    warehouse.close()
    warehouse = Warehouse(path)
    try:
        assert warehouse.applied_migrations == [2, 3]
        assert (
            warehouse.con.execute("SELECT sync_id, rows_read FROM sync_runs").fetchall()
            == [(report.sync_id, report.rows_read)]
            and report.rows_read > 0
        )
        assert table(warehouse, "SELECT account_id, entity_type, day FROM synced_days ORDER BY ALL").equals(days)
        assert len(days) == 3 * 3 and len(warehouse.fetch_synced_days(report.accounts[0], "ad")) == 3
    finally:
        warehouse.close()
    old_report = json.loads(stored_json)
    old_report["rows_written"] = old_report.pop("rows_read")  # a report stored before the rename
    assert SyncReport.from_dict(old_report).rows_read == report.rows_read


def test_campaign_rows_cannot_be_duplicated_by_the_primary_key(warehouse: Warehouse) -> None:
    """A UNIQUE(campaign_id, adset_id, ad_id, ...) constraint lets campaign rows repeat (NULLs never collide)."""
    insert = (
        "INSERT INTO meta_ad_insights (account_id, entity_type, entity_id, campaign_id, date_start, date_end,"
        " spend, impressions, clicks, conversions, revenue, created_at, updated_at)"
        " VALUES ('act_1', 'campaign', '1', '1', DATE '2026-01-01', DATE '2026-01-01', 1, 1, ?, 0, 0,"
        " now(), now())"
    )
    warehouse.con.execute(insert, [1])
    with pytest.raises(Exception, match="(?i)constraint|duplicate"):
        warehouse.con.execute(insert, [2])


def test_stored_values_equal_the_source_and_ratios_come_from_the_row(settings: Settings, warehouse: Warehouse) -> None:
    sync(settings, warehouse)
    source = StubSource.from_settings(settings)
    from insights_core.engine import resolve_scope

    scope, _ = resolve_scope(source.fetch_entities(source.account), SyncRequest())
    expected = pd.concat(
        [b.rows for b in source.fetch_insights(source.account, DateWindow(dt.date(2026, 11, 11), TODAY), scope, "x")]
    )
    stored = table(
        warehouse,
        "SELECT entity_type, entity_id, date_start, spend, impressions, clicks, conversions,"
        " revenue, reach, ctr, cpc, cpm, roas, cost_per_conversion FROM meta_ad_insights",
    )
    stored["date_start"] = pd.to_datetime(stored["date_start"])
    merged = expected.merge(stored, on=["entity_type", "entity_id", "date_start"], suffixes=("", "_db"))
    assert len(merged) == len(expected) == len(stored)
    for metric in ("spend", "impressions", "clicks", "conversions", "revenue", "reach"):
        assert (merged[metric] - merged[f"{metric}_db"]).abs().max() < 1e-9, metric
    from insights_core import metrics

    for name in ("ctr", "cpc", "cpm", "roas", "cost_per_conversion"):
        num, den, scale = metrics.RATIO_FORMULAS[name]
        expected_ratio = merged.apply(lambda r: metrics.ratio(r[num], r[den], scale), axis=1).astype(float)
        got = merged[f"{name}"].astype(float)
        assert ((got - expected_ratio).abs().fillna(0) < 1e-9).all(), name
        assert (got.isna() == expected_ratio.isna()).all(), f"{name}: a zero denominator gives no value, not 0"
    assert merged["cpc"].isna().any() and merged["cost_per_conversion"].isna().any()


def _sync_with_failing_entities(tmp_path: Path, error_rate: float) -> tuple[SyncReport, int, Warehouse]:
    """A sync of a 10 x 3 x 3 account (130 entities) where `error_rate` of the entities fail:
    the report, how many entities failed, and the (open) warehouse."""
    settings = make_settings(
        tmp_path / "d", stub_campaigns=10, stub_adsets_per_campaign=3, stub_ads_per_adset=3, stub_error_rate=error_rate
    )
    warehouse = Warehouse(settings.db_path)
    report = sync(settings, warehouse)
    return report, report.campaigns.errors + report.adsets.errors + report.ads.errors, warehouse


def test_entity_errors_are_counted_and_do_not_abort_the_others(tmp_path) -> None:
    report, failed, warehouse = _sync_with_failing_entities(tmp_path, 0.15)
    assert failed > 0 and report.success is True
    for level in ("campaign", "adset", "ad"):
        counts = report.counts(level)
        assert counts.success + counts.errors == counts.processed
    assert len(report.errors) == failed
    assert all(": Rate limit exceeded" in line for line in report.errors)
    assert report.rate_limit_hits == failed
    failed_ids = {line.split()[1].rstrip(":") for line in report.errors}
    stored_ids = set(table(warehouse, "SELECT DISTINCT entity_id FROM meta_ad_insights")["entity_id"])
    assert not failed_ids & stored_ids
    assert len(stored_ids) > 0.6 * (10 + 30 + 90)
    warehouse.close()


@pytest.mark.parametrize(
    ("entity_type", "pick", "expected"),
    [
        ("campaign", lambda t: [t.campaigns.campaign_id[1]], {"campaign": 1, "adset": 3, "ad": 6}),
        ("adset", lambda t: list(t.adsets.adset_id[:2]), {"campaign": 0, "adset": 2, "ad": 4}),
        ("ad", lambda t: list(t.ads.ad_id[5:8]), {"campaign": 0, "adset": 0, "ad": 3}),
    ],
)
def test_entity_filters_cascade_down_from_the_requested_level(
    settings: Settings, warehouse: Warehouse, entity_type, pick, expected
) -> None:
    source = StubSource.from_settings(settings)
    ids = tuple(pick(source.fetch_entities(source.account)))
    report = sync(settings, warehouse, SyncRequest(days_back=5, entity_type=entity_type, entity_ids=ids), source=source)
    assert {lvl: report.counts(lvl).processed for lvl in expected} == expected
    stored = table(warehouse, "SELECT entity_type, count(DISTINCT entity_id) AS n FROM meta_ad_insights GROUP BY 1")
    got = dict(zip(stored["entity_type"], stored["n"]))
    for level, count in expected.items():
        assert got.get(level, 0) <= count
    if entity_type == "ad":
        assert set(table(warehouse, "SELECT DISTINCT entity_id FROM meta_ad_insights")["entity_id"]) <= set(ids)


def test_unknown_entity_ids_write_nothing(settings: Settings, warehouse: Warehouse) -> None:
    sync(settings, warehouse)
    before = table(warehouse, "SELECT count(*) AS n FROM meta_ad_insights")["n"][0]
    with pytest.raises(InputError, match="unknown campaign id: 999"):
        sync(settings, warehouse, SyncRequest(days_back=3, entity_type="campaign", entity_ids=("999",)))
    assert table(warehouse, "SELECT count(*) AS n FROM meta_ad_insights")["n"][0] == before
    assert table(warehouse, "SELECT count(*) AS n FROM sync_runs")["n"][0] == 1


def test_a_stop_request_rolls_back_the_whole_sync(settings: Settings, warehouse: Warehouse) -> None:
    calls = iter(range(1000))
    report = sync(settings, warehouse, should_stop=lambda: next(calls) >= 2)
    assert report.status == "cancelled" and report.success is False and report.rows_read == 0
    assert "cancelled" in report.errors[0]
    assert table(warehouse, "SELECT count(*) AS n FROM meta_ad_insights")["n"][0] == 0
    assert table(warehouse, "SELECT count(*) AS n FROM campaigns")["n"][0] == 0
    assert table(warehouse, "SELECT status FROM sync_runs")["status"].tolist() == ["cancelled"]


class ExplodingSource(StubSource):
    """Fails fatally after the first batch, like an expired token half-way through."""

    def fetch_insights(self, *args, **kwargs):
        for i, batch in enumerate(super().fetch_insights(*args, **kwargs)):
            if i == 1:
                raise FatalSyncError("token expired half-way")
            yield batch


def test_a_fatal_error_keeps_what_was_committed_before(settings: Settings, warehouse: Warehouse) -> None:
    sync(settings, warehouse)
    before = table(warehouse, "SELECT * FROM meta_ad_insights ORDER BY entity_type, entity_id, date_start")
    report = sync(
        settings, warehouse, source=ExplodingSource.from_settings(settings), now=FIXED_NOW + dt.timedelta(hours=1)
    )
    assert report.status == "failed" and report.errors == ["token expired half-way"]
    after = table(warehouse, "SELECT * FROM meta_ad_insights ORDER BY entity_type, entity_id, date_start")
    pd.testing.assert_frame_equal(before, after)


def test_rows_meta_no_longer_returns_are_removed_from_the_window(settings: Settings, warehouse: Warehouse) -> None:
    sync(settings, warehouse)
    ghost = (
        "INSERT INTO meta_ad_insights (account_id, entity_type, entity_id, campaign_id, date_start, date_end,"
        " spend, impressions, clicks, conversions, revenue, created_at, updated_at)"
        " VALUES ('act_1000000000001', 'campaign', ?, ?, ?, ?, 5, 5, 0, 0, 0, TIMESTAMP '2020-01-01', now())"
    )
    inside, outside = dt.date(2026, 11, 15), dt.date(2026, 10, 1)
    campaign = table(warehouse, "SELECT campaign_id FROM campaigns LIMIT 1")["campaign_id"][0]
    missing_day = table(
        warehouse,
        "SELECT d::DATE AS d FROM range(DATE '2026-11-11', DATE '2026-11-21', INTERVAL 1 DAY) t(d)"
        " WHERE d NOT IN (SELECT date_start FROM meta_ad_insights WHERE entity_id = ?)",
        campaign,
    )
    target = missing_day["d"][0].date() if len(missing_day) else None
    if target is None:  # the campaign delivered every day: use a campaign id that has no rows at all
        campaign, target = "120210000000000099", inside
    warehouse.con.execute(ghost, [campaign, campaign, target, target])
    warehouse.con.execute(ghost, [campaign, campaign, outside, outside])
    report = sync(settings, warehouse, now=FIXED_NOW + dt.timedelta(hours=1))
    assert report.rows_deleted == 1
    left = table(warehouse, "SELECT date_start FROM meta_ad_insights WHERE created_at = TIMESTAMP '2020-01-01'")
    assert [d.date() for d in pd.to_datetime(left["date_start"])] == [outside]


def test_first_scheduled_sync_backfills_then_reads_the_lookback(settings: Settings, warehouse: Warehouse) -> None:
    first = sync(settings, warehouse, SyncRequest(sync_type="scheduled"))
    assert first.sync_type == "scheduled"
    assert (first.since, first.until) == ((TODAY - dt.timedelta(days=89)).isoformat(), TODAY.isoformat())
    second = sync(settings, warehouse, SyncRequest(sync_type="scheduled"), now=FIXED_NOW + dt.timedelta(minutes=30))
    assert second.since == (TODAY - dt.timedelta(days=27)).isoformat()
    assert second.rows_read < first.rows_read


S = make_settings("unused", lookback_days=28, backfill_days=90)  # type: ignore[arg-type]
DAY = dt.timedelta(days=1)


def days(start: dt.date, end: dt.date) -> set[dt.date]:
    return set(DateWindow(start, end).dates())


@pytest.mark.parametrize(
    ("request_", "synced", "since"),
    [
        (SyncRequest(days_back=7), set(), TODAY - 6 * DAY),
        (SyncRequest(days_back=1), set(), TODAY),
        (SyncRequest(days_back=90), set(), TODAY - 89 * DAY),
        (SyncRequest(days_back=90), days(TODAY - 89 * DAY, TODAY), TODAY - 27 * DAY),
        (SyncRequest(days_back=90, force=True), days(TODAY - 89 * DAY, TODAY), TODAY - 89 * DAY),
        (SyncRequest(days_back=90), days(TODAY - 60 * DAY, TODAY), TODAY - 89 * DAY),
        (SyncRequest(days_back=90), days(TODAY - 89 * DAY, TODAY) - {TODAY - 40 * DAY}, TODAY - 40 * DAY),
        (SyncRequest(sync_type="scheduled"), set(), TODAY - 89 * DAY),
        (SyncRequest(sync_type="scheduled"), days(TODAY - 89 * DAY, TODAY - DAY), TODAY - 27 * DAY),
        (SyncRequest(sync_type="scheduled"), days(TODAY - 89 * DAY, TODAY - 50 * DAY), TODAY - 49 * DAY),
        (SyncRequest(entity_type="ad", entity_ids=("1",)), set(), TODAY - 27 * DAY),
        (
            SyncRequest(days_back=60, entity_type="ad", entity_ids=("1",)),
            days(TODAY - 89 * DAY, TODAY),
            TODAY - 59 * DAY,
        ),
    ],
)
def test_plan_window(request_: SyncRequest, synced: set[dt.date], since: dt.date) -> None:
    window = plan_window(request_, TODAY, synced, S)
    assert (window.since, window.until) == (since, TODAY)


def test_a_sync_that_misses_most_entities_is_not_a_success_but_keeps_what_it_read(tmp_path) -> None:
    report, failed, warehouse = _sync_with_failing_entities(tmp_path, 0.8)
    assert failed > 0.5 * 130
    assert report.success is False and report.status == "failed"
    assert report.errors[0] == f"{failed} of 130 entities failed (more than 50%); the others were stored"
    stored = table(warehouse, "SELECT count(*) AS n FROM meta_ad_insights")["n"][0]
    assert stored == report.rows_read > 0
    warehouse.close()
