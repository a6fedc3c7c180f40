"""Pure metric math: ratios from sums, never averages of daily ratios.

No I/O, no Streamlit, no DuckDB. A zero (or missing) denominator gives no value: `None` for a
scalar, NaN in a frame column, and pages show it as "—". Every function here is the one place
its formula is written.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

Number = float | int
RATIO_FORMULAS: dict[str, tuple[str, str, float]] = {
    "ctr": ("clicks", "impressions", 100.0),
    "cpc": ("spend", "clicks", 1.0),
    "cpm": ("spend", "impressions", 1000.0),
    "roas": ("revenue", "spend", 1.0),
    "cost_per_conversion": ("spend", "conversions", 1.0),
    "conversion_rate": ("conversions", "clicks", 100.0),
}
"""name -> (numerator, denominator, scale). CTR and conversion rate are percentages."""


def ratio(numerator: Number | None, denominator: Number | None, scale: float = 1.0) -> float | None:
    """`numerator / denominator * scale`, or None when either side is missing or the denominator is 0."""
    if numerator is None or denominator is None:
        return None
    # x != x only for NaN: the API computes this for every row it answers, so no isinstance checks
    if denominator == 0 or numerator != numerator or denominator != denominator:
        return None
    return float(numerator) / float(denominator) * scale


def ratios_from_totals(totals: Mapping[str, Number | None]) -> dict[str, float | None]:
    """Every ratio in RATIO_FORMULAS computed from summed totals (spend, clicks, ...)."""
    return {name: ratio(totals.get(num), totals.get(den), scale) for name, (num, den, scale) in RATIO_FORMULAS.items()}


def with_ratio_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of `frame` (one row per group of summed values) with every ratio column added.

    Use it after grouping and summing, so each ratio comes from the group's sums.
    """
    out = frame.copy()
    for name, (num, den, scale) in RATIO_FORMULAS.items():
        if num in out.columns and den in out.columns:
            out[name] = ratio_array(out[num].to_numpy(), out[den].to_numpy(), scale)
    return out


def ratio_array(numerator: np.ndarray, denominator: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """Element-wise ratio as float64 with NaN where the denominator is 0 or missing."""
    num = np.asarray(numerator, dtype="float64")
    den = np.asarray(denominator, dtype="float64")
    out = np.full(np.broadcast(num, den).shape, np.nan)
    ok = (den != 0) & ~np.isnan(den) & ~np.isnan(num)
    np.divide(num, den, out=out, where=ok)
    return out * scale


def pct_change(current: Number | None, previous: Number | None) -> float | None:
    """Change from `previous` to `current` in percent; None when there is no previous value to compare."""
    if current is None or previous is None or _is_nan(current) or _is_nan(previous) or previous == 0:
        return None
    return (float(current) - float(previous)) / abs(float(previous)) * 100.0


def _is_nan(value: Number) -> bool:
    return isinstance(value, float) and math.isnan(value)
