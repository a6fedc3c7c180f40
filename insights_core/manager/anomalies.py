"""Anomalies: a campaign's day far from its own recent behaviour on the same weekday.

For the last stored day, each campaign's spend, CPA, ROAS and CTR is compared with the same
weekday of the previous `weeks` weeks (4–8): baseline median and MAD, robust z = (value − median)
/ (1.4826 × MAD). The scale has a floor of 5% of the median, so a series that happens to be very
regular is not alarmed by a 6% wobble. "Since" walks back day by day while the same metric was
unusual in the same direction (up to `weeks` x 7 days).

Thin data does not fire: a baseline needs `MIN_BASELINE_POINTS` weekdays with a value, and a
typical (median) baseline day with `min_spend` of spend, and for ratios enough volume behind them:
`MIN_CONVERSIONS` conversions for CPA and ROAS, `MIN_IMPRESSIONS` impressions for CTR.
"""

from __future__ import annotations

import datetime as dt
import warnings

import numpy as np
import numpy.typing as npt
import pandas as pd

METRICS = ("spend", "cpa", "roas", "ctr")
METRIC_LABELS = {"spend": "spend", "cpa": "CPA", "roas": "ROAS", "ctr": "CTR"}
MIN_BASELINE_POINTS = 4
MIN_CONVERSIONS = 3.0
MIN_IMPRESSIONS = 1000.0
MAD_TO_SD = 1.4826
RELATIVE_SCALE_FLOOR = 0.05
ANOMALY_COLUMNS = ("entity_id", "metric", "date", "value", "baseline", "z", "direction", "since", "days")

Grid = npt.NDArray[np.float64]


def _grids(daily: pd.DataFrame, dates: pd.DatetimeIndex) -> tuple[pd.Index, dict[str, Grid]]:
    """Entities x days grids of the additive metrics (no row: no delivery, zero), and `started`: 1 from
    each entity's first delivery on (before it, a zero is no history rather than a day without spend)."""
    sums = {}
    rows, ids = pd.factorize(daily["entity_id"], sort=True)
    index = pd.Index(ids)
    dates_of = pd.DatetimeIndex(pd.to_datetime(daily["date"])).as_unit("ns")
    first = np.full(len(index), np.iinfo(np.int64).max)
    np.minimum.at(first, rows, dates_of.asi8)
    sums["started"] = (dates.as_unit("ns").asi8[None, :] >= first[:, None]).astype("float64")
    cols = dates.get_indexer(dates_of)
    inside = cols >= 0
    cells = rows[inside] * len(dates) + cols[inside]
    for name in ("spend", "impressions", "clicks", "conversions", "revenue"):
        weights = daily[name].to_numpy(dtype="float64")[inside]
        sums[name] = np.bincount(cells, weights, len(index) * len(dates)).reshape(len(index), len(dates))
    return index, sums


def _metric_grids(s: dict[str, Grid]) -> dict[str, tuple[Grid, npt.NDArray[np.bool_], Grid, str]]:
    """Each metric's values, whether a day's value exists, the volume behind it and the volume's setting."""
    with np.errstate(divide="ignore", invalid="ignore"):
        cpa = np.where(s["conversions"] > 0, s["spend"] / s["conversions"], np.nan)
        roas = np.where(s["spend"] > 0, s["revenue"] / s["spend"], np.nan)
        ctr = np.where(s["impressions"] > 0, s["clicks"] / s["impressions"] * 100, np.nan)
    started = s["started"] > 0
    # a ratio is judged when the baseline's typical day has the volume to make it stable
    return {
        "spend": (s["spend"], started, s["spend"], "spend"),
        "cpa": (cpa, ~np.isnan(cpa), s["conversions"], "conversions"),
        "roas": (roas, ~np.isnan(roas), s["conversions"], "conversions"),
        "ctr": (ctr, ~np.isnan(ctr), s["impressions"], "impressions"),
    }


def nan_median(values: Grid, axis: int) -> Grid:
    """Median along `axis` ignoring NaN (NaN where there is nothing): np.nanmedian without its warning per
    empty slice, which costs more than the median on an account of thousands of new campaigns."""
    moved = np.moveaxis(values, axis, -1)
    ordered = np.sort(moved, axis=-1)  # NaNs sort last
    count = np.sum(~np.isnan(moved), axis=-1)
    low = np.take_along_axis(ordered, np.maximum((count - 1) // 2, 0)[..., None], axis=-1)[..., 0]
    high = np.take_along_axis(ordered, np.minimum(count // 2, moved.shape[-1] - 1)[..., None], axis=-1)[..., 0]
    return np.where(count > 0, (low + high) / 2, np.nan)


def _weekday_medians(
    values: Grid, usable: npt.NDArray[np.bool_], days: npt.NDArray[np.int64], weeks: int
) -> tuple[Grid, Grid]:
    """For each column in `days`: the median of its weekday over the `weeks` weeks before it, and how
    many values that had. Shapes (entities, len(days))."""
    back = days[None, :] - 7 * np.arange(1, weeks + 1)[:, None]  # (weeks, days)
    exists = back >= 0
    cols = np.where(exists, back, 0)
    base = np.where(usable[:, cols] & exists[None, :, :], values[:, cols], np.nan)  # (entities, weeks, days)
    points = np.sum(~np.isnan(base), axis=1).astype("float64")
    return nan_median(base, axis=1), points


def robust_z(
    values: Grid, usable: npt.NDArray[np.bool_], volume: Grid, day: int, weeks: int, min_volume: float
) -> tuple[Grid, Grid]:
    """Robust z of column `day` (NaN: not judged) and its baseline median.

    Centre: the median of the same weekday over the `weeks` weeks before. Scale: 1.4826 x the MAD of
    every day of those weeks around its own weekday's median (7 x `weeks` residuals: six same-weekday
    values alone give a scale too noisy to trust), at least 5% of the centre.
    """
    median, points = (a[:, 0] for a in _weekday_medians(values, usable, np.array([day]), weeks))
    earlier = np.arange(max(day - 7 * weeks, 7), day)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if len(earlier):
            centres, _ = _weekday_medians(values, usable, earlier, weeks)
            residuals = np.where(usable[:, earlier], values[:, earlier] - centres, np.nan)
            mad = nan_median(np.abs(residuals), axis=1)
        else:
            mad = np.full(len(values), np.nan)
        cols = [day - 7 * k for k in range(1, weeks + 1) if day - 7 * k >= 0]
        base_volume = np.median(volume[:, cols], axis=1) if cols else np.zeros(len(values))
        scale = np.maximum(MAD_TO_SD * mad, RELATIVE_SCALE_FLOOR * np.abs(median))
        z = (values[:, day] - median) / scale
    judged = (points >= MIN_BASELINE_POINTS) & (base_volume >= min_volume) & usable[:, day] & (scale > 0)
    return np.where(judged, z, np.nan), median


def campaign_anomalies(
    daily: pd.DataFrame, as_of: dt.date, z_threshold: float = 3.5, weeks: int = 6, min_spend: float = 10.0
) -> pd.DataFrame:
    """Unusual metrics on `as_of`, one row per (campaign, metric), farthest first.

    `daily`: campaign rows (entity_id, date, spend, impressions, clicks, conversions, revenue) over
    at least `weeks` weeks before `as_of` (more weeks back lets "since" reach further).
    """
    if daily.empty:
        return pd.DataFrame(columns=list(ANOMALY_COLUMNS))
    span = 7 * weeks * 3
    dates = pd.date_range(end=pd.Timestamp(as_of), periods=span, freq="D")
    index, sums = _grids(daily, dates)
    grids = _metric_grids(sums)
    last = span - 1
    rows = []
    minimum = {"spend": min_spend, "conversions": MIN_CONVERSIONS, "impressions": MIN_IMPRESSIONS}
    spend_z, spend_median = robust_z(sums["spend"], sums["started"] > 0, sums["spend"], last, weeks, min_spend)
    for metric, (values, usable, volume, volume_kind) in grids.items():
        floor = minimum[volume_kind]
        # spend's own z is the gate's, already taken
        z, median = (
            (spend_z, spend_median) if metric == "spend" else robust_z(values, usable, volume, last, weeks, floor)
        )
        z = np.where(np.isnan(spend_z), np.nan, z)  # every metric needs a campaign that spends enough
        for i in np.flatnonzero(np.abs(np.nan_to_num(z)) >= z_threshold):
            sign = np.sign(z[i])
            since = last
            while since - 1 >= last - 7 * weeks + 1:
                one = slice(i, i + 1)
                earlier, _ = robust_z(values[one], usable[one], volume[one], since - 1, weeks, floor)
                if not (np.sign(earlier[0]) == sign and abs(earlier[0]) >= z_threshold):
                    break
                since -= 1
            rows.append(
                {
                    "entity_id": index[int(i)],
                    "metric": metric,
                    "date": as_of,
                    "value": float(values[i, last]),
                    "baseline": float(median[i]),
                    "z": float(z[i]),
                    "direction": "up" if sign > 0 else "down",
                    "since": dates[since].date(),
                    "days": last - since + 1,
                }
            )
    out = pd.DataFrame(rows, columns=list(ANOMALY_COLUMNS))
    if out.empty:
        return out
    return out.reindex(out["z"].abs().sort_values(ascending=False, kind="stable").index).reset_index(drop=True)


def explain_anomaly(row: pd.Series) -> str:
    label = METRIC_LABELS[str(row["metric"])]
    fmt = "{:,.2f}" if row["metric"] != "spend" else "{:,.0f}"
    since = f"on {row['date']}" if int(row["days"]) == 1 else f"since {row['since']} ({int(row['days'])} days)"
    return (
        f"{label} {fmt.format(row['value'])} is {abs(row['z']):.1f} robust SDs {row['direction']} from this "
        f"weekday's median {fmt.format(row['baseline'])}, {since}"
    )
