"""Known shapes the stub can plant (INSIGHTS_STUB_SCENARIOS): an over-pacing campaign, a fatiguing ad
and an anomalous day, so the detectors can be shown and tested against something they must find.

Shapes are edits of the ads' daily arrays *before* the stub rolls ads up into ad sets and
campaigns, so additivity and the funnel (reach <= impressions, clicks <= impressions, conversions
<= clicks) still hold at every level. Targets are picked from the entity tree (pure in the ids):
- overpacing: the first active campaign with a campaign daily budget; all its ads deliver ~1.5x that
  budget on every day;
- fatigue: the active ad with the largest daily spend outside those campaigns; over the last 7
  days of the sync window its CTR falls 40%, its CPM rises 35% and its frequency is 3.2;
- anomaly: the active campaign with the largest expected daily spend besides the over-pacing one
  (budgets are of three kinds, so they do not compare); on the window's last day it spends 3x as much
  with the same conversions (CPA up, ROAS down).
The fatigue and anomaly shapes are anchored to the last day of each sync's window, so they are
always "now" in a demo: with scenarios on, numbers are a function of (id, date, window end).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from insights_core.models import EntityTree

SCENARIOS = ("overpacing", "fatigue", "anomaly")
OVERPACE_FACTOR = 1.5
FATIGUE_CTR, FATIGUE_CPM, FATIGUE_FREQUENCY = 0.6, 1.35, 3.2
ANOMALY_SPEND = 3.0
FLIGHT_SHARE = 0.35
"""Share of weeks an inactive ad delivers (the stub's flighting): its weight in expected spend."""

Arrays = dict[str, npt.NDArray[np.int64]]


@dataclass(frozen=True)
class ScenarioTargets:
    """Positions (in the stub's id order) of the entities each shape is planted on."""

    overpacing_campaign: int
    overpacing_factor: float
    fatigue_ad: int
    anomaly_campaign: int


def pick_targets(tree: EntityTree, ad_daily_budget: npt.NDArray[np.float64], ads_per_campaign: int) -> ScenarioTargets:
    """The entities each shape goes to. `ad_daily_budget`: each ad's typical daily spend in dollars."""
    c_active = (tree.campaigns["status"] == "ACTIVE").to_numpy()
    budgets = tree.campaigns["daily_budget"].astype("float64").to_numpy()
    ad_active = (tree.ads["status"] == "ACTIVE").to_numpy()
    active_campaigns = np.flatnonzero(c_active)
    with_budget = np.flatnonzero(c_active & (np.nan_to_num(budgets) > 0))
    if len(active_campaigns) < 2 or len(with_budget) == 0:
        raise ValueError("the stub scenarios need two active campaigns, one with a campaign daily budget")
    expected = (ad_daily_budget * np.where(ad_active, 1.0, FLIGHT_SHARE)).reshape(-1, ads_per_campaign).sum(axis=1)
    over = int(with_budget[0])
    factor = max(1.0, OVERPACE_FACTOR * budgets[over] / max(float(expected[over]), 0.01))
    others = [c for c in active_campaigns if c != over]
    anomaly = int(max(others, key=lambda c: (expected[c], -c)))
    ad_campaign = np.arange(len(ad_active)) // ads_per_campaign
    candidates = np.flatnonzero(ad_active & (ad_campaign != over) & (ad_campaign != anomaly))
    if len(candidates) == 0:
        raise ValueError("the stub scenarios need an active ad outside the over-pacing and anomaly campaigns")
    fatigue = int(candidates[np.argmax(ad_daily_budget[candidates])])
    return ScenarioTargets(over, factor, fatigue, anomaly)


def _scale(
    values: Arrays, rows: npt.NDArray[np.bool_], cols: npt.NDArray[np.bool_], names: tuple[str, ...], k: float
) -> None:
    cell = rows[:, None] & cols[None, :]
    for name in names:
        values[name] = np.where(cell, np.floor(values[name] * k), values[name]).astype(np.int64)


def plant_scenarios(
    values: Arrays,
    scenarios: tuple[str, ...],
    targets: ScenarioTargets,
    ads: npt.NDArray[np.int64],
    days: npt.NDArray[np.int64],
    anchor_day: int,
    ads_per_campaign: int,
) -> Arrays:
    """`values` (ads x days, money in cents) with the shapes planted. `ads`: the rows' ad positions;
    `days`: the columns' day numbers; `anchor_day`: the sync window's last day number."""
    out = {k: v.copy() for k, v in values.items()}
    campaign = ads // ads_per_campaign
    every_day = np.ones(len(days), dtype=bool)
    if "overpacing" in scenarios:
        rows = campaign == targets.overpacing_campaign
        volume = ("spend", "impressions", "reach", "clicks", "unique_clicks", "conversions", "revenue")
        _scale(out, rows, every_day, volume, targets.overpacing_factor)
    if "fatigue" in scenarios:
        rows, cols = ads == targets.fatigue_ad, (days > anchor_day - 7) & (days <= anchor_day)
        _scale(out, rows, cols, ("impressions",), 1 / FATIGUE_CPM)
        _scale(out, rows, cols, ("clicks", "unique_clicks", "conversions", "revenue"), FATIGUE_CTR / FATIGUE_CPM)
        cell = rows[:, None] & cols[None, :]
        tired_reach = np.maximum(np.floor(out["impressions"] / FATIGUE_FREQUENCY), 1).astype(np.int64)
        out["reach"] = np.where(cell & (out["impressions"] > 0), tired_reach, out["reach"])
    if "anomaly" in scenarios:
        rows, cols = campaign == targets.anomaly_campaign, days == anchor_day
        _scale(out, rows, cols, ("spend", "impressions", "reach", "clicks", "unique_clicks"), ANOMALY_SPEND)
    # the funnel, after flooring
    out["clicks"] = np.minimum(out["clicks"], out["impressions"])
    out["unique_clicks"] = np.minimum(out["unique_clicks"], out["clicks"])
    out["conversions"] = np.minimum(out["conversions"], out["clicks"])
    out["reach"] = np.minimum(out["reach"], out["impressions"])
    return out


_TARGETS: dict[tuple[object, ...], ScenarioTargets] = {}


def plant_stub_scenarios(
    values: Arrays,
    scenarios: tuple[str, ...],
    tree: EntityTree,
    ads_per_campaign: int,
    ads: npt.NDArray[np.int64],
    days: npt.NDArray[np.int64],
    window_end: object,
) -> Arrays:
    """The stub's hook: `values` with `scenarios` planted (targets picked once per account shape)."""
    import datetime as dt

    from insights_core.sources.stub import generate_ad_days, hash_ids  # the stub imports this module

    assert isinstance(window_end, dt.date)
    # budgets follow the stub's "today" (the season), so they are part of the key
    budgets = tuple(tree.campaigns["daily_budget"].astype("float64").fillna(0.0))
    key = (tree.account.account_id, len(tree.campaigns), len(tree.ads), ads_per_campaign, budgets)
    if key not in _TARGETS:
        # each ad's typical daily spend, from four weeks of the stub's own numbers (all delivering)
        sample = np.arange(20_000, 20_028, dtype=np.int64)
        ad_ids = tree.ads["ad_id"].astype(str).to_numpy()
        spend = generate_ad_days(hash_ids(ad_ids), sample, active=np.ones(len(ad_ids), dtype=bool))["spend"]
        _TARGETS[key] = pick_targets(tree, spend.mean(axis=1) / 100.0, ads_per_campaign)
    anchor = (window_end - dt.date(1970, 1, 1)).days
    return plant_scenarios(values, scenarios, _TARGETS[key], ads, days, anchor, ads_per_campaign)
