"""The one validator of sync requests and of the ids and days typed anywhere.

The CLI, the Sync page, the control channel's reader and the dashboard's id and days boxes all go
through here, so they accept and refuse the same input with the same message. Every check raises
`InputError` with one line a person can act on; nothing is written before a request passes here.

Whether an id exists is not checked here: only the source knows (an entity created a minute ago is
not in the published snapshot yet). The worker checks the ids against the entities it has just
fetched, for the CLI and for queued requests alike (`insights_core.engine.check_entity_ids`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from insights_core.errors import InputError
from insights_core.levels import LEVELS, Level
from insights_core.models import SyncRequest, SyncType

MAX_ENTITY_IDS = 500
_ENTITY_ID = re.compile(r"[0-9]{1,32}")
_DAYS = re.compile(r"[0-9]{1,6}")
# ASCII digits only: `\d`, `int()` and `str.isdigit()` also take other scripts' digits ('١٢٣', '１２３'),
# which Meta ids never use and the store would not match


def parse_entity_ids(raw: str | Iterable[str] | None, what: str = "entity id") -> tuple[str, ...]:
    """Split `"1, 2,3"` (or a list) into distinct ids, in order; `what` names one id in the message.

    Meta object ids are the digits 0-9 only, so anything else (SQL, other scripts' digits) is refused.
    """
    if raw is None:
        return ()
    parts = raw.replace("\n", ",").split(",") if isinstance(raw, str) else list(raw)
    ids: list[str] = []
    for part in parts:
        value = str(part).strip()
        if not value:
            continue
        if not _ENTITY_ID.fullmatch(value):
            raise InputError(f"{what} {_shown(value)!r} is not a Meta object id (digits 0-9 only)")
        if value not in ids:
            ids.append(value)
    if len(ids) > MAX_ENTITY_IDS:
        raise InputError(f"at most {MAX_ENTITY_IDS} entity ids per sync, got {len(ids)}")
    return tuple(ids)


def parse_days_back(raw: object, max_days_back: int) -> int:
    """A whole number of days from 1 to `max_days_back` (INSIGHTS_MAX_DAYS_BACK), written with 0-9.

    Text and whole floats are taken (a text box, a link, a JSON number); booleans are not.
    """
    malformed = f"days back must be a whole number from 1 to {max_days_back} (digits 0-9), got {raw!r}"
    if isinstance(raw, bool) or raw is None:
        raise InputError(malformed)
    if isinstance(raw, float):
        if not raw.is_integer():
            raise InputError(malformed)
        raw = int(raw)
    text = str(raw).strip()
    if not _DAYS.fullmatch(text):
        raise InputError(malformed)
    days = int(text)
    if not 1 <= days <= max_days_back:
        raise InputError(f"days back must be from 1 to {max_days_back} (INSIGHTS_MAX_DAYS_BACK), got {days}")
    return days


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
    """Validate raw request fields into a SyncRequest, or raise InputError.

    An empty `days_back` means the scheduled window; an empty `entity_type` the whole account.
    """
    if sync_type not in ("scheduled", "manual"):
        raise InputError(f"sync type must be scheduled or manual, got {sync_type!r}")
    days = None if days_back is None or days_back == "" else parse_days_back(days_back, max_days_back)
    level = None if entity_type in ("", None) else parse_entity_type(entity_type)
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
        entity_type=level,
        entity_ids=ids,
        force=force,
        request_id=request_id,
        requested_by=requested_by,
    )


def parse_entity_type(raw: object) -> Level:
    """One of the levels (campaign, adset, ad)."""
    if raw not in LEVELS:
        raise InputError(f"entity type must be one of {', '.join(LEVELS)}, got {raw!r}")
    return raw


def request_params(request: SyncRequest) -> dict[str, Any]:
    """The fields that say what a request syncs, as JSON-ready values (the control channel stores these)."""
    return {
        "days_back": request.days_back,
        "entity_type": request.entity_type,
        "entity_ids": list(request.entity_ids),
        "force": request.force,
    }


def parse_stored_request(
    params: Mapping[str, Any], *, max_days_back: int, request_id: int, requested_by: str | None
) -> SyncRequest:
    """A queued request read back from the control channel, validated like at the door.

    The row may come from an older version or a hand edit, or INSIGHTS_MAX_DAYS_BACK may have been
    lowered since it was queued: such a request is refused here, not run.
    """
    unknown = set(params) - {"days_back", "entity_type", "entity_ids", "force"}
    if unknown:
        raise InputError(f"the stored request has unknown fields: {', '.join(sorted(unknown))}")
    return parse_sync_request(
        max_days_back=max_days_back, sync_type="manual", request_id=request_id, requested_by=requested_by, **params
    )


def _shown(value: str) -> str:
    return value if len(value) <= 40 else value[:37] + "..."
