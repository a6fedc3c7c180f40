"""Forecasts of spend, conversions and revenue with prediction intervals, and their honest backtest.

The model is statsmodels' ETS (`ETSModel`): additive error, no trend, additive weekly seasonality
(ETS(A,N,A)). It is linear, so its prediction intervals are analytic ("exact" in statsmodels). A
trend term was tried on the stub's history and changed neither error nor coverage while doubling
the fit time. The backtest is a rolling origin: fit on the history up to an origin, forecast
`horizon` days, compare with what happened; origins a week apart, the last one `horizon` days
before the last stored day. It reports MAPE (over days whose actual is not zero) and the share of
actuals inside the 80% interval; both are shown next to the chart.
"""

from __future__ import annotations

import datetime as dt
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

FORECAST_METRICS = ("spend", "conversions", "revenue")
INTERVAL = 0.80
BACKTEST_ORIGINS = 8
BACKTEST_STEP_DAYS = 7
SEASON_DAYS = 7


@dataclass(frozen=True)
class Forecast:
    """`frame`: date, mean, lower, upper for each day ahead (None with `note` when history is too short)."""

    metric: str
    history_days: int
    frame: pd.DataFrame | None
    note: str | None = None


@dataclass(frozen=True)
class Backtest:
    metric: str
    origins: int
    points: int
    mape: float | None
    """Mean absolute percentage error over forecast days whose actual was not zero (a share: 0.1 = 10%)."""
    coverage: float | None
    """Share of actuals inside the 80% interval."""
    note: str | None = None


def daily_series(daily: pd.DataFrame, metric: str, as_of: dt.date) -> pd.Series:
    """One entity's `metric` per calendar day from its first delivery to `as_of` (no row: zero)."""
    if daily.empty:
        return pd.Series(dtype="float64")
    values = daily.groupby(pd.to_datetime(daily["date"]))[metric].sum().astype("float64")
    index = pd.date_range(values.index.min(), pd.Timestamp(as_of), freq="D")
    return values.reindex(index, fill_value=0.0)


def _fit_predict(history: pd.Series, horizon: int) -> pd.DataFrame:
    # heavy import, only when forecasting; statsmodels ships no type information
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel  # type: ignore[import-untyped]

    with warnings.catch_warnings():
        # convergence chatter on flat series; the interval still comes from the fitted variance
        warnings.simplefilter("ignore")
        fitted = ETSModel(
            history.asfreq("D"), error="add", trend=None, seasonal="add", seasonal_periods=SEASON_DAYS
        ).fit(disp=False)
        frame = fitted.get_prediction(start=len(history), end=len(history) + horizon - 1).summary_frame(
            alpha=1 - INTERVAL
        )
    dates = pd.date_range(history.index[-1] + pd.Timedelta(days=1), periods=horizon, freq="D")
    return pd.DataFrame(
        {
            "date": dates,
            # spend, conversions and revenue are never negative
            "mean": np.maximum(frame["mean"].to_numpy(), 0.0),
            "lower": np.maximum(frame["pi_lower"].to_numpy(), 0.0),
            "upper": np.maximum(frame["pi_upper"].to_numpy(), 0.0),
        }
    )


def forecast_series(series: pd.Series, metric: str, horizon: int, min_history: int) -> Forecast:
    """`horizon` days ahead of `series` with an 80% interval, or a note when there is too little history."""
    n = len(series)
    if n < min_history:
        return Forecast(metric, n, None, f"{n} days of history; forecasts need at least {min_history}")
    if float(series.abs().sum()) == 0.0:
        return Forecast(metric, n, None, f"no {metric} in the last {n} days: nothing to forecast")
    return Forecast(metric, n, _fit_predict(series, horizon))


def backtest_series(
    series: pd.Series, metric: str, horizon: int, min_history: int, origins: int = BACKTEST_ORIGINS
) -> Backtest:
    """Rolling-origin backtest: up to `origins` origins a week apart, each fitted on at least `min_history` days."""
    last_origin = len(series) - horizon
    starts = [last_origin - k * BACKTEST_STEP_DAYS for k in range(origins)]
    starts = sorted(s for s in starts if s >= min_history)
    if not starts:
        return Backtest(
            metric,
            0,
            0,
            None,
            None,
            f"{len(series)} days of history; a backtest needs at least {min_history + horizon}",
        )
    errors: list[float] = []
    inside: list[bool] = []
    for start in starts:
        history, actual = series.iloc[:start], series.iloc[start : start + horizon].to_numpy()
        if float(history.abs().sum()) == 0.0:
            continue
        predicted = _fit_predict(history, horizon)
        inside.extend((actual >= predicted["lower"].to_numpy()) & (actual <= predicted["upper"].to_numpy()))
        nonzero = actual != 0
        errors.extend(np.abs(actual[nonzero] - predicted["mean"].to_numpy()[nonzero]) / np.abs(actual[nonzero]))
    return Backtest(
        metric,
        len(starts),
        len(inside),
        float(np.mean(errors)) if errors else None,
        float(np.mean(inside)) if inside else None,
    )
