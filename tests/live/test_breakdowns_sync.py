"""A live sync against the emulator stores breakdowns at every level that sum to the stored totals.

Runs the engine's `run_sync` end to end (real SDK, emulator, DuckDB): the table
`meta_ad_insight_breakdowns` must hold, for every entity, day and family, segments whose additive
metrics add up to that entity's row in `meta_ad_insights` to the cent, with no duplicate keys,
after a first sync and after a forced re-sync; a family Meta refuses is reported and the others
are stored.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pandas as pd

from graph_emulator import Faults, GraphEmulator
from insights_core.engine import run_sync
from insights_core.levels import LEVELS
from insights_core.models import BREAKDOWN_FAMILIES, SyncReport, SyncRequest
from insights_core.settings import Settings
from insights_core.sources.live import LiveSource
from insights_core.store.warehouse import Warehouse
from tests.live.helpers import SHAPE, live_settings, stored_rows, window_of

ADDITIVE = ("spend", "impressions", "clicks", "conversions", "revenue")
KEY = ["entity_type", "entity_id", "date_start", "breakdown", "key_1", "key_2"]


def live_sync(settings: Settings, request: SyncRequest = SyncRequest(days_back=7)) -> SyncReport:
    source, warehouse = LiveSource(settings), Warehouse(settings.db_path)
    try:
        return run_sync(request, source=source, warehouse=warehouse, settings=settings)
    finally:
        warehouse.close()
        source.close()


def stored_breakdowns(db_path: Path) -> pd.DataFrame:
    with duckdb.connect(str(db_path), read_only=True) as con:
        frame = con.execute(
            "SELECT entity_type, entity_id, account_id, date_start, breakdown, key_1, key_2,"
            " CAST(spend AS DOUBLE) AS spend, impressions, clicks, CAST(conversions AS DOUBLE) AS conversions,"
            " CAST(revenue AS DOUBLE) AS revenue, reach FROM meta_ad_insight_breakdowns"
        ).df()
    frame["date_start"] = pd.to_datetime(frame["date_start"]).dt.date
    return frame


def assert_segments_sum_to_stored_totals(
    settings: Settings, breakdowns: pd.DataFrame, families: tuple[str, ...] = BREAKDOWN_FAMILIES
) -> None:
    assert not breakdowns.duplicated(KEY).any(), breakdowns[breakdowns.duplicated(KEY, keep=False)].head()
    for level in LEVELS:
        totals = stored_rows(settings.db_path, level)
        assert len(totals) > 0
        for family in families:
            mine = breakdowns[(breakdowns["entity_type"] == level) & (breakdowns["breakdown"] == family)]
            sums = mine.groupby(["entity_id", "date_start"], as_index=False)[list(ADDITIVE)].sum()
            merged = totals.merge(sums, on=["entity_id", "date_start"], how="outer", suffixes=("_total", "_seg"))
            missing = merged[merged[[f"{m}_seg" for m in ADDITIVE]].isna().any(axis=1)]
            extra = merged[merged[[f"{m}_total" for m in ADDITIVE]].isna().any(axis=1)]
            assert missing.empty and extra.empty, (level, family, missing.head(), extra.head())
            for metric in ADDITIVE:
                diff = (merged[f"{metric}_total"] - merged[f"{metric}_seg"]).abs()
                assert (diff < 0.005).all(), (level, family, metric)


def test_live_sync_stores_breakdowns_summing_to_the_totals_at_every_level(
    tmp_path: Path, emulator: GraphEmulator
) -> None:
    settings = live_settings(tmp_path / "data", emulator, insights_page_size=300)
    report = live_sync(settings)
    assert report.success and report.errors == [], report.errors
    since, until = window_of(report.to_dict())
    stored = stored_breakdowns(settings.db_path)
    assert set(stored["breakdown"]) == set(BREAKDOWN_FAMILIES)
    assert set(stored["entity_type"]) == set(LEVELS)
    assert set(stored["account_id"]) == {emulator.account.account_id}
    assert_segments_sum_to_stored_totals(settings, stored)
    # the live source reads every level: segments (and their reach) are exactly what Meta sent
    for level in LEVELS:
        for family in BREAKDOWN_FAMILIES:
            truth = emulator.breakdown_truth(level, family, since, until)
            mine = stored[(stored["entity_type"] == level) & (stored["breakdown"] == family)]
            merged = truth.merge(mine, on=["entity_id", "date_start", "key_1", "key_2"], how="outer", indicator=True)
            assert (merged["_merge"] == "both").all(), (level, family)
            assert (merged["reach_x"].astype("int64") == merged["reach_y"].astype("int64")).all()
    assert len(stored[stored["key_1"].str.lower() == "unknown"]) > 0

    again = live_sync(settings, SyncRequest(days_back=7, force=True))
    assert again.success and again.errors == []
    restored = stored_breakdowns(settings.db_path)
    assert len(restored) == len(stored)
    assert_segments_sum_to_stored_totals(settings, restored)


def test_a_family_meta_refuses_is_reported_and_the_others_are_stored(tmp_path: Path) -> None:
    with GraphEmulator(SHAPE, faults=Faults(refused_breakdowns=frozenset({"country"}))) as emulator:
        settings = live_settings(tmp_path / "data", emulator)
        report = live_sync(settings)
        refused = [e for e in report.errors if "country" in e and "1504041" in e]
        assert len(refused) == len(LEVELS), report.errors  # one line per level, not one per entity
        assert report.success  # the totals and the other families are stored: a refused family fails no sync
        assert all(report.counts(level).errors == 0 for level in LEVELS)
        stored = stored_breakdowns(settings.db_path)
        assert "country" not in set(stored["breakdown"])
        assert_segments_sum_to_stored_totals(settings, stored, ("age_gender", "placement", "device_platform"))
        # the totals are untouched by the refused family
        since, until = window_of(report.to_dict())
        for level in LEVELS:
            totals = stored_rows(settings.db_path, level)
            assert len(totals) == len(emulator.ground_truth(level, since, until))


def test_breakdowns_switched_off_send_no_breakdown_report(tmp_path: Path, emulator: GraphEmulator) -> None:
    settings = live_settings(tmp_path / "data", emulator, INSIGHTS_BREAKDOWNS="")
    report = live_sync(settings)
    assert report.success
    assert not [r for r in emulator.report_runs if r.params.get("breakdowns")]
    assert stored_breakdowns(settings.db_path).empty
    assert dt.date.fromisoformat(report.until) >= dt.date.fromisoformat(report.since)
