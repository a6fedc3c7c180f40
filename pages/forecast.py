"""Forecast: spend, conversions or revenue 7–30 days ahead for the account or one campaign, with the 80%
interval, and beside it how well the same model did on the stored history (rolling-origin backtest)."""

import streamlit as st

from insights_core.dashboard import widgets
from insights_core.manager.forecast import FORECAST_METRICS
from insights_core.manager.views import forecast_figure, load_campaign_choices, load_forecast

LABELS = {"spend": "Spend", "conversions": "Conversions", "revenue": "Revenue"}

user = widgets.require("analytics:read")
widgets.page_title("forecast")
settings = widgets.app_settings()
snapshot, bounds = widgets.open_snapshot(settings)

campaigns = load_campaign_choices(snapshot)
names = dict(zip(campaigns["entity_id"], campaigns["name"]))
scope_column, metric_column, horizon_column = st.columns([2, 1, 1])
scope = scope_column.selectbox(
    "Forecast for",
    [None, *campaigns["entity_id"]],
    format_func=lambda cid: "The whole account" if cid is None else f"{names[cid]} ({cid})",
    key="forecast_scope",
)
metric = metric_column.radio(
    "Metric", FORECAST_METRICS, format_func=LABELS.__getitem__, horizontal=True, key="forecast_metric"
)
horizon = horizon_column.slider("Days ahead", 7, 30, settings.forecast_horizon_days, key="forecast_horizon")

with st.spinner("Fitting the model and its backtest…"):
    history, forecast, backtest = load_forecast(snapshot, scope, metric, horizon, settings.forecast_min_history_days)

chart_column, score_column = st.columns([3, 1])
with chart_column:
    if forecast.frame is None:
        st.info(f"No forecast: {forecast.note}.")
    else:
        st.plotly_chart(forecast_figure(history, forecast, LABELS[metric]), key="forecast_chart")
with score_column:
    st.subheader("How it did before")
    if backtest.coverage is None:
        st.info(f"No backtest: {backtest.note or 'not enough history'}.")
    else:
        st.metric("MAPE", "—" if backtest.mape is None else f"{backtest.mape:.1%}")
        st.metric("80% interval held", f"{backtest.coverage:.0%}")
        st.caption(
            f"{backtest.origins} forecasts of {horizon} days from origins a week apart, each fitted only on the "
            f"history before it ({backtest.points} days compared). An honest 80% interval holds about 80% of "
            "the time; MAPE leaves out days whose actual was zero."
        )
st.caption(
    "Model: statsmodels' exponential smoothing ETS(A,N,A), additive weekly seasonality, analytic 80% "
    f"prediction intervals; {len(history)} days of history used."
)
if forecast.frame is not None:
    widgets.table(
        forecast.frame,
        "forecast_table",
        f"forecast_{metric}",
        user,
        kinds={"date": "date", "mean": "number", "lower": "number", "upper": "number"},
        labels={"date": "Day", "mean": "Forecast", "lower": "80% low", "upper": "80% high"},
    )
