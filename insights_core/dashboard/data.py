"""Cached access to the published snapshot for the pages (the Streamlit side of `store.queries`).

The app never opens the worker's file. It resolves `current.duckdb` on every run, opens that
generation read-only once per process (`st.cache_resource`, keyed on the generation's path and
inode/mtime, since DuckDB caches instances by path), and runs each query on its own cursor.
Results are cached per snapshot with `st.cache_data`, so a new generation is a new cache key
and nothing has to be invalidated by hand.

On the lake (INSIGHTS_STORE=ducklake) a snapshot is a lake snapshot: `current_snapshot` asks the
catalog for the newest one once per page run, its stamp is the lake snapshot id (so the caches key
on it), and every query of the run reads that snapshot pinned, never a sync committed meanwhile.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import duckdb
import pandas as pd
import streamlit as st

from insights_core.control import ControlChannel
from insights_core.dashboard.exports import ExportFormat, Headers, export_frame, export_streamed, with_ancestor_names
from insights_core.dashboard.periods import Period
from insights_core.errors import SnapshotUnreadableError
from insights_core.levels import LEVEL_SPECS, Level
from insights_core.metrics import with_ratio_columns
from insights_core.settings import Settings
from insights_core.store import lists, queries
from insights_core.store.entity_names import fetch_ancestor_names
from insights_core.store.lake_reader import LakeReader
from insights_core.store.snapshots import connect_snapshot, resolve_current_snapshot

CACHE_ENTRIES = 128
ROW_LABELS = {"entity_type": "Level"}


class Snapshot(NamedTuple):
    """A published generation: its path, and a stamp that changes if a file is ever rewritten at that path."""

    path: str
    stamp: int


def current_snapshot(settings: Settings) -> Snapshot:
    """The generation `current.duckdb` points at now (the newest lake snapshot on the lake); raises
    SnapshotUnavailableError before the first sync."""
    if settings.store == "ducklake":
        # a path under the data dir, as a generation's, so what is kept beside it (creative images) is found
        path = str(settings.snapshot_dir / LAKE_SNAPSHOT_NAME)
        _LAKE_SETTINGS[path] = settings
        return Snapshot(path, _lake_reader(path).fetch_published_snapshot())
    generation = resolve_current_snapshot(settings.current_snapshot_link)
    stat = generation.stat()
    return Snapshot(str(generation), stat.st_ino ^ stat.st_mtime_ns)


LAKE_SNAPSHOT_NAME = "ducklake"
_LAKE_SETTINGS: dict[str, Settings] = {}
"""The settings of each lake `current_snapshot` saw, by its snapshot path (cache keys never hold the catalog URL)."""


@st.cache_resource(max_entries=4, show_spinner=False)
def _connection(path: str, stamp: int) -> duckdb.DuckDBPyConnection:
    return connect_snapshot(Path(path))


@st.cache_resource(max_entries=4, show_spinner=False)
def _lake_reader(path: str) -> LakeReader:
    return LakeReader(_LAKE_SETTINGS[path])


def is_lake_snapshot(snapshot: Snapshot) -> bool:
    """Whether the snapshot is a lake snapshot (read through the catalog), not a generation file."""
    return snapshot.path in _LAKE_SETTINGS


def _open_cursor(snapshot: Snapshot) -> duckdb.DuckDBPyConnection:
    """A new cursor on the snapshot: the generation file, or the lake pinned at the snapshot's id."""
    if is_lake_snapshot(snapshot):
        return _lake_reader(snapshot.path).cursor(snapshot.stamp)
    return _connection(snapshot.path, snapshot.stamp).cursor()


_UNREADABLE = (duckdb.OperationalError, duckdb.InternalError, duckdb.CatalogException)
"""What a damaged, truncated or foreign file raises (IO, serialization, internal, missing table);
a wrong query (parser, binder) is a bug and is left to surface as one."""


@contextmanager
def snapshot_cursor(snapshot: Snapshot) -> Iterator[duckdb.DuckDBPyConnection]:
    """A cursor on the snapshot; a file that cannot be read raises SnapshotUnreadableError, which is not
    cached, so the next run after a new publish opens the new generation."""
    try:
        cursor = _open_cursor(snapshot)
    except _UNREADABLE as exc:
        raise _unreadable(snapshot, exc) from exc
    try:
        yield cursor
    except _UNREADABLE as exc:
        raise _unreadable(snapshot, exc) from exc
    finally:
        cursor.close()


def _unreadable(snapshot: Snapshot, exc: Exception) -> SnapshotUnreadableError:
    reason = str(exc).splitlines()[0].replace(snapshot.path, Path(snapshot.path).name)
    return SnapshotUnreadableError(
        f"The published snapshot {Path(snapshot.path).name} cannot be read ({reason}). The dashboard switches to "
        "the next snapshot as soon as the worker publishes one (after its next sync, or a Sync now)."
    )


@st.cache_resource(show_spinner=False)
def control_channel(path: str) -> ControlChannel:
    """The control channel opens a short connection per call, so one object serves every thread."""
    return ControlChannel(Path(path))


@dataclass(frozen=True)
class Overview:
    totals: dict[str, float]
    previous_totals: dict[str, float]
    campaign_count: int
    active_campaign_count: int
    daily: pd.DataFrame
    campaigns: pd.DataFrame


@dataclass(frozen=True)
class EntityView:
    entity: dict[str, Any]
    totals: dict[str, float]
    daily: pd.DataFrame
    children: dict[str, pd.DataFrame]


@st.cache_data(max_entries=CACHE_ENTRIES, show_spinner=False)
def load_bounds(snapshot: Snapshot) -> queries.DataBounds:
    with snapshot_cursor(snapshot) as cur:
        return queries.fetch_data_bounds(cur)


@st.cache_data(max_entries=CACHE_ENTRIES, show_spinner=False)
def load_campaign_summary(
    snapshot: Snapshot,
    since: dt.date,
    until: dt.date,
    prev_since: dt.date | None,
    prev_until: dt.date | None,
    account_id: str | None,
) -> pd.DataFrame:
    with snapshot_cursor(snapshot) as cur:
        return queries.fetch_campaign_summary(cur, since, until, prev_since, prev_until, account_id)


@st.cache_data(max_entries=CACHE_ENTRIES, show_spinner=False)
def load_overview(
    snapshot: Snapshot,
    since: dt.date,
    until: dt.date,
    prev_since: dt.date | None,
    prev_until: dt.date | None,
    account_id: str | None,
) -> Overview:
    """The Overview's figures; without a comparison period (None) the previous totals are zeros."""
    with snapshot_cursor(snapshot) as cur:
        total, active = queries.fetch_campaign_counts(cur, account_id)
        totals, previous_totals = queries.fetch_period_totals(cur, since, until, prev_since, prev_until, account_id)
        return Overview(
            totals=totals,
            previous_totals=previous_totals,
            campaign_count=total,
            active_campaign_count=active,
            daily=queries.fetch_daily_totals(cur, since, until, account_id),
            campaigns=load_campaign_summary(snapshot, since, until, prev_since, prev_until, account_id),
        )


@st.cache_data(max_entries=CACHE_ENTRIES, show_spinner=False)
def load_campaign_search(snapshot: Snapshot, text: str) -> pd.DataFrame:
    with snapshot_cursor(snapshot) as cur:
        return queries.search_campaigns(cur, text)


@st.cache_data(max_entries=CACHE_ENTRIES, show_spinner=False)
def load_entity(snapshot: Snapshot, level: str, entity_id: str) -> dict[str, Any] | None:
    with snapshot_cursor(snapshot) as cur:
        return queries.fetch_entity(cur, level, entity_id)


@st.cache_data(max_entries=CACHE_ENTRIES, show_spinner=False)
def load_entity_view(
    snapshot: Snapshot, level: Level, entity_id: str, since: dt.date, until: dt.date
) -> EntityView | None:
    """One entity with its daily rows, totals and children's sums for the period; None if unknown."""
    with snapshot_cursor(snapshot) as cur:
        entity = queries.fetch_entity(cur, level, entity_id)
        if entity is None:
            return None
        return EntityView(
            entity=entity,
            totals=queries.fetch_entity_totals(cur, level, entity_id, since, until),
            daily=queries.fetch_entity_daily(cur, level, entity_id, since, until),
            children={
                child: queries.fetch_children(cur, child, level, entity_id, since, until)
                for child in LEVEL_SPECS[level].children
            },
        )


def load_compared_totals(snapshot: Snapshot, level: Level, entity_id: str, period: Period) -> dict[str, float] | None:
    """One entity's sums over the period's comparison days (the cards' deltas); None without a comparison."""
    if period.compared is None:
        return None
    return _load_entity_totals(snapshot, level, entity_id, *period.compared)


@st.cache_data(max_entries=CACHE_ENTRIES, show_spinner=False)
def _load_entity_totals(
    snapshot: Snapshot, level: Level, entity_id: str, since: dt.date, until: dt.date
) -> dict[str, float]:
    with snapshot_cursor(snapshot) as cur:
        return queries.fetch_entity_totals(cur, level, entity_id, since, until)


@st.cache_data(max_entries=CACHE_ENTRIES, show_spinner=False)
def load_entity_list(snapshot: Snapshot, request: lists.ListRequest) -> lists.ListPage:
    """One page of a list page's table (only that page is read into pandas)."""
    with snapshot_cursor(snapshot) as cur:
        return lists.fetch_entity_list(cur, request)


@st.cache_data(max_entries=CACHE_ENTRIES, show_spinner=False)
def load_list_choices(snapshot: Snapshot, level: Level, account_id: str | None) -> tuple[list[str], list[str]]:
    with snapshot_cursor(snapshot) as cur:
        return lists.fetch_list_choices(cur, level, account_id)


@st.cache_data(max_entries=CACHE_ENTRIES, show_spinner=False)
def load_parent_choices(
    snapshot: Snapshot, level: Level, parent_id: str | None, account_id: str | None
) -> pd.DataFrame:
    with snapshot_cursor(snapshot) as cur:
        return lists.fetch_parent_choices(cur, level, parent_id, account_id)


@st.cache_data(max_entries=CACHE_ENTRIES, show_spinner=False)
def load_ad_peers(snapshot: Snapshot, campaign_id: str, since: dt.date, until: dt.date) -> pd.DataFrame:
    with snapshot_cursor(snapshot) as cur:
        return queries.fetch_ad_peers(cur, campaign_id, since, until)


@st.cache_data(max_entries=CACHE_ENTRIES, show_spinner=False)
def load_sync_runs(snapshot: Snapshot, limit: int = 500) -> pd.DataFrame:
    with snapshot_cursor(snapshot) as cur:
        return queries.fetch_sync_runs(cur, limit)


@st.cache_data(max_entries=CACHE_ENTRIES, show_spinner=False)
def load_sync_health(
    snapshot: Snapshot, since: dt.datetime, first_day: dt.date, last_day: dt.date
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rate-limit hits per hour since `since`, and days stored per account and level in the window."""
    with snapshot_cursor(snapshot) as cur:
        return (
            queries.fetch_rate_limit_hits_per_hour(cur, since),
            queries.fetch_day_coverage(cur, first_day, last_day),
        )


@st.cache_data(max_entries=CACHE_ENTRIES, show_spinner=False)
def load_row_count(snapshot: Snapshot, level: str, since: dt.date, until: dt.date, account_id: str | None) -> int:
    with snapshot_cursor(snapshot) as cur:
        return queries.count_insight_rows(cur, level, since, until, account_id)


def rows_export(
    snapshot: Snapshot,
    level: Level,
    since: dt.date,
    until: dt.date,
    account_id: str | None,
    fmt: ExportFormat,
    headers: Headers = "labels",
) -> Callable[[], bytes]:
    """A callable for `st.download_button(data=...)`: streams the stored rows into a file when clicked.

    It runs on another thread after the script run, so it holds the connection itself and opens
    its own cursor; the record batches go through a temporary file (`exports.export_streamed`).
    """
    # the file's connection is held now (a later publish may delete the file); the lake keeps its snapshots
    connection = None if snapshot.path in _LAKE_SETTINGS else _connection(snapshot.path, snapshot.stamp)

    def generate() -> bytes:
        cursor = connection.cursor() if connection is not None else _open_cursor(snapshot)

        def frames() -> Iterable[pd.DataFrame]:
            names = fetch_ancestor_names(cursor, level)
            for frame in queries.iter_insight_rows(cursor, level, since, until, account_id):
                yield export_frame(with_ancestor_names(with_ratio_columns(frame), names), headers, ROW_LABELS)

        try:
            return export_streamed(frames, fmt, sheet_name=f"{level} rows")
        finally:
            cursor.close()

    return generate
