"""Read-only cursors on pinned lake snapshots, for the dashboard and the API (the lake's side of
`store.snapshots`).

A reader never reads the lake's head: each page run or API request asks for the newest snapshot
once (`fetch_published_snapshot`) and reads that snapshot only, so a sync committing meanwhile is
invisible to it, and caches key on the snapshot id. One DuckDB instance per process holds the
extensions (loading them takes about a second) with the head attached read-only, and attaches each
snapshot read by a reader once, as `lake_<id>`, keeping the newest `keep` of them.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from contextlib import suppress

import duckdb

from insights_core.settings import Settings
from insights_core.store.lake import BASE_CONFIG, attach_lake, fetch_published_snapshot, prepare_lake_instance

HEAD = "lake_head"
MAX_ATTACHED = 8
"""Snapshots kept attached: a page run still reading one survives this many newer commits."""


class LakeReader:
    """Cursors on lake snapshots; thread-safe (one per process, shared by sessions and handlers)."""

    def __init__(self, settings: Settings, keep: int = MAX_ATTACHED) -> None:
        self.settings = settings
        self.keep = keep
        self._con: duckdb.DuckDBPyConnection | None = None
        self._attached: OrderedDict[int, str] = OrderedDict()
        self._lock = threading.Lock()

    def fetch_published_snapshot(self) -> int:
        """The newest lake snapshot; SnapshotUnavailableError before the first sync committed."""
        cursor = self._instance().cursor()
        try:
            return fetch_published_snapshot(cursor, HEAD)
        finally:
            cursor.close()

    def cursor(self, snapshot: int) -> duckdb.DuckDBPyConnection:
        """A new cursor reading `snapshot` with unqualified table names (the caller closes it)."""
        alias = self._attach(snapshot)
        cursor = self._instance().cursor()
        try:
            cursor.execute(f"USE {alias}")
        except BaseException:
            cursor.close()
            raise
        return cursor

    def close(self) -> None:
        with self._lock:
            con, self._con = self._con, None
            self._attached.clear()
        if con is not None:
            con.close()

    def _instance(self) -> duckdb.DuckDBPyConnection:
        with self._lock:
            if self._con is None:
                con = duckdb.connect(config=dict(BASE_CONFIG))
                try:
                    prepare_lake_instance(con, self.settings)
                    attach_lake(con, self.settings, HEAD, snapshot=None, read_only=True)
                except BaseException:
                    con.close()
                    raise
                self._con = con
            return self._con

    def _attach(self, snapshot: int) -> str:
        con = self._instance()
        with self._lock:
            alias = self._attached.get(snapshot)
            if alias is not None:
                self._attached.move_to_end(snapshot)
                return alias
            alias = f"lake_{int(snapshot)}"
            attach_lake(con, self.settings, alias, snapshot=snapshot, read_only=True)
            self._attached[snapshot] = alias
            while len(self._attached) > self.keep:
                _, old = self._attached.popitem(last=False)
                with suppress(duckdb.Error):  # refused while a slow reader uses it: it stays attached
                    con.execute(f"DETACH {old}")
            return alias
