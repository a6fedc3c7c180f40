"""The Breakdowns section the Overview, Campaign, Ad set and Ad pages share: who saw the ads, where, on which device.

A page calls `render_breakdowns` once, near its end. Segment sums come from the store (one query
per family), ratios from those sums (`metrics.with_ratio_columns`), never from daily ratios. Reach
is not additive across days, segments or entities, so the period tables have none; the per-day
reach table shows it as reported, and says so where the level has none (levels rolled up from
their children).
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from insights_core.dashboard import widgets
from insights_core.dashboard.data import CACHE_ENTRIES, Snapshot, snapshot_cursor
from insights_core.dashboard.formatting import CURRENCY_SYMBOLS, METRIC_LABELS, plotly_literal
from insights_core.dashboard.login import CurrentUser
from insights_core.levels import LEVEL_SPECS, Level
from insights_core.metrics import with_ratio_columns
from insights_core.models import ADDITIVE_METRICS, BreakdownFamily
from insights_core.store import breakdowns as store

SECTION_METRICS = ("spend", "conversions", "revenue", "ctr", "cpc", "roas")
TOP_COUNTRIES = 15
FAMILY_TITLES: dict[BreakdownFamily, str] = {
    "age_gender": "Age and gender",
    "country": "Countries",
    "placement": "Placements",
    "device_platform": "Devices",
}
KEY_NAMES: dict[BreakdownFamily, tuple[str, str | None]] = {
    "age_gender": ("age", "gender"),
    "country": ("country", None),
    "placement": ("platform", "position"),
    "device_platform": ("device", None),
}
"""What key_1 and key_2 are called in each family's table (None: the family has one key)."""
KEY_LABELS = {name: name.capitalize() for names in KEY_NAMES.values() for name in names if name}
AGE_ORDER = ("18-24", "25-34", "35-44", "45-54", "55-64", "65+", "Unknown")
GENDER_COLORS = {"female": "#E45756", "male": "#4C78A8", "unknown": "#9D9D9D"}


@st.cache_data(max_entries=CACHE_ENTRIES, show_spinner=False)
def load_segment_sums(
    snapshot: Snapshot,
    family: BreakdownFamily,
    level: Level,
    since: dt.date,
    until: dt.date,
    entity_id: str | None,
    account_id: str | None,
) -> pd.DataFrame | None:
    """Additive sums per segment over the period; None when the snapshot predates breakdowns."""
    with snapshot_cursor(snapshot) as cur:
        if not store.has_breakdowns_table(cur):
            return None
        return store.fetch_segment_sums(cur, family, level, since, until, entity_id, account_id)


@st.cache_data(max_entries=CACHE_ENTRIES, show_spinner=False)
def load_segment_daily_reach(
    snapshot: Snapshot, family: BreakdownFamily, level: Level, entity_id: str, since: dt.date, until: dt.date
) -> pd.DataFrame:
    with snapshot_cursor(snapshot) as cur:
        if not store.has_breakdowns_table(cur):
            return pd.DataFrame()
        return store.fetch_segment_daily_reach(cur, family, level, entity_id, since, until)


def segment_table(sums: pd.DataFrame, family: BreakdownFamily, sort_by: str) -> pd.DataFrame:
    """The family's table: named key columns, additive sums and ratios from them, countries cut to the top
    15 by `sort_by` (spend for ratios) plus one "other" row summing the rest."""
    frame = sums.copy()
    if family == "country" and len(frame) > TOP_COUNTRIES:
        rank_by = sort_by if sort_by in ADDITIVE_METRICS else "spend"
        frame = frame.sort_values([rank_by, "key_1"], ascending=[False, True], kind="stable")
        rest = frame.iloc[TOP_COUNTRIES:]
        other = {"key_1": "other", "key_2": "", **{m: rest[m].sum() for m in ADDITIVE_METRICS}}
        frame = pd.concat([frame.iloc[:TOP_COUNTRIES], pd.DataFrame([other])], ignore_index=True)
    frame = with_ratio_columns(frame)
    first, second = KEY_NAMES[family]
    frame = frame.rename(columns={"key_1": first, **({"key_2": second} if second else {})})
    keys = [first] + ([second] if second else [])
    columns = keys + [*ADDITIVE_METRICS, "ctr", "cpc", "roas"]
    return frame[columns].reset_index(drop=True)


def segment_figure(table: pd.DataFrame, family: BreakdownFamily, metric: str, currency: str) -> go.Figure:
    """Age x gender as grouped bars (ages in order, one bar per gender); other families as horizontal bars."""
    label = METRIC_LABELS.get(metric, metric)
    prefix = CURRENCY_SYMBOLS.get(currency, "") if metric in ("spend", "revenue", "cpc") else ""
    figure = go.Figure(layout=dict(margin=dict(l=10, r=10, t=40, b=10), title=f"{label} by {FAMILY_TITLES[family]}"))
    if family == "age_gender":
        ages = [a for a in AGE_ORDER if a in set(table["age"])]
        for gender in ("female", "male", "unknown"):
            part = table[table["gender"] == gender].set_index("age").reindex(ages)
            figure.add_bar(x=ages, y=part[metric], name=gender, marker_color=GENDER_COLORS[gender])
        figure.update_layout(barmode="group", yaxis=dict(title_text=label, tickprefix=prefix), legend_title="gender")
        return figure
    first, second = KEY_NAMES[family]
    names = table[first].astype(str) + (" · " + table[second].astype(str) if second else "")
    figure.add_bar(y=[plotly_literal(n) for n in names], x=table[metric], orientation="h", marker_color="#4C78A8")
    figure.update_layout(
        xaxis=dict(title_text=label, tickprefix=prefix),
        yaxis=dict(autorange="reversed"),
        height=max(260, 26 * len(table) + 80),
    )
    return figure


def render_breakdowns(
    snapshot: Snapshot,
    since: dt.date,
    until: dt.date,
    user: CurrentUser,
    currency: str,
    *,
    level: Level = "campaign",
    entity_id: str | None = None,
    account_id: str | None = None,
) -> None:
    """The Breakdowns section for one entity (`level`, `entity_id`), or, without an id, for every campaign
    of `account_id` (None: every account), over since..until."""
    prefix = level if entity_id is not None else "overview"
    if entity_id is None:
        audience = "the ads of all campaigns"
    else:
        audience = "this ad" if level == "ad" else f"the ads of this {LEVEL_SPECS[level].label}"
    st.subheader("Breakdowns")
    st.caption(
        f"Who saw {audience}, where and on which device, {since} to {until}. Ratios come from each "
        "segment's sums. Segments include Meta's 'unknown' ones, so each family adds up to the totals above."
    )
    metric = st.radio(
        "Breakdown metric",
        list(SECTION_METRICS),
        key=f"{prefix}_breakdown_metric",
        horizontal=True,
        format_func=lambda m: METRIC_LABELS.get(m, m),
    )
    # only the open tab is drawn: four charts and tables at once cost the browser seconds of every page load
    tabs = st.tabs([FAMILY_TITLES[f] for f in FAMILY_TITLES], key=f"{prefix}_breakdown_family", on_change="rerun")
    for tab, family in zip(tabs, FAMILY_TITLES):
        if tab.open:
            with tab:
                _render_family(
                    snapshot, family, level, since, until, entity_id, account_id, metric, user, currency, prefix
                )


def _render_family(
    snapshot: Snapshot,
    family: BreakdownFamily,
    level: Level,
    since: dt.date,
    until: dt.date,
    entity_id: str | None,
    account_id: str | None,
    metric: str,
    user: CurrentUser,
    currency: str,
    prefix: str,
) -> None:
    sums = load_segment_sums(snapshot, family, level, since, until, entity_id, account_id)
    if sums is None:
        st.info("Breakdowns appear after the worker's next sync (this snapshot predates them).")
        return
    if sums.empty:
        st.info(f"No {FAMILY_TITLES[family].lower()} breakdown in this period (not collected, or no delivery).")
        return
    table = segment_table(sums, family, metric)
    st.plotly_chart(segment_figure(table, family, metric, currency), key=f"{prefix}_breakdown_{family}_chart")
    file_stem = f"{prefix}_{entity_id or account_id or 'all'}_{family}_{since}_{until}"
    widgets.table(table, f"{prefix}_breakdown_{family}", file_stem, user, currency, labels=KEY_LABELS)
    if entity_id is None:
        st.caption(
            "Reach is not shown for all campaigns together: it does not add up across campaigns, segments or "
            "days (the same people are counted in several). Entity pages show it per segment and day where Meta "
            "reported it."
        )
        return
    reach = load_segment_daily_reach(snapshot, family, level, entity_id, since, until)
    if reach.empty:
        st.caption(
            f"Reach per segment is not available for this {LEVEL_SPECS[level].label}: its segments are sums of its "
            "children's, and reach never adds up (the same person is reached by several)."
        )
        return
    with st.expander("Reach per segment and day, as reported (never summed)"):
        first, second = KEY_NAMES[family]
        shown = reach.rename(columns={"date_start": "date", "key_1": first, **({"key_2": second} if second else {})})
        shown = shown[["date", first] + ([second] if second else []) + ["reach", "impressions"]]
        widgets.table(
            shown, f"{prefix}_breakdown_{family}_reach", f"{file_stem}_reach", user, currency, labels=KEY_LABELS
        )
