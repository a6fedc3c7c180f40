"""Plotly figures for the pages. Each takes frames whose ratios were already computed from sums."""

from __future__ import annotations

import math

import pandas as pd
import plotly.graph_objects as go

from insights_core.dashboard.formatting import CURRENCY_SYMBOLS, METRIC_LABELS, plotly_literal
from insights_core.levels import LEVEL_LABELS, LEVELS

SPEND_COLOR = "#4C78A8"
REVENUE_COLOR = "#54A24B"
RATIO_COLOR = "#E45756"
HIGHLIGHT_COLOR = "#F58518"
_MARGIN = dict(l=10, r=10, t=64, b=10)
_MODEBAR = dict(remove=["lasso2d", "select2d", "autoScale2d", "zoomIn2d", "zoomOut2d"])
_LAYOUT: dict[str, object] = dict(
    margin=_MARGIN,
    legend=dict(orientation="h", yanchor="top", y=-0.15, x=0),
    hovermode="x unified",
    modebar=_MODEBAR,
)
"""Title left on its own line, above the plot and below plotly's toolbar (top right); legend below."""
DAY_MS = 86_400_000
MONEY_METRICS = frozenset({"spend", "revenue", "cpc", "cpm", "cost_per_conversion", "prev_spend", "prev_revenue"})
AMOUNT_METRICS = frozenset({"spend", "revenue", "prev_spend", "prev_revenue"})
ADDITIVE_DAILY = ("spend", "revenue", "impressions", "clicks", "conversions")


def _title(text: str) -> dict[str, object]:
    return dict(text=text, x=0, xanchor="left", y=0.98, yanchor="top", yref="container", font=dict(size=16))


def _money_prefix(currency: str | None) -> str:
    return CURRENCY_SYMBOLS.get(currency or "", "")


def money_axis(currency: str | None, amounts: bool = True) -> dict[str, object]:
    """One format for money axes: totals as $1k, $10k, $1.5M; unit costs (CPC, CPM) with cents."""
    return dict(tickprefix=_money_prefix(currency), tickformat="~s" if amounts else ",.2~f")


def day_axis(dates: pd.Series) -> dict[str, object]:
    """A date axis of daily data: ticks on whole days, never hours, at most ~6 labels (they fit 390 px)."""
    days = pd.to_datetime(dates).dt.normalize()
    span = int((days.max() - days.min()).days) + 1 if len(days) else 1
    step = max(1, math.ceil(span / 5))
    axis: dict[str, object] = dict(
        type="date", tickformat="%b %-d", dtick=step * DAY_MS, tick0=days.min() if len(days) else None
    )
    if span <= 1 and len(days):  # one day: a day's width around it, or plotly zooms into milliseconds
        only = days.min()
        axis["range"] = [only - pd.Timedelta(hours=18), only + pd.Timedelta(hours=18)]
    return axis


def moment_axis(moments: pd.Series) -> dict[str, object]:
    """A time axis of sync runs: readable minutes at most, a two-hour window around a single run."""
    stamps = pd.to_datetime(moments)
    axis: dict[str, object] = dict(type="date", tickformat="%b %-d\n%H:%M", nticks=6)
    if len(stamps) and (stamps.max() - stamps.min()) < pd.Timedelta(hours=1):
        middle = stamps.min() + (stamps.max() - stamps.min()) / 2
        axis["range"] = [middle - pd.Timedelta(hours=1), middle + pd.Timedelta(hours=1)]
    return axis


def nice_axis_top(top: float, ticks: int = 4) -> tuple[float, float]:
    """(upper end, tick step) of an axis from 0 holding `top` in about `ticks` round steps (1, 2, 2.5, 5 x 10^k)."""
    if not top or top <= 0 or math.isnan(top):
        return 1.0, 0.25
    raw = top / ticks
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    return step * math.ceil(top / step - 1e-9), step


def complete_days(daily: pd.DataFrame) -> pd.DataFrame:
    """`daily` with a row for every calendar day between its first and last: additive metrics 0 on a day
    without delivery, ratios missing (a gap in a line, never a line drawn across the day)."""
    if daily.empty:
        return daily
    frame = daily.assign(date=pd.to_datetime(daily["date"]).dt.normalize()).set_index("date")
    every = pd.date_range(frame.index.min(), frame.index.max(), freq="D", name="date")
    frame = frame[~frame.index.duplicated()].reindex(every)
    for column in ADDITIVE_DAILY:
        if column in frame:
            frame[column] = frame[column].fillna(0.0)
    return frame.reset_index()


def daily_trend_figure(
    daily: pd.DataFrame, currency: str | None = "USD", title: str = "Daily spend, revenue and ROAS"
) -> go.Figure:
    """Spend and revenue bars per day, ROAS (revenue / spend of that day) as a line on a second axis.

    Days without delivery inside the range get zero bars and a gap in the ROAS line. The ROAS axis
    starts at 0 with round steps. The second axis is laid out by hand: plotly's make_subplots builds the
    same layout but costs ~60 ms per figure on every page run (~0.3 s on a process's first).
    """
    daily = complete_days(daily)
    roas_top, roas_step = nice_axis_top(float(daily["roas"].max()) if daily["roas"].notna().any() else 0.0)
    figure = go.Figure(
        layout=dict(
            title=_title(title),
            barmode="group",
            **_LAYOUT,
            xaxis=dict(anchor="y", domain=[0.0, 0.92], **day_axis(daily["date"])),
            yaxis=dict(anchor="x", title_text="Amount", rangemode="tozero", **money_axis(currency)),
            yaxis2=dict(
                anchor="x",
                overlaying="y",
                side="right",
                title_text="ROAS",
                range=[0, roas_top],
                dtick=roas_step,
                tickformat="~g",
                ticksuffix="×",
                showgrid=False,
            ),
        )
    )
    figure.add_bar(x=daily["date"], y=daily["spend"], name="Spend", marker_color=SPEND_COLOR)
    figure.add_bar(x=daily["date"], y=daily["revenue"], name="Revenue", marker_color=REVENUE_COLOR)
    figure.add_scatter(
        x=daily["date"],
        y=daily["roas"],
        name="ROAS",
        mode="lines+markers",
        line=dict(color=RATIO_COLOR),
        yaxis="y2",
        connectgaps=False,
    )
    return figure


def metric_line_figure(daily: pd.DataFrame, metric: str, currency: str | None = "USD") -> go.Figure:
    """One metric per day; a day without delivery is 0 for a sum and a gap for a ratio or reach."""
    label = METRIC_LABELS.get(metric, metric)
    daily = complete_days(daily)
    figure = go.Figure(
        go.Scatter(
            x=daily["date"],
            y=daily[metric],
            mode="lines+markers",
            name=label,
            line=dict(color=SPEND_COLOR),
            connectgaps=False,
        )
    )
    suffix = "%" if metric in ("ctr", "conversion_rate") else "×" if metric == "roas" else ""
    axis = money_axis(currency, metric in AMOUNT_METRICS) if metric in MONEY_METRICS else dict(tickformat="~s")
    if suffix:
        axis = dict(ticksuffix=suffix, tickformat="~g")
    figure.update_layout(title=_title(f"{label} per day"), **_LAYOUT)
    figure.update_xaxes(**day_axis(daily["date"]))
    figure.update_yaxes(title_text=label, rangemode="tozero", **axis)
    return figure


def ranking_figure(
    frame: pd.DataFrame, metric: str, label_column: str = "name", top: int = 10, currency: str | None = "USD"
) -> go.Figure:
    """Horizontal bars of the `top` rows by `metric` (rows without a value left out)."""
    label = METRIC_LABELS.get(metric, metric)
    shown = frame.dropna(subset=[metric]).nlargest(top, metric).iloc[::-1]
    labels = [plotly_literal(label) for label in shown[label_column]]  # names from Meta: plotly renders <a href>
    figure = go.Figure(go.Bar(x=shown[metric], y=labels, orientation="h", marker_color=SPEND_COLOR))
    figure.update_layout(
        title=_title(f"Top {len(shown)} by {label}"),
        margin=_MARGIN,
        modebar=_MODEBAR,
        height=max(260, 28 * len(shown) + 90),
    )
    figure.update_yaxes(automargin=True)
    if metric in MONEY_METRICS:
        figure.update_xaxes(**money_axis(currency, metric in AMOUNT_METRICS))
    elif metric == "roas":
        figure.update_xaxes(ticksuffix="×", tickformat="~g")
    return figure


def peer_figure(
    peers: pd.DataFrame,
    metric: str,
    target_id: str,
    id_column: str = "ad_id",
    group_column: str | None = None,
    currency: str | None = "USD",
) -> go.Figure:
    """Every peer's value of `metric` as a dot, the compared entity highlighted."""
    label = METRIC_LABELS.get(metric, metric)
    values = peers.dropna(subset=[metric])
    mine = values[values[id_column].astype(str) == str(target_id)]
    others = values[values[id_column].astype(str) != str(target_id)]
    groups = [plotly_literal(g) for g in others[group_column]] if group_column else "peers"
    hover = [plotly_literal(n) for n in others["name"]] if "name" in others else None
    figure = go.Figure()
    figure.add_trace(
        go.Box(
            x=others[metric],
            y=groups if group_column else None,
            name="Peers",
            boxpoints="all",
            jitter=0.4,
            pointpos=0,
            marker=dict(color=SPEND_COLOR, size=6),
            line=dict(color="#999"),
            orientation="h",
            hovertext=hover,
            fillcolor="rgba(0,0,0,0)",
        )
    )
    if not mine.empty:
        mine_groups = [plotly_literal(g) for g in mine[group_column]] if group_column else ["Peers"]
        figure.add_trace(
            go.Scatter(
                x=mine[metric],
                y=mine_groups,
                mode="markers",
                name="This ad",
                marker=dict(color=HIGHLIGHT_COLOR, size=14, symbol="diamond"),
            )
        )
    figure.update_layout(title=_title(f"{label} of peer ads"), margin=_MARGIN, modebar=_MODEBAR, height=280)
    figure.update_layout(showlegend=True, legend=_LAYOUT["legend"])
    if metric in MONEY_METRICS:
        figure.update_xaxes(**money_axis("USD" if currency is None else currency, metric in AMOUNT_METRICS))
    elif metric in ("ctr", "conversion_rate"):
        figure.update_xaxes(ticksuffix="%")
    elif metric == "roas":
        figure.update_xaxes(ticksuffix="×", tickformat="~g")
    return figure


def duration_figure(runs: pd.DataFrame) -> go.Figure:
    figure = go.Figure()
    for sync_type, group in runs.sort_values("sync_timestamp").groupby("sync_type"):
        figure.add_scatter(
            x=group["sync_timestamp"], y=group["total_duration_seconds"], mode="lines+markers", name=str(sync_type)
        )
    figure.update_layout(title=_title("Sync duration (seconds)"), **_LAYOUT)
    figure.update_xaxes(**moment_axis(runs["sync_timestamp"]))
    figure.update_yaxes(rangemode="tozero", title_text="seconds")
    return figure


def error_rate_figure(rates: pd.DataFrame) -> go.Figure:
    """`rates`: sync_timestamp plus one error-share column (0–100) per level."""
    figure = go.Figure()
    ordered = rates.sort_values("sync_timestamp")
    for level in LEVELS:
        if level in ordered:
            figure.add_scatter(
                x=ordered["sync_timestamp"], y=ordered[level], mode="lines+markers", name=LEVEL_LABELS[level]
            )
    figure.update_layout(title=_title("Entity errors per level (% of processed)"), **_LAYOUT)
    figure.update_xaxes(**moment_axis(ordered["sync_timestamp"]))
    figure.update_yaxes(rangemode="tozero", ticksuffix="%")
    return figure


def rate_limit_figure(hourly: pd.DataFrame, limit: int) -> go.Figure:
    figure = go.Figure(
        go.Bar(x=hourly["hour"], y=hourly["rate_limit_hits"], marker_color=SPEND_COLOR, name="rate-limit hits")
    )
    figure.add_hline(y=limit, line_dash="dot", line_color=RATIO_COLOR, annotation_text=f"alert above {limit}/h")
    figure.update_layout(title=_title("Rate-limit hits per hour"), margin=_MARGIN, modebar=_MODEBAR)
    # the page asks for the last 7 days: show them all, ticked in days, even with no hit at all
    now = pd.Timestamp.now(tz="UTC").tz_localize(None).ceil("h")
    start = (now - pd.Timedelta(days=7)).floor("D")
    figure.update_xaxes(type="date", range=[start, now], tick0=start, dtick=DAY_MS, tickformat="%b %-d")
    figure.update_yaxes(rangemode="tozero", tickformat="d")
    return figure


def coverage_figure(coverage: pd.DataFrame) -> go.Figure:
    """`coverage`: level and `coverage_pct` (0–100)."""
    figure = go.Figure(
        go.Bar(
            x=coverage["level"],
            y=coverage["coverage_pct"],
            marker_color=REVENUE_COLOR,
            text=coverage["coverage_pct"].round(1).astype(str) + "%",
            textposition="auto",
        )
    )
    figure.update_layout(
        title=_title("Coverage: entities read in the latest full sync"),
        margin=_MARGIN,
        modebar=_MODEBAR,
    )
    figure.update_yaxes(range=[0, 105], ticksuffix="%")
    return figure
