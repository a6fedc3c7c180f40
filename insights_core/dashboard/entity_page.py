"""The head the ad set and ad pages share after their guard: title, snapshot, date range, the id box and the entity.

One place for it so both pages stop the same way on a missing or unknown id, and keep the same
widget keys (`<level>_range`, `<level>_id_input`) and deep link (`?<level>_id=`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import streamlit as st

from insights_core.dashboard import data, widgets
from insights_core.levels import Level

CHILD_TABLE_COLUMNS = ("name", "effective_status", "spend", "impressions", "clicks", "conversions", "revenue", "ctr",
                       "cpc", "roas", "entity_id")  # fmt: skip
"""The columns of a table of ad sets or ads under their parent (the campaign and ad set pages)."""


@dataclass(frozen=True)
class EntityPage:
    """What an entity page renders from: which snapshot and period, and the entity's view."""

    snapshot: data.Snapshot
    since: dt.date
    until: dt.date
    entity_id: str
    view: data.EntityView

    @property
    def entity(self) -> dict[str, Any]:
        return self.view.entity

    @property
    def currency(self) -> str:
        return str(self.view.entity.get("currency") or "USD")


def open_entity_page(level: Level, hint: str) -> EntityPage:
    """Render the page head for one `level` entity and load it for the chosen period.

    Stops the run with `hint` and a link to the campaign finder while no id is given, with an error
    for an id that is not in the synced data, and (through `widgets`) for a missing snapshot, so the
    caller only sees a loaded entity. The page checks its permission itself first (`widgets.require`).
    """
    widgets.page_title(level)
    snapshot, bounds = widgets.open_snapshot(widgets.app_settings())
    since, until = widgets.date_range(f"{level}_range", bounds)
    entity_id = widgets.entity_id_input(level, f"{level}_id_input")
    if entity_id is None:
        st.info(hint)
        st.page_link("pages/campaign.py", label="Find a campaign", icon=":material/campaign:")
        st.stop()
    view = data.load_entity_view(snapshot, level, entity_id, since, until)
    if view is None:
        widgets.unknown_entity(level, entity_id, bounds)
    assert view is not None  # unknown_entity stopped the run
    return EntityPage(snapshot, since, until, entity_id, view)
