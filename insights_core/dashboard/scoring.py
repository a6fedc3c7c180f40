"""Efficiency score and peer comparison: pure functions of summed metrics.

Every ratio comes from sums (`insights_core.metrics`); an entity without a value for a metric
(zero denominator) is left out of that metric's comparison rather than counted as 0.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

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


def sorted_values(population: Iterable[float | None]) -> list[float]:
    """The values of `population` that exist (no None, no NaN), ascending: what `rank_in_sorted` ranks among."""
    return sorted(v for v in population if v is not None and not math.isnan(v))


def rank_in_sorted(value: float | None, ordered: Sequence[float]) -> float | None:
    """Percent (0–100) of `ordered` (from `sorted_values`) below `value`, ties counting half; None without a value
    or population. Bisection, so ranking every campaign of a period stays O(n log n)."""
    if value is None or math.isnan(value) or not ordered:
        return None
    below = bisect_left(ordered, value)
    equal = bisect_right(ordered, value) - below
    return (below + 0.5 * equal) / len(ordered) * 100.0


def percentile_rank(value: float | None, population: Iterable[float | None]) -> float | None:
    """Percent (0–100) of `population` below `value`, ties counting half; None without a value or population."""
    return rank_in_sorted(value, sorted_values(population))


def score_from_ranks(ranks: Mapping[str, float | None]) -> float | None:
    """The efficiency score from each metric's percentile rank (None: left out, the other weights scale up)."""
    weighted, weight = 0.0, 0.0
    for metric, w in EFFICIENCY_WEIGHTS.items():
        rank = ranks.get(metric)
        if rank is None:
            continue
        weighted += w * (100.0 - rank if metric in LOWER_IS_BETTER else rank)
        weight += w
    return weighted / weight if weight else None


def efficiency_score_among(totals: Mapping[str, float], population: Mapping[str, Sequence[float]]) -> float | None:
    """The entity's score from its sums, among `population`: per metric, every campaign's ratio from `sorted_values`."""
    mine = ratios_from_totals(totals)
    return score_from_ranks({m: rank_in_sorted(mine.get(m), population.get(m, ())) for m in EFFICIENCY_WEIGHTS})


def efficiency_scores_of(
    ratios: Sequence[Mapping[str, float | None]], among: Sequence[Mapping[str, float | None]] | None = None
) -> list[float | None]:
    """Each row's efficiency score within `among` (default: `ratios` itself; one mapping of ratios per campaign).

    `among` lets a caller score only the rows it shows, ranked among every campaign.
    """
    population = {m: sorted_values(r.get(m) for r in (ratios if among is None else among)) for m in EFFICIENCY_WEIGHTS}
    return [score_from_ranks({m: rank_in_sorted(r.get(m), population[m]) for m in EFFICIENCY_WEIGHTS}) for r in ratios]


def efficiency_score(totals: Mapping[str, float], population: pd.DataFrame) -> float | None:
    """The entity's score among `population` (one row of sums per campaign, the entity's own row included)."""
    peers = with_ratio_columns(population)
    return efficiency_score_among(
        totals, {m: sorted_values(peers[m].tolist() if m in peers else []) for m in EFFICIENCY_WEIGHTS}
    )


def efficiency_scores(population: pd.DataFrame) -> pd.Series:
    """Every row's efficiency score within `population` (index aligned); NaN where no metric has a value."""
    with_ratios = with_ratio_columns(population)
    present = [m for m in EFFICIENCY_WEIGHTS if m in with_ratios]
    # column names are strings
    rows = cast(list[dict[str, Any]], with_ratios[present].to_dict("records"))
    scores = efficiency_scores_of(rows)
    return pd.Series([np.nan if s is None else s for s in scores], index=population.index, dtype="float64")


def peer_comparison_rows(
    target_id: str,
    peers: Iterable[Mapping[str, Any]],
    id_column: str = "ad_id",
    metrics: tuple[str, ...] = PEER_METRICS,
) -> list[dict[str, Any]]:
    """How one entity compares with its peers (the other rows of `peers`, each holding one entity's sums).

    One row per metric: the entity's value, the peers' median, the difference from the median
    (absolute and in percent), the percentile of the value among the peers, and the percent of
    peers it does better than (for CPC, lower is better). Missing values are NaN.
    """
    mine: dict[str, float | None] | None = None
    others: list[dict[str, float | None]] = []
    for row in peers:
        ratios = ratios_from_totals(row)
        if str(row[id_column]) != str(target_id):
            others.append(ratios)
        elif mine is None:
            mine = ratios
    out = []
    for metric in metrics:
        mine_value = mine.get(metric) if mine is not None else None
        value = np.nan if mine_value is None else float(mine_value)
        population = sorted_values(r.get(metric) for r in others)
        median = float(np.median(population)) if population else np.nan
        rank = rank_in_sorted(None if np.isnan(value) else value, population)
        diff = value - median if not (np.isnan(value) or np.isnan(median)) else np.nan
        diff_pct = diff / abs(median) * 100.0 if not np.isnan(diff) and median != 0 else np.nan
        better = np.nan if rank is None else (100.0 - rank if metric in LOWER_IS_BETTER else rank)
        out.append(
            {
                "metric": metric,
                "value": value,
                "peer_median": median,
                "difference": diff,
                "difference_pct": diff_pct,
                "percentile": np.nan if rank is None else rank,
                "better_than_pct": better,
                "peers": len(population),
            }
        )
    return out


def peer_comparison(
    target_id: str, peers: pd.DataFrame, id_column: str = "ad_id", metrics: tuple[str, ...] = PEER_METRICS
) -> pd.DataFrame:
    """`peer_comparison_rows` as a frame, one row per metric (the Ad page's table)."""
    return pd.DataFrame(
        peer_comparison_rows(target_id, cast(list[dict[str, Any]], peers.to_dict("records")), id_column, metrics)
    )
