"""Ads: the list of the period's ads with their ad sets and campaigns; with `?ad_id=` one ad (what the endpoint
GET /ad/{id} returned): insights against the comparison period and a comparison with peer ads in its ad set and
campaign (percentile and difference from the median for CTR, CPC, ROAS)."""

import streamlit as st

from insights_core.dashboard import charts, data, navigation, widgets
from insights_core.dashboard.breakdowns import render_breakdowns
from insights_core.dashboard.creatives import show_ad_creative
from insights_core.dashboard.entity_page import open_entity_page
from insights_core.dashboard.formatting import DASH, enum_label, format_peer_comparison, literal
from insights_core.dashboard.scoring import PEER_METRICS, peer_comparison
from insights_core.metrics import with_ratio_columns

user = widgets.require("analytics:read")
page = open_entity_page("ad", user)
ad_id, view, entity, currency = page.entity_id, page.view, page.entity, page.currency
snapshot, since, until = page.snapshot, page.since, page.until

st.header(literal(entity["name"]))
navigation.timeline_link("ad", ad_id)
facts = st.columns(3)
facts[0].metric("Status", literal(enum_label(entity.get("effective_status") or entity.get("status"))))
facts[1].metric("Days with delivery", f"{len(view.daily):,}")
facts[2].caption(f"Ad id {ad_id}  \nCreative id {literal(entity.get('creative_id') or DASH)}")

widgets.metric_cards(
    view.totals, currency, data.load_compared_totals(snapshot, "ad", ad_id, page.period), daily=view.daily
)
if view.daily.empty:
    st.info("This ad did not deliver in the period.")
else:
    st.plotly_chart(charts.daily_trend_figure(with_ratio_columns(view.daily), currency), key="ad_trend")

show_ad_creative(snapshot, ad_id)

st.subheader("Compared with peer ads")
st.caption(
    "Peers are the other ads that delivered in the same period. Each ratio comes from each ad's sums. "
    "Percentile: share of peers with a lower value (ties count half); for CPC lower is better, "
    "so 'better than' reverses it."
)
peers = data.load_ad_peers(snapshot, entity["campaign_id"], since, until)
scopes = {"adset": peers[peers["adset_id"] == entity["adset_id"]], "campaign": peers}
for scope, label in (("adset", "Same ad set"), ("campaign", "Same campaign")):
    comparison = peer_comparison(ad_id, scopes[scope])
    st.markdown(f"**{label}** ({int((scopes[scope]['ad_id'] != ad_id).sum())} other ads delivered)")
    widgets.table(
        comparison,
        f"ad_peers_{scope}",
        f"ad_{ad_id}_peers_{scope}",
        user,
        currency,
        display=format_peer_comparison(comparison, currency),
    )

metric = st.radio("Peer chart metric", list(PEER_METRICS), key="ad_peer_metric", horizontal=True, format_func=str.upper)
if peers.empty:
    st.info("No ad of this campaign delivered in the period.")
else:
    st.plotly_chart(
        charts.peer_figure(with_ratio_columns(peers), metric, ad_id, currency=currency), key="ad_peer_chart"
    )

with st.expander("Daily rows (reach and frequency as Meta reported them per day)"):
    widgets.table(with_ratio_columns(view.daily), "ad_daily", f"ad_{ad_id}_daily", user, currency)

render_breakdowns(snapshot, since, until, user, currency, level="ad", entity_id=ad_id)
