"""Read-only cursors on the published snapshot for API handlers (the API's side of `store.snapshots`).

Handlers run in Starlette's thread pool, many at once. Each request resolves `current.duckdb`
again (so it follows every publish), takes the connection for that generation from a small map
keyed on the resolved path and its inode/mtime (DuckDB caches database instances by path, so a
reused path must not reuse an old instance), and runs its queries on its own `cursor()`.
On the lake the key is ("ducklake", lake snapshot id) and the cursor reads that snapshot pinned.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Generic, TypeVar

import duckdb

from insights_core.errors import SnapshotUnreadableError
from insights_core.store.lake_reader import LakeReader
from insights_core.store.queries import Query
from insights_core.store.snapshots import connect_snapshot, resolve_current_snapshot

MAX_OPEN_GENERATIONS = 2
"""The current generation and the one before it (requests that resolved the link just before a swap)."""

_UNREADABLE = (duckdb.OperationalError, duckdb.InternalError, duckdb.CatalogException, duckdb.IOException)

SnapshotKey = tuple[str, int]
LAKE_KEY = "ducklake"
T = TypeVar("T")
Row = dict[str, Any]
"""One result row by column name, values as DuckDB gives them to Python (float, int, str, date, None)."""


def fetch_rows(cur: duckdb.DuckDBPyConnection, query: Query) -> list[Row]:
    """Every row of `query` as a dict: what the API shapes into JSON, without building a frame first."""
    result = cur.execute(*query)
    names = [column[0] for column in result.description or ()]
    return [dict(zip(names, values)) for values in result.fetchall()]


def fetch_row(cur: duckdb.DuckDBPyConnection, query: Query) -> Row | None:
    """The first row of `query` as a dict, or None when it has none."""
    rows = fetch_rows(cur, query)
    return rows[0] if rows else None


class SnapshotReader:
    """Cursors on the generation `link` points at; thread-safe."""

    def __init__(self, link: Path, lake: LakeReader | None = None) -> None:
        self.link = link
        self.lake = lake
        """Set when the store is the lake: keys are lake snapshots, not generation files."""
        self._connections: OrderedDict[SnapshotKey, duckdb.DuckDBPyConnection] = OrderedDict()
        self._lock = threading.Lock()

    def current_key(self) -> SnapshotKey:
        """(path, stamp) of the current generation; raises SnapshotUnavailableError before the first publish."""
        if self.lake is not None:
            return LAKE_KEY, self.lake.fetch_published_snapshot()
        path = resolve_current_snapshot(self.link)
        stat = path.stat()
        return str(path), stat.st_ino ^ stat.st_mtime_ns

    def _connection(self, key: SnapshotKey) -> duckdb.DuckDBPyConnection:
        with self._lock:
            connection = self._connections.get(key)
            if connection is None:
                connection = connect_snapshot(Path(key[0]))
                self._connections[key] = connection
                while len(self._connections) > MAX_OPEN_GENERATIONS:
                    # not closed: a request may still hold a cursor on it; dropped with its last reference
                    self._connections.popitem(last=False)
            else:
                self._connections.move_to_end(key)
            return connection

    @contextmanager
    def cursor(self, key: SnapshotKey | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor on `key` (default: the current generation); a damaged file raises SnapshotUnreadableError."""
        key = key or self.current_key()
        try:
            cursor = self.lake.cursor(key[1]) if self.lake is not None else self._connection(key).cursor()
        except _UNREADABLE as exc:
            raise _unreadable(key[0], exc) from exc
        try:
            yield cursor
        except _UNREADABLE as exc:
            raise _unreadable(key[0], exc) from exc
        finally:
            cursor.close()


def _unreadable(path: str, exc: Exception) -> SnapshotUnreadableError:
    name = Path(path).name
    reason = str(exc).splitlines()[0].replace(path, name)
    return SnapshotUnreadableError(
        f"the published snapshot {name} cannot be read ({reason}); the next publish replaces it"
    )


class SnapshotCache(Generic[T]):
    """Answers computed from one immutable snapshot, kept while they are among the `max_entries` newest.

    A snapshot never changes, so an answer keyed on its (path, stamp) never goes stale: the next
    publish is a new key, as the pages' `st.cache_data` does. Concurrent requests for the same key
    wait for one computation instead of running it twenty times. Errors are not cached.
    """

    def __init__(self, max_entries: int = 256) -> None:
        self.max_entries = max_entries
        self._values: OrderedDict[Hashable, T] = OrderedDict()
        self._pending: dict[Hashable, threading.Lock] = {}
        self._lock = threading.Lock()

    def fetch(self, key: Hashable, compute: Callable[[], T]) -> T:
        with self._lock:
            if key in self._values:
                self._values.move_to_end(key)
                return self._values[key]
            gate = self._pending.setdefault(key, threading.Lock())
        with gate:
            with self._lock:
                if key in self._values:
                    return self._values[key]
            try:
                value = compute()
            except BaseException:
                with self._lock:
                    self._pending.pop(key, None)
                raise
            with self._lock:
                self._values[key] = value
                while len(self._values) > self.max_entries:
                    self._values.popitem(last=False)
                self._pending.pop(key, None)
            return value
