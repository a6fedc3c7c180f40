"""Efficiency score and peer comparison: pure functions of summed metrics.

Every ratio comes from sums (`insights_core.metrics`); an entity without a value for a metric
(zero denominator) is left out of that metric's comparison rather than counted as 0.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from insights_core.metrics import ratios_from_totals, with_ratio_columns

EFFICIENCY_WEIGHTS: dict[str, float] = {"roas": 0.50, "ctr": 0.20, "conversion_rate": 0.15, "cpc": 0.15}
LOWER_IS_BETTER = frozenset({"cpc", "cpm", "cost_per_conversion"})
PEER_METRICS = ("ctr", "cpc", "roas")

EFFICIENCY_HELP = (
    "Efficiency score (0–100) = weighted average of the campaign's percentile rank among all campaigns "
    "that delivered in the same period: ROAS 50%, CTR 20%, conversion rate (conversions / clicks) 15%, "
    "CPC 15% (lower is better, so its rank is reversed). Each ratio is computed from the period's sums. "
    "A metric the campaign has no value for (zero denominator) is left out and the other weights scale up; "
    "ties count half. 50 means typical for this account, 100 best on every metric."
)


def percentile_rank(value: float | None, population: Iterable[float | None]) -> float | None:
    """Percent (0–100) of `population` below `value`, ties counting half; None without a value or population."""
    if value is None or np.isnan(value):
        return None
    values = np.array([v for v in population if v is not None and not np.isnan(v)], dtype="float64")
    if values.size == 0:
        return None
    below = float((values < value).sum())
    equal = float((values == value).sum())
    return (below + 0.5 * equal) / values.size * 100.0


def efficiency_score(totals: Mapping[str, float], population: pd.DataFrame) -> float | None:
    """The entity's score among `population` (one row of sums per campaign, the entity's own row included)."""
    mine = ratios_from_totals(totals)
    peers = with_ratio_columns(population)
    weighted, weight = 0.0, 0.0
    for metric, w in EFFICIENCY_WEIGHTS.items():
        rank = percentile_rank(mine.get(metric), peers[metric].tolist() if metric in peers else [])
        if rank is None:
            continue
        weighted += w * (100.0 - rank if metric in LOWER_IS_BETTER else rank)
        weight += w
    return weighted / weight if weight else None


def efficiency_scores(population: pd.DataFrame) -> pd.Series:
    """Every row's efficiency score within `population` (index aligned), vectorized.

    Same numbers as `efficiency_score` row by row: a mid-rank percentile is (average rank - 0.5) / n.
    """
    with_ratios = with_ratio_columns(population)
    weighted = pd.Series(0.0, index=population.index)
    weight = pd.Series(0.0, index=population.index)
    for metric, w in EFFICIENCY_WEIGHTS.items():
        values = with_ratios[metric]
        rank = (values.rank(method="average") - 0.5) / values.notna().sum() * 100.0
        if metric in LOWER_IS_BETTER:
            rank = 100.0 - rank
        weighted += (w * rank).fillna(0.0)
        weight += values.notna() * w
    return (weighted / weight.where(weight > 0)).astype("float64")


def peer_comparison(
    target_id: str, peers: pd.DataFrame, id_column: str = "ad_id", metrics: tuple[str, ...] = PEER_METRICS
) -> pd.DataFrame:
    """How one entity compares with its peers (the other rows of `peers`, which hold sums per entity).

    One row per metric: the entity's value, the peers' median, the difference from the median
    (absolute and in percent), the percentile of the value among the peers, and the percent of
    peers it does better than (for CPC, lower is better). Missing values stay NaN.
    """
    with_ratios = with_ratio_columns(peers)
    mine_rows = with_ratios[with_ratios[id_column].astype(str) == str(target_id)]
    others = with_ratios[with_ratios[id_column].astype(str) != str(target_id)]
    rows = []
    for metric in metrics:
        value = float(mine_rows[metric].iloc[0]) if not mine_rows.empty else np.nan
        population = others[metric].dropna().to_numpy(dtype="float64")
        median = float(np.median(population)) if population.size else np.nan
        rank = percentile_rank(None if np.isnan(value) else value, population.tolist())
        diff = value - median if not (np.isnan(value) or np.isnan(median)) else np.nan
        diff_pct = diff / abs(median) * 100.0 if not np.isnan(diff) and median != 0 else np.nan
        better = np.nan if rank is None else (100.0 - rank if metric in LOWER_IS_BETTER else rank)
        rows.append(
            {
                "metric": metric,
                "value": value,
                "peer_median": median,
                "difference": diff,
                "difference_pct": diff_pct,
                "percentile": np.nan if rank is None else rank,
                "better_than_pct": better,
                "peers": int(population.size),
            }
        )
    return pd.DataFrame(rows)
