"""What each read endpoint answers: the pages' queries and pure functions, shaped as the original README's JSON.

Every figure comes from the same code the pages use: sums from `store.queries`, ratios from
`metrics`, efficiency score and peer comparison from `dashboard.scoring`, alerts from
`dashboard.alerts`, periods from `dashboard.periods`. The callers validate the inputs first.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import duckdb
import pandas as pd

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
    split_list,
    sync_run_record,
)
from insights_core.dashboard.alerts import performance_alerts, period_change, sync_alerts
from insights_core.dashboard.periods import account_today, days_back_range, default_period, previous_period
from insights_core.dashboard.scoring import efficiency_score, efficiency_scores, peer_comparison
from insights_core.errors import NotFoundError, SnapshotUnavailableError
from insights_core.levels import LEVEL_LABELS, LEVELS, Level
from insights_core.metrics import with_ratio_columns
from insights_core.models import ADDITIVE_METRICS, BreakdownFamily
from insights_core.store import breakdowns as breakdown_store
from insights_core.store import queries

Con = duckdb.DuckDBPyConnection
SortBy = Literal["spend", "roas"]
CHILD_COLUMNS = ("entity_id", "name", "status", "effective_status", *ADDITIVE_METRICS, "ctr", "cpc", "roas")
TOP_COLUMNS = (
    "campaign_id",
    "name",
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


@dataclass(frozen=True)
class Period:
    since: dt.date
    until: dt.date


def fetch_stored_days(con: Con) -> tuple[dt.date, dt.date, queries.DataBounds]:
    """(first, last stored day, bounds); no insights yet is 'unavailable', as the pages say."""
    bounds = queries.fetch_data_bounds(con)
    if bounds.first_day is None or bounds.last_day is None:
        raise SnapshotUnavailableError("the last sync stored no insights yet: run a sync")
    return bounds.first_day, bounds.last_day, bounds


def overview_period(con: Con, since: dt.date | None, until: dt.date | None) -> Period:
    """The requested period; missing ends default to the dashboard's default period (the last 30 complete
    days, ending yesterday in the account's time zone; the last 30 stored days when the store ends earlier)."""
    first, last, bounds = fetch_stored_days(con)
    default = default_period(account_today(bounds, None), first, last)
    return Period(since or default.since, until or (last if since else default.until))


def days_period(con: Con, days: int) -> Period:
    """`days` days through the last stored day, like the Timeline page and the worker's --days-back."""
    _, last, _ = fetch_stored_days(con)
    since, until = days_back_range(last, days)
    return Period(since, until)


def check_account(con: Con, account_id: str | None) -> None:
    if account_id is None:
        return
    _, _, bounds = fetch_stored_days(con)
    if account_id not in set(bounds.accounts["account_id"].astype(str)):
        raise NotFoundError(f"unknown ad account {account_id}")


def overview_view(
    con: Con, period: Period, account_id: str | None, now: dt.datetime, top: int = 10, sort_by: SortBy = "spend"
) -> JsonObject:
    """The overview endpoint's answer: counts, global metrics, top campaigns, last sync, alerts (as the Overview
    page)."""
    since, until = period.since, period.until
    prev_since, prev_until = previous_period(since, until)
    total, active = queries.fetch_campaign_counts(con, account_id)
    totals, previous = queries.fetch_period_totals(con, since, until, prev_since, prev_until, account_id)
    summary = queries.fetch_campaign_summary(con, since, until, prev_since, prev_until, account_id)
    runs = queries.fetch_sync_runs(con)
    campaigns = with_ratio_columns(summary)
    campaigns["roas_change"] = period_change(summary, "roas")["change"]
    delivered = campaigns[campaigns["spend"] > 0].copy()
    delivered["efficiency_score"] = efficiency_scores(delivered)
    ranked = delivered.sort_values(sort_by, ascending=False, na_position="last", kind="stable").head(top)
    alerts = sync_alerts(runs, now) + performance_alerts(summary)
    return {
        "timestamp": now.astimezone(dt.timezone.utc).isoformat(timespec="seconds"),
        "date_range": date_range(since, until),
        "account_id": account_id,
        "total_campaigns": total,
        "active_campaigns": active,
        "global_metrics": metric_block(totals),
        "previous_period": {"date_range": date_range(prev_since, prev_until), "global_metrics": metric_block(previous)},
        "top_campaigns": frame_records(
            ranked.rename(columns={"name": "campaign_name"}),
            [("campaign_name" if c == "name" else c) for c in TOP_COLUMNS],
        ),
        "last_sync": sync_run_record({str(k): v for k, v in runs.iloc[0].items()}) if not runs.empty else None,
        "alerts": [alert_record(a) for a in alerts],
    }


def _entity(con: Con, level: Level, entity_id: str) -> dict[str, object]:
    entity = queries.fetch_entity(con, level, entity_id)
    if entity is None:
        raise NotFoundError(f"unknown {LEVEL_LABELS[level]} id {entity_id} (not in the synced data)")
    return entity


def _insights(con: Con, level: Level, entity_id: str, period: Period) -> JsonObject:
    totals = queries.fetch_entity_totals(con, level, entity_id, period.since, period.until)
    daily = queries.fetch_entity_daily(con, level, entity_id, period.since, period.until)
    return insights_block(level, entity_id, totals, daily)


def _status(entity: dict[str, object]) -> JsonValue:
    return json_value(entity.get("effective_status") or entity.get("status"))


def _children(con: Con, child: Level, level: Level, entity_id: str, period: Period) -> pd.DataFrame:
    return with_ratio_columns(queries.fetch_children(con, child, level, entity_id, period.since, period.until))


def fetch_delivered_campaigns(con: Con, period: Period) -> pd.DataFrame:
    """Every campaign that spent in the period, with its sums: the population of the efficiency score."""
    prev_since, prev_until = previous_period(period.since, period.until)
    summary = queries.fetch_campaign_summary(con, period.since, period.until, prev_since, prev_until, None)
    return summary[summary["spend"] > 0]


def campaign_view(
    con: Con, campaign_id: str, period: Period, delivered_campaigns: Callable[[], pd.DataFrame] | None = None
) -> JsonObject:
    """The campaign endpoint's answer: insights per day, totals, children counts and the efficiency score.

    `delivered_campaigns` may supply `fetch_delivered_campaigns` from a cache: it is the same for
    every campaign of the period.
    """
    entity = _entity(con, "campaign", campaign_id)
    insights = _insights(con, "campaign", campaign_id, period)
    delivered = delivered_campaigns() if delivered_campaigns else fetch_delivered_campaigns(con, period)
    totals = {m: float(insights["totals"][m] or 0) for m in ADDITIVE_METRICS}
    score = efficiency_score(totals, delivered) if totals["spend"] > 0 else None
    adsets = _children(con, "adset", "campaign", campaign_id, period)
    ads = _children(con, "ad", "campaign", campaign_id, period)
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
        "ads_count": len(ads),
        "adsets": frame_records(adsets, CHILD_COLUMNS),
        "performance_summary": {"efficiency_score": json_value(score), "campaigns_compared": len(delivered)},
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
        "ads": frame_records(ads, CHILD_COLUMNS),
    }


def ad_view(con: Con, ad_id: str, period: Period) -> JsonObject:
    """The ad endpoint's answer: insights and a comparison with the other ads of its ad set and of its campaign."""
    entity = _entity(con, "ad", ad_id)
    peers = queries.fetch_ad_peers(con, str(entity["campaign_id"]), period.since, period.until)
    scopes = {"adset": peers[peers["adset_id"] == entity["adset_id"]], "campaign": peers}
    comparison: JsonObject = {}
    for scope, frame in scopes.items():
        comparison[scope] = {
            "peers_delivered": int((frame["ad_id"] != ad_id).sum()),
            "metrics": frame_records(
                peer_comparison(ad_id, frame),
                (
                    "metric",
                    "value",
                    "peer_median",
                    "difference",
                    "difference_pct",
                    "percentile",
                    "better_than_pct",
                    "peers",
                ),
            ),
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


def recent_view(con: Con, entity_id: str, level: Level | None, period: Period) -> JsonObject:
    """The recent-insights endpoint's answer: one entity's last stored days (`days_period`, as the Timeline page)."""
    level = level or find_entity_level(con, entity_id)
    entity = _entity(con, level, entity_id)
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
