"""Validation of sync requests from any door (CLI, Sync now page, control channel).

Every check raises `InputError` with one line a person can act on; nothing is written before a
request passes here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from insights_core.errors import InputError
from insights_core.models import LEVELS, SyncRequest, SyncType

MAX_ENTITY_IDS = 500
_ENTITY_ID = re.compile(r"[0-9]{1,32}")
"""ASCII digits only: `\\d` and `int()` also accept other scripts' digits ('١٢٣'), which Meta ids never use."""
_DAYS = re.compile(r"[0-9]{1,6}")


def parse_entity_ids(raw: str | Iterable[str] | None) -> tuple[str, ...]:
    """Split `"1, 2,3"` (or a list) into ids; Meta object ids are ASCII digits only, so anything else is refused."""
    if raw is None:
        return ()
    parts = raw.replace("\n", ",").split(",") if isinstance(raw, str) else list(raw)
    ids: list[str] = []
    for part in parts:
        value = str(part).strip()
        if not value:
            continue
        if not _ENTITY_ID.fullmatch(value):
            shown = value if len(value) <= 40 else value[:37] + "..."
            raise InputError(f"entity id {shown!r} is not a Meta object id (digits only)")
        if value not in ids:
            ids.append(value)
    if len(ids) > MAX_ENTITY_IDS:
        raise InputError(f"at most {MAX_ENTITY_IDS} entity ids per sync, got {len(ids)}")
    return tuple(ids)


def parse_sync_request(
    *,
    max_days_back: int,
    sync_type: SyncType = "manual",
    days_back: object = None,
    entity_type: object = None,
    entity_ids: str | Iterable[str] | None = None,
    force: object = False,
    request_id: int | None = None,
    requested_by: str | None = None,
) -> SyncRequest:
    """Validate raw request fields into a SyncRequest, or raise InputError."""
    if sync_type not in ("scheduled", "manual"):
        raise InputError(f"sync type must be scheduled or manual, got {sync_type!r}")
    days = _parse_days_back(days_back, max_days_back)
    if entity_type in ("", None):
        level = None
    elif entity_type in LEVELS:
        level = entity_type
    else:
        raise InputError(f"entity type must be one of {', '.join(LEVELS)}, got {entity_type!r}")
    ids = parse_entity_ids(entity_ids)
    if ids and level is None:
        raise InputError("entity ids need an entity type (campaign, adset or ad)")
    if level is not None and not ids:
        raise InputError(f"entity type {level} needs at least one entity id")
    if not isinstance(force, bool):
        raise InputError(f"force must be true or false, got {force!r}")
    return SyncRequest(
        sync_type=sync_type,
        days_back=days,
        entity_type=level,  # type: ignore[arg-type]
        entity_ids=ids,
        force=force,
        request_id=request_id,
        requested_by=requested_by,
    )


def _parse_days_back(value: object, max_days_back: int) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise InputError(f"days back must be a whole number from 1 to {max_days_back}, got {value!r}")
    text = str(value).strip()
    if not _DAYS.fullmatch(text):
        raise InputError(f"days back must be a whole number from 1 to {max_days_back}, got {value!r}")
    days = int(text)
    if not 1 <= days <= max_days_back:
        raise InputError(f"days back must be from 1 to {max_days_back} (INSIGHTS_MAX_DAYS_BACK), got {days}")
    return days
