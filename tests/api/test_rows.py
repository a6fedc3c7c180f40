"""The API reads rows, not frames: its figures must still be the pages' frame functions' and the store's sums."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import duckdb
import pandas as pd
import pytest

from insights_core.api import views
from insights_core.api.reads import fetch_rows
from insights_core.api.serializers import totals_of_days
from insights_core.dashboard.alerts import performance_alerts
from insights_core.dashboard.periods import previous_period
from insights_core.dashboard.scoring import efficiency_scores
from insights_core.errors import NotFoundError
from insights_core.levels import LEVELS
from insights_core.metrics import with_ratio_columns
from insights_core.store import queries
from insights_core.store.snapshots import connect_snapshot, resolve_current_snapshot
from tests.api.helpers import build_api_data_dir


@pytest.fixture(scope="module")
def cur(tmp_path_factory: pytest.TempPathFactory) -> Iterator[duckdb.DuckDBPyConnection]:
    settings = build_api_data_dir(tmp_path_factory.mktemp("rows") / "data")
    with connect_snapshot(resolve_current_snapshot(settings.current_snapshot_link)) as con:
        yield con.cursor()


def _last_day(cur: duckdb.DuckDBPyConnection) -> dt.date:
    row = cur.execute("SELECT max(date_start) FROM meta_ad_insights").fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


@pytest.mark.parametrize("days", [1, 7, 30, 365])
def test_totals_of_days_equal_the_stores_sums_for_every_entity(cur: duckdb.DuckDBPyConnection, days: int) -> None:
    last = _last_day(cur)
    since = last - dt.timedelta(days=days - 1)
    checked = 0
    for level in LEVELS:
        found = cur.execute("SELECT DISTINCT entity_id FROM meta_ad_insights WHERE entity_type = ?", [level])
        ids = [r[0] for r in found.fetchall()]
        for entity_id in ids:
            daily = fetch_rows(cur, queries.entity_daily_query(level, entity_id, since, last))
            # exactly equal, not approximately: a client summing the store gets these numbers
            assert totals_of_days(daily) == queries.fetch_entity_totals(cur, level, entity_id, since, last)
            checked += 1
    assert checked > 20


def test_totals_of_no_days_are_zeros() -> None:
    assert totals_of_days([]) == {"spend": 0.0, "impressions": 0.0, "clicks": 0.0, "conversions": 0.0, "revenue": 0.0}


def test_top_campaigns_and_alerts_are_the_overview_pages(cur: duckdb.DuckDBPyConnection) -> None:
    last = _last_day(cur)
    period = views.Period(last - dt.timedelta(days=13), last)
    prev_since, prev_until = previous_period(period.since, period.until)
    status = views.SyncStatus(None, [])
    answer = views.overview_view(cur, period, None, (0, 0), status, top=500)
    # what pages/overview.py computes from the frame
    summary = queries.fetch_campaign_summary(cur, period.since, period.until, prev_since, prev_until)
    delivered = with_ratio_columns(summary)
    delivered = delivered[delivered["spend"] > 0].copy()
    delivered["efficiency_score"] = efficiency_scores(delivered)
    expected = delivered.sort_values("spend", ascending=False, kind="stable")
    top = answer["top_campaigns"]
    assert [c["campaign_id"] for c in top] == list(expected["campaign_id"]) and len(top) >= 3
    for campaign, (_, row) in zip(top, expected.iterrows()):
        for column in ("spend", "ctr", "cpc", "cpm", "roas", "efficiency_score"):
            value = row[column]
            assert campaign[column] == (None if pd.isna(value) else value), column
    assert answer["alerts"] == [
        {"severity": a.severity, "code": a.code, "message": a.message, "campaign_id": a.campaign_id}
        for a in performance_alerts(summary)
    ]


def test_performance_alerts_read_rows_as_the_frame() -> None:
    frame = pd.DataFrame(
        {
            "campaign_id": ["1", "2", "3"],
            "name": ["a", "b", "c"],
            "spend": [100.0, 100.0, 5.0],
            "impressions": [1000.0, 1000.0, 1000.0],
            "clicks": [10.0, 50.0, 10.0],
            "conversions": [1.0, 1.0, 1.0],
            "revenue": [100.0, 300.0, 1.0],
            "prev_spend": [100.0, 100.0, 100.0],
            "prev_impressions": [1000.0, 1000.0, 1000.0],
            "prev_clicks": [10.0, 50.0, 10.0],
            "prev_conversions": [1.0, 1.0, 1.0],
            "prev_revenue": [200.0, 300.0, 500.0],
        }
    )
    from_frame = performance_alerts(frame)
    assert [a.campaign_id for a in from_frame] == ["1"]  # "3" spent too little this period to be flagged
    assert performance_alerts(frame.to_dict("records")) == from_frame  # type: ignore[arg-type]


def test_kept_campaign_rows_answer_as_one_read_per_request(
    cur: duckdb.DuckDBPyConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    last = _last_day(cur)
    period = views.Period(last - dt.timedelta(days=6), last)
    population = views.fetch_campaign_population(cur, period)
    ads = views.fetch_ads_per_campaign(cur)
    kept = views.fetch_campaign_rows(cur)
    assert kept is not None and len(kept) == queries.fetch_campaign_counts(cur)[0]
    for campaign_id in kept:
        assert views.campaign_view(cur, campaign_id, period, population, ads, kept) == views.campaign_view(
            cur, campaign_id, period, population, ads, None
        )
        assert views.recent_view(cur, campaign_id, "campaign", period, kept) == views.recent_view(
            cur, campaign_id, "campaign", period
        )
    with pytest.raises(NotFoundError, match="unknown campaign id 42"):
        views.recent_view(cur, "42", "campaign", period, kept)
    monkeypatch.setattr(views, "MAX_KEPT_CAMPAIGNS", len(kept) - 1)
    assert views.fetch_campaign_rows(cur) is None  # a big account: each answer reads its own row
