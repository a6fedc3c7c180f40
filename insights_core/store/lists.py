"""The list pages' SQL: one page of campaigns, ad sets or ads with their period sums, filtered and sorted in DuckDB.

Only the requested page (LIMIT/OFFSET) reaches pandas, so a list of 100,000 ads costs one aggregate
over the period's rows and a top-N sort, never a frame of every ad. Ratios are computed here from the
period's sums with the formulas of `insights_core.metrics.RATIO_FORMULAS` (never averages of daily
ratios); a zero denominator gives NULL, which sorts last in both directions. Values are bound
parameters; the only text spliced into SQL are names from `LEVEL_SPECS` and the sort column, checked
against `SORT_METRICS`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb
import pandas as pd

from insights_core.errors import InputError
from insights_core.levels import LEVEL_SPECS, LEVELS, Level
from insights_core.metrics import RATIO_FORMULAS
from insights_core.models import ADDITIVE_METRICS

Con = duckdb.DuckDBPyConnection

SORT_METRICS: tuple[str, ...] = (*ADDITIVE_METRICS, *RATIO_FORMULAS)
LOWER_IS_BETTER = frozenset({"cpc", "cpm", "cost_per_conversion"})
"""Costs: their best values are the lowest, so "best first" sorts them ascending."""
MAX_PAGE_ROWS = 500


@dataclass(frozen=True)
class ListRequest:
    """Which entities of one level to list for a period, in what order, and which page of them."""

    level: Level
    since: dt.date
    until: dt.date
    account_id: str | None = None
    statuses: tuple[str, ...] = ()
    """Effective statuses to keep (empty: all)."""
    objectives: tuple[str, ...] = ()
    """Campaign objectives to keep (empty: all); ad sets and ads are filtered by their campaign's."""
    name: str = ""
    """Part of the name (any case), or an exact id."""
    campaign_id: str | None = None
    adset_id: str | None = None
    min_spend: float = 0.0
    sort: str = "spend"
    best_first: bool = True
    limit: int = 50
    offset: int = 0


@dataclass(frozen=True)
class ListPage:
    rows: pd.DataFrame
    """One row per entity: ids, names (with its ad set's and campaign's), status, objective, sums and ratios."""
    total: int
    """How many entities match the filters (on every page)."""
    offset: int


def sort_descending(metric: str, best_first: bool) -> bool:
    """Whether "best first" (or worst first) by `metric` sorts from the highest value down."""
    return best_first != (metric in LOWER_IS_BETTER)


def _ratio_sql(numerator: str, denominator: str, scale: float) -> str:
    return f"{numerator}::DOUBLE / NULLIF({denominator}, 0) * {scale!r}"


def _list_sql(request: ListRequest, order: str) -> str:
    """The statement for `request`: only the filters it sets are in it (a `$x IS NULL OR ...` would keep
    DuckDB from pushing the date range into the scan of the insights)."""
    level = request.level
    spec = LEVEL_SPECS[level]
    id_column, table = spec.id_column, spec.table
    parents, joins = "", ""
    if level == "ad":
        parents += ", e.adset_id, s.name AS adset_name"
        joins += " LEFT JOIN adsets AS s ON s.adset_id = e.adset_id"
    if level != "campaign":
        parents += ", e.campaign_id, c.name AS campaign_name"
        joins += " LEFT JOIN campaigns AS c ON c.campaign_id = e.campaign_id"
    campaign = "e" if level == "campaign" else "c"
    rows, entities = ["entity_type = $level", "date_start BETWEEN $since AND $until"], ["TRUE"]
    if request.account_id is not None:
        rows.append("account_id = $account_id")
        entities.append("e.account_id = $account_id")
    if request.campaign_id is not None:  # an insight row names its campaign and ad set: sum only theirs
        rows.append("campaign_id = $campaign_id")
        entities.append("e.campaign_id = $campaign_id")
    if request.adset_id is not None and level == "ad":
        rows.append("adset_id = $adset_id")
        entities.append("e.adset_id = $adset_id")
    if request.statuses:
        entities.append("list_contains($statuses, e.effective_status)")
    if request.objectives:
        entities.append(f"list_contains($objectives, {campaign}.objective)")
    if request.name.strip():
        entities.append(f"(e.name ILIKE $pattern ESCAPE '\\' OR e.{id_column} = $text)")
    if request.min_spend > 0:
        entities.append("coalesce(i.spend, 0) >= $min_spend")
    sums = ", ".join(f"coalesce(i.{m}, 0) AS {m}" for m in ADDITIVE_METRICS)
    ratios = ", ".join(f"{_ratio_sql(n, d, s)} AS {name}" for name, (n, d, s) in RATIO_FORMULAS.items())
    objective_join = ""
    if request.objectives and level != "campaign":
        objective_join = " LEFT JOIN campaigns AS c ON c.campaign_id = e.campaign_id"
    # sort and page on ids and numbers; names, statuses and parents are joined to the page's rows only
    return f"""
        WITH sums AS (
            SELECT entity_id, sum(spend)::DOUBLE AS spend, sum(impressions)::BIGINT AS impressions,
                   sum(clicks)::BIGINT AS clicks, sum(conversions)::DOUBLE AS conversions,
                   sum(revenue)::DOUBLE AS revenue
            FROM meta_ad_insights WHERE {" AND ".join(rows)}
            GROUP BY entity_id
        ), listed AS (
            SELECT e.{id_column} AS entity_id, e.name, {sums}
            FROM {table} AS e LEFT JOIN sums AS i ON i.entity_id = e.{id_column}{objective_join}
            WHERE {" AND ".join(entities)}
        ), page AS (
            SELECT *, {ratios}, count(*) OVER () AS total_rows
            FROM listed
            ORDER BY {order}, entity_id
            LIMIT $limit OFFSET $offset
        )
        SELECT p.entity_id, p.name, e.effective_status, e.status, {campaign}.objective{parents}, e.account_id,
               p.* EXCLUDE (entity_id, name)
        FROM page AS p JOIN {table} AS e ON e.{id_column} = p.entity_id{joins}
        ORDER BY {order.replace("lower(name)", "lower(p.name)")}, p.entity_id
    """


def _check(request: ListRequest) -> None:
    if request.level not in LEVELS:
        raise InputError(f"entity type must be one of {', '.join(LEVELS)}, got {request.level!r}")
    if request.sort not in (*SORT_METRICS, "name"):
        raise InputError(f"sort by one of {', '.join(SORT_METRICS)}, got {request.sort!r}")
    if not 1 <= request.limit <= MAX_PAGE_ROWS or request.offset < 0:
        raise InputError(f"a page holds 1 to {MAX_PAGE_ROWS} rows from offset 0 up")
    if request.since > request.until:
        raise InputError(f"since {request.since} is after until {request.until}")


def fetch_entity_list(con: Con, request: ListRequest) -> ListPage:
    """One page of `request.level`'s entities (with or without delivery) and how many match in all."""
    _check(request)
    if request.sort == "name":
        order = f"lower(name) {'ASC' if request.best_first else 'DESC'}"
    else:
        descending = sort_descending(request.sort, request.best_first)
        order = f"{request.sort} {'DESC' if descending else 'ASC'} NULLS LAST"
    text = request.name.strip()
    pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%" if text else None
    params: dict[str, object] = {
        "level": request.level,
        "since": request.since,
        "until": request.until,
        "limit": request.limit,
        "offset": request.offset,
    }
    sql = _list_sql(request, order)
    optional = {
        "account_id": request.account_id,
        "campaign_id": request.campaign_id,
        "adset_id": request.adset_id,
        "statuses": list(request.statuses),
        "objectives": list(request.objectives),
        "pattern": pattern,
        "text": text,
        "min_spend": float(request.min_spend),
    }
    params.update({name: value for name, value in optional.items() if f"${name}" in sql})
    frame = con.execute(sql, params).df()
    if frame.empty and request.offset > 0:  # past the end: count what there is, for the pager
        counted = con.execute(sql, {**params, "limit": 1, "offset": 0}).df()
        total = int(counted["total_rows"].iloc[0]) if len(counted) else 0
    else:
        total = int(frame["total_rows"].iloc[0]) if len(frame) else 0
    return ListPage(frame.drop(columns=["total_rows"]), total, request.offset)


def fetch_list_choices(con: Con, level: Level, account_id: str | None = None) -> tuple[list[str], list[str]]:
    """(effective statuses of the level's entities, objectives of the campaigns), sorted, for the filters."""
    spec = LEVEL_SPECS[level]
    statuses = con.execute(
        f"SELECT DISTINCT effective_status FROM {spec.table} WHERE effective_status IS NOT NULL"
        " AND ($account_id IS NULL OR account_id = $account_id) ORDER BY 1",
        {"account_id": account_id},
    ).fetchall()
    objectives = con.execute(
        "SELECT DISTINCT objective FROM campaigns WHERE objective IS NOT NULL"
        " AND ($account_id IS NULL OR account_id = $account_id) ORDER BY 1",
        {"account_id": account_id},
    ).fetchall()
    return [row[0] for row in statuses], [row[0] for row in objectives]


def fetch_parent_choices(con: Con, level: Level, parent_id: str | None, account_id: str | None = None) -> pd.DataFrame:
    """Campaigns (level "campaign"), or the ad sets of campaign `parent_id` (level "adset"): id and name, by name."""
    if level == "campaign":
        return con.execute(
            "SELECT campaign_id AS id, name FROM campaigns WHERE ($account_id IS NULL OR account_id = $account_id)"
            " ORDER BY lower(name), campaign_id",
            {"account_id": account_id},
        ).df()
    return con.execute(
        "SELECT adset_id AS id, name FROM adsets WHERE campaign_id = $parent ORDER BY lower(name), adset_id",
        {"parent": parent_id},
    ).df()


def fetch_daily_spend_of(con: Con, level: Level, ids: list[str], since: dt.date, until: dt.date) -> pd.DataFrame:
    """entity_id, date, spend of `ids` (of `level`) per day with delivery: what pacing reads for one page's rows.

    `IN (SELECT unnest($ids))` is a hash semi-join; `list_contains` per row took three times as long."""
    if level not in LEVELS:
        raise InputError(f"entity type must be one of {', '.join(LEVELS)}, got {level!r}")
    frame = con.execute(
        "SELECT entity_id, date_start AS date, spend::DOUBLE AS spend FROM meta_ad_insights"
        " WHERE entity_type = $level AND entity_id IN (SELECT unnest($ids)) AND date_start BETWEEN $since AND $until",
        {"level": level, "ids": ids, "since": since, "until": until},
    ).df()
    frame["date"] = pd.to_datetime(frame["date"])
    return frame
