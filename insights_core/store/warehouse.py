"""The worker's read-write DuckDB file: entities, insights, coverage and sync runs.

Only the sync worker opens this file, and only through `Warehouse`. Readers never touch it: they
open the published snapshot (see `store.snapshots`). All SQL here is parameterized; frames are
passed to DuckDB by registration, never formatted into SQL.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from insights_core.datadir import ensure_private_dir, make_private
from insights_core.errors import PublishError, StoreError
from insights_core.levels import LEVEL_SPECS, Level
from insights_core.models import (
    ADDITIVE_METRICS,
    INSIGHT_SOURCE_COLUMNS,
    Account,
    BreakdownFamily,
    EntityTree,
    SyncReport,
)
from insights_core.store import breakdowns, creatives
from insights_core.store.creatives import StoredCreative
from insights_core.store.migrations import ensure_schema
from insights_core.store.snapshots import publish_snapshot

INSIGHT_METRIC_COLUMNS = ADDITIVE_METRICS + ("reach", "unique_clicks", "frequency")
"""What a re-sync may change in a stored row; ids and dates of a key never change."""
_METRIC_TYPES = {
    "spend": "DECIMAL(18, 2)",
    "conversions": "DECIMAL(18, 2)",
    "revenue": "DECIMAL(18, 2)",
    "impressions": "BIGINT",
    "clicks": "BIGINT",
    "reach": "BIGINT",
    "unique_clicks": "BIGINT",
    "frequency": "DOUBLE",
}
_TYPED_BATCH = ", ".join(
    f"CAST({c} AS {_METRIC_TYPES.get(c, 'DATE' if c.startswith('date_') else 'VARCHAR')}) AS {c}"
    for c in INSIGHT_SOURCE_COLUMNS
)
_MERGE_BATCH = f"""
    MERGE INTO meta_ad_insights AS m USING staged_batch AS s
    ON (m.entity_type = s.entity_type AND m.entity_id = s.entity_id AND m.date_start = s.date_start)
    WHEN MATCHED AND ({" OR ".join(f"m.{c} IS DISTINCT FROM s.{c}" for c in INSIGHT_METRIC_COLUMNS)})
        THEN UPDATE SET {", ".join(f"{c} = s.{c}" for c in INSIGHT_METRIC_COLUMNS)}, updated_at = $now
    WHEN NOT MATCHED THEN INSERT ({", ".join(INSIGHT_SOURCE_COLUMNS)}, created_at, updated_at)
        VALUES ({", ".join(f"s.{c}" for c in INSIGHT_SOURCE_COLUMNS)}, $now, $now)
"""


SYNC_RUN_COLUMNS = (
    "sync_id",
    "sync_timestamp",
    "sync_type",
    "mode",
    "status",
    "success",
    "since",
    "until",
    "days_back",
    "entity_type",
    "entity_ids",
    "force",
    "campaigns_processed",
    "campaigns_success",
    "campaigns_errors",
    "adsets_processed",
    "adsets_success",
    "adsets_errors",
    "ads_processed",
    "ads_success",
    "ads_errors",
    "total_duration_seconds",
    "rows_read",
    "rows_inserted",
    "rows_updated",
    "rows_deleted",
    "api_requests",
    "rate_limit_hits",
    "error_count",
    "request_id",
    "report_json",
)
_SAVE_SYNC_RUN = f"""
    MERGE INTO sync_runs AS m
    USING (SELECT {", ".join(f"? AS {c}" for c in SYNC_RUN_COLUMNS)}) AS s ON (m.sync_id = s.sync_id)
    WHEN MATCHED THEN UPDATE SET {", ".join(f"{c} = s.{c}" for c in SYNC_RUN_COLUMNS[1:])}
    WHEN NOT MATCHED THEN INSERT ({", ".join(SYNC_RUN_COLUMNS)})
        VALUES ({", ".join(f"s.{c}" for c in SYNC_RUN_COLUMNS)})
"""
"""A run is saved again when a publish fails after its commit (it is rewritten as failed)."""


class Warehouse:
    """A read-write connection to the worker's DuckDB file with the schema ensured."""

    enforces_keys = True
    """The embedded tables' primary keys refuse a key stored twice; on the lake the upserts check batches."""

    def __init__(self, path: Path, memory_limit: str = "512MB") -> None:
        """Open (creating if needed) the file and apply pending migrations.

        DuckDB caches table data up to its memory limit, which defaults to 80% of RAM; the worker
        runs for weeks beside other services, so the limit is set, and work beyond it spills to
        `<file's dir>/tmp`.
        """
        self.path = Path(path)
        ensure_private_dir(self.path.parent)
        self.memory_limit = memory_limit
        self._con: duckdb.DuckDBPyConnection | None = None
        self.applied_migrations: list[int] = []
        """Migrations this object applied when it opened the file: published snapshots still have the old schema."""
        self.reopen()

    def reopen(self) -> None:
        temp_dir = self.path.parent / "tmp"
        config: dict[str, str | bool | int | float | list[str]] = {
            "memory_limit": self.memory_limit,
            "temp_directory": str(temp_dir),
        }
        try:
            ensure_private_dir(temp_dir)
            self._con = duckdb.connect(str(self.path), config=config)
            self.applied_migrations += ensure_schema(self._con)
            for path in (self.path, self.path.with_name(self.path.name + ".wal")):
                make_private(path)
        except (duckdb.Error, OSError) as exc:
            self.close()
            raise StoreError(f"cannot open {self.path}: {exc}") from exc

    def ensure_open(self) -> None:
        """Reopen the file if a failed publish or a fatal storage error left the warehouse closed.

        DuckDB invalidates a database after a fatal write error (a full disk during a checkpoint);
        closing and reopening replays its WAL, so committed transactions are kept.
        """
        if self._con is None:
            self.reopen()

    def close(self) -> None:
        con, self._con = self._con, None
        if con is not None:
            try:
                con.close()
            except duckdb.Error:
                pass  # an invalidated database closes with an error; nothing is left to flush

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            raise StoreError("the warehouse is closed")
        return self._con

    @contextmanager
    def transaction(self) -> Iterator[Warehouse]:
        """Everything inside commits together or not at all.

        The keys every `upsert_insights` call stores are remembered in a temporary table for the
        life of the transaction, so `delete_stale_insights` can find rows this sync did not get back;
        `breakdown_keys` does the same for segment rows.
        """
        self.con.execute("BEGIN TRANSACTION")
        try:
            self._create_key_tables()
            yield self
            self.con.execute("DROP TABLE sync_keys")
            self.con.execute("DROP TABLE breakdown_keys")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        self.con.execute("COMMIT")

    def _create_key_tables(self) -> None:
        self.con.execute(
            "CREATE OR REPLACE TEMP TABLE sync_keys"
            " (account_id VARCHAR, entity_type VARCHAR, entity_id VARCHAR, date_start DATE)"
        )
        self.con.execute(breakdowns.CREATE_KEYS_TABLE)

    def publish(self, snapshot_dir: Path, link: Path) -> Path | int:
        """Publish the committed state as a new snapshot generation for readers; return its path.

        The connection is closed for the copy so the file holds every commit and nothing in flight.
        Any I/O error raises PublishError and leaves the warehouse closed or reopened, never half-used:
        committed rows stay in the file (and its WAL), and `ensure_open` reopens it for the next sync.
        """
        try:
            self.con.execute("CHECKPOINT")
            self.close()
            return publish_snapshot(self.path, snapshot_dir, link)
        except (OSError, duckdb.Error) as exc:
            raise PublishError(f"publish failed: {exc}") from exc
        finally:
            self.close()
            try:
                self.reopen()
            except StoreError:
                pass  # ensure_open tries again before the next sync

    def upsert_account(self, account: Account, now: dt.datetime) -> None:
        self.con.execute(
            """
            MERGE INTO ad_accounts AS m
            USING (SELECT ? AS account_id, ? AS name, ? AS currency, ? AS timezone_name, ? AS account_status,
                CAST(? AS TIMESTAMP) AS updated_at) AS s
            ON (m.account_id = s.account_id)
            WHEN MATCHED THEN UPDATE SET name = s.name, currency = s.currency, timezone_name = s.timezone_name,
                account_status = s.account_status, updated_at = s.updated_at
            WHEN NOT MATCHED THEN INSERT (account_id, name, currency, timezone_name, account_status, updated_at)
                VALUES (s.account_id, s.name, s.currency, s.timezone_name, s.account_status, s.updated_at)
            """,
            [
                account.account_id,
                account.name,
                account.currency,
                account.timezone_name,
                account.account_status,
                _naive(now),
            ],
        )

    def upsert_entities(self, tree: EntityTree, now: dt.datetime) -> None:
        """Insert or refresh every entity in the tree. Entities missing from it are kept (they have history)."""
        self.upsert_account(tree.account, now)
        for spec in LEVEL_SPECS.values():
            frame = tree.frame(spec.level)
            if frame.empty:
                continue
            columns = spec.column_names
            staged = frame.reindex(columns=list(columns)).copy()
            staged["updated_at"] = _naive(now)
            every = columns + ("updated_at",)
            updates = ", ".join(f"{c} = s.{c}" for c in every if c != spec.id_column)
            self.con.register("staged_entities", staged)
            try:
                self.con.execute(
                    f"MERGE INTO {spec.table} AS m USING staged_entities AS s"
                    f" ON (m.{spec.id_column} = s.{spec.id_column}) WHEN MATCHED THEN UPDATE SET {updates}"
                    f" WHEN NOT MATCHED THEN INSERT ({', '.join(every)}) VALUES ({', '.join(f's.{c}' for c in every)})"
                )
            finally:
                self.con.unregister("staged_entities")

    def upsert_creatives(self, rows: Sequence[StoredCreative], now: dt.datetime) -> tuple[int, int]:
        """Insert new creatives and update changed ones; return (inserted, updated). See `store.creatives`."""
        return creatives.upsert_creatives(self.con, rows, now)

    def save_creative_images(self, images: pd.DataFrame, now: dt.datetime) -> int:
        """Store the images (`image_file`, `content`) not stored yet; return how many. See `store.creatives`."""
        return creatives.save_creative_images(self.con, images, now)

    def delete_surplus_creative_images(self) -> int:
        """Delete stored images no creative refers to, and extra copies; return how many. See `store.creatives`."""
        return creatives.delete_surplus_images(self.con)

    def count_insights(self, account_id: str, level: Level, since: dt.date, until: dt.date) -> int:
        row = self.con.execute(
            "SELECT count(*) FROM meta_ad_insights WHERE account_id = ? AND entity_type = ?"
            " AND date_start BETWEEN ? AND ?",
            [account_id, level, since, until],
        ).fetchone()
        return int(row[0]) if row else 0

    def upsert_insights(self, rows: pd.DataFrame, now: dt.datetime, fresh: bool = False) -> tuple[int, int]:
        """Store one batch of insight rows (INSIGHT_SOURCE_COLUMNS); return (inserted, updated).

        Must run inside `transaction()`. New keys are inserted; existing keys are updated only when
        a metric changed (Meta restates recent days, but most re-read rows are equal), and only
        their metric columns: rewriting every column of every re-read row cost ~400 bytes of undo
        memory per row. `created_at` is kept; `updated_at` says when the values last changed.
        `fresh=True` says no stored row can share a key with this batch (its window held no rows of
        its level before this sync), so the rows are inserted without the merge's join. Either way a
        key stored twice violates the primary key and fails the sync.
        """
        if rows.empty:
            return 0, 0
        self._stage_batch(rows)
        columns = ", ".join(INSIGHT_SOURCE_COLUMNS)
        params = {"now": _naive(now)}
        try:
            if not self.enforces_keys:
                self._refuse_duplicate_keys()
            if fresh:
                inserted = _rowcount(
                    self.con.execute(
                        f"INSERT INTO meta_ad_insights ({columns}, created_at, updated_at)"
                        f" SELECT {columns}, $now, $now FROM staged_batch",
                        params,
                    )
                )
                updated = 0
            else:
                before = self._count_all_insights()
                affected = _rowcount(self.con.execute(_MERGE_BATCH, params))
                inserted = self._count_all_insights() - before
                updated = affected - inserted
            self.con.execute(
                "INSERT INTO sync_keys SELECT account_id, entity_type, entity_id, date_start FROM staged_batch"
            )
        finally:
            self.con.execute("DROP TABLE IF EXISTS staged_batch")
        return inserted, updated

    def _stage_batch(self, rows: pd.DataFrame) -> None:
        """Copy a batch into the temp table `staged_batch`, typed like meta_ad_insights.

        The batch goes in as a one-shot Arrow stream: DuckDB keeps every pandas frame it scans
        alive until the transaction ends (zero-copy strings), which held ~200 bytes per row of a
        sync in memory; a consumed stream leaves nothing to hold.
        """
        table = pa.Table.from_pandas(rows.reindex(columns=list(INSIGHT_SOURCE_COLUMNS)), preserve_index=False)
        stream = pa.RecordBatchReader.from_batches(table.schema, iter(table.to_batches()))
        del table
        self.con.register("batch_stream", stream)
        try:
            self.con.execute(f"CREATE OR REPLACE TEMP TABLE staged_batch AS SELECT {_TYPED_BATCH} FROM batch_stream")
        finally:
            self.con.unregister("batch_stream")

    def _refuse_duplicate_keys(self) -> None:
        """Raise StoreError when the staged batch holds a key twice (a table without a primary key would take both)."""
        twice = _rowcount(
            self.con.execute(
                "SELECT count(*) FROM (SELECT 1 FROM staged_batch"
                " GROUP BY entity_type, entity_id, date_start HAVING count(*) > 1)"
            )
        )
        if twice:
            raise StoreError(f"{twice} insight key(s) appear twice in one batch; nothing of this batch is stored")

    def _count_all_insights(self) -> int:
        return _rowcount(self.con.execute("SELECT count(*) FROM meta_ad_insights"))

    def delete_stale_insights(
        self, account_id: str, level: Level, since: dt.date, until: dt.date, entity_ids: Iterable[str] | None
    ) -> int:
        """Delete rows in the window that this sync re-read but did not get back (Meta dropped them).

        `entity_ids` are the entities read successfully (None: every entity of the level). Rows of
        entities that failed are left alone: they were not re-read. Must run inside `transaction()`.
        """
        params = {"account_id": account_id, "level": level, "since": since, "until": until}
        where = (
            "m.account_id = $account_id AND m.entity_type = $level AND m.date_start BETWEEN $since AND $until"
            " AND NOT EXISTS (SELECT 1 FROM sync_keys AS k WHERE k.entity_type = m.entity_type"
            " AND k.entity_id = m.entity_id AND k.date_start = m.date_start)"
        )
        if entity_ids is None:
            # every stored key is one this sync read, unless the window holds more rows than it read
            in_window = "account_id = $account_id AND entity_type = $level AND date_start BETWEEN $since AND $until"
            stored = _rowcount(self.con.execute(f"SELECT count(*) FROM meta_ad_insights WHERE {in_window}", params))
            read = _rowcount(self.con.execute(f"SELECT count(*) FROM sync_keys WHERE {in_window}", params))
            if stored == read:
                return 0
            return _rowcount(self.con.execute(f"DELETE FROM meta_ad_insights AS m WHERE {where}", params))
        ids = pd.DataFrame({"entity_id": pd.Series(sorted(entity_ids), dtype="object")})
        if ids.empty:
            return 0
        self.con.register("read_ids", ids)
        try:
            return _rowcount(
                self.con.execute(
                    f"DELETE FROM meta_ad_insights AS m WHERE {where}"
                    " AND m.entity_id IN (SELECT entity_id FROM read_ids)",
                    params,
                )
            )
        finally:
            self.con.unregister("read_ids")

    def count_breakdowns(
        self, account_id: str, level: Level, family: BreakdownFamily, since: dt.date, until: dt.date
    ) -> int:
        return breakdowns.count_breakdowns(self.con, account_id, level, family, since, until)

    def upsert_breakdowns(self, rows: pd.DataFrame, now: dt.datetime, fresh: bool = False) -> tuple[int, int]:
        """Store one batch of segment rows (BREAKDOWN_SOURCE_COLUMNS) by the totals' rules; return
        (inserted, updated). Must run inside `transaction()`; see `store.breakdowns`."""
        return breakdowns.upsert_breakdowns(self.con, rows, _naive(now), fresh)

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
        """Store `level` segment rows of `parent_ids` as sums of their children's (reach NULL); return
        (rows, inserted, updated). Must run inside `transaction()`, after the children's rows."""
        return breakdowns.roll_up_breakdowns(
            self.con, account_id, level, family, since, until, parent_ids, _naive(now), fresh
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
        """Like `delete_stale_insights`, for one level's rows of one breakdown family."""
        return breakdowns.delete_stale_breakdowns(self.con, account_id, level, family, since, until, entity_ids)

    def fetch_synced_days(self, account_id: str, level: Level) -> set[dt.date]:
        rows = self.con.execute(
            "SELECT day FROM synced_days WHERE account_id = ? AND entity_type = ?", [account_id, level]
        ).fetchall()
        return {row[0] for row in rows}

    def save_synced_days(self, account_id: str, level: Level, days: Iterable[dt.date], now: dt.datetime) -> None:
        # distinct here, not in the MERGE's source: DuckLake 1.5.5 fails "Out of buffer" on a DISTINCT there
        frame = pd.DataFrame({"day": sorted(set(pd.to_datetime(list(days)).date))})
        if frame.empty:
            return
        self.con.register("synced", frame)
        try:
            self.con.execute(
                """
                MERGE INTO synced_days AS m
                USING (SELECT CAST($account_id AS VARCHAR) AS account_id, CAST($level AS VARCHAR) AS entity_type,
                    CAST(day AS DATE) AS day FROM synced) AS s
                ON (m.account_id = s.account_id AND m.entity_type = s.entity_type AND m.day = s.day)
                WHEN MATCHED THEN UPDATE SET synced_at = $now
                WHEN NOT MATCHED THEN INSERT (account_id, entity_type, day, synced_at)
                    VALUES (s.account_id, s.entity_type, s.day, $now)
                """,
                {"account_id": account_id, "level": level, "now": _naive(now)},
            )
        finally:
            self.con.unregister("synced")

    def save_sync_run(self, report: SyncReport) -> None:
        r = report
        self.con.execute(
            _SAVE_SYNC_RUN,
            [
                r.sync_id,
                _naive(dt.datetime.fromisoformat(r.sync_timestamp)),
                r.sync_type,
                r.mode,
                r.status,
                r.success,
                r.since,
                r.until,
                r.days_back,
                r.entity_type,
                ",".join(r.entity_ids) or None,
                r.force,
                r.campaigns.processed,
                r.campaigns.success,
                r.campaigns.errors,
                r.adsets.processed,
                r.adsets.success,
                r.adsets.errors,
                r.ads.processed,
                r.ads.success,
                r.ads.errors,
                r.total_duration_seconds,
                r.rows_read,
                r.rows_inserted,
                r.rows_updated,
                r.rows_deleted,
                r.api_requests,
                r.rate_limit_hits,
                len(r.errors),
                r.request_id,
                json.dumps(r.to_dict()),
            ],
        )

    def fetch_last_success_time(self) -> dt.datetime | None:
        """When the last successful full-account sync finished reading (UTC), for the 'data is fresh' check."""
        row = self.con.execute(
            "SELECT max(sync_timestamp) FROM sync_runs WHERE success AND entity_type IS NULL"
        ).fetchone()
        return row[0].replace(tzinfo=dt.timezone.utc) if row and row[0] else None


def _naive(moment: dt.datetime) -> dt.datetime:
    """DuckDB TIMESTAMP columns hold UTC without a zone."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(dt.timezone.utc).replace(tzinfo=None)


def _rowcount(result: duckdb.DuckDBPyConnection) -> int:
    row = result.fetchone()
    return int(row[0]) if row else 0
