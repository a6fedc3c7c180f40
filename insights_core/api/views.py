"""What each read endpoint answers: the pages' queries and pure functions, shaped as the original README's JSON.

Every figure comes from the same code the pages use: the SQL of `store.queries` (its `*_query`
builders), ratios from `metrics`, efficiency score and peer comparison from `dashboard.scoring`,
alerts from `dashboard.alerts`, periods from `dashboard.periods`. The statements are read as rows
(`reads.fetch_rows`), not frames: building pandas frames cost most of an uncached answer's CPU.
The callers validate the inputs first, and pass the pieces shared by many answers of one
snapshot (its bounds, its sync status, a period's campaign population), which they cache.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import duckdb

from insights_core.api.reads import Row, fetch_row, fetch_rows
from insights_core.api.serializers import (
    JsonObject,
    JsonValue,
    alert_record,
    date_range,
    frame_records,
    insights_block,
    json_value,
    metric_block,
    parse_json_text,
    row_records,
    split_list,
    sync_run_record,
    totals_of_days,
    with_ratios,
)
from insights_core.dashboard.alerts import performance_alerts, sync_alerts
from insights_core.dashboard.periods import account_today, days_back_range, default_period, previous_period
from insights_core.dashboard.scoring import (
    EFFICIENCY_WEIGHTS,
    efficiency_score_among,
    efficiency_scores_of,
    peer_comparison_rows,
    sorted_values,
)
from insights_core.errors import NotFoundError, SnapshotUnavailableError
from insights_core.levels import LEVEL_LABELS, LEVELS, Level
from insights_core.metrics import RATIO_FORMULAS, pct_change, ratio, ratios_from_totals, with_ratio_columns
from insights_core.models import ADDITIVE_METRICS, BreakdownFamily
from insights_core.store import breakdowns as breakdown_store
from insights_core.store import queries

Con = duckdb.DuckDBPyConnection
SortBy = Literal["spend", "roas"]
CHILD_COLUMNS = ("entity_id", "name", "status", "effective_status", *ADDITIVE_METRICS, "ctr", "cpc", "roas")
TOP_COLUMNS = (
    "campaign_id",
    "campaign_name",
    "status",
    "effective_status",
    "objective",
    *ADDITIVE_METRICS,
    "ctr",
    "cpc",
    "cpm",
    "roas",
    "roas_change",
    "efficiency_score",
)
ROAS = RATIO_FORMULAS["roas"]
MAX_KEPT_CAMPAIGNS = 10_000
"""Up to this many campaigns, their entity rows are kept per snapshot (~2 KB each)."""
PEER_COLUMNS = (
    "metric",
    "value",
    "peer_median",
    "difference",
    "difference_pct",
    "percentile",
    "better_than_pct",
    "peers",
)


@dataclass(frozen=True)
class Period:
    since: dt.date
    until: dt.date


@dataclass(frozen=True)
class SyncStatus:
    """What the overview says about syncs: the last run and the sync alerts (they look at the last 24 hours)."""

    last_sync: JsonObject | None
    alerts: list[JsonObject]


@dataclass(frozen=True)
class CampaignPopulation:
    """Every campaign that spent in a period: per efficiency metric, their ratios in order (`sorted_values`)."""

    ratios: Mapping[str, Sequence[float]]
    count: int


def fetch_bounds(con: Con) -> queries.DataBounds:
    """What the snapshot holds (first and last day, accounts); no insights yet is 'unavailable', as the pages say."""
    bounds = queries.fetch_data_bounds(con)
    if bounds.first_day is None or bounds.last_day is None:
        raise SnapshotUnavailableError("the last sync stored no insights yet: run a sync")
    return bounds


def _stored_days(bounds: queries.DataBounds) -> tuple[dt.date, dt.date]:
    assert bounds.first_day is not None and bounds.last_day is not None  # fetch_bounds checked
    return bounds.first_day, bounds.last_day


def overview_period(bounds: queries.DataBounds, since: dt.date | None, until: dt.date | None) -> Period:
    """The requested period; missing ends default to the dashboard's default period (the last 30 complete
    days, ending yesterday in the account's time zone; the last 30 stored days when the store ends earlier)."""
    first, last = _stored_days(bounds)
    if since and until:
        return Period(since, until)
    default = default_period(account_today(bounds, None), first, last)
    return Period(since or default.since, until or (last if since else default.until))


def days_period(bounds: queries.DataBounds, days: int) -> Period:
    """`days` days through the last stored day, like the Timeline page and the worker's --days-back."""
    since, until = days_back_range(_stored_days(bounds)[1], days)
    return Period(since, until)


def stored_period(bounds: queries.DataBounds, period: Period) -> Period:
    """`period` within the stored days (the same sums: no day outside them has rows)."""
    first, last = _stored_days(bounds)
    return Period(max(period.since, first), min(period.until, last))


def check_account(bounds: queries.DataBounds, account_id: str | None) -> None:
    if account_id is not None and account_id not in set(bounds.accounts["account_id"].astype(str)):
        raise NotFoundError(f"unknown ad account {account_id}")


def fetch_sync_status(con: Con, now: dt.datetime) -> SyncStatus:
    """The last sync run and the sync alerts at `now` (the same for every overview of a snapshot and minute)."""
    runs = queries.fetch_sync_runs(con)
    last = sync_run_record({str(k): v for k, v in runs.iloc[0].items()}) if not runs.empty else None
    return SyncStatus(last, [alert_record(a) for a in sync_alerts(runs, now)])


def fetch_campaign_counts(con: Con, account_id: str | None) -> tuple[int, int]:
    return queries.fetch_campaign_counts(con, account_id)


def _campaign_sums(rows: list[Row]) -> list[Row]:
    """`fetch_campaign_summary`'s rows as it gives them: a campaign that spent only before has zero sums."""
    for row in rows:
        for metric in ADDITIVE_METRICS:
            if row[metric] is None:
                row[metric] = 0.0
    return rows


def _top_campaigns(summary: list[Row], top: int, sort_by: SortBy) -> list[JsonObject]:
    """The delivered campaigns with ratios, ROAS change and efficiency score, best `top` by `sort_by` (the
    Overview page's table). Only the rows shown get a score and a change: ranked among every campaign."""
    delivered = [with_ratios(row) for row in summary if row["spend"] > 0]
    # stable, missing values last, as the page's sort_values(na_position="last")
    ranked = sorted(delivered, key=lambda c: (c[sort_by] is None, -c[sort_by] if c[sort_by] is not None else 0.0))  # type: ignore[operator]
    shown = ranked[:top]
    for campaign, score in zip(shown, efficiency_scores_of(shown, among=delivered)):  # type: ignore[arg-type]
        previous = ratio(campaign[f"prev_{ROAS[0]}"], campaign[f"prev_{ROAS[1]}"], ROAS[2])  # type: ignore[arg-type]
        campaign["roas_change"] = pct_change(campaign["roas"], previous)  # type: ignore[arg-type]
        campaign["campaign_name"] = campaign["name"]
        campaign["efficiency_score"] = score
    return row_records(shown, TOP_COLUMNS)


def overview_view(
    con: Con,
    period: Period,
    account_id: str | None,
    counts: tuple[int, int],
    status: SyncStatus,
    top: int = 10,
    sort_by: SortBy = "spend",
) -> JsonObject:
    """The overview endpoint's answer without its timestamp: counts, global metrics, top campaigns, last sync,
    alerts (as the Overview page). `counts` and `status` come from the callers' per-snapshot caches."""
    since, until = period.since, period.until
    prev_since, prev_until = previous_period(since, until)
    totals, previous = queries.fetch_period_totals(con, since, until, prev_since, prev_until, account_id)
    summary = _campaign_sums(
        fetch_rows(con, queries.campaign_summary_query(since, until, prev_since, prev_until, account_id))
    )
    alerts = status.alerts + [alert_record(a) for a in performance_alerts(summary)]
    return {
        "date_range": date_range(since, until),
        "account_id": account_id,
        "total_campaigns": counts[0],
        "active_campaigns": counts[1],
        "global_metrics": metric_block(totals),
        "previous_period": {"date_range": date_range(prev_since, prev_until), "global_metrics": metric_block(previous)},
        "top_campaigns": _top_campaigns(summary, top, sort_by),
        "last_sync": status.last_sync,
        "alerts": alerts,
    }


def fetch_campaign_rows(con: Con) -> dict[str, Row] | None:
    """Every campaign's entity row by id, so a campaign answer needs no statement for it; None above
    MAX_KEPT_CAMPAIGNS (each answer reads its own). Read-only: answers share these dicts."""
    if fetch_campaign_counts(con, None)[0] > MAX_KEPT_CAMPAIGNS:
        return None
    return {str(row["campaign_id"]): row for row in fetch_rows(con, queries.entity_query("campaign", None))}


def _entity(con: Con, level: Level, entity_id: str, campaigns: Mapping[str, Row] | None = None) -> Row:
    """The entity's row (`campaigns`: the snapshot's `fetch_campaign_rows`, when the caller keeps it)."""
    if level == "campaign" and campaigns is not None:
        entity = campaigns.get(entity_id)
    else:
        entity = fetch_row(con, queries.entity_query(level, entity_id))
    if entity is None:
        raise NotFoundError(f"unknown {LEVEL_LABELS[level]} id {entity_id} (not in the synced data)")
    return entity


def _insights(con: Con, level: Level, entity_id: str, period: Period) -> JsonObject:
    daily = fetch_rows(con, queries.entity_daily_query(level, entity_id, period.since, period.until))
    return insights_block(level, entity_id, totals_of_days(daily), daily)


def _status(entity: Row) -> JsonValue:
    return json_value(entity.get("effective_status") or entity.get("status"))


def _children(con: Con, child: Level, level: Level, entity_id: str, period: Period) -> list[Row]:
    rows = fetch_rows(con, queries.children_query(child, level, entity_id, period.since, period.until))
    return [with_ratios(row) for row in rows]


def fetch_ads_per_campaign(con: Con) -> dict[str, int]:
    """How many ads each campaign has (the same for every campaign answer of a snapshot: callers cache it)."""
    return {
        str(parent): int(count)
        for parent, count in con.execute(*queries.children_counts_query("ad", "campaign")).fetchall()
    }


def fetch_campaign_population(con: Con, period: Period) -> CampaignPopulation:
    """Every campaign that spent in the period, ranked per metric: the population of the efficiency score."""
    rows = fetch_rows(con, queries.campaign_summary_query(period.since, period.until, None, None, None))
    delivered = [ratios_from_totals(row) for row in rows if (row["spend"] or 0) > 0]
    return CampaignPopulation({m: sorted_values(r[m] for r in delivered) for m in EFFICIENCY_WEIGHTS}, len(delivered))


def campaign_view(
    con: Con,
    campaign_id: str,
    period: Period,
    population: CampaignPopulation,
    ads_per_campaign: Mapping[str, int],
    campaigns: Mapping[str, Row] | None = None,
) -> JsonObject:
    """The campaign endpoint's answer: insights per day, totals, children counts and the efficiency score.

    `population` is `fetch_campaign_population` of the period, `ads_per_campaign` and `campaigns` the
    snapshot's `fetch_ads_per_campaign` and `fetch_campaign_rows` (the same for every campaign: callers
    cache them).
    """
    entity = _entity(con, "campaign", campaign_id, campaigns)
    insights = _insights(con, "campaign", campaign_id, period)
    totals = {m: float(insights["totals"][m] or 0) for m in ADDITIVE_METRICS}
    score = efficiency_score_among(totals, population.ratios) if totals["spend"] > 0 else None
    adsets = _children(con, "adset", "campaign", campaign_id, period)
    return {
        "campaign_id": campaign_id,
        "campaign_name": json_value(entity.get("name")),
        "status": _status(entity),
        "objective": json_value(entity.get("objective")),
        "account_id": json_value(entity.get("account_id")),
        "currency": json_value(entity.get("currency")),
        "daily_budget": json_value(entity.get("daily_budget")),
        "lifetime_budget": json_value(entity.get("lifetime_budget")),
        "date_range": date_range(period.since, period.until),
        "campaign_insights": insights,
        "adsets_count": len(adsets),
        "ads_count": ads_per_campaign.get(campaign_id, 0),
        "adsets": row_records(adsets, CHILD_COLUMNS),
        "performance_summary": {"efficiency_score": json_value(score), "campaigns_compared": population.count},
    }


def adset_view(con: Con, adset_id: str, period: Period) -> JsonObject:
    """The ad set endpoint's answer: its targeting, insights and its ads."""
    entity = _entity(con, "adset", adset_id)
    ads = _children(con, "ad", "adset", adset_id, period)
    return {
        "adset_id": adset_id,
        "adset_name": json_value(entity.get("name")),
        "status": _status(entity),
        "campaign_id": json_value(entity.get("campaign_id")),
        "campaign_name": json_value(entity.get("campaign_name")),
        "account_id": json_value(entity.get("account_id")),
        "currency": json_value(entity.get("currency")),
        "optimization_goal": json_value(entity.get("optimization_goal")),
        "billing_event": json_value(entity.get("billing_event")),
        "daily_budget": json_value(entity.get("daily_budget")),
        "targeting": {
            "age_min": json_value(entity.get("age_min")),
            "age_max": json_value(entity.get("age_max")),
            "genders": split_list(entity.get("genders")),
            "countries": split_list(entity.get("countries")),
            "placements": split_list(entity.get("placements")),
            "spec": parse_json_text(entity.get("targeting_json")),
        },
        "date_range": date_range(period.since, period.until),
        "adset_insights": _insights(con, "adset", adset_id, period),
        "ads_count": len(ads),
        "ads": row_records(ads, CHILD_COLUMNS),
    }


def ad_view(con: Con, ad_id: str, period: Period) -> JsonObject:
    """The ad endpoint's answer: insights and a comparison with the other ads of its ad set and of its campaign."""
    entity = _entity(con, "ad", ad_id)
    peers = fetch_rows(con, queries.ad_peers_query(str(entity["campaign_id"]), period.since, period.until))
    scopes = {"adset": [p for p in peers if p["adset_id"] == entity["adset_id"]], "campaign": peers}
    comparison: JsonObject = {}
    for scope, rows in scopes.items():
        comparison[scope] = {
            "peers_delivered": sum(1 for p in rows if p["ad_id"] != ad_id),
            "metrics": row_records(peer_comparison_rows(ad_id, rows), PEER_COLUMNS),
        }
    return {
        "ad_id": ad_id,
        "ad_name": json_value(entity.get("name")),
        "status": _status(entity),
        "adset_id": json_value(entity.get("adset_id")),
        "adset_name": json_value(entity.get("adset_name")),
        "campaign_id": json_value(entity.get("campaign_id")),
        "campaign_name": json_value(entity.get("campaign_name")),
        "creative_id": json_value(entity.get("creative_id")),
        "account_id": json_value(entity.get("account_id")),
        "currency": json_value(entity.get("currency")),
        "date_range": date_range(period.since, period.until),
        "ad_insights": _insights(con, "ad", ad_id, period),
        "peer_comparison": comparison,
    }


def find_entity_level(con: Con, entity_id: str) -> Level:
    """The level of a stored id (Meta ids are unique across object types); 404 when none has it."""
    for level in LEVELS:
        if queries.fetch_existing_ids(con, level, [entity_id]):
            return level
    raise NotFoundError(f"unknown entity id {entity_id} (no campaign, ad set or ad in the synced data)")


def recent_view(
    con: Con, entity_id: str, level: Level | None, period: Period, campaigns: Mapping[str, Row] | None = None
) -> JsonObject:
    """The recent-insights endpoint's answer: one entity's last stored days (`days_period`, as the Timeline page);
    `campaigns` as for `campaign_view`."""
    level = level or find_entity_level(con, entity_id)
    entity = _entity(con, level, entity_id, campaigns)
    days = (period.until - period.since).days + 1
    return {
        "entity_name": json_value(entity.get("name")),
        "days": days,
        "date_range": date_range(period.since, period.until),
        **_insights(con, level, entity_id, period),
    }


def breakdowns_view(
    con: Con, level: Level, entity_id: str, period: Period, families: tuple[BreakdownFamily, ...]
) -> JsonObject:
    """The breakdowns endpoint's answer: per family, each segment's sums over the period with ratios from
    them (as the pages' Breakdowns section), and reach per segment and day where the source reported it
    (never summed; none at levels rolled up from their children)."""
    entity = _entity(con, level, entity_id)
    if not breakdown_store.has_breakdowns_table(con):
        raise SnapshotUnavailableError("this snapshot predates breakdowns: they appear after the next sync")
    segments: JsonObject = {}
    daily_reach: JsonObject = {}
    for family in families:
        sums = breakdown_store.fetch_segment_sums(con, family, level, period.since, period.until, entity_id)
        segments[family] = frame_records(
            with_ratio_columns(sums), ("key_1", "key_2", *ADDITIVE_METRICS, "ctr", "cpc", "roas")
        )
        reach = breakdown_store.fetch_segment_daily_reach(con, family, level, entity_id, period.since, period.until)
        daily_reach[family] = frame_records(reach, ("date_start", "key_1", "key_2", "reach"))
    return {
        "entity_id": entity_id,
        "entity_type": level,
        "entity_name": json_value(entity.get("name")),
        "date_range": date_range(period.since, period.until),
        "breakdowns": segments,
        "daily_reach": daily_reach,
    }
