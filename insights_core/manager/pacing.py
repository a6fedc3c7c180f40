"""Budget pacing of campaigns and ad sets with a daily budget, over the calendar month.

A daily budget is a promise about a month as much as a day: Meta may spend up to 75% more than the
budget on a given day and evens out over the week, so a single day says little. The budget's period
here is the calendar month holding the last stored day (`as_of`, counted as complete):
- period budget = daily budget x days in the month; expected spend by now = daily budget x days elapsed;
- status compares spend to date with the expected spend: over / under when it is more than the
  tolerance (default ±15%) away, on pace otherwise;
- projected spend at the month's end = spend to date + remaining days at the recent daily rate (the
  mean of the last 7 days, days without delivery counting as 0), with an 80% interval that assumes
  the remaining days vary like those 7 days did (normal approximation, independent days);
- needed per day = what is left of the period budget / remaining days (0 when already spent).

Lifetime budgets are left out: the store has no campaign or ad set start and end times, and a
lifetime budget's pace needs both (the stub gives none, and the live transform does not read them).
"""

from __future__ import annotations

import calendar
import datetime as dt

import numpy as np
import pandas as pd

RECENT_DAYS = 7
Z80 = 1.2815515655446004
"""The standard normal's 90th percentile: a central 80% interval is mean ± Z80 sd."""

PACING_COLUMNS = (
    "entity_id",
    "name",
    "campaign_id",
    "daily_budget",
    "period_start",
    "period_end",
    "period_budget",
    "spend_to_date",
    "expected_to_date",
    "deviation",
    "status",
    "projected_spend",
    "projected_low",
    "projected_high",
    "needed_per_day",
)


def month_period(as_of: dt.date) -> tuple[dt.date, dt.date]:
    """The calendar month holding `as_of`: its first and last day."""
    last = calendar.monthrange(as_of.year, as_of.month)[1]
    return as_of.replace(day=1), as_of.replace(day=last)


def pacing_status(deviation: float | None, tolerance_percent: float) -> str:
    """'over', 'under' or 'on pace' for spend to date / expected - 1 (None: nothing expected yet)."""
    if deviation is None or np.isnan(deviation):
        return "no budget"
    if deviation * 100 > tolerance_percent + 1e-9:
        return "over"
    if deviation * 100 < -tolerance_percent - 1e-9:
        return "under"
    return "on pace"


def budget_pacing(
    entities: pd.DataFrame, daily: pd.DataFrame, as_of: dt.date, tolerance_percent: float = 15.0
) -> pd.DataFrame:
    """Pacing of each active entity with a daily budget, worst deviation (in either direction) first.

    `entities`: entity_id, name, campaign_id, effective_status, daily_budget (from `reads.fetch_entities`).
    `daily`: entity_id, date, spend rows covering at least the month and the 7 days before `as_of`
    (days without a row had no delivery). Paused entities are left out: they are not meant to spend.
    """
    budgeted = entities[(entities["effective_status"] == "ACTIVE") & (entities["daily_budget"].fillna(0) > 0)]
    if budgeted.empty:
        return pd.DataFrame(columns=list(PACING_COLUMNS))
    start, end = month_period(as_of)
    days_in_period = (end - start).days + 1
    elapsed = (as_of - start).days + 1
    remaining = days_in_period - elapsed

    dates = pd.to_datetime(daily["date"])
    spend = daily["spend"].astype("float64")
    in_period = (dates >= pd.Timestamp(start)) & (dates <= pd.Timestamp(as_of))
    to_date = spend[in_period].groupby(daily.loc[in_period, "entity_id"]).sum()

    recent_days = pd.date_range(end=pd.Timestamp(as_of), periods=RECENT_DAYS, freq="D")
    recent = daily[dates.isin(recent_days)]
    grid = (
        recent.assign(date=pd.to_datetime(recent["date"]))
        .groupby(["entity_id", "date"])["spend"]
        .sum()
        .unstack("date")
        .reindex(columns=recent_days)
        .fillna(0.0)
    )
    rate = grid.mean(axis=1)
    spread = grid.std(axis=1, ddof=1) if RECENT_DAYS > 1 else grid.mean(axis=1) * 0

    out = budgeted[["entity_id", "name", "campaign_id", "daily_budget"]].copy()
    ids = out["entity_id"]
    out["period_start"], out["period_end"] = start, end
    out["period_budget"] = out["daily_budget"] * days_in_period
    out["spend_to_date"] = ids.map(to_date).fillna(0.0).to_numpy()
    out["expected_to_date"] = out["daily_budget"] * elapsed
    out["deviation"] = out["spend_to_date"] / out["expected_to_date"] - 1.0
    out["status"] = [pacing_status(d, tolerance_percent) for d in out["deviation"]]
    day_rate = ids.map(rate).fillna(0.0).to_numpy()
    day_sd = ids.map(spread).fillna(0.0).to_numpy()
    out["projected_spend"] = out["spend_to_date"] + remaining * day_rate
    half_width = Z80 * day_sd * np.sqrt(remaining)
    out["projected_low"] = np.maximum(out["spend_to_date"], out["projected_spend"] - half_width)
    out["projected_high"] = out["projected_spend"] + half_width
    left = np.maximum(out["period_budget"] - out["spend_to_date"], 0.0)
    out["needed_per_day"] = left / remaining if remaining > 0 else np.nan
    order = out["deviation"].abs().sort_values(ascending=False, kind="stable").index
    return out.loc[order, list(PACING_COLUMNS)].reset_index(drop=True)


def explain_pacing(row: pd.Series, currency: str = "") -> str:
    """One sentence a manager can act on, e.g. 'spent 4,210 of 3,100 expected by now (+36%) ...'."""
    unit = f" {currency}" if currency else ""
    return (
        f"spent {row['spend_to_date']:,.0f}{unit} of {row['expected_to_date']:,.0f}{unit} expected by now "
        f"({row['deviation']:+.0%}); projected {row['projected_spend']:,.0f}{unit} "
        f"(80%: {row['projected_low']:,.0f}–{row['projected_high']:,.0f}) against a month's budget of "
        f"{row['period_budget']:,.0f}{unit}"
        + (f"; {row['needed_per_day']:,.0f}{unit} a day lands on budget" if not pd.isna(row["needed_per_day"]) else "")
    )
