"""Timeline (the recent insights of one entity, GET /recent-insights/{entity_id} in the original API): any
campaign, ad set or ad, picked from the period's top spenders or by id, over the session's period: a daily chart
with a metric selector, and the table. Deep link `?entity_type=ad&entity_id=...`; an older link's `&days=30`
sets the period to that many days through the last stored day."""

import streamlit as st

from insights_core.dashboard import charts, data, widgets
from insights_core.dashboard.formatting import METRIC_LABELS, literal
from insights_core.dashboard.inputs import LEVEL_LABELS, parse_entity_id
from insights_core.dashboard.lists import sibling_choices
from insights_core.dashboard.period_controls import current_period, period_controls, set_period_dates
from insights_core.dashboard.periods import days_back_range, partial_day_note
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
assert bounds.last_day is not None

for name, key in (("entity_type", "timeline_level"), ("entity_id", "timeline_id")):
    value = widgets.query_value(name)
    if value is None or st.session_state.get(f"{key}_url") == value:
        continue
    st.session_state[f"{key}_url"] = value
    st.session_state[key] = value if name != "entity_type" or value in LEVELS else None
st.session_state.setdefault("timeline_level", "campaign")

url_days = widgets.query_value("days")
if url_days is not None:  # an older link: its days back become the session's period, once
    try:
        days = parse_days_back(url_days, settings.max_days_back)
    except InputError as exc:
        widgets.show_error(exc)
        st.stop()
    current_period(bounds)
    set_period_dates(*days_back_range(bounds.last_day, days))
    del st.query_params["days"]
period = period_controls(bounds, account=False)


def _remember_level() -> None:
    """A type picked in the box replaces the link's (a bad one would otherwise be refused on every run)."""
    if st.session_state.get("timeline_level") in LEVELS:
        st.query_params["entity_type"] = st.session_state["timeline_level"]
        st.session_state["timeline_id"] = ""  # another level's id means nothing here
        st.query_params.pop("entity_id", None)


def _apply_days() -> None:
    try:
        days = parse_days_back(st.session_state["timeline_days"], settings.max_days_back)
    except InputError:
        return  # the run shows the message
    assert bounds.last_day is not None
    set_period_dates(*days_back_range(bounds.last_day, days))


level_column, pick_column, id_column, days_column = st.columns([1, 2.4, 1.6, 0.8])
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
if level is None:
    st.info("Pick an entity type.")
    st.stop()
level = parse_entity_type(level)
raw_id = id_column.text_input("Or an id", key="timeline_id", placeholder="e.g. 120210000000000001")
if st.session_state.get("timeline_days_pushed") != period.days or "timeline_days" not in st.session_state:
    st.session_state["timeline_days"] = str(period.days)
    st.session_state["timeline_days_pushed"] = period.days
raw_days = days_column.text_input(
    "Days back",
    key="timeline_days",
    on_change=_apply_days,
    help=f"1 to {settings.max_days_back}, through {bounds.last_day}",
)
try:
    parse_days_back(raw_days, settings.max_days_back)
    entity_id = parse_entity_id(raw_id, level) if raw_id.strip() else None
except InputError as exc:
    widgets.show_error(exc)
    st.stop()

known = data.load_entity(snapshot, level, entity_id) if entity_id else None
if entity_id is not None and known is None:
    widgets.unknown_entity(level, entity_id, bounds)
# the period's top spenders of the level, and the entity shown (the top one until another is picked or typed)
choices = sibling_choices(snapshot, level, period, entity_id or "", str((known or {}).get("name") or entity_id))
if not choices:
    st.info(f"No {LEVEL_LABELS[level]} is stored yet.")
    st.stop()
entity_id = entity_id or next(iter(choices))
pick_key = f"timeline_pick_{level}"
st.session_state[pick_key] = entity_id


def _remember_pick() -> None:
    st.session_state["timeline_id"] = st.session_state[pick_key]
    st.query_params["entity_id"] = st.session_state[pick_key]


pick_column.selectbox(
    f"{LEVEL_LABELS[level].capitalize()} (the period's top spenders)",
    list(choices),
    key=pick_key,
    on_change=_remember_pick,
    format_func=lambda eid: f"{choices.get(eid, eid)} · {eid}",
)
st.query_params.update({"entity_type": level, "entity_id": entity_id})

since, until = period.since, period.until
view = data.load_entity_view(snapshot, level, entity_id, since, until)
if view is None:
    widgets.unknown_entity(level, entity_id, bounds)
assert view is not None  # unknown_entity stopped the run
currency = view.entity.get("currency") or "USD"
st.header(literal(view.entity["name"]))
st.caption(
    f"{LEVEL_LABELS[level].capitalize()} {entity_id}, {since} to {until} ({period.days} days)."
    + (f" {partial_day_note(period)}" if period.includes_today else "")
)
st.page_link(
    f"pages/{level}.py",
    label=f"Open the {LEVEL_LABELS[level]} page",
    query_params={f"{level}_id": entity_id},
    icon=":material/open_in_new:",
)
widgets.metric_cards(
    view.totals, currency, data.load_compared_totals(snapshot, level, entity_id, period), daily=view.daily
)

daily = with_ratio_columns(view.daily)
metric = st.selectbox("Metric", CHART_METRICS, key="timeline_metric", format_func=lambda m: METRIC_LABELS.get(m, m))
if daily.empty:
    st.info("No delivery in these days.")
else:
    st.plotly_chart(charts.metric_line_figure(daily, metric, currency), key="timeline_chart")
widgets.table(daily, "timeline_rows", f"{level}_{entity_id}_{since}_{until}", user, currency)
