"""The dashboard's read side: every SQL statement the pages run, against a published snapshot.

Callers pass a cursor of a read-only snapshot connection (`snapshots.connect_snapshot`), never
the worker's file. Sums are taken in DuckDB, so only aggregated rows (or one entity's days)
reach pandas; ratios are computed afterwards from those sums by `insights_core.metrics`.
Values are always bound parameters. The only text spliced into SQL are this module's constants
and the names in `LEVEL_SPECS`, picked by a level already checked against LEVELS.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import pandas as pd

from insights_core.errors import InputError
from insights_core.levels import LEVEL_SPECS, LEVELS, Level, LevelSpec
from insights_core.models import ADDITIVE_METRICS

Con = duckdb.DuckDBPyConnection
Query = tuple[str, dict[str, Any]]
"""A statement and its parameters: the `*_query` builders give the API the pages' SQL to read as rows."""

_SUMS = (
    "sum(spend)::DOUBLE AS spend, sum(impressions)::BIGINT AS impressions, sum(clicks)::BIGINT AS clicks, "
    "sum(conversions)::DOUBLE AS conversions, sum(revenue)::DOUBLE AS revenue"
)
_ZEROED = ", ".join(f"coalesce(i.{m}, 0) AS {m}" for m in ADDITIVE_METRICS)
_MONEY = ("spend", "conversions", "revenue")
_ACCOUNT = "($account_id IS NULL OR account_id = $account_id)"
EXPORT_COLUMNS = (
    "date_start",
    "date_end",
    "account_id",
    "entity_type",
    "entity_id",
    "name",
    *(s.id_column for s in LEVEL_SPECS.values()),
    *ADDITIVE_METRICS,
    "reach",
    "unique_clicks",
    "frequency",
)


def _level(level: str) -> Level:
    if level not in LEVELS:
        raise InputError(f"entity type must be one of {', '.join(LEVELS)}, got {level!r}")
    return level


def _spec(level: str) -> LevelSpec:
    return LEVEL_SPECS[_level(level)]


@dataclass(frozen=True)
class DataBounds:
    """What the snapshot holds: the first and last day with insights, and the ad accounts."""

    first_day: dt.date | None
    last_day: dt.date | None
    accounts: pd.DataFrame


def fetch_data_bounds(con: Con) -> DataBounds:
    first, last = _one_row(
        con.execute("SELECT min(date_start), max(date_start) FROM meta_ad_insights WHERE entity_type = 'campaign'")
    )
    accounts = con.execute("SELECT account_id, name, currency, timezone_name FROM ad_accounts ORDER BY account_id").df()
    return DataBounds(first, last, accounts)


def _one_row(cursor: Con) -> tuple[Any, ...]:
    """The row of an aggregate query without GROUP BY: there is always exactly one."""
    row = cursor.fetchone()
    assert row is not None
    return row


def _metric_totals(row: Sequence[float | None]) -> dict[str, float]:
    """A row of sums in ADDITIVE_METRICS order as {metric: total}; no rows summed (NULL) is 0."""
    return {m: float(v or 0) for m, v in zip(ADDITIVE_METRICS, row)}


def fetch_totals(con: Con, since: dt.date, until: dt.date, account_id: str | None = None) -> dict[str, float]:
    """Additive totals over campaign rows (the account's total: campaigns add up to it)."""
    row = _one_row(
        con.execute(
            f"SELECT {_SUMS} FROM meta_ad_insights WHERE entity_type = 'campaign'"
            f" AND date_start BETWEEN $since AND $until AND {_ACCOUNT}",
            {"since": since, "until": until, "account_id": account_id},
        )
    )
    return _metric_totals(row)


def fetch_period_totals(
    con: Con,
    since: dt.date,
    until: dt.date,
    prev_since: dt.date | None,
    prev_until: dt.date | None,
    account_id: str | None = None,
) -> tuple[dict[str, float], dict[str, float]]:
    """`fetch_totals` of a period and of the one to compare it with (None: zeros), in one scan of the table."""
    row = _one_row(con.execute(*period_totals_query(since, until, prev_since, prev_until, account_id)))
    count = len(ADDITIVE_METRICS)
    return _metric_totals(row[:count]), _metric_totals(row[count:])


def period_totals_query(
    since: dt.date, until: dt.date, prev_since: dt.date | None, prev_until: dt.date | None, account_id: str | None
) -> Query:
    sums = ", ".join(
        f"sum({m}) FILTER (WHERE date_start BETWEEN ${p}since AND ${p}until)::DOUBLE"
        for p in ("", "prev_")
        for m in ADDITIVE_METRICS
    )
    return (
        f"SELECT {sums} FROM meta_ad_insights WHERE entity_type = 'campaign'"
        " AND (date_start BETWEEN $since AND $until OR date_start BETWEEN $prev_since AND $prev_until)"
        f" AND {_ACCOUNT}",
        {"since": since, "until": until, "prev_since": prev_since, "prev_until": prev_until, "account_id": account_id},
    )


def fetch_campaign_counts(con: Con, account_id: str | None = None) -> tuple[int, int]:
    """(all campaigns, campaigns whose effective status is ACTIVE)."""
    total, active = _one_row(
        con.execute(
            f"SELECT count(*), count(*) FILTER (WHERE effective_status = 'ACTIVE') FROM campaigns WHERE {_ACCOUNT}",
            {"account_id": account_id},
        )
    )
    return int(total), int(active or 0)


def fetch_daily_totals(con: Con, since: dt.date, until: dt.date, account_id: str | None = None) -> pd.DataFrame:
    """One row per day with delivery: the sums of every campaign that day."""
    return con.execute(
        f"SELECT date_start AS date, {_SUMS} FROM meta_ad_insights WHERE entity_type = 'campaign'"
        f" AND date_start BETWEEN $since AND $until AND {_ACCOUNT} GROUP BY date_start ORDER BY date_start",
        {"since": since, "until": until, "account_id": account_id},
    ).df()


def fetch_campaign_summary(
    con: Con,
    since: dt.date,
    until: dt.date,
    prev_since: dt.date | None,
    prev_until: dt.date | None,
    account_id: str | None = None,
) -> pd.DataFrame:
    """Per campaign with delivery in either period: sums for the period and `prev_*` sums for the one compared with.

    The comparison period may lie anywhere (before, a year earlier, overlapping); None for no comparison
    gives zero `prev_*` sums.
    """
    frame = con.execute(*campaign_summary_query(since, until, prev_since, prev_until, account_id)).df()
    frame[list(ADDITIVE_METRICS)] = frame[list(ADDITIVE_METRICS)].fillna(0.0)
    return frame


def campaign_summary_query(
    since: dt.date, until: dt.date, prev_since: dt.date | None, prev_until: dt.date | None, account_id: str | None
) -> Query:
    """`fetch_campaign_summary`'s statement; the period's sums are NULL for a campaign that delivered only before."""
    current = ", ".join(
        f"sum({m}) FILTER (WHERE date_start BETWEEN $since AND $until)::DOUBLE AS {m}" for m in ADDITIVE_METRICS
    )
    previous = ", ".join(
        f"coalesce(sum({m}) FILTER (WHERE date_start BETWEEN $prev_since AND $prev_until), 0)::DOUBLE AS prev_{m}"
        for m in ADDITIVE_METRICS
    )
    return (
        f"""
        SELECT c.campaign_id, c.name, c.status, c.effective_status, c.objective, c.account_id, i.* EXCLUDE (entity_id)
        FROM (SELECT entity_id, {current}, {previous}
              FROM meta_ad_insights
              WHERE entity_type = 'campaign'
                AND (date_start BETWEEN $since AND $until OR date_start BETWEEN $prev_since AND $prev_until)
                AND {_ACCOUNT}
              GROUP BY entity_id) AS i
        JOIN campaigns AS c ON c.campaign_id = i.entity_id
        ORDER BY spend DESC NULLS LAST, c.campaign_id
        """,
        {"since": since, "until": until, "prev_since": prev_since, "prev_until": prev_until, "account_id": account_id},
    )


def search_campaigns(con: Con, text: str, limit: int = 50) -> pd.DataFrame:
    """Campaigns whose name contains `text` (any case) or whose id is `text`, biggest spenders' names first."""
    pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    return con.execute(
        "SELECT campaign_id, name, effective_status FROM campaigns"
        " WHERE campaign_id = $text OR name ILIKE $pattern ESCAPE '\\'"
        " ORDER BY campaign_id <> $text, name, campaign_id LIMIT $limit",
        {"text": text.strip(), "pattern": pattern, "limit": limit},
    ).df()


def _entity_sql(spec: LevelSpec) -> str:
    """The entity's row, its ancestors' names nearest first (an ad's adset_name, then campaign_name), its account's."""
    above = spec.ancestors[::-1]
    names = "".join(f", {a.level}.name AS {a.level}_name" for a in above)
    joins = "".join(f" LEFT JOIN {a.table} AS {a.level} ON {a.level}.{a.id_column} = e.{a.id_column}" for a in above)
    return (
        f"SELECT e.*{names}, a.currency, a.name AS account_name FROM {spec.table} AS e{joins}"
        f" LEFT JOIN ad_accounts AS a ON a.account_id = e.account_id WHERE $id IS NULL OR e.{spec.id_column} = $id"
    )


def entity_query(level: str, entity_id: str | None) -> Query:
    """`fetch_entity`'s statement; `entity_id` None gives every entity of the level (`fetch_entity`'s row each)."""
    return _entity_sql(_spec(level)), {"id": entity_id}


def fetch_entity(con: Con, level: str, entity_id: str) -> dict[str, Any] | None:
    """One campaign, ad set or ad with its parents' names and its account's currency; None if unknown."""
    frame = con.execute(*entity_query(level, entity_id)).df()
    if frame.empty:
        return None
    row = frame.iloc[0].to_dict()
    return {str(k): (None if _is_missing(v) else v) for k, v in row.items()}


def fetch_children(
    con: Con, child_level: str, parent_level: str, parent_id: str, since: dt.date, until: dt.date
) -> pd.DataFrame:
    """Every child of one parent (ad sets or ads of a campaign, ads of an ad set) with its sums in the period.

    Children without delivery are listed with zeros, so counts match the entity tables.
    """
    return con.execute(*children_query(child_level, parent_level, parent_id, since, until)).df()


def children_query(child_level: str, parent_level: str, parent_id: str, since: dt.date, until: dt.date) -> Query:
    child, parent = _spec(child_level), _spec(parent_level)
    if child.level not in parent.children:
        raise InputError(f"{child.level} is not a child level of {parent.level}")
    table, id_column, parent_column = child.table, child.id_column, parent.id_column
    # the ids of its ancestors below the top level: an ad's row says its ad set
    lineage = "".join(f", e.{c}" for c in child.parent_id_columns[1:])
    return (
        f"""
        SELECT e.{id_column} AS entity_id, e.name, e.status, e.effective_status{lineage}, {_ZEROED}
        FROM {table} AS e
        LEFT JOIN (SELECT entity_id, {_SUMS} FROM meta_ad_insights
                   WHERE entity_type = $level AND {parent_column} = $parent AND date_start BETWEEN $since AND $until
                   GROUP BY entity_id) AS i ON i.entity_id = e.{id_column}
        WHERE e.{parent_column} = $parent
        ORDER BY spend DESC, e.{id_column}
        """,
        {"level": child.level, "parent": parent_id, "since": since, "until": until},
    )


def children_counts_query(child_level: str, parent_level: str) -> Query:
    """(parent id, how many children of `child_level` it has): all of them, as `fetch_children` lists."""
    child, parent = _spec(child_level), _spec(parent_level)
    if child.level not in parent.children:
        raise InputError(f"{child.level} is not a child level of {parent.level}")
    column = parent.id_column
    return f"SELECT {column}, count(*) FROM {child.table} GROUP BY {column}", {}


def fetch_existing_ids(con: Con, level: str, ids: list[str]) -> set[str]:
    """Which of `ids` are stored entities of `level`."""
    spec = _spec(level)
    table, id_column = spec.table, spec.id_column
    rows = con.execute(
        f"SELECT {id_column} FROM {table} WHERE {id_column} IN (SELECT unnest($ids::VARCHAR[]))", {"ids": list(ids)}
    ).fetchall()
    return {row[0] for row in rows}


def fetch_entity_daily(con: Con, level: str, entity_id: str, since: dt.date, until: dt.date) -> pd.DataFrame:
    """One entity's stored days, with reach, unique clicks and frequency as Meta reported them per day."""
    return con.execute(*entity_daily_query(level, entity_id, since, until)).df()


def entity_daily_query(level: str, entity_id: str, since: dt.date, until: dt.date) -> Query:
    return (
        """
        SELECT date_start AS date, spend::DOUBLE AS spend, impressions, clicks, conversions::DOUBLE AS conversions,
               revenue::DOUBLE AS revenue, reach, unique_clicks, frequency
        FROM meta_ad_insights
        WHERE entity_type = $level AND entity_id = $id AND date_start BETWEEN $since AND $until
        ORDER BY date_start
        """,
        {"level": _level(level), "id": entity_id, "since": since, "until": until},
    )


def fetch_entity_totals(con: Con, level: str, entity_id: str, since: dt.date, until: dt.date) -> dict[str, float]:
    return _metric_totals(_one_row(con.execute(*entity_totals_query(level, entity_id, since, until))))


def entity_totals_query(level: str, entity_id: str, since: dt.date, until: dt.date) -> Query:
    return (
        f"SELECT {_SUMS} FROM meta_ad_insights WHERE entity_type = $level AND entity_id = $id"
        " AND date_start BETWEEN $since AND $until",
        {"level": _level(level), "id": entity_id, "since": since, "until": until},
    )


def fetch_ad_peers(con: Con, campaign_id: str, since: dt.date, until: dt.date) -> pd.DataFrame:
    """Every ad of a campaign that delivered in the period, with its ad set and sums (peer comparison)."""
    return con.execute(*ad_peers_query(campaign_id, since, until)).df()


def ad_peers_query(campaign_id: str, since: dt.date, until: dt.date) -> Query:
    return (
        f"""
        SELECT e.ad_id, e.adset_id, e.name, i.* EXCLUDE (entity_id)
        FROM (SELECT entity_id, {_SUMS} FROM meta_ad_insights
              WHERE entity_type = 'ad' AND campaign_id = $campaign AND date_start BETWEEN $since AND $until
              GROUP BY entity_id) AS i
        JOIN ads AS e ON e.ad_id = i.entity_id
        ORDER BY e.ad_id
        """,
        {"campaign": campaign_id, "since": since, "until": until},
    )


def fetch_sync_runs(con: Con, limit: int = 500) -> pd.DataFrame:
    """The newest sync runs (every report the worker stored), newest first."""
    return con.execute(
        """
        SELECT sync_id, sync_timestamp, sync_type, mode, status, success, since, until, days_back, entity_type,
               entity_ids, force, campaigns_processed, campaigns_success, campaigns_errors, adsets_processed,
               adsets_success, adsets_errors, ads_processed, ads_success, ads_errors, total_duration_seconds,
               rows_read, api_requests, rate_limit_hits, error_count, request_id, report_json
        FROM sync_runs ORDER BY sync_timestamp DESC LIMIT $limit
        """,
        {"limit": limit},
    ).df()


def fetch_rate_limit_hits_per_hour(con: Con, since: dt.datetime) -> pd.DataFrame:
    return con.execute(
        "SELECT date_trunc('hour', sync_timestamp) AS hour, sum(rate_limit_hits)::BIGINT AS rate_limit_hits,"
        " count(*) AS syncs FROM sync_runs WHERE sync_timestamp >= $since GROUP BY 1 ORDER BY 1",
        {"since": since},
    ).df()


def fetch_day_coverage(con: Con, since: dt.date, until: dt.date) -> pd.DataFrame:
    """Per account and entity type: how many days of [since, until] a full sync has stored."""
    return con.execute(
        "SELECT account_id, entity_type, count(DISTINCT day)::BIGINT AS days_synced FROM synced_days"
        " WHERE day BETWEEN $since AND $until GROUP BY account_id, entity_type ORDER BY account_id, entity_type",
        {"since": since, "until": until},
    ).df()


def count_insight_rows(con: Con, level: str, since: dt.date, until: dt.date, account_id: str | None = None) -> int:
    row = _one_row(
        con.execute(
            f"SELECT count(*) FROM meta_ad_insights WHERE entity_type = $level AND date_start BETWEEN $since AND $until"
            f" AND {_ACCOUNT}",
            {"level": _level(level), "since": since, "until": until, "account_id": account_id},
        )
    )
    return int(row[0])


def iter_insight_rows(
    con: Con, level: str, since: dt.date, until: dt.date, account_id: str | None = None, batch_rows: int = 100_000
) -> Iterator[pd.DataFrame]:
    """Every stored row of one level in the period, oldest day first, in frames of at most `batch_rows`.

    Streams from DuckDB (Arrow record batches), so an export of millions of rows never holds them
    all in memory at once.
    """
    spec = _spec(level)
    table, id_column = spec.table, spec.id_column
    columns = ", ".join(
        "e.name" if c == "name" else f"i.{c}::DOUBLE AS {c}" if c in _MONEY else f"i.{c}" for c in EXPORT_COLUMNS
    )
    reader = con.execute(
        f"""
        SELECT {columns} FROM meta_ad_insights AS i LEFT JOIN {table} AS e ON e.{id_column} = i.entity_id
        WHERE i.entity_type = $level AND i.date_start BETWEEN $since AND $until
          AND ($account_id IS NULL OR i.account_id = $account_id)
        ORDER BY i.date_start, i.entity_id
        """,
        {"level": level, "since": since, "until": until, "account_id": account_id},
    ).to_arrow_reader(batch_rows)
    for batch in reader:
        yield batch.to_pandas()


def _is_missing(value: object) -> bool:
    try:
        return bool(pd.isna(value))  # type: ignore[call-overload]  # the stubs know scalars only; any object works
    except (TypeError, ValueError):
        return False
