"""Campaigns: the list of the period's campaigns (filter, sort, columns, pages); with `?campaign_id=` one campaign
(what the endpoint GET /campaign/{id} returned): status, objective, totals against the comparison period,
efficiency score, daily chart, and its ad sets and ads."""

import streamlit as st

from insights_core.dashboard import charts, data, navigation, widgets
from insights_core.dashboard.breakdowns import render_breakdowns
from insights_core.dashboard.entity_page import CHILD_TABLE_COLUMNS, switch_picker
from insights_core.dashboard.formatting import enum_label, format_money, format_value, literal
from insights_core.dashboard.lists import entity_list
from insights_core.dashboard.period_controls import period_controls
from insights_core.dashboard.scoring import EFFICIENCY_HELP, efficiency_score
from insights_core.metrics import with_ratio_columns

user = widgets.require("analytics:read")
widgets.page_title("campaign")
settings = widgets.app_settings()
snapshot, bounds = widgets.open_snapshot(settings)
period = period_controls(bounds)
campaign_id = navigation.requested_entity("campaign")
if campaign_id is None:
    st.subheader("Campaigns")
    entity_list(snapshot, "campaign", period, user)
    st.stop()

view = data.load_entity_view(snapshot, "campaign", campaign_id, period.since, period.until)
if view is None:
    widgets.unknown_entity("campaign", campaign_id, bounds)
assert view is not None  # unknown_entity stopped the run
entity, currency = view.entity, view.entity.get("currency") or "USD"
navigation.breadcrumbs("campaign", entity)
switch_picker(snapshot, "campaign", period, entity)

st.header(literal(entity["name"]))
facts = st.columns(5)
facts[0].metric("Status", literal(enum_label(entity.get("effective_status") or entity.get("status"))))
facts[1].metric("Objective", literal(enum_label(entity.get("objective"))))
facts[2].metric("Daily budget", format_money(entity.get("daily_budget"), currency))
facts[3].metric("Ad sets", f"{len(view.children['adset']):,}")
facts[4].metric("Ads", f"{len(view.children['ad']):,}")
navigation.timeline_link("campaign", campaign_id)

compared = period.compared
summary = data.load_campaign_summary(
    snapshot, period.since, period.until, compared[0] if compared else None, compared[1] if compared else None, None
)
mine = summary[summary["campaign_id"] == campaign_id]
previous = None
if compared is not None:
    previous = {m: float(mine[f"prev_{m}"].iloc[0]) if not mine.empty else 0.0 for m in view.totals}
widgets.metric_cards(view.totals, currency, previous, daily=view.daily)
delivered = summary[summary["spend"] > 0]
score = efficiency_score(view.totals, delivered) if view.totals["spend"] > 0 else None
st.metric("Efficiency score", format_value(score, "score"), help=EFFICIENCY_HELP)
st.caption(
    f"Among {len(delivered):,} campaigns that spent in {period.since} to {period.until}."
    + (f" Changes compare with {compared[0]} to {compared[1]}." if compared else "")
)

if view.daily.empty:
    st.info("This campaign did not deliver in the period.")
else:
    st.plotly_chart(charts.daily_trend_figure(with_ratio_columns(view.daily), currency), key="campaign_trend")

st.subheader(f"Ad sets ({len(view.children['adset'])})")
st.caption("Select a row to open the ad set.")
adsets = with_ratio_columns(view.children["adset"])
picked = widgets.table(
    adsets[list(CHILD_TABLE_COLUMNS)],
    "campaign_adsets",
    f"campaign_{campaign_id}_adsets",
    user,
    currency,
    selectable=True,
)
if picked is not None:
    navigation.open_entity("adset", str(adsets["entity_id"].iloc[picked]))

st.subheader(f"Ads ({len(view.children['ad'])})")
st.caption("Select a row to open the ad.")
ads = with_ratio_columns(view.children["ad"])
picked = widgets.table(
    ads[list(CHILD_TABLE_COLUMNS)],
    "campaign_ads",
    f"campaign_{campaign_id}_ads",
    user,
    currency,
    selectable=True,
    height=360,
)
if picked is not None:
    navigation.open_entity("ad", str(ads["entity_id"].iloc[picked]))

with st.expander("Daily rows (reach and frequency as Meta reported them per day)"):
    widgets.table(with_ratio_columns(view.daily), "campaign_daily", f"campaign_{campaign_id}_daily", user, currency)

render_breakdowns(snapshot, period.since, period.until, user, currency, level="campaign", entity_id=campaign_id)
