"""Creative fatigue per ad: the last 7 days against the 7 before.

Signals, each a flag with words: CTR down, CPM up, frequency high (warning and critical thresholds
from settings). CTR and CPM come from the week's sums. Frequency is impressions / reach, and reach
is not additive across days: the week's true frequency needs the week's de-duplicated reach, which
daily rows do not carry. What is computed is the **impressions-weighted mean of daily frequency**
(sum of impressions x daily frequency / sum of impressions), labelled so: it is at least the
sum of impressions / the sum of daily reach, and below the true weekly figure when people come back
on several days, so a high value here is never an artefact of adding reach.

An ad is fatigued only when its frequency is high *and* its CTR fell or its CPM rose: a CTR drop on
its own has many causes (an auction, a season) and is not called fatigue. Both weeks need the
minimum spend, so an ad that barely ran is not judged.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from insights_core.metrics import ratio

WINDOW_DAYS = 7


@dataclass(frozen=True)
class FatigueThresholds:
    ctr_drop_percent: tuple[float, float] = (15.0, 25.0)
    cpm_rise_percent: tuple[float, float] = (15.0, 25.0)
    frequency: tuple[float, float] = (2.2, 2.8)
    min_spend: float = 20.0


FATIGUE_COLUMNS = (
    "entity_id",
    "spend",
    "prev_spend",
    "ctr",
    "prev_ctr",
    "ctr_change",
    "cpm",
    "prev_cpm",
    "cpm_change",
    "frequency",
    "severity",
    "flags",
)


def _week_sums(daily: pd.DataFrame, start: dt.date, end: dt.date) -> pd.DataFrame:
    dates = pd.to_datetime(daily["date"])
    week = daily[(dates >= pd.Timestamp(start)) & (dates <= pd.Timestamp(end))].copy()
    reach = week["reach"].astype("float64")
    week["freq_x_impr"] = np.where(reach > 0, week["impressions"] ** 2 / reach.where(reach > 0, 1.0), 0.0)
    return week.groupby("entity_id")[["spend", "impressions", "clicks", "freq_x_impr"]].sum()


def _level(value: float | None, thresholds: tuple[float, float]) -> str | None:
    if value is None or np.isnan(value):
        return None
    if value >= thresholds[1] - 1e-9:
        return "critical"
    if value >= thresholds[0] - 1e-9:
        return "warning"
    return None


def creative_fatigue(
    daily: pd.DataFrame, as_of: dt.date, thresholds: FatigueThresholds = FatigueThresholds()
) -> pd.DataFrame:
    """Fatigued ads (rows of FATIGUE_COLUMNS), critical first; `flags` lists each signal in words.

    `daily`: ad-level rows (entity_id, date, spend, impressions, clicks, reach) covering the 14 days
    ending `as_of`.
    """
    last_start = as_of - dt.timedelta(days=WINDOW_DAYS - 1)
    prev_end = last_start - dt.timedelta(days=1)
    prev_start = prev_end - dt.timedelta(days=WINDOW_DAYS - 1)
    now, before = _week_sums(daily, last_start, as_of), _week_sums(daily, prev_start, prev_end)
    return fatigue_from_week_sums(now, before, thresholds)


def fatigue_from_week_sums(
    now: pd.DataFrame, before: pd.DataFrame, thresholds: FatigueThresholds = FatigueThresholds()
) -> pd.DataFrame:
    """`creative_fatigue` from each week's sums per ad (index entity_id; spend, impressions, clicks and
    freq_x_impr, the sum of impressions x daily frequency), as `reads.fetch_ad_two_week_sums` gives them."""
    with np.errstate(divide="ignore", invalid="ignore"):
        frequency_all = now["freq_x_impr"].to_numpy() / now["impressions"].to_numpy()
    # frequency is the gate: only ads over the warning level are looked at further (a few, usually none),
    # and it is taken before the join so that the join is over those few
    gate = (frequency_all >= thresholds.frequency[0] - 1e-9) & (now["spend"].to_numpy() >= thresholds.min_spend)
    both = now[gate].join(before.add_suffix("_prev"), how="inner")
    both = both[both["spend_prev"] >= thresholds.min_spend]
    rows = []
    for entity_id, r in both.iterrows():
        ctr, prev_ctr = ratio(r["clicks"], r["impressions"], 100), ratio(r["clicks_prev"], r["impressions_prev"], 100)
        cpm, prev_cpm = ratio(r["spend"], r["impressions"], 1000), ratio(r["spend_prev"], r["impressions_prev"], 1000)
        frequency = ratio(r["freq_x_impr"], r["impressions"])
        ctr_drop = None if ctr is None or not prev_ctr else (1 - ctr / prev_ctr) * 100
        cpm_rise = None if cpm is None or not prev_cpm else (cpm / prev_cpm - 1) * 100
        signals = {
            "ctr": _level(ctr_drop, thresholds.ctr_drop_percent),
            "cpm": _level(cpm_rise, thresholds.cpm_rise_percent),
            "frequency": _level(frequency, thresholds.frequency),
        }
        if signals["frequency"] is None or (signals["ctr"] is None and signals["cpm"] is None):
            continue
        flags = [
            f"frequency {frequency:.2f} (impressions-weighted daily mean, last 7 days) ≥ "
            f"{thresholds.frequency[1 if signals['frequency'] == 'critical' else 0]:g} ({signals['frequency']})"
        ]
        if signals["ctr"]:
            flags.append(f"CTR down {ctr_drop:.0f}% ({prev_ctr:.2f}% → {ctr:.2f}%, {signals['ctr']})")
        if signals["cpm"]:
            flags.append(f"CPM up {cpm_rise:.0f}% ({prev_cpm:.2f} → {cpm:.2f}, {signals['cpm']})")
        # critical when the audience is saturated and the response has fallen hard
        severity = (
            "critical"
            if signals["frequency"] == "critical" and "critical" in (signals["ctr"], signals["cpm"])
            else "warning"
        )
        rows.append(
            {
                "entity_id": entity_id,
                "spend": r["spend"],
                "prev_spend": r["spend_prev"],
                "ctr": ctr,
                "prev_ctr": prev_ctr,
                "ctr_change": None if ctr_drop is None else -ctr_drop,
                "cpm": cpm,
                "prev_cpm": prev_cpm,
                "cpm_change": cpm_rise,
                "frequency": frequency,
                "severity": severity,
                "flags": flags,
            }
        )
    out = pd.DataFrame(rows, columns=list(FATIGUE_COLUMNS))
    if out.empty:
        return out
    rank = out["severity"].map({"critical": 0, "warning": 1})
    # entity_id breaks ties: the store's grouped read comes back in any order, and the alerts, the page and
    # the export must not reorder between two runs over the same rows
    ordered = out.assign(_r=rank).sort_values(
        ["_r", "frequency", "entity_id"], ascending=[True, False, True], kind="stable"
    )
    return ordered.drop(columns="_r").reset_index(drop=True)
