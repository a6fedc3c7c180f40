"""The warehouse on DuckLake: the embedded `Warehouse`'s SQL on a lake connection, with a commit
path that lets many workers (each syncing other ad accounts) write one lake.

DuckLake checks conflicts per table: two transactions that delete or update rows of one table
conflict at commit even when their rows differ (an upsert of a changed row is an update), so a
sync that held its transaction open for the whole (slow) API part would mostly fail at the end.
Instead a sync runs in a lake transaction as it does embedded (its reads see its own writes), and
every write call is also recorded in a `WriteJournal`. At the end the worker takes a short commit
lock (a PostgreSQL advisory lock on the catalog's database) and commits; when another worker
committed to the same tables meanwhile, the commit conflicts, and the journal is replayed under the
lock in a new transaction against the head and committed. The lock makes that replay conflict-free
against other workers; anything else (a maintenance job) is retried with jittered backoff. One sync
is one lake commit: readers see all of it or none of it, and a failure commits nothing.

The writes replay on the head, so their results can differ from the first run only where another
worker changed the same keys, which account leases rule out.
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
import random
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import duckdb
import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq

from insights_core.cluster.pg import connect_with_retry, describe
from insights_core.datadir import ensure_private_dir
from insights_core.errors import StoreError
from insights_core.levels import Level
from insights_core.models import Account, BreakdownFamily, EntityTree, SyncReport
from insights_core.settings import Settings
from insights_core.store.creatives import StoredCreative
from insights_core.store.lake import LAKE, LakeConnection, connect_lake, describe_lake_error, fetch_lake_snapshot
from insights_core.store.lake_maintenance import MaintenanceRun, run_lake_maintenance_if_due
from insights_core.store.migrations import ensure_schema
from insights_core.store.warehouse import Warehouse

log = logging.getLogger("meta_insights.lake")

COMMIT_LOCK_KEY = 7_310_412_883_270_108_011
"""pg_advisory_lock key of the lake's commit lock (any int8 no other code uses)."""
COMMIT_ATTEMPTS = 8
"""Conflicts left after the lock come from writers outside it (maintenance), lost connections from a
PostgreSQL restart: 8 attempts with doubling waits span ~ 10 s."""
LOCK_WAIT = "300s"
"""How long a commit waits for the lock before the sync fails (another worker's replay is minutes at most)."""
SPILL_ROWS = 50_000
"""Recorded rows kept in memory until the commit; batches beyond this wait on local disk (Parquet)."""


@contextmanager
def hold_commit_lock(settings: Settings) -> Iterator[None]:
    """The lake's commit lock, held by one worker at a time across machines.

    A session-level advisory lock: a worker that dies holding it drops its connection, and
    PostgreSQL releases the lock with it.
    """
    assert settings.catalog_url is not None
    con = connect_with_retry(settings.catalog_url.get_secret_value(), autocommit=True)
    try:
        try:
            con.execute(f"SET lock_timeout = '{LOCK_WAIT}'")
            con.execute("SELECT pg_advisory_lock(%s)", [COMMIT_LOCK_KEY])
        except psycopg.Error as exc:
            reason = describe(exc, settings.catalog_url.get_secret_value())
            raise StoreError(f"the lake's commit lock could not be taken: {reason}") from exc
        yield
    finally:
        with suppress(Exception):  # closing the session releases the lock as well
            con.execute("SELECT pg_advisory_unlock(%s)", [COMMIT_LOCK_KEY])
        con.close()


@dataclass(frozen=True)
class _Spilled:
    """A recorded frame kept as a local Parquet file."""

    path: Path

    def load(self) -> pd.DataFrame:
        frame: pd.DataFrame = pq.read_table(self.path).to_pandas()
        return frame


@dataclass
class WriteJournal:
    """The write calls of one transaction, in order, to replay them in a new one."""

    spill_dir: Path
    writes: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)
    _files: list[Path] = field(default_factory=list)
    _rows_in_memory: int = 0

    def record(self, method: str, args: tuple[Any, ...]) -> None:
        self.writes.append((method, tuple(self._spill(a) for a in args)))

    def replay(self, warehouse: Warehouse) -> list[Any]:
        """Run every recorded call on `warehouse` (inside its open transaction); return their results."""
        results = []
        for method, args in self.writes:
            loaded = [a.load() if isinstance(a, _Spilled) else a for a in args]
            results.append(getattr(Warehouse, method)(warehouse, *loaded))
        return results

    def discard(self) -> None:
        for path in self._files:
            path.unlink(missing_ok=True)
        self._files.clear()
        self.writes.clear()
        self._rows_in_memory = 0

    def _spill(self, value: Any) -> Any:
        """Keep a frame in memory while the journal's frames total at most SPILL_ROWS rows, else on disk."""
        if not isinstance(value, pd.DataFrame):
            return value
        if self._rows_in_memory + len(value) <= SPILL_ROWS:
            self._rows_in_memory += len(value)
            return value
        ensure_private_dir(self.spill_dir)
        path = self.spill_dir / f"journal-{uuid.uuid4().hex}.parquet"
        self._files.append(path)
        pq.write_table(pa.Table.from_pandas(value, preserve_index=False), path)
        return _Spilled(path)


class LakeWarehouse(Warehouse):
    """The worker's read-write connection to the lake, with the schema ensured.

    Same public methods as `Warehouse`. Writes outside `transaction()` (a failed run's record)
    commit on their own, through the same lock.
    """

    enforces_keys = False

    def __init__(self, settings: Settings, memory_limit: str = "512MB") -> None:
        self.settings = settings
        self.path = settings.data_dir / "lake"
        self.memory_limit = memory_limit
        self.temp_dir = settings.data_dir / "tmp"
        self._con: duckdb.DuckDBPyConnection | None = None
        self._journal: WriteJournal | None = None
        self.applied_migrations: list[int] = []
        self.replays = 0
        """Times a sync's writes were replayed: a commit conflict, or the catalog's connection lost (a figure for
        tests and benchmarks)."""
        self._replaying = False
        self.reopen()

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            raise StoreError("the warehouse is closed")
        return cast(duckdb.DuckDBPyConnection, LakeConnection(self._con))  # its cursors read the lake too

    def reopen(self) -> None:
        ensure_private_dir(self.temp_dir)
        # two workers starting on a new catalog at once would both create DuckLake's own tables (the
        # attach), then ours (the migrations): PostgreSQL refuses the second with a duplicate key
        with hold_commit_lock(self.settings):
            self._con = connect_lake(self.settings, memory_limit=self.memory_limit, temp_dir=self.temp_dir)
        try:
            with hold_commit_lock(self.settings):
                self.applied_migrations += ensure_schema(self._con, lake=True)
        except duckdb.Error as exc:
            self.close()
            raise StoreError(f"cannot create the lake's tables: {describe_lake_error(exc, self.settings)}") from exc
        except BaseException:
            self.close()
            raise

    @contextmanager
    def transaction(self) -> Iterator[Warehouse]:
        """Everything inside commits in one lake commit, or not at all (see the module's docstring)."""
        journal = WriteJournal(self.temp_dir)
        self._begin()
        self._journal = journal
        try:
            try:
                yield self
            except BaseException as exc:
                self._journal = None
                self._rollback()
                if isinstance(exc, duckdb.Error) and catalog_lost(exc):
                    self._reconnect()  # the sync fails; the next one (the worker retries) needs a live connection
                raise
            self._journal = None
            try:
                self._commit(journal, open_transaction=True)
            except BaseException:
                self._rollback()  # e.g. the lock was never taken: the sync's transaction is still open
                raise
        finally:
            self._journal = None
            journal.discard()

    def publish(self, snapshot_dir: Path, link: Path) -> Path | int:
        """Nothing to copy: a sync's commit is its publication. Returns the lake snapshot readers see now."""
        return fetch_lake_snapshot(self.con)

    def run_maintenance_if_due(self, worker: str) -> MaintenanceRun | None:
        """Compact the lake and expire old snapshots when no other worker does and the last run is older
        than INSIGHTS_LAKE_MAINTENANCE_HOURS (between syncs: it takes the commit lock)."""
        assert self.settings.catalog_url is not None
        if self._con is None:
            return None
        return run_lake_maintenance_if_due(
            self.settings.catalog_url.get_secret_value(),
            self._con,
            LAKE,
            every=dt.timedelta(hours=self.settings.lake_maintenance_hours),
            keep_snapshots=dt.timedelta(hours=self.settings.lake_snapshot_retention_hours),
            worker=worker,
            commit_lock=lambda: hold_commit_lock(self.settings),
        )

    def _begin(self) -> None:
        self.con.execute("BEGIN TRANSACTION")
        self._create_key_tables()

    def _rollback(self) -> None:
        if self._con is None:  # closed after its catalog session died: nothing is open
            return
        with suppress(duckdb.Error):  # a failed COMMIT has already ended the transaction
            self.con.execute("ROLLBACK")

    def _reconnect(self) -> None:
        """Replace a connection whose catalog session died. If the catalog is still down, the warehouse
        stays closed: the next commit attempt fails with that, and the worker's `ensure_open` retries."""
        self._rollback()  # DuckDB aborts the process when a connection closes inside a transaction here
        self.close()
        try:
            self.reopen()
        except (StoreError, duckdb.Error, psycopg.Error) as exc:
            log.warning("the lake's catalog is not back yet: %s", describe_lake_error(exc, self.settings))

    def _replay(self, journal: WriteJournal) -> list[Any]:
        """`journal`'s writes again, in a new transaction (left open); their results in order."""
        self._begin()
        self._replaying = True
        try:
            return journal.replay(self)
        finally:
            self._replaying = False

    def _resume(self, journal: WriteJournal, lost: duckdb.Error) -> Any:
        """Carry on a sync whose catalog session died mid-way (PostgreSQL restarting): a new connection
        and transaction, with every write so far (the one that failed included) replayed in it; returns
        the failed write's result. Raises `lost` when the catalog does not come back within the attempts."""
        delay = 0.05
        for attempt in range(1, COMMIT_ATTEMPTS + 1):
            log.info("the lake's catalog connection was lost mid-sync (attempt %d); replaying on a new one", attempt)
            time.sleep(delay * random.uniform(0.5, 1.5))
            delay *= 2
            self._reconnect()
            if self._con is None:
                continue
            try:
                result = self._replay(journal)[-1]
                self.replays += 1
                return result
            except duckdb.Error as exc:
                self._rollback()
                if not catalog_lost(exc):
                    raise
                self.close()
        raise lost

    def _commit(self, journal: WriteJournal, *, open_transaction: bool) -> list[Any]:
        """Commit the open transaction, or replay `journal` in new ones, under the commit lock.

        A conflict, or a catalog connection lost (PostgreSQL restarting: the connection is replaced once
        the server answers again), is retried with jittered backoff by replaying the journal; any other
        error rolls back and raises StoreError.
        """
        delay = 0.05
        for attempt in range(1, COMMIT_ATTEMPTS + 1):
            if self._con is None:  # the catalog's session died at the last attempt: a new connection, if it is back
                self._reconnect()
            if self._con is not None:
                with hold_commit_lock(self.settings):
                    try:
                        results = [] if open_transaction else self._replay(journal)
                        self.con.execute("COMMIT")
                        return results
                    except duckdb.Error as exc:
                        self._rollback()
                        reason = describe_lake_error(exc, self.settings)
                        if not (catalog_lost(exc) or _conflicted(exc)) or attempt == COMMIT_ATTEMPTS:
                            raise StoreError(
                                f"the lake commit failed (attempt {attempt}): {reason};"
                                " nothing of this sync was committed"
                            ) from exc
                        log.info("lake commit failed (attempt %d: %s); replaying its writes", attempt, reason)
                        if catalog_lost(exc):
                            self.close()  # every later statement on it would fail too
                    except BaseException:
                        self._rollback()
                        raise
                    open_transaction = False
                    self.replays += 1
            elif attempt == COMMIT_ATTEMPTS:
                raise StoreError(
                    f"the lake's catalog stayed unreachable for {attempt} attempts; nothing of this sync was committed"
                )
            time.sleep(delay * random.uniform(0.5, 1.5))
            delay *= 2
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _write(self, method: str, *args: Any) -> Any:
        """Run a write now (inside the transaction, recorded for a replay), or commit it on its own."""
        if self._replaying:
            # a replayed write that calls another (upsert_entities -> upsert_account) runs in the replay's
            # transaction: committing it on its own would wait for the commit lock the replay holds
            return getattr(Warehouse, method)(self, *args)
        if self._journal is not None:
            self._journal.record(method, args)
            try:
                return getattr(Warehouse, method)(self, *args)
            except duckdb.Error as exc:
                if not catalog_lost(exc):
                    raise
                return self._resume(self._journal, exc)
        journal = WriteJournal(self.temp_dir)
        journal.record(method, args)
        try:
            return self._commit(journal, open_transaction=False)[-1]
        finally:
            journal.discard()

    def upsert_account(self, account: Account, now: dt.datetime) -> None:
        self._write("upsert_account", account, now)

    def upsert_entities(self, tree: EntityTree, now: dt.datetime) -> None:
        self._write("upsert_entities", tree, now)

    def upsert_creatives(self, rows: Sequence[StoredCreative], now: dt.datetime) -> tuple[int, int]:
        return self._write("upsert_creatives", rows, now)  # type: ignore[no-any-return]

    def save_creative_images(self, images: pd.DataFrame, now: dt.datetime) -> int:
        return self._write("save_creative_images", images, now)  # type: ignore[no-any-return]

    def delete_surplus_creative_images(self) -> int:
        return self._write("delete_surplus_creative_images")  # type: ignore[no-any-return]

    def upsert_insights(self, rows: pd.DataFrame, now: dt.datetime, fresh: bool = False) -> tuple[int, int]:
        return self._write("upsert_insights", rows, now, fresh)  # type: ignore[no-any-return]

    def delete_stale_insights(
        self, account_id: str, level: Level, since: dt.date, until: dt.date, entity_ids: Iterable[str] | None
    ) -> int:
        ids = None if entity_ids is None else sorted(entity_ids)  # an iterator would be spent by the first run
        return self._write("delete_stale_insights", account_id, level, since, until, ids)  # type: ignore[no-any-return]

    def upsert_breakdowns(self, rows: pd.DataFrame, now: dt.datetime, fresh: bool = False) -> tuple[int, int]:
        return self._write("upsert_breakdowns", rows, now, fresh)  # type: ignore[no-any-return]

    def roll_up_breakdowns(
        self,
        account_id: str,
        level: Level,
        family: BreakdownFamily,
        since: dt.date,
        until: dt.date,
        parent_ids: Iterable[str],
        now: dt.datetime,
        fresh: bool = False,
    ) -> tuple[int, int, int]:
        ids = sorted(parent_ids)
        return self._write(  # type: ignore[no-any-return]
            "roll_up_breakdowns", account_id, level, family, since, until, ids, now, fresh
        )

    def delete_stale_breakdowns(
        self,
        account_id: str,
        level: Level,
        family: BreakdownFamily,
        since: dt.date,
        until: dt.date,
        entity_ids: Iterable[str] | None,
    ) -> int:
        ids = None if entity_ids is None else sorted(entity_ids)
        return self._write(  # type: ignore[no-any-return]
            "delete_stale_breakdowns", account_id, level, family, since, until, ids
        )

    def save_synced_days(self, account_id: str, level: Level, days: Iterable[dt.date], now: dt.datetime) -> None:
        self._write("save_synced_days", account_id, level, sorted(days), now)

    def save_sync_run(self, report: SyncReport) -> None:
        self._write("save_sync_run", copy.deepcopy(report))  # the caller may change it before the replay


def _conflicted(exc: duckdb.Error) -> bool:
    """Another writer's commit conflicted with this one: a replay on the new head may pass."""
    return "conflict" in str(exc).lower()


CATALOG_LOST_MARKERS = ("connection", "server closed", 'failed to execute query "rollback"')
"""How DuckDB's PostgreSQL client reports a catalog session that died (a PostgreSQL restart or failover):
a lost connection, or a commit whose rollback could not even be sent."""


def catalog_lost(exc: duckdb.Error) -> bool:
    """The lake connection's catalog session is gone: every later statement on it fails until it is replaced."""
    text = str(exc).lower()
    return isinstance(exc, duckdb.IOException) or any(marker in text for marker in CATALOG_LOST_MARKERS)
