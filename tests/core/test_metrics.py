"""The metric formulas of `insights_core.metrics`, as readable tables: every ratio from sums, a zero or missing
denominator giving no value (None for a scalar, NaN in an array), and the change against a previous period."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from insights_core.metrics import RATIO_FORMULAS, pct_change, ratio, ratio_array, ratios_from_totals, with_ratio_columns

TOTALS = {"spend": 250.0, "impressions": 50_000, "clicks": 1_000, "conversions": 40, "revenue": 1_000.0}
"""One period's sums, with round answers for every formula."""


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("ctr", 2.0),  # 1,000 clicks / 50,000 impressions * 100
        ("cpc", 0.25),  # 250 spend / 1,000 clicks
        ("cpm", 5.0),  # 250 spend / 50,000 impressions * 1,000
        ("roas", 4.0),  # 1,000 revenue / 250 spend
        ("cost_per_conversion", 6.25),  # 250 spend / 40 conversions
        ("conversion_rate", 4.0),
    ],  # 40 conversions / 1,000 clicks * 100
)
def test_each_ratio_from_the_period_sums(name: str, expected: float) -> None:
    assert ratios_from_totals(TOTALS)[name] == pytest.approx(expected)


@pytest.mark.parametrize(
    ("numerator", "denominator", "scale", "expected"),
    [
        (1, 4, 1.0, 0.25),
        (3, 200, 100.0, 1.5),  # a percentage
        (7, 2_000, 1000.0, 3.5),  # per thousand
        (0, 5, 1.0, 0.0),  # a zero numerator is a real zero
        (5, 0, 1.0, None),  # a zero denominator gives no value, not 0 and not an error
        (0, 0, 100.0, None),
        (5, 0.0, 1.0, None),
        (None, 5, 1.0, None),  # a missing side gives no value
        (5, None, 1.0, None),
        (float("nan"), 5, 1.0, None),
        (5, float("nan"), 1.0, None),
        (-2, 4, 1.0, -0.5),
    ],  # a refund month: negative revenue keeps its sign
)
def test_ratio(numerator: float | None, denominator: float | None, scale: float, expected: float | None) -> None:
    result = ratio(numerator, denominator, scale)
    assert result == (None if expected is None else pytest.approx(expected))
    assert result is None or isinstance(result, float)


@pytest.mark.parametrize(
    ("totals", "empty"),
    [
        (
            {"spend": 10.0, "impressions": 0, "clicks": 0, "conversions": 0, "revenue": 0.0},
            {"ctr", "cpc", "cpm", "cost_per_conversion", "conversion_rate"},
        ),  # spent without delivering
        ({"spend": 0.0, "impressions": 100, "clicks": 5, "conversions": 1, "revenue": 20.0}, {"roas"}),
        ({"impressions": 100, "clicks": 5}, {"cpc", "cpm", "roas", "cost_per_conversion", "conversion_rate"}),
    ],
)
def test_ratios_without_a_denominator_give_no_value(totals: dict, empty: set[str]) -> None:
    ratios = ratios_from_totals(totals)
    assert set(ratios) == set(RATIO_FORMULAS)
    assert {name for name, value in ratios.items() if value is None} == empty


def test_ratios_come_from_sums_not_from_an_average_of_daily_ratios() -> None:
    days = [{"clicks": 1, "impressions": 10}, {"clicks": 99, "impressions": 9_990}]
    summed = {"clicks": sum(d["clicks"] for d in days), "impressions": sum(d["impressions"] for d in days)}
    assert ratios_from_totals(summed)["ctr"] == pytest.approx(1.0)  # 100 / 10,000 * 100
    averaged = sum(ratio(d["clicks"], d["impressions"], 100.0) for d in days) / len(days)  # type: ignore[operator]
    assert averaged == pytest.approx(5.4955, abs=1e-4)  # what the rule forbids: 10% and 0.991% averaged


@pytest.mark.parametrize(
    ("numerator", "denominator", "scale", "expected"),
    [
        ([1, 3, 5], [2, 4, 0], 1.0, [0.5, 0.75, math.nan]),
        ([10, np.nan, 1], [1_000, 5, np.nan], 100.0, [1.0, math.nan, math.nan]),
        ([0, 0], [0, 7], 1000.0, [math.nan, 0.0]),
        ([6], [3], 1.0, [2.0]),
    ],
)
def test_ratio_array_is_element_wise_with_nan_for_no_value(
    numerator: list, denominator: list, scale: float, expected: list[float]
) -> None:
    result = ratio_array(np.array(numerator, dtype=float), np.array(denominator, dtype=float), scale)
    assert result.dtype == np.float64
    np.testing.assert_allclose(result, expected, equal_nan=True)


def test_ratio_array_broadcasts_a_scalar_denominator() -> None:
    np.testing.assert_allclose(ratio_array(np.array([1.0, 2.0]), np.array(4.0), 100.0), [25.0, 50.0])


def test_with_ratio_columns_adds_every_ratio_per_row_and_leaves_the_input_alone() -> None:
    frame = pd.DataFrame(
        {
            "name": ["a", "b"],
            "spend": [250.0, 0.0],
            "impressions": [50_000, 0],
            "clicks": [1_000, 0],
            "conversions": [40, 0],
            "revenue": [1_000.0, 0.0],
        }
    )
    out = with_ratio_columns(frame)
    assert list(frame.columns) == ["name", "spend", "impressions", "clicks", "conversions", "revenue"]
    assert out.loc[0, list(RATIO_FORMULAS)].tolist() == pytest.approx([2.0, 0.25, 5.0, 4.0, 6.25, 4.0])
    assert out.loc[1, list(RATIO_FORMULAS)].isna().all()  # nothing delivered: no value, not 0


def test_with_ratio_columns_skips_a_ratio_whose_inputs_are_not_there() -> None:
    out = with_ratio_columns(pd.DataFrame({"clicks": [5], "impressions": [100]}))
    assert set(out.columns) == {"clicks", "impressions", "ctr"}
    assert out.loc[0, "ctr"] == pytest.approx(5.0)


@pytest.mark.parametrize(
    ("current", "previous", "expected"),
    [
        (150, 100, 50.0),
        (50, 100, -50.0),
        (100, 100, 0.0),
        (0, 100, -100.0),
        (-50, -100, 50.0),  # measured against the size of the previous value
        (10, 0, None),  # nothing to compare with
        (10, None, None),
        (None, 10, None),
        (float("nan"), 10, None),
        (10, float("nan"), None),
    ],
)
def test_pct_change(current: float | None, previous: float | None, expected: float | None) -> None:
    result = pct_change(current, previous)
    assert result == (None if expected is None else pytest.approx(expected))
