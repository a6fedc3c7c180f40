"""The Streamlit side of the manager pages: cached reads of the published snapshot, the forecast chart,
and the alert store opened for the dashboard (which writes acknowledgements and mutes).

Loaders are cached per snapshot (`st.cache_data` keyed on the generation's path and stamp), so a
new publish is a new key. Forecasts fit ETS models (about a second for a backtest), hence cached too.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from insights_core.dashboard.data import Snapshot, snapshot_cursor
from insights_core.dashboard.formatting import format_int, format_timestamp
from insights_core.levels import Level
from insights_core.manager import reads
from insights_core.manager.forecast import Backtest, Forecast, backtest_series, daily_series, forecast_series
from insights_core.manager.pacing import PACING_COLUMNS, budget_pacing, pacing_since
from insights_core.settings import Settings
from insights_core.store import lists

HISTORY_SHOWN_DAYS = 90
FORECAST_HISTORY_DAYS = 400
"""Days of history a forecast reads: a year and a month covers the yearly wave and the backtest."""


@st.cache_data(max_entries=16, show_spinner=False)
def load_pacing(snapshot: Snapshot, tolerance_percent: float) -> tuple[pd.DataFrame, dt.date | None]:
    """Pacing of campaigns and ad sets with a daily or lifetime budget, worst deviation first, and the
    day it is as of."""
    with snapshot_cursor(snapshot) as cur:
        as_of = reads.fetch_last_day(cur)
        if as_of is None:
            return pd.DataFrame(), None
        parts = []
        for level in ("campaign", "adset"):
            entities = reads.fetch_entities(cur, level)
            daily = reads.fetch_daily(cur, level, pacing_since(entities, as_of), as_of)
            pacing = budget_pacing(entities, daily, as_of, tolerance_percent)
            parts.append(pacing.assign(level=level))
    filled = [p for p in parts if not p.empty]
    if not filled:
        return parts[0], as_of
    frame = pd.concat(filled, ignore_index=True)
    order = frame["deviation"].abs().sort_values(ascending=False, kind="stable", na_position="last").index
    return frame.loc[order].reset_index(drop=True), as_of


@st.cache_data(max_entries=64, show_spinner=False)
def load_page_pacing(snapshot: Snapshot, level: Level, ids: tuple[str, ...], tolerance_percent: float) -> pd.DataFrame:
    """Pacing of one list page's rows only (as the Pacing page computes it), indexed by entity_id: a
    list of 100,000 ad sets reads the budgets and days of the 50 it shows, never the whole level."""
    with snapshot_cursor(snapshot) as cur:
        as_of = reads.fetch_last_day(cur)
        if as_of is None or not ids:
            return pd.DataFrame(columns=list(PACING_COLUMNS)).set_index("entity_id")
        entities = reads.fetch_entities(cur, level, ids)
        daily = lists.fetch_daily_spend_of(cur, level, list(ids), pacing_since(entities, as_of), as_of)
    return budget_pacing(entities, daily, as_of, tolerance_percent).set_index("entity_id")


@st.cache_data(max_entries=16, show_spinner=False)
def load_campaign_choices(snapshot: Snapshot) -> pd.DataFrame:
    with snapshot_cursor(snapshot) as cur:
        return reads.fetch_entities(cur, "campaign")[["entity_id", "name"]]


@st.cache_data(max_entries=32, show_spinner=False)
def load_forecast(
    snapshot: Snapshot, campaign_id: str | None, metric: str, horizon: int, min_history: int
) -> tuple[pd.Series, Forecast, Backtest]:
    """History, forecast and backtest of the account (all accounts' sum) or one campaign."""
    with snapshot_cursor(snapshot) as cur:
        as_of = reads.fetch_last_day(cur)
        if as_of is None:
            empty = pd.Series(dtype="float64")
            return empty, Forecast(metric, 0, None, "no insights stored yet"), Backtest(metric, 0, 0, None, None)
        since = as_of - dt.timedelta(days=FORECAST_HISTORY_DAYS - 1)
        if campaign_id is None:
            daily = reads.fetch_account_daily(cur, since, as_of)
        else:
            daily = reads.fetch_daily(cur, "campaign", since, as_of)
            daily = daily[daily["entity_id"] == campaign_id]
    series = daily_series(daily, metric, as_of)
    return (
        series,
        forecast_series(series, metric, horizon, min_history),
        backtest_series(series, metric, horizon, min_history),
    )


def forecast_figure(history: pd.Series, forecast: Forecast, label: str) -> go.Figure:
    """The last 90 days, the forecast's mean and its 80% interval as a band."""
    shown = history.tail(HISTORY_SHOWN_DAYS)
    figure = go.Figure()
    figure.add_trace(go.Scatter(x=shown.index, y=shown.to_numpy(), name=f"{label} (stored)", mode="lines"))
    if forecast.frame is not None:
        f = forecast.frame
        figure.add_trace(
            go.Scatter(
                x=list(f["date"]) + list(f["date"][::-1]),
                y=list(f["upper"]) + list(f["lower"][::-1]),
                fill="toself",
                fillcolor="rgba(99, 110, 250, 0.18)",
                line={"width": 0},
                name="80% interval",
                hoverinfo="skip",
            )
        )
        figure.add_trace(go.Scatter(x=f["date"], y=f["mean"], name="forecast", mode="lines", line={"dash": "dash"}))
    figure.update_layout(height=380, margin={"l": 10, "r": 10, "t": 30, "b": 10}, legend={"orientation": "h"})
    return figure


def render_alert_delivery_health(settings: Settings) -> None:
    """The sync health view's alert section: the last rule evaluation and failed deliveries per channel.

    Meant for pages/sync.py's admin section (one call); the Alerts page shows the same failures.
    """
    from insights_core.errors import StoreError
    from insights_core.manager.alert_store import open_alert_store

    st.subheader("Alert delivery")
    try:
        store = open_alert_store(settings)
        failures = store.fetch_deliveries(limit=20, failed_only=True)
        evaluations = store.fetch_evaluations(limit=1)
    except StoreError as exc:
        st.error(str(exc))
        return
    if not evaluations.empty:
        last = evaluations.iloc[0]
        st.caption(
            f"Rules last evaluated {format_timestamp(last['at'])} ({last['seconds']:.2f} s, "
            f"{format_int(last['findings'])} findings)."
        )
    if failures.empty:
        st.caption("No failed alert deliveries.")
    else:
        st.warning(f"{len(failures)} recent alert deliveries failed (newest first):", icon=":material/warning:")
        st.dataframe(failures, key="sync_alert_failures", hide_index=True, width="stretch")
