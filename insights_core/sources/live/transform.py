"""Pure transforms from Graph API JSON to the frames the store takes. No I/O, no SDK objects.

Meta sends every number as a string and leaves a field out when it has nothing to report. Each
value here either becomes a well-defined number (no `actions` list means no conversions; no
`reach` stays unknown, never 0) or its entity is reported as failed with the field, the value
and the day, so a malformed payload never turns into a silently wrong number.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd

from insights_core.errors import MalformedPayloadError
from insights_core.levels import INTEGER, LEVEL_SPECS, TIMESTAMP, Column, Level, LevelSpec
from insights_core.models import (
    BREAKDOWN_SOURCE_COLUMNS,
    INSIGHT_ID_COLUMNS,
    INSIGHT_SOURCE_COLUMNS,
    Account,
    BreakdownFamily,
    DateWindow,
)

ZERO_DECIMAL_CURRENCIES = frozenset({"CLP", "COP", "CRC", "HUF", "ISK", "IDR", "JPY", "KRW", "PYG", "TWD", "VND"})
"""Currencies whose budgets Meta gives in whole units (offset 1); all others are in cents (offset 100)."""
ACCOUNT_STATUSES = {
    1: "ACTIVE",
    2: "DISABLED",
    3: "UNSETTLED",
    7: "PENDING_RISK_REVIEW",
    8: "PENDING_SETTLEMENT",
    9: "IN_GRACE_PERIOD",
    100: "PENDING_CLOSURE",
    101: "CLOSED",
    201: "ANY_ACTIVE",
    202: "ANY_CLOSED",
}
BUDGET_COLUMNS = ("daily_budget", "lifetime_budget")
"""Entity columns Graph gives in the currency's minor unit (see `budget_amount`)."""
REQUIRED_COUNTS = ("impressions", "clicks")
OPTIONAL_COUNTS = ("reach", "unique_clicks")
CENT = Decimal("0.01")
BREAKDOWN_FIELDS: dict[BreakdownFamily, tuple[str, ...]] = {
    "age_gender": ("age", "gender"),
    "country": ("country",),
    "placement": ("publisher_platform", "platform_position"),
    "device_platform": ("device_platform",),
}
"""The Graph `breakdowns` of each family, in key order (key_1, key_2). Devices come from
`device_platform`: `impression_device` needs an opt-in since August 2026."""


class RowError(ValueError):
    """One field of one insights row is not a valid value; the message names field and value."""


@dataclass
class ParsedRows:
    """Insight rows of one report, the entities whose rows were malformed, and rows naming no entity."""

    rows: pd.DataFrame
    failures: dict[str, str] = field(default_factory=dict)
    unattributed: list[str] = field(default_factory=list)


def account_from_json(data: Mapping[str, Any], requested_id: str) -> Account:
    """The ad account's identity; its timezone decides which calendar day a row belongs to."""
    missing = [name for name in ("name", "currency", "timezone_name") if not isinstance(data.get(name), str)]
    if missing:
        raise MalformedPayloadError(f"ad account {requested_id}: Meta returned no {', '.join(missing)}")
    try:
        ZoneInfo(data["timezone_name"])
    except (ZoneInfoNotFoundError, ValueError):
        raise MalformedPayloadError(
            f"ad account {requested_id}: unknown timezone_name {data['timezone_name']!r}"
        ) from None
    status = data.get("account_status")
    return Account(
        account_id=requested_id,
        name=data["name"],
        currency=data["currency"],
        timezone_name=data["timezone_name"],
        account_status=ACCOUNT_STATUSES.get(status, str(status)) if status is not None else "UNKNOWN",
    )


def entity_frame(level: Level, records: Iterable[Mapping[str, Any]], account: Account) -> pd.DataFrame:
    """The level's entity table rows (`LevelSpec.columns`) from Graph objects; objects without an id are dropped."""
    spec = LEVEL_SPECS[level]
    return _entity_frame([entity_row(spec, r, account) for r in records if r.get("id")], spec.columns)


def entity_row(spec: LevelSpec, record: Mapping[str, Any], account: Account) -> dict[str, Any]:
    """One object's columns: Graph's value as is, unless the column needs reading (ids, budgets, times, targeting)."""
    row = {c.name: record.get(c.graph_field or c.name) for c in spec.columns}
    row[spec.id_column] = str(record["id"])
    row["account_id"] = account.account_id
    row["name"] = _name(record)
    row.update({name: _str(record.get(name)) for name in spec.parent_id_columns})
    row.update({name: budget_amount(record.get(name), account.currency) for name in BUDGET_COLUMNS if name in row})
    if "targeting" in spec.graph_fields:
        row.update(targeting_columns(record.get("targeting")))
    if "creative" in spec.graph_fields:
        creative = record.get("creative")
        row["creative_id"] = _str(creative.get("id")) if isinstance(creative, Mapping) else None
    # created, start and stop (an ad set's `end_time`) times; an absent stop time stays None (runs on)
    row.update(
        {c.name: parse_time(record.get(c.graph_field or c.name)) for c in spec.columns if c.sql_type == TIMESTAMP}
    )
    return row


def targeting_columns(targeting: Mapping[str, Any] | None) -> dict[str, Any]:
    """The ad set columns derived from Meta's `targeting` spec, plus the spec itself as JSON.

    Placements read `<platform>_<position>` (e.g. `instagram_story`) for platforms with explicit
    positions, the bare platform otherwise, and `automatic` when no platform is set (Advantage+).
    """
    if not isinstance(targeting, Mapping):
        return {
            "age_min": None,
            "age_max": None,
            "genders": None,
            "countries": None,
            "placements": None,
            "targeting_json": None,
        }
    genders = targeting.get("genders") or []
    gender = {(1,): "male", (2,): "female"}.get(tuple(sorted(set(genders))), "all")
    geo = targeting.get("geo_locations")
    countries = geo.get("countries") if isinstance(geo, Mapping) else None
    placements: list[str] = []
    for platform in targeting.get("publisher_platforms") or []:
        positions = targeting.get(f"{platform}_positions") or []
        if positions:
            placements.extend(f"{platform}_{position}" for position in positions)
        else:
            placements.append(platform)
    return {
        "age_min": _int_or_none(targeting.get("age_min")),
        "age_max": _int_or_none(targeting.get("age_max")),
        "genders": gender,
        "countries": ",".join(countries) if countries else None,
        "placements": ",".join(placements) if placements else "automatic",
        "targeting_json": json.dumps(targeting, sort_keys=True),
    }


def budget_amount(value: object, currency: str) -> float:
    """Budgets arrive in the currency's minor unit (cents, or whole yen): NaN when absent or unreadable."""
    try:
        amount = float(str(value))
    except (TypeError, ValueError):
        return math.nan
    if not math.isfinite(amount) or amount < 0:
        return math.nan
    return amount if currency.upper() in ZERO_DECIMAL_CURRENCIES else amount / 100


def parse_time(value: object) -> pd.Timestamp | None:
    """Meta's `2025-01-06T09:00:00+0000` as naive UTC (the store's TIMESTAMP convention)."""
    if not isinstance(value, str):
        return None
    try:
        moment = dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%S%z")
    except ValueError:
        return None
    return pd.Timestamp(moment.astimezone(dt.timezone.utc).replace(tzinfo=None))


def parse_number(value: object, name: str, *, whole: bool) -> Decimal:
    """A non-negative number from Meta's string (or JSON number); RowError names what is wrong."""
    if value is None:
        raise RowError(f"{name} is null")
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise RowError(f"{name} is {value!r}, not a number")
    try:
        number = Decimal(value.strip() if isinstance(value, str) else str(value))
    except InvalidOperation:
        raise RowError(f"{name} is {value!r}, not a number") from None
    if not number.is_finite():
        raise RowError(f"{name} is {value!r}, not a finite number")
    if number < 0:
        raise RowError(f"{name} is {value!r}, a negative number")
    if whole and number != number.to_integral_value():
        raise RowError(f"{name} is {value!r}, not a whole number")
    return number


def conversions_of(record: Mapping[str, Any], preference: Sequence[str]) -> tuple[Decimal, Decimal]:
    """(conversions, revenue) from the first preferred action type the row reports.

    Overlapping types (`omni_purchase`, `purchase`, the pixel purchase) count the same
    purchases, so they are never summed. Revenue comes from the same type in `action_values`.
    No `actions` at all means nothing happened (Meta omits the field); `actions: null`, an entry
    without a type, a type listed twice or an unreadable value of a counted type is an error.
    """
    actions = _action_map(record, "actions")
    values = _action_map(record, "action_values")
    chosen = next((t for t in preference if t in actions), None)
    if chosen is None:
        stray = next((t for t in preference if t in values), None)
        if stray is not None:
            raise RowError(f"action_values reports {stray} but actions has no conversion type")
        return Decimal(0), Decimal(0)
    conversions = parse_number(actions[chosen], f"actions[{chosen}]", whole=False)
    revenue = parse_number(values[chosen], f"action_values[{chosen}]", whole=False) if chosen in values else Decimal(0)
    return conversions, revenue


def insight_rows(
    records: Iterable[Mapping[str, Any]], level: Level, account_id: str, window: DateWindow, preference: Sequence[str]
) -> ParsedRows:
    """Daily rows of one level from a report's result pages.

    A malformed row is left out and its entity listed in `failures` with the day, the field and
    the value; the entity's well-formed days are kept, so the outcome does not depend on how the
    window was cut into reports (the engine keeps a failed entity's stored rows in the window, so
    the bad day keeps its last good value). Two rows for one entity and day are both left out:
    neither can be trusted. Rows that name no entity cannot be charged to anyone and are listed
    in `unattributed`, for the caller to fail the whole report.
    """

    def parse(record: Mapping[str, Any], entity_id: str) -> tuple[tuple[Any, ...], dict[str, Any]]:
        row = _parse_row(record, level, entity_id, account_id, window, preference)
        return (entity_id, row["date_start"]), row

    rows, failures, unattributed, _ = _collect_rows(records, level, parse)
    return ParsedRows(insight_frame(rows), failures, unattributed)


def breakdown_rows(
    records: Iterable[Mapping[str, Any]],
    level: Level,
    family: BreakdownFamily,
    account_id: str,
    window: DateWindow,
    preference: Sequence[str],
) -> ParsedRows:
    """Segment rows of one level and family from a breakdown report's result pages.

    Read and checked like `insight_rows` (the same numbers, days, ids and conversions), plus the
    family's breakdown fields, kept as Meta sends them ("unknown" included). Money is rounded to
    cents so the segments of an entity and day sum to the totals Meta sent. Reach stays NULL when
    Meta leaves it out (it does with breakdowns over 13 months back). The frame also carries
    `campaign_id`, for the caller to cut a report down to its campaigns. A malformed segment
    fails its entity and leaves out the entity's other segments of that day too, so no partial
    day (whose segments would not sum to the totals) is ever passed on.
    """

    def parse(record: Mapping[str, Any], entity_id: str) -> tuple[tuple[Any, ...], dict[str, Any]]:
        row = _parse_segment(record, level, family, entity_id, account_id, window, preference)
        return (entity_id, row["date_start"], row["key_1"], row["key_2"]), row

    rows, failures, unattributed, bad_days = _collect_rows(records, level, parse)
    # a day's segments only mean something together: one bad segment drops the entity's whole day
    whole_days = [r for r in rows if (r["entity_id"], r["date_start"].isoformat()) not in bad_days]
    return ParsedRows(breakdown_frame(whole_days), failures, unattributed)


def _collect_rows(
    records: Iterable[Mapping[str, Any]],
    level: Level,
    parse: Callable[[Mapping[str, Any], str], tuple[tuple[Any, ...], dict[str, Any]]],
) -> tuple[list[dict[str, Any]], dict[str, str], list[str], set[tuple[str, str]]]:
    """Rows parsed by `parse`, the entities with malformed or duplicated rows, rows naming no
    entity, and the (entity, day text) of every malformed or duplicated row."""
    parsed: dict[tuple[Any, ...], dict[str, Any]] = {}
    problems: dict[str, list[str]] = {}
    unattributed: list[str] = []
    duplicated: set[tuple[Any, ...]] = set()
    bad_days: set[tuple[str, str]] = set()
    id_field = f"{level}_id"
    for record in records:
        entity_id = _str(record.get(id_field)) if isinstance(record, Mapping) else None
        if not entity_id:
            unattributed.append(f"a row without {id_field} (date {_day_text(record)})")
            continue
        try:
            key, row = parse(record, entity_id)
        except RowError as exc:
            problems.setdefault(entity_id, []).append(f"malformed insights row for {_day_text(record)}: {exc}")
            bad_days.add((entity_id, _day_text(record)))
            continue
        if key in parsed or key in duplicated:
            parsed.pop(key, None)
            if key not in duplicated:
                what = " ".join(str(part) for part in key[2:] if part)
                problems.setdefault(entity_id, []).append(
                    f"Meta returned two rows for {row['date_start']}" + (f" ({what})" if what else "")
                )
            duplicated.add(key)
            bad_days.add((entity_id, row["date_start"].isoformat()))
            continue
        parsed[key] = row
    failures = {
        entity_id: reasons[0] + (f" (and {len(reasons) - 1} more malformed rows)" if len(reasons) > 1 else "")
        for entity_id, reasons in problems.items()
    }
    return list(parsed.values()), failures, unattributed, bad_days


def insight_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows in INSIGHT_SOURCE_COLUMNS with nullable types: an unknown reach stays NULL, never 0."""
    frame = pd.DataFrame(rows, columns=list(INSIGHT_SOURCE_COLUMNS))
    for column in ("date_start", "date_end"):
        frame[column] = pd.to_datetime(frame[column])
    for column in ("spend", "conversions", "revenue"):
        frame[column] = frame[column].astype("float64")
    for column in ("impressions", "clicks"):
        frame[column] = frame[column].astype("int64")
    for column in OPTIONAL_COUNTS:
        frame[column] = frame[column].astype("Int64")
    frame["frequency"] = frame["frequency"].astype("Float64")
    for column in INSIGHT_ID_COLUMNS:
        if not column.startswith("date_"):
            frame[column] = frame[column].astype("object")
    return frame


def breakdown_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows in BREAKDOWN_SOURCE_COLUMNS plus `campaign_id`, typed like `insight_frame` (reach nullable)."""
    frame = pd.DataFrame(rows, columns=[*BREAKDOWN_SOURCE_COLUMNS, "campaign_id"])
    frame["date_start"] = pd.to_datetime(frame["date_start"])
    for column in ("spend", "conversions", "revenue"):
        frame[column] = frame[column].astype("float64")
    for column in ("impressions", "clicks"):
        frame[column] = frame[column].astype("int64")
    frame["reach"] = frame["reach"].astype("Int64")
    for column in ("account_id", "entity_type", "entity_id", "breakdown", "key_1", "key_2", "campaign_id"):
        frame[column] = frame[column].astype("object")
    return frame


def _parse_row(
    record: Mapping[str, Any],
    level: Level,
    entity_id: str,
    account_id: str,
    window: DateWindow,
    preference: Sequence[str],
) -> dict[str, Any]:
    spec = LEVEL_SPECS[level]
    day, parents = _parse_day_and_parents(record, level, window)
    conversions, revenue = conversions_of(record, preference)
    spend = _required(record, "spend", whole=False)
    counts = {name: _required(record, name, whole=True) for name in REQUIRED_COUNTS}
    optional = {name: _optional(record, name, whole=True) for name in OPTIONAL_COUNTS}
    frequency = _optional(record, "frequency", whole=False)
    ids = {**parents, spec.id_column: entity_id}
    return {
        "account_id": account_id,
        "entity_type": level,
        "entity_id": entity_id,
        **{s.id_column: ids.get(s.id_column) for s in LEVEL_SPECS.values()},
        "date_start": day,
        "date_end": day,
        "spend": float(spend),
        "impressions": int(counts["impressions"]),
        "clicks": int(counts["clicks"]),
        "conversions": float(conversions),
        "revenue": float(revenue),
        "reach": None if optional["reach"] is None else int(optional["reach"]),
        "unique_clicks": None if optional["unique_clicks"] is None else int(optional["unique_clicks"]),
        "frequency": None if frequency is None else float(frequency),
    }


def _parse_segment(
    record: Mapping[str, Any],
    level: Level,
    family: BreakdownFamily,
    entity_id: str,
    account_id: str,
    window: DateWindow,
    preference: Sequence[str],
) -> dict[str, Any]:
    day, parents = _parse_day_and_parents(record, level, window)
    keys = [_breakdown_key(record, name) for name in BREAKDOWN_FIELDS[family]]
    conversions, revenue = conversions_of(record, preference)
    spend = _required(record, "spend", whole=False)
    counts = {name: _required(record, name, whole=True) for name in REQUIRED_COUNTS}
    reach = _optional(record, "reach", whole=True)
    return {
        "account_id": account_id,
        "entity_type": level,
        "entity_id": entity_id,
        "date_start": day,
        "breakdown": family,
        "key_1": keys[0],
        "key_2": keys[1] if len(keys) > 1 else "",
        "spend": _cents(spend),
        "impressions": int(counts["impressions"]),
        "clicks": int(counts["clicks"]),
        "conversions": float(conversions),
        "revenue": _cents(revenue),
        "reach": None if reach is None else int(reach),
        "campaign_id": parents.get("campaign_id", entity_id if level == "campaign" else None),
    }


def _parse_day_and_parents(
    record: Mapping[str, Any], level: Level, window: DateWindow
) -> tuple[dt.date, dict[str, str | None]]:
    day = _parse_day(record, "date_start")
    if _parse_day(record, "date_stop") != day:
        raise RowError(f"date_stop {record.get('date_stop')!r} differs from date_start (expected daily rows)")
    if not window.since <= day <= window.until:
        raise RowError(f"date {day} is outside the requested {window.since}..{window.until}")
    parents: dict[str, str | None] = {}
    for name in LEVEL_SPECS[level].parent_id_columns:
        parents[name] = _str(record.get(name))
        if not parents[name]:
            raise RowError(f"{name} is missing")
    return day, parents


def _breakdown_key(record: Mapping[str, Any], name: str) -> str:
    """A breakdown field as Meta sends it; "unknown" is a segment like any other, a missing one is an error."""
    value = record.get(name)
    if not isinstance(value, str) or not value:
        raise RowError(f"breakdown {name} is {'missing' if value is None else repr(value)}")
    return value


def _cents(amount: Decimal) -> float:
    """Money to the cent (half to even, as Meta rounds), so segments add up to the totals it sent."""
    return float(amount.quantize(CENT, rounding=ROUND_HALF_EVEN))


def _required(record: Mapping[str, Any], name: str, *, whole: bool) -> Decimal:
    if name not in record:
        raise RowError(f"{name} is missing")
    return parse_number(record[name], name, whole=whole)


def _optional(record: Mapping[str, Any], name: str, *, whole: bool) -> Decimal | None:
    """Reach, unique clicks, frequency: absent or null means not reported, stored as NULL (never 0)."""
    value = record.get(name)
    return None if value is None else parse_number(value, name, whole=whole)


def _action_map(record: Mapping[str, Any], name: str) -> dict[str, object]:
    if name not in record:
        return {}
    entries = record[name]
    if entries is None:
        raise RowError(f"{name} is null (Meta leaves the field out when there is nothing to report)")
    if not isinstance(entries, list):
        raise RowError(f"{name} is {entries!r}, not a list")
    found: dict[str, object] = {}
    for entry in entries:
        action_type = entry.get("action_type") if isinstance(entry, Mapping) else None
        if not isinstance(action_type, str) or not action_type:
            raise RowError(f"{name} has an entry without action_type: {entry!r}")
        if action_type in found:
            raise RowError(f"{name} lists {action_type} twice")
        found[action_type] = entry.get("value")
    return found


def _parse_day(record: Mapping[str, Any], name: str) -> dt.date:
    value = record.get(name)
    if not isinstance(value, str):
        raise RowError(f"{name} is {'missing' if value is None else repr(value)}")
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise RowError(f"{name} is {value!r}, not a date") from None


def _day_text(record: object) -> str:
    value = record.get("date_start") if isinstance(record, Mapping) else None
    return value if isinstance(value, str) else "an unknown day"


def _entity_frame(rows: list[dict[str, Any]], columns: tuple[Column, ...]) -> pd.DataFrame:
    """Rows typed by their columns: whole numbers stay nullable (an unknown age is not 0), times are datetimes."""
    frame = pd.DataFrame(rows, columns=[c.name for c in columns])
    for column in columns:
        if column.sql_type == INTEGER:
            frame[column.name] = frame[column.name].astype("Int64")
        elif column.sql_type == TIMESTAMP:
            frame[column.name] = pd.to_datetime(frame[column.name])
    return frame


def _name(record: Mapping[str, Any]) -> str:
    name = record.get("name")
    return name if isinstance(name, str) else ""


def _str(value: object) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (str, int)):
        return str(value) or None
    return None


def _int_or_none(value: object) -> int | None:
    if not isinstance(value, (str, int, float)):  # decoded JSON: null, a list or an object
        return None
    try:
        return int(value)
    except ValueError:
        return None
