"""Streamlit pieces every page uses: the permission guard, the snapshot, metric cards,
tables with their CSV/Excel downloads, alerts. Pages stay thin by calling these."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager

import pandas as pd
import streamlit as st
from streamlit.errors import StreamlitAPIException

from insights_core.dashboard import data
from insights_core.dashboard.alerts import Alert
from insights_core.dashboard.exports import MIME_TYPES, ExportFormat, Headers, export_bytes
from insights_core.dashboard.formatting import (
    DASH,
    METRIC_LABELS,
    display_frame,
    format_change,
    format_number,
    format_point_change,
    format_value,
    literal,
)
from insights_core.dashboard.login import USER_KEY, CurrentUser
from insights_core.errors import (
    ConfigError,
    ControlChannelError,
    InsightsError,
    SnapshotUnavailableError,
    StoreError,
)
from insights_core.levels import LEVEL_LABELS, Level
from insights_core.metrics import pct_change, ratios_from_totals
from insights_core.roles import PAGES_BY_KEY, Permission, can
from insights_core.settings import Settings, load_settings
from insights_core.store.queries import DataBounds

HEADLINE_METRICS: tuple[tuple[str, str], ...] = (
    ("spend", "money"),
    ("revenue", "money"),
    ("roas", "multiple"),
    ("conversions", "number"),
    ("impressions", "int"),
    ("clicks", "int"),
    ("ctr", "percent"),
    ("cpc", "money"),
    ("cpm", "money"),
)
_COST_METRICS = {"cpc", "cpm", "cost_per_conversion", "spend"}
CARD_WIDTH = 176
"""Pixels per card: five fit a row beside the sidebar at 1440 px; a longer value than $1,234,567.89 wraps."""
FREQUENCY_HELP = (
    "Impressions per person reached, as Meta reported it for each day (lowest–highest over the days shown). "
    "Reach is not additive across days, so no frequency over the whole period is computed from daily rows."
)


def require(permission: Permission) -> CurrentUser:
    """Stop the page unless the logged-in user's role has `permission` (the page-level guard)."""
    info = st.session_state.get(USER_KEY)
    if not info:
        _through_the_entrypoint()
        st.error("Log in first.")
        st.stop()
    if not can(info.get("role"), permission):
        show_no_access()
        st.stop()
    return CurrentUser(**info)


NO_ACCESS = "You do not have access to this page."


def show_no_access() -> None:
    """What a page the role may not open shows (app.py registers it at that page's URL)."""
    st.error(NO_ACCESS, icon=":material/block:")


def _through_the_entrypoint() -> None:
    """Send a visitor who reached a page without app.py through app.py (the login).

    That happens only in Streamlit's legacy `pages/` mode, which a server starts in and leaves
    for good the first time app.py calls st.navigation: until then, a URL such as /sync runs
    pages/sync.py alone.
    """
    try:
        st.switch_page("app.py")
    except StreamlitAPIException:
        pass


def page_title(key: str, caption: str | None = None) -> None:
    st.title(PAGES_BY_KEY[key].title)
    if caption:
        st.caption(caption)


def app_settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        show_error(exc)
        st.stop()


def open_snapshot(settings: Settings) -> tuple[data.Snapshot, DataBounds]:
    """The current snapshot and what it holds; a plain message and a stop when there is nothing yet."""
    try:
        snapshot = data.current_snapshot(settings)
        bounds = data.load_bounds(snapshot)
    except SnapshotUnavailableError as exc:
        show_notice(exc)
        st.stop()
    if bounds.last_day is None or bounds.first_day is None:
        st.info("The last sync stored no insights yet. Run a sync (Sync page, or `python sync_worker.py --once`).")
        st.stop()
    return snapshot, bounds


@contextmanager
def reporting_broken_files() -> Iterator[None]:
    """A damaged snapshot or control database ends the run (or fragment) with one error line, not a traceback.

    Nothing failed is cached, and every run resolves the current snapshot again, so the next run
    after the worker publishes a new one (or after the control database is repaired) is whole again.
    """
    try:
        yield
    except ControlChannelError as exc:
        show_error(control_channel_error(exc))
    except StoreError as exc:
        show_error(exc)


def control_channel_error(exc: ControlChannelError) -> str:
    """The control database's failure in words, with what happens next."""
    return (
        f"The control database (Sync now requests, the worker's heartbeat) cannot be read: {exc}. Sync now "
        "and the worker's status are unavailable until it works again: a deleted or damaged file is "
        "replaced by a new one at the next try (queued requests in a damaged file are lost)."
    )


def show_notice(exc: InsightsError | str) -> None:
    st.info(literal(exc))


def show_error(exc: InsightsError | str) -> None:
    """One error line, shown as text: messages quote what was typed or read, which is nobody's markdown."""
    st.error(literal(exc))


def metric_cards(
    totals: Mapping[str, float],
    currency: str,
    previous: Mapping[str, float] | None = None,
    metrics: Sequence[tuple[str, str]] = HEADLINE_METRICS,
    daily: pd.DataFrame | None = None,
) -> None:
    """One st.metric per figure, ratios from the sums, with the change against `previous` when given.

    Cards have a fixed width in a wrapping row, so a value never shrinks into "…" and a phone shows two
    per row (style.PAGE_CSS). Percentages change in points ("+0.40 pts"), other figures in percent. With
    `daily` (one entity's days) a frequency card shows Meta's daily values.
    """
    values = {**totals, **ratios_from_totals(totals)}
    before = {**previous, **ratios_from_totals(previous)} if previous is not None else {}
    with st.container(horizontal=True, gap="small"):
        for metric, kind in metrics:
            if previous is None:
                delta = None
            elif kind == "percent":
                delta = format_point_change(values.get(metric), before.get(metric))
            else:
                delta = format_change(pct_change(values.get(metric), before.get(metric)))
            st.metric(
                METRIC_LABELS.get(metric, metric),
                format_value(values.get(metric), kind, currency),
                delta=delta,
                delta_color="off" if metric == "spend" else "inverse" if metric in _COST_METRICS else "normal",
                border=True,
                width=CARD_WIDTH,
            )
        if daily is not None and "frequency" in daily:
            st.metric(
                "Frequency (daily)",
                frequency_range(daily["frequency"]),
                help=FREQUENCY_HELP,
                border=True,
                width=CARD_WIDTH,
            )


def frequency_range(frequency: pd.Series) -> str:
    """Meta's daily frequencies as "1.05–1.32" (one value when they agree), "—" without any."""
    present = frequency.dropna()
    if present.empty:
        return DASH
    low, high = format_number(present.min()), format_number(present.max())
    return low if low == high else f"{low}–{high}"


def download_buttons(
    frame: pd.DataFrame, key: str, file_stem: str, user: CurrentUser, labels: Mapping[str, str] | None = None
) -> None:
    """CSV and Excel downloads of `frame` (raw numbers, headed by the page's labels), and a CSV headed by
    the stored field names, for roles with the export permission only (docs/exports.md)."""
    if not can(user.role, "export"):
        return
    row = st.container(horizontal=True)
    formats: tuple[tuple[ExportFormat, Headers, str, str], ...] = (
        ("csv", "labels", "Download CSV", ""),
        ("xlsx", "labels", "Download Excel", ""),
        ("csv", "raw", "CSV with field names", "_raw"),
    )
    for fmt, headers, label, suffix in formats:
        row.download_button(
            label,
            data=_deferred_bytes(frame, fmt, file_stem, headers, labels),
            file_name=f"{file_stem}{suffix}.{fmt}",
            mime=MIME_TYPES[fmt],
            key=f"{key}_{fmt}{suffix}",
            on_click="ignore",
            icon=":material/download:",
            type="tertiary" if headers == "raw" else "secondary",
            help="Headers are the stored field names (ctr, adset_id) instead of the page's labels."
            if headers == "raw"
            else None,
        )


def _deferred_bytes(
    frame: pd.DataFrame, fmt: ExportFormat, sheet: str, headers: Headers, labels: Mapping[str, str] | None
) -> Callable[[], bytes]:
    return lambda: export_bytes(frame, fmt, sheet_name=sheet[:31], headers=headers, labels=labels)


_cached_display_frame = st.cache_data(max_entries=64, show_spinner=False)(display_frame)
"""Formatting is Python per cell (~0.1 s for a 1000-row table), so reruns reuse the text of an unchanged frame."""


def table(
    frame: pd.DataFrame,
    key: str,
    file_stem: str,
    user: CurrentUser,
    currency: str = "USD",
    kinds: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
    selectable: bool = False,
    height: int | None = None,
    display: pd.DataFrame | None = None,
    images: tuple[str, Sequence[str]] | None = None,
) -> int | None:
    """Show `frame` formatted ("—" for missing), with downloads; return the selected row's position.

    `display` replaces the formatted view when rows need their own formats; downloads keep `frame`.
    `images` is a leading image column (its header, one data URI or "" per row), shown and not exported.
    """
    shown = display if display is not None else _cached_display_frame(frame, currency, kinds, labels)
    column_config = None
    if images is not None:
        header, uris = images
        shown = shown.copy()  # the cached frame stays as it is
        shown.insert(0, header, list(uris))
        column_config = {header: st.column_config.ImageColumn(header, width="small")}
    fits = len(shown) <= 12  # small tables take their own height, big ones scroll
    event = st.dataframe(
        shown,
        key=key,
        hide_index=True,
        width="stretch",
        height="auto" if fits else height or "auto",
        on_select="rerun" if selectable else "ignore",
        selection_mode="single-row",
        column_config=column_config,
    )
    download_buttons(frame, f"{key}_download", file_stem, user, labels)
    if selectable and event is not None:
        # streamlit types the result as element or selection state; with on_select it is the state
        rows = event.selection.rows  # type: ignore[union-attr]
        return rows[0] if rows else None
    return None


def render_alerts(
    alerts: Sequence[Alert], all_clear: str = "No alerts: syncs are healthy and no campaign dropped sharply."
) -> None:
    if not alerts:
        st.success(all_clear, icon=":material/check_circle:")
        return
    for alert in alerts:
        show = {"error": st.error, "warning": st.warning}.get(alert.severity, st.info)
        show(literal(alert.message), icon=":material/warning:" if alert.severity != "info" else ":material/info:")
        if alert.campaign_id:
            st.page_link(
                "pages/campaign.py",
                label="Open this campaign",
                query_params={"campaign_id": alert.campaign_id},
                icon=":material/arrow_forward:",
            )


def query_value(name: str) -> str | None:
    value = st.query_params.get(name)
    return value if value else None


def unknown_entity(level: Level, entity_id: str, bounds: DataBounds) -> None:
    st.error(
        f"No {LEVEL_LABELS[level]} with id {entity_id} in the synced data (stored through {bounds.last_day}). "
        "Check the id, or run a sync if it is new."
    )
    st.stop()
