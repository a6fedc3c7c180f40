"""Timeline (the recent insights of one entity, GET /recent-insights/{entity_id} in the original API): any
entity by type and id, days back 1 to INSIGHTS_MAX_DAYS_BACK (365), a daily chart with a metric selector, and the
table. Deep link `?entity_type=ad&entity_id=...&days=30`."""

import streamlit as st

from insights_core.dashboard import charts, data, widgets
from insights_core.dashboard.formatting import METRIC_LABELS, literal
from insights_core.dashboard.inputs import LEVEL_LABELS, parse_entity_id
from insights_core.dashboard.periods import days_back_range
from insights_core.errors import InputError
from insights_core.levels import LEVELS
from insights_core.metrics import with_ratio_columns
from insights_core.sync_requests import parse_days_back, parse_entity_type

CHART_METRICS = (
    "spend",
    "impressions",
    "clicks",
    "conversions",
    "revenue",
    "ctr",
    "cpc",
    "cpm",
    "roas",
    "cost_per_conversion",
    "reach",
    "unique_clicks",
    "frequency",
)

user = widgets.require("analytics:read")
widgets.page_title(
    "timeline",
    "Reach, unique clicks and frequency are shown per day as Meta reported them: "
    "they do not add up across days, so no total is given for them.",
)
settings = widgets.app_settings()
snapshot, bounds = widgets.open_snapshot(settings)

for name, key in (("entity_type", "timeline_level"), ("entity_id", "timeline_id"), ("days", "timeline_days")):
    value = widgets.query_value(name)
    if value is None or st.session_state.get(f"{key}_url") == value:
        continue
    st.session_state[f"{key}_url"] = value
    st.session_state[key] = value if name != "entity_type" or value in LEVELS else None
st.session_state.setdefault("timeline_level", "campaign")
st.session_state.setdefault("timeline_days", "30")


def _remember_level() -> None:
    """A type picked in the box replaces the link's (a bad one would otherwise be refused on every run)."""
    if st.session_state.get("timeline_level") in LEVELS:
        st.query_params["entity_type"] = st.session_state["timeline_level"]


level_column, id_column, days_column = st.columns([1, 2, 1])
level = level_column.selectbox(
    "Entity type",
    LEVELS,
    key="timeline_level",
    format_func=lambda level: LEVEL_LABELS[level],
    index=None,
    placeholder="Pick a type",
    on_change=_remember_level,
)
url_level = widgets.query_value("entity_type")
if url_level is not None:
    try:
        parse_entity_type(url_level)
    except InputError as exc:
        widgets.show_error(f"{exc}: pick one above")
        st.stop()
raw_id = id_column.text_input("Entity id", key="timeline_id", placeholder="e.g. 120210000000000001")
raw_days = days_column.text_input("Days back", key="timeline_days", help=f"1 to {settings.max_days_back}")
if level is None or not raw_id.strip():
    st.info("Pick an entity type and enter the id of a campaign, ad set or ad.")
    st.stop()
try:
    level = parse_entity_type(level)
    entity_id = parse_entity_id(raw_id, level)
    days = parse_days_back(raw_days, settings.max_days_back)
except InputError as exc:
    widgets.show_error(exc)
    st.stop()
st.query_params.update({"entity_type": level, "entity_id": entity_id, "days": str(days)})

assert bounds.last_day is not None
since, until = days_back_range(bounds.last_day, days)
view = data.load_entity_view(snapshot, level, entity_id, since, until)
if view is None:
    widgets.unknown_entity(level, entity_id, bounds)
currency = view.entity.get("currency") or "USD"
st.header(literal(view.entity["name"]))
st.caption(
    f"{LEVEL_LABELS[level].capitalize()} {entity_id}, {since} to {until} ({days} days, through the last stored day)."
)
st.page_link(
    f"pages/{level}.py",
    label=f"Open the {LEVEL_LABELS[level]} page",
    query_params={f"{level}_id": entity_id},
    icon=":material/open_in_new:",
)
widgets.metric_cards(view.totals, currency, daily=view.daily)

daily = with_ratio_columns(view.daily)
metric = st.selectbox("Metric", CHART_METRICS, key="timeline_metric", format_func=lambda m: METRIC_LABELS.get(m, m))
if daily.empty:
    st.info("No delivery in these days.")
else:
    st.plotly_chart(charts.metric_line_figure(daily, metric, currency), key="timeline_chart")
widgets.table(daily, "timeline_rows", f"{level}_{entity_id}_last_{days}_days", user, currency)
