"""SQL for `meta_ad_insight_breakdowns`: the worker's writes and the pages' reads.

Segment rows follow the totals' rules (see `warehouse.Warehouse.upsert_insights`): new keys are
inserted, changed ones updated (metric columns only), equal ones left alone, and rows Meta no longer
returns in a re-read window are deleted for the entities read successfully. Levels a source did
not read are rolled up here from the level below: additive metrics summed, reach NULL, because
reach is de-duplicated per segment and day and never adds up across children.

Write functions must run inside `Warehouse.transaction()`, which creates the temp table
`breakdown_keys` (every key stored by this sync). Values are bound parameters; the only names
spliced into SQL are this module's constants and those of `LEVEL_SPECS`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping

import duckdb
import pandas as pd
import pyarrow as pa

from insights_core.errors import StoreError
from insights_core.levels import LEVEL_SPECS, Level
from insights_core.models import ADDITIVE_METRICS, BREAKDOWN_SOURCE_COLUMNS, BreakdownFamily

Con = duckdb.DuckDBPyConnection

KEY_COLUMNS = ("entity_type", "entity_id", "date_start", "breakdown", "key_1", "key_2")
METRIC_COLUMNS = ADDITIVE_METRICS + ("reach",)
"""What a re-sync may change in a stored segment row."""
CREATE_KEYS_TABLE = (
    "CREATE OR REPLACE TEMP TABLE breakdown_keys (account_id VARCHAR, entity_type VARCHAR, entity_id VARCHAR,"
    " date_start DATE, breakdown VARCHAR, key_1 VARCHAR, key_2 VARCHAR)"
)
_TYPES = {
    "spend": "DECIMAL(18, 2)",
    "conversions": "DECIMAL(18, 2)",
    "revenue": "DECIMAL(18, 2)",
    "impressions": "BIGINT",
    "clicks": "BIGINT",
    "reach": "BIGINT",
    "date_start": "DATE",
}
_TYPED = ", ".join(f"CAST({c} AS {_TYPES.get(c, 'VARCHAR')}) AS {c}" for c in BREAKDOWN_SOURCE_COLUMNS)
_COLUMNS = ", ".join(BREAKDOWN_SOURCE_COLUMNS)
_MERGE = f"""
    MERGE INTO meta_ad_insight_breakdowns AS m USING staged_breakdowns AS s
    ON ({" AND ".join(f"m.{c} = s.{c}" for c in KEY_COLUMNS)})
    WHEN MATCHED AND ({" OR ".join(f"m.{c} IS DISTINCT FROM s.{c}" for c in METRIC_COLUMNS)})
        THEN UPDATE SET {", ".join(f"{c} = s.{c}" for c in METRIC_COLUMNS)}, updated_at = $now
    WHEN NOT MATCHED THEN INSERT ({_COLUMNS}, created_at, updated_at)
        VALUES ({", ".join(f"s.{c}" for c in BREAKDOWN_SOURCE_COLUMNS)}, $now, $now)
"""
_IN_WINDOW = (
    "account_id = $account_id AND entity_type = $level AND breakdown = $family AND date_start BETWEEN $since AND $until"
)


def count_breakdowns(
    con: Con, account_id: str, level: Level, family: BreakdownFamily, since: dt.date, until: dt.date
) -> int:
    params = {"account_id": account_id, "level": level, "family": family, "since": since, "until": until}
    return _count(con, f"SELECT count(*) FROM meta_ad_insight_breakdowns WHERE {_IN_WINDOW}", params)


def upsert_breakdowns(con: Con, rows: pd.DataFrame, now: dt.datetime, fresh: bool = False) -> tuple[int, int]:
    """Store one batch of segment rows (BREAKDOWN_SOURCE_COLUMNS); return (inserted, updated).

    `fresh=True` says the window held no rows of this level and family before this sync, so the rows
    are inserted without the merge's join. A batch that holds one key twice raises StoreError (the
    table has no primary key to refuse it: see migration 4), and the sync's transaction rolls back.
    """
    if rows.empty:
        return 0, 0
    # a consumed Arrow stream leaves nothing for DuckDB to hold until the transaction ends
    table = pa.Table.from_pandas(rows.reindex(columns=list(BREAKDOWN_SOURCE_COLUMNS)), preserve_index=False)
    stream = pa.RecordBatchReader.from_batches(table.schema, iter(table.to_batches()))
    del table
    con.register("breakdown_stream", stream)
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE staged_breakdowns AS SELECT {_TYPED} FROM breakdown_stream")
    finally:
        con.unregister("breakdown_stream")
    return _save_staged(con, now, fresh)


def _save_staged(con: Con, now: dt.datetime, fresh: bool) -> tuple[int, int]:
    """Write `staged_breakdowns` into the table and remember its keys; drop it.

    On an error the caller's transaction rolls back, which drops the staged table too; dropping it
    here first would hide the error behind "transaction is aborted".
    """
    params = {"now": now}
    keys = ", ".join(KEY_COLUMNS)
    duplicates = f"SELECT 1 FROM staged_breakdowns GROUP BY {keys} HAVING count(*) > 1"
    twice = _count(con, f"SELECT count(*) FROM ({duplicates})", {})
    if twice:
        raise StoreError(f"{twice} breakdown key(s) appear twice in one batch; nothing of this batch is stored")
    if fresh:
        sql = f"INSERT INTO meta_ad_insight_breakdowns ({_COLUMNS}, created_at, updated_at)"
        inserted, updated = _count(con, f"{sql} SELECT {_COLUMNS}, $now, $now FROM staged_breakdowns", params), 0
    else:
        before = _count(con, "SELECT count(*) FROM meta_ad_insight_breakdowns", {})
        affected = _count(con, _MERGE, params)
        inserted = _count(con, "SELECT count(*) FROM meta_ad_insight_breakdowns", {}) - before
        updated = affected - inserted
    con.execute(
        "INSERT INTO breakdown_keys SELECT account_id, entity_type, entity_id, date_start, breakdown, key_1, key_2"
        " FROM staged_breakdowns"
    )
    con.execute("DROP TABLE staged_breakdowns")
    return inserted, updated


def roll_up_breakdowns(
    con: Con,
    account_id: str,
    level: Level,
    family: BreakdownFamily,
    since: dt.date,
    until: dt.date,
    parent_ids: Iterable[str],
    now: dt.datetime,
    fresh: bool = False,
) -> tuple[int, int, int]:
    """Store `level` rows of `parent_ids` as sums of their children's stored rows in the window.

    The children (the level right below) must already hold this sync's rows. Additive metrics are
    summed; reach is NULL. Returns (rows, inserted, updated).
    """
    spec = LEVEL_SPECS[level]
    child = LEVEL_SPECS[spec.children[0]]
    ids = pd.DataFrame({"entity_id": pd.Series(sorted(set(parent_ids)), dtype="object")})
    if ids.empty:
        return 0, 0, 0
    sums = ", ".join(f"CAST(sum(b.{m}) AS {_TYPES[m]}) AS {m}" for m in ADDITIVE_METRICS)
    params = {"account_id": account_id, "child": child.level, "level": level, "family": family}
    con.register("parent_ids", ids)
    try:
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE staged_breakdowns AS
            SELECT b.account_id, CAST($level AS VARCHAR) AS entity_type, c.{spec.id_column} AS entity_id,
                b.date_start, b.breakdown, b.key_1, b.key_2, {sums}, CAST(NULL AS BIGINT) AS reach
            FROM meta_ad_insight_breakdowns AS b
            JOIN {child.table} AS c ON c.{child.id_column} = b.entity_id
            WHERE b.account_id = $account_id AND b.entity_type = $child AND b.breakdown = $family
                AND b.date_start BETWEEN $since AND $until
                AND c.{spec.id_column} IN (SELECT entity_id FROM parent_ids)
            GROUP BY ALL
            """,
            {**params, "since": since, "until": until},
        )
    finally:
        con.unregister("parent_ids")
    rows = _count(con, "SELECT count(*) FROM staged_breakdowns", {})
    inserted, updated = _save_staged(con, now, fresh)
    return rows, inserted, updated


def delete_stale_breakdowns(
    con: Con,
    account_id: str,
    level: Level,
    family: BreakdownFamily,
    since: dt.date,
    until: dt.date,
    entity_ids: Iterable[str] | None,
) -> int:
    """Delete segment rows in the window that this sync re-read but did not get back.

    `entity_ids` are the entities read (or rolled up) successfully; None: every entity of the level.
    """
    params = {"account_id": account_id, "level": level, "family": family, "since": since, "until": until}
    where = (
        f"{_IN_WINDOW} AND NOT EXISTS (SELECT 1 FROM breakdown_keys AS k WHERE "
        + " AND ".join(f"k.{c} = m.{c}" for c in KEY_COLUMNS)
        + ")"
    )
    if entity_ids is None:
        stored = _count(con, f"SELECT count(*) FROM meta_ad_insight_breakdowns WHERE {_IN_WINDOW}", params)
        read = _count(con, f"SELECT count(*) FROM breakdown_keys WHERE {_IN_WINDOW}", params)
        if stored == read:
            return 0
        return _count(con, f"DELETE FROM meta_ad_insight_breakdowns AS m WHERE {where}", params)
    ids = pd.DataFrame({"entity_id": pd.Series(sorted(set(entity_ids)), dtype="object")})
    if ids.empty:
        return 0
    con.register("read_ids", ids)
    try:
        return _count(
            con,
            f"DELETE FROM meta_ad_insight_breakdowns AS m WHERE {where}"
            " AND m.entity_id IN (SELECT entity_id FROM read_ids)",
            params,
        )
    finally:
        con.unregister("read_ids")


# the pages' reads (against a read-only snapshot cursor)


def has_breakdowns_table(con: Con) -> bool:
    """False on a snapshot published before migration 4 (the next publish has the table)."""
    row = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'meta_ad_insight_breakdowns' AND NOT temporary"
    ).fetchone()
    return bool(row and row[0])


def _scope_filter(level: Level, entity_id: str | None, account_id: str | None) -> tuple[str, dict[str, object]]:
    where = "entity_type = $level AND ($entity_id IS NULL OR entity_id = $entity_id)"
    where += " AND ($account_id IS NULL OR account_id = $account_id)"
    return where, {"level": level, "entity_id": entity_id, "account_id": account_id}


def fetch_segment_sums(
    con: Con,
    family: BreakdownFamily,
    level: Level,
    since: dt.date,
    until: dt.date,
    entity_id: str | None = None,
    account_id: str | None = None,
) -> pd.DataFrame:
    """Additive sums per segment (key_1, key_2) over the period, for one entity or every entity of a level.

    Reach is left out on purpose: a segment's reach over several days or entities is not a sum.
    """
    where, params = _scope_filter(level, entity_id, account_id)
    return con.execute(
        f"""
        SELECT key_1, key_2, sum(spend)::DOUBLE AS spend, sum(impressions)::BIGINT AS impressions,
            sum(clicks)::BIGINT AS clicks, sum(conversions)::DOUBLE AS conversions, sum(revenue)::DOUBLE AS revenue
        FROM meta_ad_insight_breakdowns
        WHERE {where} AND breakdown = $family AND date_start BETWEEN $since AND $until
        GROUP BY key_1, key_2 ORDER BY spend DESC, key_1, key_2
        """,
        {**params, "family": family, "since": since, "until": until},
    ).df()


def fetch_segment_daily_reach(
    con: Con, family: BreakdownFamily, level: Level, entity_id: str, since: dt.date, until: dt.date
) -> pd.DataFrame:
    """One entity's reach per segment and day, as reported (rows where the source gave one)."""
    return con.execute(
        """
        SELECT date_start, key_1, key_2, reach, impressions
        FROM meta_ad_insight_breakdowns
        WHERE entity_type = $level AND entity_id = $entity_id AND breakdown = $family
            AND date_start BETWEEN $since AND $until AND reach IS NOT NULL
        ORDER BY date_start DESC, impressions DESC, key_1, key_2
        """,
        {"level": level, "entity_id": entity_id, "family": family, "since": since, "until": until},
    ).df()


def _count(con: Con, sql: str, params: Mapping[str, object]) -> int:
    row = con.execute(sql, params).fetchone()
    return int(row[0]) if row else 0
