"""Campaign (what the endpoint GET /campaign/{id} returned): find by name or id (deep link `?campaign_id=`), status,
objective, daily chart, totals, efficiency score, and its ad sets and ads."""

import streamlit as st

from insights_core.dashboard import charts, data, widgets
from insights_core.dashboard.entity_page import CHILD_TABLE_COLUMNS
from insights_core.dashboard.formatting import enum_label, format_money, format_value, literal
from insights_core.dashboard.inputs import parse_entity_id
from insights_core.dashboard.periods import previous_period
from insights_core.dashboard.scoring import EFFICIENCY_HELP, efficiency_score
from insights_core.errors import InputError
from insights_core.metrics import with_ratio_columns

PICK_KEY = "campaign_pick"

user = widgets.require("analytics:read")
widgets.page_title("campaign")
settings = widgets.app_settings()
snapshot, bounds = widgets.open_snapshot(settings)
since, until = widgets.date_range("campaign_range", bounds)
prev_since, prev_until = previous_period(since, until)
summary = data.load_campaign_summary(snapshot, since, until, prev_since, prev_until, None)

requested = widgets.query_value("campaign_id")
if requested is not None:
    try:
        requested = parse_entity_id(requested, "campaign")
    except InputError as exc:
        widgets.show_error(exc)
        st.stop()
    if data.load_entity(snapshot, "campaign", requested) is None:
        widgets.unknown_entity("campaign", requested, bounds)

text = st.text_input("Find a campaign by name or id", key="campaign_search", placeholder="e.g. Holiday Sale")
if text.strip():
    found = data.load_campaign_search(snapshot, text.strip())
    if found.empty:
        st.warning(f"No campaign name or id matches {literal(repr(text.strip()))}.")
    options = dict(zip(found["campaign_id"], found["name"]))
else:
    options = dict(zip(summary["campaign_id"].head(50), summary["name"].head(50)))
if requested is not None and requested not in options:
    options = {requested: data.load_entity(snapshot, "campaign", requested)["name"], **options}  # type: ignore[index]
if requested is not None:
    st.session_state[PICK_KEY] = requested
elif st.session_state.get(PICK_KEY) not in options:
    st.session_state.pop(PICK_KEY, None)
if not options:
    st.stop()


def _remember_pick() -> None:
    st.query_params["campaign_id"] = st.session_state[PICK_KEY]


campaign_id = st.selectbox(
    "Campaign",
    list(options),
    key=PICK_KEY,
    on_change=_remember_pick,
    format_func=lambda cid: f"{options.get(cid, cid)} · {cid}",
    help="Without a search: the 50 campaigns that spent most in the period.",
)
view = data.load_entity_view(snapshot, "campaign", campaign_id, since, until)
if view is None:
    widgets.unknown_entity("campaign", campaign_id, bounds)
entity, currency = view.entity, view.entity.get("currency") or "USD"

st.header(literal(entity["name"]))
facts = st.columns(5)
facts[0].metric("Status", literal(enum_label(entity.get("effective_status") or entity.get("status"))))
facts[1].metric("Objective", literal(enum_label(entity.get("objective"))))
facts[2].metric("Daily budget", format_money(entity.get("daily_budget"), currency))
facts[3].metric("Ad sets", f"{len(view.children['adset']):,}")
facts[4].metric("Ads", f"{len(view.children['ad']):,}")

mine = summary[summary["campaign_id"] == campaign_id]
previous = {m: float(mine[f"prev_{m}"].iloc[0]) for m in view.totals} if not mine.empty else None
widgets.metric_cards(view.totals, currency, previous, daily=view.daily)
delivered = summary[summary["spend"] > 0]
score = efficiency_score(view.totals, delivered) if view.totals["spend"] > 0 else None
st.metric("Efficiency score", format_value(score, "score"), help=EFFICIENCY_HELP)
st.caption(
    f"Among {len(delivered):,} campaigns that spent in {since} to {until}. Changes compare with "
    f"{prev_since} to {prev_until}."
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
    widgets.open_child("adset", str(adsets["entity_id"].iloc[picked]))

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
    widgets.open_child("ad", str(ads["entity_id"].iloc[picked]))

with st.expander("Daily rows (reach and frequency as Meta reported them per day)"):
    widgets.table(with_ratio_columns(view.daily), "campaign_daily", f"campaign_{campaign_id}_daily", user, currency)
