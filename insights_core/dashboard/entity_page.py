"""The head every level's page shares after its guard: title, snapshot, the session's period, then either the
level's list (no id in the URL) or one entity with breadcrumbs, a switch picker and its timeline link.

One place for it so the pages stop the same way on a bad or unknown id and keep the same widget keys
(`<level>_pick`, the list's `<level>_*`) and deep link (`?<level>_id=`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import streamlit as st

from insights_core.dashboard import data, navigation, widgets
from insights_core.dashboard.lists import entity_list, sibling_choices
from insights_core.dashboard.login import CurrentUser
from insights_core.dashboard.period_controls import period_controls
from insights_core.dashboard.periods import Period
from insights_core.levels import LEVEL_LABELS, LEVEL_SPECS, Level

CHILD_TABLE_COLUMNS = ("name", "effective_status", "spend", "impressions", "clicks", "conversions", "revenue", "ctr",
                       "cpc", "roas", "entity_id")  # fmt: skip
"""The columns of a table of ad sets or ads under their parent (the campaign and ad set pages)."""


@dataclass(frozen=True)
class EntityPage:
    """What an entity page renders from: which snapshot and period, and the entity's view."""

    snapshot: data.Snapshot
    period: Period
    entity_id: str
    view: data.EntityView

    @property
    def since(self) -> dt.date:
        return self.period.since

    @property
    def until(self) -> dt.date:
        return self.period.until

    @property
    def entity(self) -> dict[str, Any]:
        return self.view.entity

    @property
    def currency(self) -> str:
        return str(self.view.entity.get("currency") or "USD")


def switch_picker(snapshot: data.Snapshot, level: Level, period: Period, entity: dict[str, Any]) -> None:
    """A box to jump to a sibling (the top spenders of the same parent), keeping the deep link in step."""
    parent_level = LEVEL_SPECS[level].parent
    entity_id = str(entity[LEVEL_SPECS[level].id_column])
    choices = sibling_choices(
        snapshot,
        level,
        period,
        entity_id,
        str(entity.get("name") or entity_id),
        campaign_id=str(entity["campaign_id"]) if level == "adset" else None,
        adset_id=str(entity["adset_id"]) if level == "ad" else None,
    )
    under = f" of this {LEVEL_LABELS[parent_level]}" if parent_level else ""
    key = f"{level}_pick"
    st.session_state[key] = entity_id

    def remember() -> None:
        st.query_params[f"{level}_id"] = st.session_state[key]

    st.selectbox(
        f"Switch to another {LEVEL_LABELS[level]}{under}",
        list(choices),
        key=key,
        on_change=remember,
        format_func=lambda eid: f"{choices.get(eid, eid)} · {eid}",
        help=f"The {len(choices)} that spent most in the period; the list has them all.",
    )


def open_entity_page(level: Level, user: CurrentUser) -> EntityPage:
    """Render the page head for `level` and load the entity the URL names for the session's period.

    Without an id the page is the level's list, and the run stops after it; a bad or unknown id stops
    with its message. The page checks its permission itself first (`widgets.require`).
    """
    widgets.page_title(level)
    snapshot, bounds = widgets.open_snapshot(widgets.app_settings())
    period = period_controls(bounds)
    entity_id = navigation.requested_entity(level)
    if entity_id is None:
        st.subheader(navigation.LIST_TITLES[level])
        entity_list(snapshot, level, period, user)
        st.stop()
    view = data.load_entity_view(snapshot, level, entity_id, period.since, period.until)
    if view is None:
        widgets.unknown_entity(level, entity_id, bounds)
    assert view is not None  # unknown_entity stopped the run
    navigation.breadcrumbs(level, view.entity)
    switch_picker(snapshot, level, period, view.entity)
    return EntityPage(snapshot, period, entity_id, view)
