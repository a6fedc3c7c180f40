"""The worker's read-write DuckDB file: entities, insights, coverage and sync runs.

Only the sync worker opens this file, and only through `Warehouse`. Readers never touch it: they
open the published snapshot (see `store.snapshots`). All SQL here is parameterized; frames are
passed to DuckDB by registration, never formatted into SQL.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pandas as pd

from insights_core.errors import StoreError
from insights_core.metrics import RATIO_FORMULAS, ratio_array
from insights_core.models import INSIGHT_SOURCE_COLUMNS, Account, EntityTree, Level, SyncReport
from insights_core.store.migrations import ensure_schema
from insights_core.store.snapshots import publish_snapshot

ENTITY_COLUMNS: dict[str, tuple[str, ...]] = {
    "campaigns": ("campaign_id", "account_id", "name", "status", "effective_status", "objective",
                  "daily_budget", "lifetime_budget", "created_time"),
    "adsets": ("adset_id", "account_id", "campaign_id", "name", "status", "effective_status",
               "optimization_goal", "billing_event", "daily_budget", "lifetime_budget", "age_min", "age_max",
               "genders", "countries", "placements", "targeting_json", "created_time"),
    "ads": ("ad_id", "account_id", "campaign_id", "adset_id", "name", "status", "effective_status",
            "creative_id", "created_time"),
}
STORED_RATIOS = ("ctr", "cpc", "cpm", "roas", "cost_per_conversion")
_INSIGHT_VALUE_COLUMNS = tuple(c for c in INSIGHT_SOURCE_COLUMNS if c not in ("entity_type", "entity_id", "date_start"))


class Warehouse:
    """A read-write connection to the worker's DuckDB file with the schema ensured."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._con: duckdb.DuckDBPyConnection | None = None
        self.reopen()

    def reopen(self) -> None:
        try:
            self._con = duckdb.connect(str(self.path))
        except duckdb.Error as exc:
            raise StoreError(f"cannot open {self.path}: {exc}") from exc
        ensure_schema(self._con)

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            raise StoreError("the warehouse is closed")
        return self._con

    @contextmanager
    def transaction(self) -> Iterator["Warehouse"]:
        """Everything inside commits together or not at all."""
        self.con.execute("BEGIN TRANSACTION")
        try:
            yield self
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        self.con.execute("COMMIT")

    def publish(self, snapshot_dir: Path, link: Path) -> Path:
        """Publish the committed state as a new snapshot generation for readers; return its path.

        The connection is closed for the copy so the file holds every commit and nothing in flight.
        """
        self.con.execute("CHECKPOINT")
        self.close()
        try:
            return publish_snapshot(self.path, snapshot_dir, link)
        finally:
            self.reopen()

    def upsert_account(self, account: Account, now: dt.datetime) -> None:
        self.con.execute(
            """
            INSERT INTO ad_accounts VALUES (?, ?, ?, ?, ?, ?)
            ON CONFLICT (account_id) DO UPDATE SET name = excluded.name, currency = excluded.currency,
                timezone_name = excluded.timezone_name, account_status = excluded.account_status,
                updated_at = excluded.updated_at
            """,
            [account.account_id, account.name, account.currency, account.timezone_name,
             account.account_status, _naive(now)],
        )

    def upsert_entities(self, tree: EntityTree, now: dt.datetime) -> None:
        """Insert or refresh every entity in the tree. Entities missing from it are kept (they have history)."""
        self.upsert_account(tree.account, now)
        for table, frame in (("campaigns", tree.campaigns), ("adsets", tree.adsets), ("ads", tree.ads)):
            if frame.empty:
                continue
            columns = ENTITY_COLUMNS[table]
            staged = frame.reindex(columns=list(columns)).copy()
            staged["updated_at"] = _naive(now)
            key = columns[0]
            updates = ", ".join(f"{c} = excluded.{c}" for c in columns[1:] + ("updated_at",))
            self.con.register("staged_entities", staged)
            try:
                self.con.execute(
                    f"INSERT INTO {table} ({', '.join(columns)}, updated_at) "
                    f"SELECT {', '.join(columns)}, updated_at FROM staged_entities "
                    f"ON CONFLICT ({key}) DO UPDATE SET {updates}"
                )
            finally:
                self.con.unregister("staged_entities")

    def upsert_insights(self, rows: pd.DataFrame, sync_id: str, now: dt.datetime) -> int:
        """Upsert one batch of insight rows (INSIGHT_SOURCE_COLUMNS); `created_at` is kept on re-sync.

        Per-row ratios are stored for the seed's columns; pages recompute them from sums.
        """
        if rows.empty:
            return 0
        staged = rows.reindex(columns=list(INSIGHT_SOURCE_COLUMNS))
        for name in STORED_RATIOS:
            num, den, scale = RATIO_FORMULAS[name]
            staged[name] = ratio_array(staged[num].to_numpy(), staged[den].to_numpy(), scale)
        value_columns = _INSIGHT_VALUE_COLUMNS + STORED_RATIOS
        updates = ", ".join(f"{c} = excluded.{c}" for c in value_columns + ("last_sync_id", "updated_at"))
        self.con.register("staged_insights", staged)
        try:
            self.con.execute(
                f"""
                INSERT INTO meta_ad_insights (id, entity_type, entity_id, date_start, {', '.join(value_columns)},
                                              last_sync_id, created_at, updated_at)
                SELECT {_UUID_FROM_HASH}, entity_type, entity_id, date_start, {', '.join(value_columns)},
                       $sync_id, $now, $now
                FROM (SELECT *, md5(entity_type || ':' || entity_id || ':' || CAST(date_start AS VARCHAR)) AS h
                      FROM staged_insights)
                ON CONFLICT (entity_type, entity_id, date_start) DO UPDATE SET {updates}
                """,
                {"sync_id": sync_id, "now": _naive(now)},
            )
        finally:
            self.con.unregister("staged_insights")
        return len(staged)

    def delete_stale_insights(
        self, account_id: str, level: Level, since: dt.date, until: dt.date, sync_id: str,
        entity_ids: Iterable[str] | None,
    ) -> int:
        """Delete rows in the window that this sync re-read but did not get back (Meta dropped them).

        `entity_ids` are the entities read successfully (None: every entity of the level). Rows of
        entities that failed are left alone: they were not re-read.
        """
        params = {"account_id": account_id, "level": level, "since": since, "until": until, "sync_id": sync_id}
        where = "account_id = $account_id AND entity_type = $level AND date_start BETWEEN $since AND $until AND last_sync_id <> $sync_id"
        if entity_ids is None:
            return _rowcount(self.con.execute(f"DELETE FROM meta_ad_insights WHERE {where}", params))
        ids = pd.DataFrame({"entity_id": pd.Series(list(entity_ids), dtype="object")})
        if ids.empty:
            return 0
        self.con.register("read_ids", ids)
        try:
            return _rowcount(self.con.execute(
                f"DELETE FROM meta_ad_insights WHERE {where} AND entity_id IN (SELECT entity_id FROM read_ids)",
                params,
            ))
        finally:
            self.con.unregister("read_ids")

    def fetch_synced_days(self, account_id: str, level: Level) -> set[dt.date]:
        rows = self.con.execute(
            "SELECT day FROM synced_days WHERE account_id = ? AND level = ?", [account_id, level]
        ).fetchall()
        return {row[0] for row in rows}

    def save_synced_days(self, account_id: str, level: Level, days: Iterable[dt.date], now: dt.datetime) -> None:
        frame = pd.DataFrame({"day": pd.to_datetime(list(days)).date})
        if frame.empty:
            return
        self.con.register("synced", frame)
        try:
            self.con.execute(
                """
                INSERT INTO synced_days SELECT $account_id, $level, day, $now FROM synced
                ON CONFLICT (account_id, level, day) DO UPDATE SET synced_at = excluded.synced_at
                """,
                {"account_id": account_id, "level": level, "now": _naive(now)},
            )
        finally:
            self.con.unregister("synced")

    def save_sync_run(self, report: SyncReport) -> None:
        r = report
        self.con.execute(
            """
            INSERT OR REPLACE INTO sync_runs VALUES (
                ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            [
                r.sync_id, _naive(dt.datetime.fromisoformat(r.sync_timestamp)), r.sync_type, r.mode, r.status,
                r.success, r.since, r.until, r.days_back, r.entity_type, ",".join(r.entity_ids) or None,
                r.force, r.campaigns.processed, r.campaigns.success, r.campaigns.errors,
                r.adsets.processed, r.adsets.success, r.adsets.errors,
                r.ads.processed, r.ads.success, r.ads.errors,
                r.total_duration_seconds, r.rows_written, r.api_requests, r.rate_limit_hits,
                len(r.errors), r.request_id, json.dumps(r.to_dict()),
            ],
        )

    def fetch_last_success_time(self) -> dt.datetime | None:
        """When the last successful full-account sync finished reading (UTC), for the 'data is fresh' check."""
        row = self.con.execute(
            "SELECT max(sync_timestamp) FROM sync_runs WHERE success AND entity_type IS NULL"
        ).fetchone()
        return row[0].replace(tzinfo=dt.timezone.utc) if row and row[0] else None


# the seed's uuid-shaped id, derived from the primary key's md5 so a re-synced row keeps its id
_UUID_FROM_HASH = (
    "substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-' || substr(h, 13, 4) || '-' || substr(h, 17, 4)"
    " || '-' || substr(h, 21, 12)"
)


def _naive(moment: dt.datetime) -> dt.datetime:
    """DuckDB TIMESTAMP columns hold UTC without a zone."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(dt.timezone.utc).replace(tzinfo=None)


def _rowcount(result: duckdb.DuckDBPyConnection) -> int:
    row = result.fetchone()
    return int(row[0]) if row else 0
