"""JSON shapes of the API's answers, from the rows (dicts) the API reads, or a frame (breakdowns). Pure.

Values keep their stored precision (no rounding: a client summing them gets the store's sums);
a ratio without a denominator is `null`, as the pages show "—"; dates are ISO strings.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from insights_core.dashboard.alerts import Alert
from insights_core.metrics import ratios_from_totals
from insights_core.models import ADDITIVE_METRICS

JsonValue = Any
"""Anything `json.dumps` takes: None, bool, int, float, str, lists and str-keyed dicts of them."""
JsonObject = dict[str, JsonValue]

RATIO_NAMES = ("ctr", "cpc", "cpm", "roas", "cost_per_conversion", "conversion_rate")
DAILY_COLUMNS = ("date", *ADDITIVE_METRICS, "reach", "unique_clicks", "frequency", *RATIO_NAMES)
INTEGER_METRICS = frozenset({"impressions", "clicks", "reach", "unique_clicks"})
CENT = decimal.Decimal("0.01")
"""The store keeps spend, conversions and revenue as DECIMAL(18,2)."""


def json_value(value: object) -> JsonValue:
    """A scalar from pandas, numpy or DuckDB as plain JSON: NaN, NaT and pd.NA become null."""
    # the types DuckDB rows hold first: this runs for every value of every answer
    kind = type(value)
    if kind is str:
        return value
    if kind is float:
        return None if math.isnan(value) or math.isinf(value) else value  # type: ignore[arg-type]
    if kind is int:
        return value
    if value is None or value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating, decimal.Decimal)):
        number = float(value)
        return None if math.isnan(number) or math.isinf(number) else number
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    return str(value)


def frame_records(frame: pd.DataFrame, columns: Iterable[str]) -> list[JsonObject]:
    """Rows of `frame` as dicts of the given columns (missing columns are left out)."""
    present = [c for c in columns if c in frame.columns]
    return [{c: json_value(v) for c, v in zip(present, row)} for row in frame[present].itertuples(index=False)]


def metric_block(totals: Mapping[str, float]) -> JsonObject:
    """Additive sums and every ratio computed from them (never an average of daily ratios)."""
    block: JsonObject = {
        m: (int(totals[m]) if m in INTEGER_METRICS else json_value(totals[m])) for m in ADDITIVE_METRICS
    }
    block.update({name: json_value(value) for name, value in ratios_from_totals(totals).items()})
    return block


def row_records(rows: Iterable[Mapping[str, object]], columns: Iterable[str]) -> list[JsonObject]:
    """Rows as dicts of the given columns (columns a row lacks are left out), as `frame_records` does for frames."""
    wanted = tuple(columns)
    return [{c: json_value(row[c]) for c in wanted if c in row} for row in rows]


def totals_of_days(daily: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """The sums of one entity's days, equal to the store's `sum(...)::DOUBLE` over the same rows.

    The days carry money as DOUBLE; each is the nearest double to a value in whole cents, so the
    exact sum of the doubles (Decimal) rounded to the cent is the store's DECIMAL sum, and float()
    rounds it to the nearest double as DuckDB's cast does. Saves a second scan for the totals.
    """
    days = list(daily)
    totals: dict[str, float] = {}
    for metric in ADDITIVE_METRICS:
        if metric in INTEGER_METRICS:
            totals[metric] = float(sum(int(day[metric]) for day in days))
        else:
            exact = sum((decimal.Decimal(day[metric]) for day in days), decimal.Decimal(0))
            totals[metric] = float(exact.quantize(CENT))
    return totals


def with_ratios(row: Mapping[str, object]) -> dict[str, object]:
    """One row of sums with every ratio computed from them (`metrics.ratios_from_totals`)."""
    return {**row, **ratios_from_totals(row)}  # type: ignore[arg-type]  # sums are numbers or None


def daily_records(daily: Iterable[Mapping[str, object]]) -> list[JsonObject]:
    """One entity's days with each day's ratios, oldest first; days as YYYY-MM-DD."""
    return row_records((with_ratios(day) for day in daily), DAILY_COLUMNS)


def insights_block(
    level: str, entity_id: str, totals: Mapping[str, float], daily: Iterable[Mapping[str, object]]
) -> JsonObject:
    """The `*_insights` object of the original README: days, total spend and ROAS over the period (revenue / spend)."""
    metrics = metric_block(totals)
    return {
        "entity_id": entity_id,
        "entity_type": level,
        "insights": daily_records(daily),
        "total_spend": metrics["spend"],
        "avg_roas": metrics["roas"],
        "totals": metrics,
    }


def date_range(since: dt.date, until: dt.date) -> JsonObject:
    return {"start": since.isoformat(), "end": until.isoformat()}


def alert_record(alert: Alert) -> JsonObject:
    return {"severity": alert.severity, "code": alert.code, "message": alert.message, "campaign_id": alert.campaign_id}


def sync_run_record(run: Mapping[str, object]) -> JsonObject:
    """A `sync_runs` row in the sync report's shape (counts per level), without the raw report text."""
    out: JsonObject = {
        key: json_value(run.get(key))
        for key in (
            "sync_id",
            "sync_timestamp",
            "sync_type",
            "mode",
            "status",
            "success",
            "since",
            "until",
            "total_duration_seconds",
            "rows_written",
            "rate_limit_hits",
            "error_count",
        )
    }
    for plural in ("campaigns", "adsets", "ads"):
        out[plural] = {part: json_value(run.get(f"{plural}_{part}")) for part in ("processed", "success", "errors")}
    return out


def parse_json_text(text: object) -> JsonValue:
    """A JSON document stored as text (e.g. an ad set's targeting spec), or the text itself when it is not JSON."""
    if not isinstance(text, str) or not text:
        return None
    try:
        value: JsonValue = json.loads(text)
    except ValueError:
        return text
    return value


def split_list(text: object) -> list[str]:
    """A stored comma-separated list ('US,CA') as a JSON list."""
    return [part for part in str(text).split(",") if part] if isinstance(text, str) else []
