"""Efficiency score, peer comparison, number formatting and page input checks: pure, table-driven."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from insights_core.dashboard import formatting, inputs, periods, scoring
from insights_core.errors import InputError
from insights_core.sync_requests import parse_days_back


@pytest.mark.parametrize(
    ("value", "population", "expected"),
    [
        (5, [1, 5, 9], 50.0),
        (9, [1, 5, 9], 500 / 6),
        (1, [1], 50.0),
        (3, [1, 2], 100.0),
        (0, [1, 2], 0.0),
        (2, [2, 2, 2, 2], 50.0),
        (None, [1, 2], None),
        (float("nan"), [1], None),
        (1, [], None),
        (1, [None, float("nan")], None),
    ],
)
def test_percentile_rank_counts_ties_half(value, population, expected) -> None:
    result = scoring.percentile_rank(value, population)
    assert result == (None if expected is None else pytest.approx(expected))


def sums(**rows: tuple[float, float, float, float, float]) -> pd.DataFrame:
    """name -> (spend, impressions, clicks, conversions, revenue)."""
    return pd.DataFrame(
        [
            {"campaign_id": name, "spend": s, "impressions": i, "clicks": c, "conversions": v, "revenue": r}
            for name, (s, i, c, v, r) in rows.items()
        ]
    )


def test_efficiency_score_rewards_the_best_campaign_on_every_metric() -> None:
    table = sums(best=(100, 1000, 50, 10, 500), mid=(100, 1000, 30, 5, 200), worst=(100, 1000, 10, 1, 50))
    scores = {row["campaign_id"]: scoring.efficiency_score(row, table) for row in table.to_dict("records")}
    # best: highest ROAS, CTR, conversion rate and lowest CPC -> 5/6 of the way on each (mid-rank of 3)
    assert scores["best"] == pytest.approx(500 / 6)
    assert scores["mid"] == pytest.approx(50.0)
    assert scores["worst"] == pytest.approx(100 / 6)
    vectorized = scoring.efficiency_scores(table)
    assert vectorized.tolist() == pytest.approx([scores["best"], scores["mid"], scores["worst"]])


def test_efficiency_score_leaves_out_metrics_without_a_value() -> None:
    # no clicks: CTR is 0 (a value), CPC and conversion rate have none, ROAS is 0
    table = sums(a=(100, 1000, 0, 0, 0), b=(100, 1000, 10, 1, 100))
    score = scoring.efficiency_score(table.iloc[0].to_dict(), table)
    # only ROAS (rank 25) and CTR (rank 25) count: weights 0.5 and 0.2
    assert score == pytest.approx(25.0)
    assert scoring.efficiency_scores(table).iloc[0] == pytest.approx(25.0)
    assert (
        scoring.efficiency_score({"spend": 0, "impressions": 0, "clicks": 0, "conversions": 0, "revenue": 0}, table)
        is None
    )


def test_efficiency_score_stays_within_0_and_100() -> None:
    rng = np.random.default_rng(7)
    table = sums(**{f"c{i}": tuple(rng.integers(0, 1000, 5).astype(float)) for i in range(40)})
    scores = scoring.efficiency_scores(table).dropna()
    assert ((scores >= 0) & (scores <= 100)).all() and len(scores) > 30


def peers() -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"ad_id": "me", "spend": 10.0, "impressions": 1000, "clicks": 20, "conversions": 2, "revenue": 30.0},
            {"ad_id": "p1", "spend": 10.0, "impressions": 1000, "clicks": 10, "conversions": 1, "revenue": 10.0},
            {"ad_id": "p2", "spend": 20.0, "impressions": 1000, "clicks": 40, "conversions": 1, "revenue": 20.0},
            {"ad_id": "p3", "spend": 5.0, "impressions": 1000, "clicks": 10, "conversions": 0, "revenue": 0.0},
            {"ad_id": "dark", "spend": 0.0, "impressions": 0, "clicks": 0, "conversions": 0, "revenue": 0.0},
        ]
    )


def test_peer_comparison_from_sums() -> None:
    table = scoring.peer_comparison("me", peers()).set_index("metric")
    # ctr: me 2%; peers 1%, 4%, 1% (dark has no value) -> median 1%, 2 of 3 below
    assert table.loc["ctr", "value"] == pytest.approx(2.0)
    assert table.loc["ctr", "peer_median"] == pytest.approx(1.0)
    assert table.loc["ctr", "difference"] == pytest.approx(1.0)
    assert table.loc["ctr", "difference_pct"] == pytest.approx(100.0)
    assert table.loc["ctr", "percentile"] == pytest.approx(200 / 3)
    assert table.loc["ctr", "peers"] == 3
    # cpc: me 0.5; peers 1.0, 0.5, 0.5 -> median 0.5; lower is better
    assert table.loc["cpc", "peer_median"] == pytest.approx(0.5)
    assert table.loc["cpc", "percentile"] == pytest.approx(100 / 3)
    assert table.loc["cpc", "better_than_pct"] == pytest.approx(200 / 3)
    # roas: me 3; peers 1, 1, 0 -> best of all
    assert table.loc["roas", "percentile"] == pytest.approx(100.0)
    assert table.loc["roas", "difference"] == pytest.approx(2.0)


def test_peer_comparison_without_peers_or_values_gives_nan() -> None:
    alone = scoring.peer_comparison("me", peers().iloc[:1]).set_index("metric")
    assert alone["peer_median"].isna().all() and alone["percentile"].isna().all()
    assert (alone["peers"] == 0).all()
    dark = scoring.peer_comparison("dark", peers()).set_index("metric")
    assert dark["value"].isna().all() and dark["percentile"].isna().all()


@pytest.mark.parametrize(
    ("value", "kind", "expected"),
    [
        (1234.5, "money", "$1,234.50"),
        (-3.2, "money", "-$3.20"),
        (None, "money", "—"),
        (float("nan"), "money", "—"),
        (12345.0, "int", "12,345"),
        (np.nan, "int", "—"),
        (3.14159, "percent", "3.14%"),
        (1.812, "ratio", "1.81"),
        (12.0, "number", "12"),
        (12.5, "number", "12.50"),
        (-12.34, "change", "-12.3%"),
        (None, "change", "—"),
        (pd.NA, "ratio", "—"),
        (dt.date(2026, 1, 2), "date", "2026-01-02"),
    ],
)
def test_format_value(value, kind, expected) -> None:
    assert formatting.format_value(value, kind, "USD") == expected


@pytest.mark.parametrize(
    "change, text",
    [(12.345, "+12.3%"), (-7.25, "-7.2%"), (-0.04, "+0.0%"), (0.0, "+0.0%"), (float("nan"), None), (None, None)],
)
def test_format_change(change, text) -> None:
    assert formatting.format_change(change) == text


def test_money_without_a_known_symbol_shows_the_currency_code() -> None:
    assert formatting.format_money(10, "SEK") == "10.00 SEK"


def test_display_frame_formats_known_columns_and_dashes_missing_values() -> None:
    frame = pd.DataFrame({"name": ["a", None], "spend": [1.0, 0.0], "roas": [2.0, np.nan], "ctr": [1.5, np.nan]})
    shown = formatting.display_frame(frame)
    assert list(shown.columns) == ["Name", "Spend", "ROAS", "CTR"]
    assert shown.iloc[1].tolist() == ["—", "$0.00", "—", "—"]
    assert shown.iloc[0].tolist() == ["a", "$1.00", "2.00×", "1.50%"]


@pytest.mark.parametrize(("seconds", "text"), [(5.25, "5.2 s"), (125, "2 min 05 s"), (3725, "1 h 02 min"), (None, "—")])
def test_format_duration(seconds, text) -> None:
    assert formatting.format_duration(seconds) == text


@pytest.mark.parametrize("raw", ["1; DROP TABLE campaigns", "abc", "12 34", "' OR 1=1 --", "1,2"])
def test_entity_ids_with_anything_but_digits_are_refused(raw: str) -> None:
    with pytest.raises(InputError):
        inputs.parse_entity_id(raw, "campaign")


def test_entity_id_is_trimmed_and_empty_input_asks_for_one() -> None:
    assert inputs.parse_entity_id(" 120210000000000001 ", "ad") == "120210000000000001"
    with pytest.raises(InputError, match="enter the ad set id"):
        inputs.parse_entity_id("  ", "adset")


@pytest.mark.parametrize(
    ("raw", "ok"),
    [
        ("1", 1),
        (365, 365),
        (30.0, 30),
        ("0", None),
        ("366", None),
        ("-5", None),
        ("ten", None),
        (2.5, None),
        (True, None),
        ("", None),
    ],
)
def test_days_back_from_1_to_365(raw, ok) -> None:
    if ok is None:
        with pytest.raises(InputError, match="days back"):
            parse_days_back(raw, 365)
    else:
        assert parse_days_back(raw, 365) == ok


def test_periods() -> None:
    first, last = dt.date(2026, 1, 1), dt.date(2026, 3, 31)
    assert periods.default_range(first, last) == (dt.date(2026, 3, 2), last)
    assert periods.default_range(dt.date(2026, 3, 20), last) == (dt.date(2026, 3, 20), last)
    assert periods.previous_period(dt.date(2026, 3, 2), last) == (dt.date(2026, 1, 31), dt.date(2026, 3, 1))
    assert periods.days_back_range(last, 1) == (last, last)
    assert math.isclose((periods.days_back_range(last, 365)[1] - periods.days_back_range(last, 365)[0]).days, 364)
