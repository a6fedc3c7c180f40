"""Ad sets: the list of the period's ad sets with their campaigns; with `?adset_id=` one ad set (what the endpoint
GET /adset/{id} returned): targeting, insights against the comparison period, and its ads."""

import json

import streamlit as st

from insights_core.dashboard import charts, data, navigation, widgets
from insights_core.dashboard.breakdowns import render_breakdowns
from insights_core.dashboard.entity_page import CHILD_TABLE_COLUMNS, open_entity_page
from insights_core.dashboard.formatting import DASH, enum_label, format_money, literal
from insights_core.metrics import with_ratio_columns

user = widgets.require("analytics:read")
page = open_entity_page("adset", user)
adset_id, view, entity, currency = page.entity_id, page.view, page.entity, page.currency

st.header(literal(entity["name"]))
navigation.timeline_link("adset", adset_id)
facts = st.columns(4)
facts[0].metric("Status", literal(enum_label(entity.get("effective_status") or entity.get("status"))))
facts[1].metric("Optimization goal", literal(enum_label(entity.get("optimization_goal"))))
facts[2].metric("Billing event", literal(enum_label(entity.get("billing_event"))))
facts[3].metric("Daily budget", format_money(entity.get("daily_budget"), currency))

st.subheader("Targeting")
ages = f"{entity['age_min']}–{entity['age_max']}" if entity.get("age_min") is not None else DASH
targeting = st.columns(4)
targeting[0].metric("Ages", ages)
targeting[1].metric("Genders", literal((entity.get("genders") or DASH).replace(",", ", ")))
targeting[2].metric("Countries", literal((entity.get("countries") or DASH).replace(",", ", ")))
targeting[3].markdown(
    "**Placements**  \n"
    + (literal(", ".join(p.replace("_", " ") for p in (entity.get("placements") or "").split(",") if p)) or DASH)
)
if entity.get("targeting_json"):
    with st.expander("Full targeting spec"):
        try:
            st.json(json.loads(entity["targeting_json"]), expanded=False)
        except ValueError:
            st.code(entity["targeting_json"])

st.subheader("Insights")
widgets.metric_cards(
    view.totals, currency, data.load_compared_totals(page.snapshot, "adset", adset_id, page.period), daily=view.daily
)
if view.daily.empty:
    st.info("This ad set did not deliver in the period.")
else:
    st.plotly_chart(charts.daily_trend_figure(with_ratio_columns(view.daily), currency), key="adset_trend")

ads = with_ratio_columns(view.children["ad"])
st.subheader(f"Ads ({len(ads)})")
st.caption("Select a row to open the ad and compare it with its peers.")
picked = widgets.table(
    ads[list(CHILD_TABLE_COLUMNS)],
    "adset_ads",
    f"adset_{adset_id}_ads",
    user,
    currency,
    selectable=True,
)
if picked is not None:
    navigation.open_entity("ad", str(ads["entity_id"].iloc[picked]))

with st.expander("Daily rows (reach and frequency as Meta reported them per day)"):
    widgets.table(with_ratio_columns(view.daily), "adset_daily", f"adset_{adset_id}_daily", user, currency)

render_breakdowns(page.snapshot, page.since, page.until, user, currency, level="adset", entity_id=adset_id)
