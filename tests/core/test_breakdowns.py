"""Breakdowns through the sync engine with the stub source and a real DuckDB warehouse, in process."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import duckdb
import numpy as np
import pandas as pd
import pytest

from insights_core.engine import run_sync
from insights_core.levels import LEVELS
from insights_core.models import BREAKDOWN_FAMILIES, SyncRequest
from insights_core.settings import Settings
from insights_core.sources import stub
from insights_core.sources.stub import StubSource
from insights_core.store.warehouse import Warehouse
from tests.helpers import FIXED_NOW, SMALL_SHAPE, make_settings

LATER = FIXED_NOW + dt.timedelta(minutes=30)


def sync(settings: Settings, warehouse: Warehouse, source: object | None = None, now: dt.datetime = FIXED_NOW, **kw):
    return run_sync(
        SyncRequest(days_back=10),
        source=source or StubSource.from_settings(settings),  # type: ignore[arg-type]
        warehouse=warehouse,
        settings=settings,
        now=now,
        **kw,
    )


def con(warehouse: Warehouse) -> duckdb.DuckDBPyConnection:
    return warehouse.con


def mismatches(warehouse: Warehouse, families: tuple[str, ...] = BREAKDOWN_FAMILIES) -> pd.DataFrame:
    """(entity, day, family) whose segment sums differ from the totals row, or that exist on one side only."""
    return (
        con(warehouse)
        .execute(
            """
        WITH seg AS (
            SELECT entity_type, entity_id, date_start, breakdown, sum(spend) AS spend, sum(impressions) AS impressions,
                sum(clicks) AS clicks, sum(conversions) AS conversions, sum(revenue) AS revenue
            FROM meta_ad_insight_breakdowns GROUP BY ALL),
        tot AS (
            SELECT t.entity_type, t.entity_id, t.date_start, f.breakdown, t.spend, t.impressions, t.clicks,
                t.conversions, t.revenue
            FROM meta_ad_insights AS t CROSS JOIN (SELECT unnest($families::VARCHAR[]) AS breakdown) AS f)
        SELECT coalesce(t.entity_type, s.entity_type) AS entity_type, coalesce(t.entity_id, s.entity_id) AS entity_id,
            coalesce(t.date_start, s.date_start) AS date_start, coalesce(t.breakdown, s.breakdown) AS breakdown,
            t.spend, s.spend AS segment_spend, t.impressions, s.impressions AS segment_impressions
        FROM tot AS t FULL OUTER JOIN seg AS s ON t.entity_type = s.entity_type AND t.entity_id = s.entity_id
            AND t.date_start = s.date_start AND t.breakdown = s.breakdown
        WHERE t.spend IS DISTINCT FROM s.spend OR t.impressions IS DISTINCT FROM s.impressions
            OR t.clicks IS DISTINCT FROM s.clicks OR t.conversions IS DISTINCT FROM s.conversions
            OR t.revenue IS DISTINCT FROM s.revenue
        """,
            {"families": list(families)},
        )
        .df()
    )


def duplicate_keys(warehouse: Warehouse) -> int:
    row = (
        con(warehouse)
        .execute(
            "SELECT count(*) FROM (SELECT entity_type, entity_id, date_start, breakdown, key_1, key_2"
            " FROM meta_ad_insight_breakdowns GROUP BY ALL HAVING count(*) > 1)"
        )
        .fetchone()
    )
    return int(row[0])


def rows_per(warehouse: Warehouse) -> dict[tuple[str, str], int]:
    frame = (
        con(warehouse)
        .execute("SELECT entity_type, breakdown, count(*) AS n FROM meta_ad_insight_breakdowns GROUP BY ALL")
        .df()
    )
    return {(r.entity_type, r.breakdown): int(r.n) for r in frame.itertuples()}


def assert_consistent(warehouse: Warehouse, families: tuple[str, ...] = BREAKDOWN_FAMILIES) -> None:
    assert mismatches(warehouse, families).empty, mismatches(warehouse, families).head()
    assert duplicate_keys(warehouse) == 0
    per = rows_per(warehouse)
    assert {key for key, n in per.items() if n} == {(lvl, fam) for lvl in LEVELS for fam in families}
    reach = (
        con(warehouse)
        .execute(
            "SELECT entity_type, count(reach) AS with_reach, count(*) AS n,"
            " count(*) FILTER (reach > impressions) AS over FROM meta_ad_insight_breakdowns GROUP BY 1"
        )
        .df()
    )
    by_level = {r.entity_type: r for r in reach.itertuples()}
    assert by_level["ad"].with_reach == by_level["ad"].n, "ads carry reach as reported per segment"
    assert by_level["ad"].over == 0, "a segment's reach never exceeds its impressions"
    for parent in ("adset", "campaign"):
        assert by_level[parent].with_reach == 0, "rolled-up levels never get summed reach"


def test_segments_sum_to_the_totals_for_every_entity_day_and_family(settings: Settings, warehouse: Warehouse) -> None:
    report = sync(settings, warehouse)
    assert report.success, report.errors
    assert not any("breakdown" in e for e in report.errors)
    assert_consistent(warehouse)
    families = (
        con(warehouse)
        .execute("SELECT breakdown, list(DISTINCT key_1 ORDER BY key_1) FROM meta_ad_insight_breakdowns GROUP BY 1")
        .fetchall()
    )
    keys = dict(families)
    assert "unknown" in keys["country"] and "Unknown" in keys["age_gender"], "Meta's unknown segments are kept"
    assert set(keys["device_platform"]) <= {"mobile_app", "mobile_web", "desktop", "unknown"}


def test_segments_follow_the_ad_sets_targeting(settings: Settings, warehouse: Warehouse) -> None:
    sync(settings, warehouse)
    frame = (
        con(warehouse)
        .execute(
            """
        SELECT b.breakdown, b.key_1, b.key_2, b.impressions, a.genders, a.countries, a.age_min, a.age_max
        FROM meta_ad_insight_breakdowns AS b JOIN ads AS d ON d.ad_id = b.entity_id
        JOIN adsets AS a ON a.adset_id = d.adset_id WHERE b.entity_type = 'ad'
        """
        )
        .df()
    )
    countries = frame[(frame["breakdown"] == "country") & (frame["key_1"] != "unknown")]
    assert all(k in c.split(",") for k, c in zip(countries["key_1"], countries["countries"]))
    ages = frame[frame["breakdown"] == "age_gender"]
    one_gender = ages[ages["genders"] != "all"]
    assert len(one_gender) > 0
    assert set(one_gender["key_2"]) - set(one_gender["genders"]) <= {"unknown"}
    lower = ages["key_1"].str.extract(r"^(\d+)")[0].astype(float)
    assert ((lower.isna()) | (lower + 9 >= ages["age_min"])).all(), "no bucket entirely below the targeted ages"
    devices = frame[frame["breakdown"] == "device_platform"].groupby("key_1")["impressions"].sum()
    assert devices.idxmax() == "mobile_app" and devices["unknown"] < devices.sum() * 0.02


def test_a_re_sync_rewrites_nothing_and_keeps_the_sums(settings: Settings, warehouse: Warehouse) -> None:
    sync(settings, warehouse)
    before = con(warehouse).execute("SELECT * FROM meta_ad_insight_breakdowns ORDER BY ALL").df()
    report = sync(settings, warehouse, now=LATER)
    after = con(warehouse).execute("SELECT * FROM meta_ad_insight_breakdowns ORDER BY ALL").df()
    assert report.success
    pd.testing.assert_frame_equal(before, after)  # same rows, created_at and updated_at unchanged
    assert_consistent(warehouse)


@pytest.fixture
def restating(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The stub restates the last day: a third of the ads lose two thirds of their impressions and gain
    spend, as Meta's late corrections do. Totals and segments both come from the patched numbers."""
    original = stub.generate_ad_days

    def restated(ad_hash: np.ndarray, days: np.ndarray, active: np.ndarray) -> dict[str, np.ndarray]:
        values = {k: v.copy() for k, v in original(ad_hash, days, active).items()}
        hit = (ad_hash % np.uint64(3) == 0)[:, None] & (days == days.max())[None, :]
        impressions = np.where(hit, values["impressions"] // 3, values["impressions"])
        values["impressions"] = impressions
        for name in ("clicks", "reach", "unique_clicks"):
            values[name] = np.minimum(values[name], impressions)
        values["conversions"] = np.minimum(values["conversions"], values["clicks"])
        values["revenue"] = np.where(values["conversions"] > 0, values["revenue"], 0)
        values["spend"] = np.where(impressions > 0, values["spend"] + np.where(hit, 7, 0), 0)
        return values

    monkeypatch.setattr(stub, "generate_ad_days", restated)
    yield


def test_a_restated_day_updates_changed_segments_and_deletes_vanished_ones(
    settings: Settings, warehouse: Warehouse, request: pytest.FixtureRequest
) -> None:
    sync(settings, warehouse)
    count_before = con(warehouse).execute("SELECT count(*) FROM meta_ad_insight_breakdowns").fetchone()[0]
    request.getfixturevalue("restating")
    report = sync(settings, warehouse, now=LATER)
    assert report.success and report.rows_updated > 0
    assert_consistent(warehouse)
    moved = (
        con(warehouse)
        .execute(
            "SELECT count(*) FILTER (updated_at > created_at),"
            " count(DISTINCT date_start) FILTER (updated_at > created_at), count(*) FROM meta_ad_insight_breakdowns"
        )
        .fetchone()
    )
    assert moved[0] > 0 and moved[1] == 1, "only the restated day's rows were rewritten"
    assert moved[2] < count_before, "segments Meta no longer returns were deleted"


def test_no_families_write_no_rows(tmp_path) -> None:
    settings = make_settings(tmp_path / "data", breakdowns=(), **SMALL_SHAPE)
    warehouse = Warehouse(settings.db_path)
    try:
        report = sync(settings, warehouse)
        assert report.success and report.rows_read > 0
        assert con(warehouse).execute("SELECT count(*) FROM meta_ad_insight_breakdowns").fetchone()[0] == 0
    finally:
        warehouse.close()


def test_only_the_chosen_families_are_collected(tmp_path) -> None:
    settings = make_settings(tmp_path / "data", breakdowns=("country", "device_platform"), **SMALL_SHAPE)
    warehouse = Warehouse(settings.db_path)
    try:
        assert sync(settings, warehouse).success
        assert_consistent(warehouse, ("country", "device_platform"))
    finally:
        warehouse.close()


class _NoBreakdowns:
    """A source that predates breakdowns: every method but fetch_breakdowns."""

    def __init__(self, inner: StubSource) -> None:
        self.inner, self.mode, self.stats = inner, "older", inner.stats

    def __getattr__(self, name: str) -> object:
        if name == "fetch_breakdowns":
            raise AttributeError(name)
        return getattr(self.inner, name)


class _OnlyCountry(StubSource):
    def fetch_breakdowns(self, account, window, scope, families, sync_id, on_status=None):  # type: ignore[no-untyped-def]
        return super().fetch_breakdowns(account, window, scope, ("country",), sync_id, on_status)


def test_a_source_without_breakdowns_says_so_in_the_report(settings: Settings, warehouse: Warehouse) -> None:
    report = sync(settings, warehouse, source=_NoBreakdowns(StubSource.from_settings(settings)))
    assert report.success and report.rows_read > 0, "the totals are still stored"
    assert any("breakdowns not collected" in e and "older" in e for e in report.errors), report.errors
    assert con(warehouse).execute("SELECT count(*) FROM meta_ad_insight_breakdowns").fetchone()[0] == 0


def test_a_family_the_source_does_not_return_is_named_in_the_report(settings: Settings, warehouse: Warehouse) -> None:
    report = sync(settings, warehouse, source=_OnlyCountry.from_settings(settings))
    missing = [e for e in report.errors if "breakdown not collected" in e]
    assert sorted(e.split(": ")[1].split()[0] for e in missing) == ["age_gender", "device_platform", "placement"]
    assert_consistent(warehouse, ("country",))


def test_failed_ads_and_their_parents_keep_no_wrong_sums(tmp_path) -> None:
    settings = make_settings(tmp_path / "data", stub_error_rate=0.15, **SMALL_SHAPE)
    warehouse = Warehouse(settings.db_path)
    try:
        report = sync(settings, warehouse)
        assert report.ads.errors > 0
        bad = mismatches(warehouse)
        # the only mismatches are entity-days with totals and no segments: failed ads, and parents of one
        assert bad["segment_spend"].isna().all() and bad["spend"].notna().all()
        parents = (
            con(warehouse)
            .execute("SELECT DISTINCT entity_type FROM meta_ad_insight_breakdowns WHERE entity_type <> 'ad'")
            .fetchall()
        )
        assert parents, "parents whose ads were all read are rolled up"
        failed_ads = [e.split()[1].rstrip(":") for e in report.errors if e.startswith("Ad ")]
        stored = (
            con(warehouse)
            .execute(
                "SELECT count(*) FROM meta_ad_insight_breakdowns WHERE entity_id IN (SELECT unnest($ids::VARCHAR[]))",
                {"ids": failed_ads},
            )
            .fetchone()[0]
        )
        assert failed_ads and stored == 0
    finally:
        warehouse.close()


@pytest.mark.parametrize("checks_passed", [6, 9, 11])
def test_a_stop_during_breakdowns_commits_nothing(settings: Settings, warehouse: Warehouse, checks_passed: int) -> None:
    """The small account's sync checks for a stop 5 times before its breakdowns, then once per segment
    batch (4), once before the roll-ups and once per family after them: stops while writing segments,
    before rolling up, and between roll-ups."""
    calls = []

    def stop_in_breakdowns() -> bool:
        calls.append(1)
        return len(calls) > checks_passed

    report = sync(settings, warehouse, should_stop=stop_in_breakdowns)
    assert report.status == "cancelled"
    counts = (
        con(warehouse)
        .execute("SELECT (SELECT count(*) FROM meta_ad_insights), (SELECT count(*) FROM meta_ad_insight_breakdowns)")
        .fetchone()
    )
    assert counts == (0, 0)


@pytest.mark.parametrize("level", ["campaign", "ad"])
def test_a_restated_sync_now_of_one_entity_keeps_every_sum(
    settings: Settings, warehouse: Warehouse, request: pytest.FixtureRequest, level: str
) -> None:
    """A campaign's Sync now re-reads it and everything under it; an ad's, the ad alone: either way each
    entity's segments match its own totals row, re-read or not."""
    sync(settings, warehouse)
    delivered_last_day = (
        con(warehouse)
        .execute(
            "SELECT a.ad_id, a.campaign_id FROM ads AS a JOIN meta_ad_insights AS i ON i.entity_id = a.ad_id"
            " WHERE i.date_start = (SELECT max(date_start) FROM meta_ad_insights) ORDER BY 1"
        )
        .fetchall()
    )
    restated = [(ad, c) for ad, c in delivered_last_day if stub.hash_ids([ad])[0] % 3 == 0]  # see `restating`
    entity_id = restated[0][0] if level == "ad" else restated[0][1]
    request.getfixturevalue("restating")
    report = run_sync(
        SyncRequest(entity_type=level, entity_ids=(entity_id,)),  # type: ignore[arg-type]
        source=StubSource.from_settings(settings),
        warehouse=warehouse,
        settings=settings,
        now=LATER,
    )
    assert report.success, report.errors
    assert_consistent(warehouse)
    changed = (
        con(warehouse)
        .execute("SELECT DISTINCT entity_type FROM meta_ad_insight_breakdowns WHERE updated_at > created_at")
        .fetchall()
    )
    expected = {("campaign",), ("adset",), ("ad",)} if level == "campaign" else {("ad",)}
    assert set(changed) <= expected and changed, changed
