"""Links between the pages: open an entity, breadcrumbs back up (Campaigns › campaign › ad set › ad), the timeline.

Links carry only the entity (`?campaign_id=`, ...); the period travels in the session and each page
writes it back to the URL (`period_controls`).
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from insights_core.dashboard.formatting import literal
from insights_core.dashboard.inputs import parse_entity_id
from insights_core.errors import InputError
from insights_core.levels import LEVEL_LABELS, LEVEL_SPECS, Level
from insights_core.roles import PAGES_BY_KEY

LIST_TITLES: dict[Level, str] = {"campaign": "Campaigns", "adset": "Ad sets", "ad": "Ads"}


def open_entity(level: str, entity_id: str) -> None:
    """Go to the page of one entity (a row picked in a list, or a child in its parent's table)."""
    st.switch_page(PAGES_BY_KEY[level].path, query_params={f"{level}_id": entity_id})


def requested_entity(level: Level) -> str | None:
    """The `?<level>_id=` of the URL, checked (a bad one stops the page with its message); None without one."""
    raw = st.query_params.get(f"{level}_id")
    if not raw:
        return None
    try:
        return parse_entity_id(raw, level)
    except InputError as exc:
        st.error(literal(exc))
        st.stop()


def breadcrumbs(level: Level, entity: dict[str, Any]) -> None:
    """Campaigns › campaign › ad set › ad, each a link up (the last one is the page itself)."""
    row = st.container(horizontal=True, vertical_alignment="center", gap="small")
    row.page_link(PAGES_BY_KEY["campaign"].path, label=LIST_TITLES["campaign"], icon=":material/list:")
    for spec in (*LEVEL_SPECS[level].ancestors, LEVEL_SPECS[level]):
        ancestor, entity_id = spec.level, entity.get(spec.id_column)
        name = entity.get("name") if ancestor == level else entity.get(f"{ancestor}_name")
        row.markdown("›")
        if ancestor == level:
            row.markdown(f"**{literal(name or entity_id)}**")
        else:
            row.page_link(
                PAGES_BY_KEY[ancestor].path,
                label=literal(name or entity_id),
                query_params={f"{ancestor}_id": str(entity_id)},
            )


def list_link(level: Level) -> None:
    """Back to the level's list (the page without an id)."""
    st.page_link(PAGES_BY_KEY[level].path, label=f"All {LIST_TITLES[level].lower()}", icon=":material/list:")


def timeline_link(level: Level, entity_id: str) -> None:
    st.page_link(
        PAGES_BY_KEY["timeline"].path,
        label=f"Timeline of this {LEVEL_LABELS[level]}",
        query_params={"entity_type": level, "entity_id": entity_id},
        icon=":material/timeline:",
    )
