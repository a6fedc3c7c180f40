"""Validation of what a client puts in a URL or a JSON body: one `InputError` line (a 400), never a 500.

Ids, days and entity types reuse the one validator the pages, the CLI and the control channel use
(`sync_requests`, through `dashboard.inputs` for ids), so they all accept exactly the same values.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from typing import Any

from insights_core.errors import InputError
from insights_core.levels import Level
from insights_core.models import BREAKDOWN_FAMILIES, BreakdownFamily
from insights_core.sync_requests import parse_days_back, parse_entity_type

EARLIEST_DATE = dt.date(2000, 1, 1)
LATEST_DATE = dt.date(2099, 12, 31)
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_ACCOUNT = re.compile(r"(?:act_)?([0-9]{1,32})")
_REQUEST_ID = re.compile(r"[0-9]{1,18}")
SYNC_FIELDS = frozenset({"days_back", "force", "entity_ids", "entity_type"})


def parse_date(raw: str | None, name: str) -> dt.date | None:
    """A `YYYY-MM-DD` day from 2000 to 2099, or None when the parameter is absent."""
    if raw is None or raw == "":
        return None
    if not _DATE.fullmatch(raw):
        raise InputError(f"{name} must be a date as YYYY-MM-DD, got {_shown(raw)}")
    try:
        day = dt.date.fromisoformat(raw)
    except ValueError:
        raise InputError(f"{name} is not a calendar date: {_shown(raw)}") from None
    if not EARLIEST_DATE <= day <= LATEST_DATE:
        raise InputError(f"{name} must be from {EARLIEST_DATE} to {LATEST_DATE}, got {raw}")
    return day


def parse_account_id(raw: str | None) -> str | None:
    """An ad account id (`act_` and digits; bare digits get the prefix), or None for every account."""
    if raw is None or raw == "":
        return None
    match = _ACCOUNT.fullmatch(raw.strip())
    if not match:
        raise InputError(f"account_id must be act_ followed by digits, got {_shown(raw)}")
    return f"act_{match.group(1)}"


def parse_days_param(raw: str | None, max_days_back: int, default: int = 30) -> int:
    """As the Timeline page: 1 to INSIGHTS_MAX_DAYS_BACK days back; `default` when absent."""
    return default if raw is None else parse_days_back(raw, max_days_back)


def parse_choice(raw: str | None, name: str, choices: tuple[str, ...], default: str) -> str:
    if raw is None:
        return default
    if raw not in choices:
        raise InputError(f"{name} must be one of {', '.join(choices)}, got {_shown(raw)}")
    return raw


def parse_count(raw: str | None, name: str, low: int, high: int, default: int) -> int:
    if raw is None:
        return default
    if not re.fullmatch(r"[0-9]{1,6}", raw) or not low <= int(raw) <= high:
        raise InputError(f"{name} must be a whole number from {low} to {high}, got {_shown(raw)}")
    return int(raw)


def parse_level_param(raw: str | None) -> Level | None:
    return None if raw is None or raw == "" else parse_entity_type(raw)


def parse_family(raw: str) -> BreakdownFamily:
    """One breakdown family (age_gender, country, placement, device_platform)."""
    for family in BREAKDOWN_FAMILIES:
        if raw == family:
            return family
    raise InputError(f"family must be one of {', '.join(BREAKDOWN_FAMILIES)}, got {_shown(raw)}")


def parse_request_id(raw: str) -> int:
    if not _REQUEST_ID.fullmatch(raw) or int(raw) < 1:
        raise InputError(f"a sync request id is a positive whole number, got {_shown(raw)}")
    return int(raw)


def parse_sync_body(body: bytes) -> dict[str, Any]:
    """The sync-now JSON body as keyword arguments for `parse_sync_request`; an empty body is {} (defaults)."""
    if not body.strip():
        return {}
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise InputError('the body must be a JSON object such as {"days_back": 7}') from None
    if not isinstance(data, Mapping):
        raise InputError('the body must be a JSON object such as {"days_back": 7}')
    unknown = sorted(set(data) - SYNC_FIELDS)
    if unknown:
        raise InputError(
            f"unknown field{'s' if len(unknown) > 1 else ''} {', '.join(map(_shown, unknown))}; "
            f"known: {', '.join(sorted(SYNC_FIELDS))}"
        )
    fields = dict(data)
    ids = fields.get("entity_ids")
    if ids is not None and not isinstance(ids, (str, list)):
        raise InputError("entity_ids must be a list of ids or a comma-separated string")
    if isinstance(ids, list) and any(not isinstance(i, (str, int)) or isinstance(i, bool) for i in ids):
        raise InputError("entity_ids must hold ids (strings of digits)")
    if fields.get("force") is None:
        fields["force"] = False
    return fields


def _shown(raw: object) -> str:
    text = str(raw)
    return repr(text if len(text) <= 40 else text[:37] + "...")
