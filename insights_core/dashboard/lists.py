"""The list every level's page opens on (Campaigns, Ad sets, Ads): filters, sort, columns, pager, table.

Each filter is a widget with a stable key (`<level>_search`, `<level>_status`, ...); the request they
make is one `ListRequest`, answered by one cached SQL query that returns only the page shown.
Selecting a row opens the entity (`navigation.open_entity`).
"""

from __future__ import annotations

import math
from dataclasses import replace

import pandas as pd
import streamlit as st

from insights_core.dashboard import data, widgets
from insights_core.dashboard.creatives import thumbnails_for_ads
from insights_core.dashboard.formatting import METRIC_LABELS, literal
from insights_core.dashboard.login import CurrentUser
from insights_core.dashboard.navigation import open_entity
from insights_core.dashboard.periods import Period
from insights_core.levels import LEVEL_LABELS, LEVEL_PLURAL, Level
from insights_core.manager.views import load_page_pacing
from insights_core.store.lists import LOWER_IS_BETTER, SORT_METRICS, ListPage, ListRequest

PAGE_SIZES = (25, 50, 100, 200)
DEFAULT_COLUMNS = ("spend", "impressions", "clicks", "ctr", "cpc", "conversions", "revenue", "roas")
PICKER_OPTIONS = 50
PACING_OPTIONS = ("budget", "budget_type", "pacing_status", "pacing_deviation")
"""Columns campaigns and ad sets may add: their budget and its pace as of the last stored day (as on the
Pacing page, whatever the list's period), computed for the shown page's rows only."""
PACING_LABELS = {
    "budget": "Budget",
    "budget_type": "Budget type",
    "pacing_status": "Pacing",
    "pacing_deviation": "Pacing deviation",
}
PACING_KINDS = {"budget": "money", "pacing_deviation": "change"}


def list_labels(level: Level) -> dict[str, str]:
    """Column headers of a list: the entity's own name and id named after its level."""
    return {
        "name": LEVEL_LABELS[level].capitalize(),
        "entity_id": f"{LEVEL_LABELS[level].capitalize()} id",
        "adset_name": "Ad set",
        "campaign_name": "Campaign",
    }


def list_columns(level: Level, metrics: list[str]) -> list[str]:
    """Names first (the entity's, its ad set's and campaign's), then status, objective, metrics, and the ids."""
    names = ["name", *(["adset_name"] if level == "ad" else []), *(["campaign_name"] if level != "campaign" else [])]
    ids = ["entity_id", *(["adset_id"] if level == "ad" else []), *(["campaign_id"] if level != "campaign" else [])]
    return [*names, "effective_status", "objective", *metrics, *ids]


def _filters(snapshot: data.Snapshot, level: Level, period: Period) -> tuple[ListRequest, list[str]]:
    """Draw the filter widgets; the request they make, and the metric columns chosen."""
    statuses, objectives = data.load_list_choices(snapshot, level, period.account_id)
    first = st.columns([2, 1.3, 1.3, 1])
    name = first[0].text_input(
        "Name or id", key=f"{level}_search", placeholder=f"Search {LEVEL_PLURAL[level]}", help="Any part of the name"
    )
    chosen_statuses = first[1].multiselect("Status", statuses, key=f"{level}_status", placeholder="Any status")
    chosen_objectives = first[2].multiselect(
        "Objective", objectives, key=f"{level}_objective", placeholder="Any objective"
    )
    min_spend = first[3].number_input(
        f"Minimum spend ({period.currency})", min_value=0.0, value=0.0, step=10.0, key=f"{level}_min_spend"
    )
    campaign_id = adset_id = None
    if level != "campaign":
        second = st.columns(2)
        campaigns = data.load_parent_choices(snapshot, "campaign", None, period.account_id)
        names = dict(zip(campaigns["id"], campaigns["name"]))
        campaign_id = second[0].selectbox(
            "Campaign",
            list(names),
            key=f"{level}_campaign",
            index=None,
            placeholder="Any campaign",
            format_func=lambda cid: f"{names.get(cid, cid)} · {cid}",
        )
        if level == "ad" and campaign_id is not None:
            adsets = data.load_parent_choices(snapshot, "adset", campaign_id, period.account_id)
            adset_names = dict(zip(adsets["id"], adsets["name"]))
            adset_id = second[1].selectbox(
                "Ad set",
                list(adset_names),
                key="ad_adset",
                index=None,
                placeholder="Any ad set of the campaign",
                format_func=lambda aid: f"{adset_names.get(aid, aid)} · {aid}",
            )
    third = st.columns([1.5, 1.2, 3, 0.8])
    sort = third[0].selectbox(
        "Sort by", SORT_METRICS, index=0, key=f"{level}_sort", format_func=lambda m: METRIC_LABELS.get(m, m)
    )
    best = third[1].radio(
        "Order",
        ("best", "worst"),
        key=f"{level}_order",
        horizontal=True,
        format_func=lambda o: {"best": "Best first", "worst": "Worst first"}[o],
        help="Lowest first for costs (CPC, CPM, cost per conversion) when best; entities without a value come last.",
    )
    columns = third[2].multiselect(
        "Columns",
        [*SORT_METRICS, *(PACING_OPTIONS if level != "ad" else ())],
        default=list(DEFAULT_COLUMNS),
        key=f"{level}_columns",
        format_func=lambda m: METRIC_LABELS.get(m) or PACING_LABELS.get(m, m),
    )
    size = third[3].selectbox("Rows", PAGE_SIZES, index=1, key=f"{level}_page_size")
    request = ListRequest(
        level=level,
        since=period.since,
        until=period.until,
        account_id=period.account_id,
        statuses=tuple(chosen_statuses),
        objectives=tuple(chosen_objectives),
        name=name.strip(),
        campaign_id=campaign_id,
        adset_id=adset_id,
        min_spend=float(min_spend or 0.0),
        sort=sort,
        best_first=best == "best",
        limit=int(size),
    )
    return request, columns


def entity_list(snapshot: data.Snapshot, level: Level, period: Period, user: CurrentUser) -> ListPage:
    """Draw the filters and one page of the level's list; a selected row opens its entity (stops the run)."""
    request, metrics = _filters(snapshot, level, period)
    signature = (request, period)
    page_key = f"{level}_page"
    if st.session_state.get(f"{level}_list_signature") != signature:  # new filters start on page 1
        st.session_state[f"{level}_list_signature"] = signature
        st.session_state[page_key] = 1
    number = int(st.session_state.get(page_key) or 1)
    page = data.load_entity_list(snapshot, replace(request, offset=(number - 1) * request.limit))
    pages = max(1, math.ceil(page.total / request.limit))
    if number > pages:
        st.session_state[page_key] = number = pages
        page = data.load_entity_list(snapshot, replace(request, offset=(number - 1) * request.limit))
    plural = LEVEL_PLURAL[level] if level != "adset" else "ad sets"
    if page.total == 0:
        if request.name:
            st.warning(f"No {LEVEL_LABELS[level]} name or id matches {literal(repr(request.name))} with these filters.")
        else:
            st.info(f"No {LEVEL_LABELS[level]} matches these filters.")
        return page
    first, last = page.offset + 1, page.offset + len(page.rows)
    order = "lowest" if (request.sort in LOWER_IS_BETTER) == request.best_first else "highest"
    st.caption(
        f"{first:,}–{last:,} of {page.total:,} {plural}, {order} {METRIC_LABELS.get(request.sort, request.sort)} "
        f"first, {period.since} to {period.until}. Select a row to open it."
    )
    rows = page.rows
    if any(c in PACING_OPTIONS for c in metrics):
        rows = with_pacing(snapshot, level, rows)
    frame = rows[list_columns(level, metrics)]
    images = None
    if level == "ad":  # the creative beside each ad, as in Ads Manager (from the kept image files)
        thumbnails = thumbnails_for_ads(snapshot, page.rows["entity_id"])
        images = ("Creative", [thumbnails[str(ad_id)] for ad_id in page.rows["entity_id"]])
    picked = widgets.table(
        frame,
        f"{level}_list",
        f"{plural.replace(' ', '')}_{period.since}_{period.until}_page{number}",
        user,
        period.currency,
        kinds=PACING_KINDS,
        labels={**PACING_LABELS, **list_labels(level)},
        selectable=True,
        height=440,
        images=images,
    )
    if pages > 1:
        pager = st.columns([1, 4])
        pager[0].number_input(f"Page (of {pages:,})", min_value=1, max_value=pages, step=1, key=page_key)
    if picked is not None:
        open_entity(level, str(page.rows["entity_id"].iloc[picked]))
    return page


def with_pacing(snapshot: data.Snapshot, level: Level, rows: pd.DataFrame) -> pd.DataFrame:
    """`rows` with the pacing columns (NaN where an entity has no budget to pace, e.g. paused)."""
    tolerance = widgets.app_settings().pacing_tolerance_percent
    ids = tuple(str(i) for i in rows["entity_id"])
    pacing = load_page_pacing(snapshot, level, ids, tolerance)
    found = pacing.reindex(list(ids))
    return rows.assign(
        budget=found["budget"].to_numpy(),
        budget_type=found["budget_type"].to_numpy(),
        pacing_status=found["status"].to_numpy(),
        pacing_deviation=(found["deviation"].astype("float64") * 100).to_numpy(),
    )


def sibling_choices(
    snapshot: data.Snapshot,
    level: Level,
    period: Period,
    current: str,
    name: str,
    campaign_id: str | None = None,
    adset_id: str | None = None,
) -> dict[str, str]:
    """The ids and names a "switch to" picker offers: the top spenders under the same parent, and this one."""
    request = ListRequest(level, period.since, period.until, period.account_id, campaign_id=campaign_id,
                          adset_id=adset_id, limit=PICKER_OPTIONS)  # fmt: skip
    page = data.load_entity_list(snapshot, request)
    choices = dict(zip(page.rows["entity_id"].astype(str), page.rows["name"].astype(str)))
    return choices if current in choices or not current else {current: name, **choices}
