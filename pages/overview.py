"""Overview (what the endpoint GET /meta/insights/overview returned): totals against the previous period,
daily trend, top campaigns, last sync and alerts."""

import datetime as dt

import streamlit as st

from insights_core.dashboard import charts, data, navigation, widgets
from insights_core.dashboard.alerts import performance_alerts, period_change, sync_alerts
from insights_core.dashboard.breakdowns import render_breakdowns
from insights_core.dashboard.formatting import format_duration, format_timestamp, literal
from insights_core.dashboard.period_controls import period_controls
from insights_core.dashboard.scoring import EFFICIENCY_HELP, efficiency_scores
from insights_core.levels import LEVELS
from insights_core.metrics import with_ratio_columns
from insights_core.roles import can

user = widgets.require("analytics:read")
widgets.page_title("overview")
settings = widgets.app_settings()
snapshot, bounds = widgets.open_snapshot(settings)

period = period_controls(bounds)
account_id, currency, compared = period.account_id, period.currency, period.compared
since, until = period.since, period.until
overview = data.load_overview(
    snapshot, since, until, compared[0] if compared else None, compared[1] if compared else None, account_id
)
runs = data.load_sync_runs(snapshot)

if compared is not None:
    st.caption(f"Changes compare with {compared[0]} to {compared[1]}.")
total_column, active_column, _ = st.columns([1, 1, 6])
total_column.metric("Campaigns", f"{overview.campaign_count:,}")
active_column.metric("Active campaigns", f"{overview.active_campaign_count:,}")
widgets.metric_cards(overview.totals, currency, overview.previous_totals if compared else None)

campaigns = with_ratio_columns(overview.campaigns)
campaigns["roas_change"] = period_change(overview.campaigns, "roas")["change"]

st.subheader("Alerts")
widgets.render_alerts(sync_alerts(runs, dt.datetime.now(dt.timezone.utc)) + performance_alerts(overview.campaigns))

st.subheader("Daily trend")
if overview.daily.empty:
    st.info("No delivery in this period.")
else:
    st.plotly_chart(charts.daily_trend_figure(with_ratio_columns(overview.daily), currency), key="overview_trend")

st.subheader("Top campaigns")
delivered = campaigns[campaigns["spend"] > 0].copy()
delivered["efficiency_score"] = efficiency_scores(delivered)
sort_by = st.radio(
    "Sort by",
    ["spend", "roas"],
    key="overview_sort",
    horizontal=True,
    format_func=lambda m: {"spend": "Spend", "roas": "ROAS"}[m],
)
ranked = delivered.sort_values(sort_by, ascending=False, na_position="last", kind="stable")
if ranked.empty:
    st.info("No campaign spent in this period.")
else:
    st.plotly_chart(charts.ranking_figure(ranked, sort_by, currency=currency), key="overview_top_chart")
    st.caption("Select a row to open the campaign. " + EFFICIENCY_HELP)
    columns = [
        "name",
        "effective_status",
        "objective",
        "spend",
        "impressions",
        "clicks",
        "conversions",
        "revenue",
        "ctr",
        "cpc",
        "roas",
        "roas_change",
        "efficiency_score",
        "campaign_id",
    ]
    picked = widgets.table(
        ranked[columns],
        "overview_campaigns",
        f"campaigns_{since}_{until}",
        user,
        currency,
        labels={"name": "Campaign"},
        selectable=True,
        height=420,
    )
    if picked is not None:
        navigation.open_entity("campaign", str(ranked["campaign_id"].iloc[picked]))

st.subheader("Last sync")
if runs.empty:
    st.info("No sync has run yet.")
else:
    last = runs.iloc[0]
    st.markdown(
        f"**Time** {format_timestamp(last['sync_timestamp'])} · **Status** {literal(last['status'])} "
        f"({literal(last['sync_type'])}) · **Duration** {format_duration(last['total_duration_seconds'])} · "
        f"**Mode** {literal(last['mode'])}"
    )
    if can(user.role, "sync:run"):
        st.page_link("pages/sync.py", label="Sync page: run history and Sync now", icon=":material/sync:")

if can(user.role, "export"):
    with st.expander("Export every stored row of the period"):
        level = st.selectbox("Level", LEVELS, key="overview_export_level")
        rows = data.load_row_count(snapshot, level, since, until, account_id)
        st.caption(f"{rows:,} {level} rows (one per {level} and day), with per-row ratios. Generated when you click.")
        buttons = st.container(horizontal=True)
        buttons.download_button(
            "Download CSV",
            data=data.rows_export(snapshot, level, since, until, account_id, "csv"),
            file_name=f"{level}_rows_{since}_{until}.csv",
            mime="text/csv",
            key="overview_export_csv",
            on_click="ignore",
            icon=":material/download:",
        )
        too_big = rows > 1_048_575
        buttons.download_button(
            "Download Excel",
            data=data.rows_export(snapshot, level, since, until, account_id, "xlsx"),
            file_name=f"{level}_rows_{since}_{until}.xlsx",
            key="overview_export_xlsx",
            on_click="ignore",
            icon=":material/download:",
            disabled=too_big,
            help="Over a million rows: use CSV (Excel would split them across sheets slowly)." if too_big else None,
        )
        buttons.download_button(
            "CSV with field names",
            data=data.rows_export(snapshot, level, since, until, account_id, "csv", headers="raw"),
            file_name=f"{level}_rows_{since}_{until}_raw.csv",
            mime="text/csv",
            key="overview_export_csv_raw",
            on_click="ignore",
            type="tertiary",
        )

render_breakdowns(snapshot, since, until, user, currency, account_id=account_id)
