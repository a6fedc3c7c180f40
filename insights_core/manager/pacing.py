"""Budget pacing of campaigns and ad sets with a daily or a lifetime budget.

A daily budget is a promise about a month as much as a day: Meta may spend up to 75% more than the
budget on a given day and evens out over the week, so a single day says little. Its period here is the
calendar month holding the last stored day (`as_of`, counted as complete). A lifetime budget's period
is its entity's own schedule, from the day of `start_time` to the day of `stop_time` (times are the
store's naive UTC; the last day is the one the stop falls in, a stop at midnight ending the day before).
For both, in whole days:
- period budget = daily budget x days in the period, or the lifetime budget;
  expected spend by now = period budget x days elapsed / days in the period;
- status compares spend to date (from the period's first day) with the expected spend: over / under
  when it is more than the tolerance (default ±15%) away, on pace otherwise;
- projected spend at the period's end = spend to date + remaining days at the recent daily rate (the
  mean of the last 7 days, days without delivery counting as 0), with an 80% interval that assumes
  the remaining days vary like those 7 days did (normal approximation, independent days);
- needed per day = what is left of the period budget / remaining days (NaN on the last day).

A lifetime budget without a stop time has no period to pace against: it is listed with the status
"no end date" (and its spend since it started), without expected or projected figures. A lifetime
period that has not started by `as_of`, or ended before it, is left out, like paused entities: nothing
is meant to be spent now.
"""

from __future__ import annotations

import calendar
import datetime as dt

import numpy as np
import pandas as pd

RECENT_DAYS = 7
Z80 = 1.2815515655446004
"""The standard normal's 90th percentile: a central 80% interval is mean ± Z80 sd."""
NO_END_DATE = "no end date"

PACING_COLUMNS = (
    "entity_id",
    "name",
    "campaign_id",
    "budget_type",
    "budget",
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
"""`budget_type` is 'daily' or 'lifetime'; `budget` is the amount as set (a day's, or the whole)."""
_SCHEDULE = ("daily_budget", "lifetime_budget", "start_time", "stop_time")


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


def _column(frame: pd.DataFrame, name: str, dtype: str) -> np.ndarray:
    """A column as a numpy array of `dtype`, all missing when the frame has no such column."""
    if name not in frame.columns:
        return np.full(len(frame), np.nan if dtype == "float64" else np.datetime64("NaT"), dtype=dtype)
    return frame[name].to_numpy(dtype=dtype, na_value=np.nan if dtype == "float64" else np.datetime64("NaT"))


def _budgeted(entities: pd.DataFrame, as_of: dt.date) -> pd.DataFrame:
    """Active entities with a budget whose period holds `as_of`: entity_id, name, campaign_id,
    budget_type, budget, and period_start / period_end as Timestamps (NaT where a time is missing).

    Numpy throughout: the rules run this on every ad set of an account after each sync."""
    active = entities["effective_status"].to_numpy(dtype=object) == "ACTIVE"
    daily_budget = np.nan_to_num(_column(entities, "daily_budget", "float64"))
    lifetime_budget = np.nan_to_num(_column(entities, "lifetime_budget", "float64"))
    first = _column(entities, "start_time", "datetime64[ns]").astype("datetime64[D]")
    last = (_column(entities, "stop_time", "datetime64[ns]") - np.timedelta64(1, "ns")).astype("datetime64[D]")
    day = np.datetime64(as_of, "D")
    daily = active & (daily_budget > 0)
    lifetime = active & ~daily & (lifetime_budget > 0)
    running = lifetime & ~(first > day) & ~(last < day)  # NaT compares False: a missing time never excludes
    keep = daily | running
    is_daily = daily[keep]
    month_start, month_end = (np.datetime64(d, "D") for d in month_period(as_of))
    out: pd.DataFrame = entities.loc[keep, ["entity_id", "name", "campaign_id"]].reset_index(drop=True)
    out["budget_type"] = np.where(is_daily, "daily", "lifetime")
    out["budget"] = np.where(is_daily, daily_budget[keep], lifetime_budget[keep])
    out["period_start"] = pd.to_datetime(np.where(is_daily, month_start, first[keep]))
    out["period_end"] = pd.to_datetime(np.where(is_daily, month_end, last[keep]))
    return out


def pacing_since(entities: pd.DataFrame, as_of: dt.date) -> dt.date:
    """The first day `budget_pacing` needs daily rows from: the month's, the recent week's, or the
    earliest start of a lifetime period running at `as_of`."""
    earliest = pd.Timestamp(min(as_of.replace(day=1), as_of - dt.timedelta(days=RECENT_DAYS)))
    starts = _budgeted(entities, as_of)["period_start"].dropna()
    return min(earliest, starts.min() if len(starts) else earliest).date()


def budget_pacing(
    entities: pd.DataFrame, daily: pd.DataFrame, as_of: dt.date, tolerance_percent: float = 15.0
) -> pd.DataFrame:
    """Pacing of each active entity with a budget, worst deviation (in either direction) first.

    `entities`: entity_id, name, campaign_id, effective_status, daily_budget and, when known,
    lifetime_budget, start_time, stop_time (from `reads.fetch_entities`; a daily budget wins when both
    are set). `daily`: entity_id, date, spend rows from `pacing_since(entities, as_of)` to `as_of` (days
    without a row had no delivery). Paused entities are left out: they are not meant to spend.
    """
    out = _budgeted(entities, as_of)
    if out.empty:
        return pd.DataFrame(columns=list(PACING_COLUMNS))
    ids = out["entity_id"]
    dates = pd.to_datetime(daily["date"])
    spend = daily["spend"].astype("float64")
    # each row's period start by position (a map of 80,000 ids took ~4x as long); NaT: not paced, nothing
    position = pd.Index(ids).get_indexer(daily["entity_id"])
    starts = np.append(out["period_start"].to_numpy("datetime64[ns]"), np.datetime64("NaT", "ns"))[position]
    day = dates.to_numpy("datetime64[ns]")
    in_period = (day >= starts) & (day <= np.datetime64(as_of, "ns"))
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

    known = out["period_start"].notna().to_numpy()
    paced = known & out["period_end"].notna().to_numpy()
    total = ((out["period_end"] - out["period_start"]).dt.days + 1).to_numpy(dtype="float64")
    elapsed = ((pd.Timestamp(as_of) - out["period_start"]).dt.days + 1).to_numpy(dtype="float64")
    remaining = total - elapsed
    is_daily = (out["budget_type"] == "daily").to_numpy()
    out["period_budget"] = np.where(is_daily, out["budget"] * total, np.where(paced, out["budget"], np.nan))
    out["spend_to_date"] = np.where(known, ids.map(to_date).fillna(0.0).to_numpy(), np.nan)
    out["expected_to_date"] = out["period_budget"] * elapsed / total
    out["deviation"] = out["spend_to_date"] / out["expected_to_date"] - 1.0
    out["status"] = [
        pacing_status(d, tolerance_percent) if ok else NO_END_DATE if has_start else "no start date"
        for d, ok, has_start in zip(out["deviation"], paced, known)
    ]
    day_rate = ids.map(rate).fillna(0.0).to_numpy()
    day_sd = ids.map(spread).fillna(0.0).to_numpy()
    out["projected_spend"] = out["spend_to_date"] + remaining * day_rate
    half_width = Z80 * day_sd * np.sqrt(remaining)
    out["projected_low"] = np.maximum(out["spend_to_date"], out["projected_spend"] - half_width)
    out["projected_high"] = out["projected_spend"] + half_width
    left = np.maximum(out["period_budget"] - out["spend_to_date"], 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["needed_per_day"] = np.where(remaining > 0, left / remaining, np.nan)
    order = out["deviation"].abs().sort_values(ascending=False, kind="stable", na_position="last").index
    out["period_start"] = out["period_start"].dt.date
    out["period_end"] = out["period_end"].dt.date
    return out.loc[order, list(PACING_COLUMNS)].reset_index(drop=True)


def explain_pacing(row: pd.Series, currency: str = "") -> str:
    """One sentence a manager can act on, e.g. 'spent 4,210 of 3,100 expected by now (+36%) ...'."""
    unit = f" {currency}" if currency else ""
    if row["status"] == NO_END_DATE:
        return f"a lifetime budget of {row['budget']:,.0f}{unit} without a stop time cannot be paced"
    period = (
        "month's budget" if row.get("budget_type", "daily") == "daily" else f"lifetime budget to {row['period_end']}"
    )
    return (
        f"spent {row['spend_to_date']:,.0f}{unit} of {row['expected_to_date']:,.0f}{unit} expected by now "
        f"({row['deviation']:+.0%}); projected {row['projected_spend']:,.0f}{unit} "
        f"(80%: {row['projected_low']:,.0f}–{row['projected_high']:,.0f}) against a {period} of "
        f"{row['period_budget']:,.0f}{unit}"
        + (f"; {row['needed_per_day']:,.0f}{unit} a day lands on budget" if not pd.isna(row["needed_per_day"]) else "")
    )
