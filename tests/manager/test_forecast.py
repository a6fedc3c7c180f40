"""Forecasts from statsmodels' ETS: the 80% interval holds 70–90% of the time in a rolling-origin
backtest on the stub's history, and short histories say so instead of forecasting."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from insights_core.manager.forecast import FORECAST_METRICS, backtest_series, daily_series, forecast_series
from tests.manager.stub_frames import stub_frames

AS_OF = dt.date(2026, 11, 20)


@pytest.fixture(scope="module")
def account_daily() -> pd.DataFrame:
    _, daily, _ = stub_frames(AS_OF, days=200)
    return daily["campaign"].assign(entity_id="act")


def test_the_80_percent_interval_holds_70_to_90_percent_of_the_time(account_daily: pd.DataFrame) -> None:
    inside, points = 0.0, 0
    for metric in FORECAST_METRICS:
        result = backtest_series(daily_series(account_daily, metric, AS_OF), metric, horizon=14, min_history=56)
        assert result.origins == 8 and result.points == 8 * 14 and result.note is None
        assert result.coverage is not None and result.mape is not None
        print(f"{metric}: coverage {result.coverage:.0%}, MAPE {result.mape:.1%}")  # shown with -s
        assert 0.6 <= result.coverage <= 0.97  # each metric near 80%; the pooled figure is the claim
        inside += result.coverage * result.points
        points += result.points
    assert 0.70 <= inside / points <= 0.90


def test_forecast_gives_an_interval_around_the_mean(account_daily: pd.DataFrame) -> None:
    series = daily_series(account_daily, "spend", AS_OF)
    result = forecast_series(series, "spend", horizon=14, min_history=56)
    assert result.frame is not None and len(result.frame) == 14
    assert result.frame["date"].iloc[0] == pd.Timestamp(AS_OF + dt.timedelta(days=1))
    assert (result.frame["lower"] <= result.frame["mean"]).all() and (
        result.frame["mean"] <= result.frame["upper"]
    ).all()
    assert (result.frame["upper"] > result.frame["lower"]).all()
    # the forecast is in the series' range: no runaway
    assert series.tail(28).mean() * 0.5 < result.frame["mean"].mean() < series.tail(28).mean() * 1.5


def test_short_history_says_so() -> None:
    series = pd.Series(np.ones(30), index=pd.date_range("2026-10-01", periods=30, freq="D"))
    result = forecast_series(series, "spend", horizon=14, min_history=56)
    assert result.frame is None and result.note == "30 days of history; forecasts need at least 56"
    test = backtest_series(series, "spend", horizon=14, min_history=56)
    assert test.origins == 0 and test.coverage is None and test.note is not None and "at least 70" in test.note


def test_daily_series_fills_days_without_delivery_with_zero() -> None:
    daily = pd.DataFrame({"date": pd.to_datetime(["2026-11-01", "2026-11-03"]), "spend": [5.0, 7.0]})
    series = daily_series(daily, "spend", dt.date(2026, 11, 5))
    assert list(series) == [5.0, 0.0, 7.0, 0.0, 0.0]
