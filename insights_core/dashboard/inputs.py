"""What people type into an entity id box: one clear `InputError` line, before any query runs.

The checks themselves are `insights_core.sync_requests`' (the one validator of ids, days back and
entity types); this adds the messages of a box that wants exactly one id.
"""

from __future__ import annotations

from insights_core.errors import InputError
from insights_core.levels import LEVEL_LABELS
from insights_core.sync_requests import parse_entity_ids


def parse_entity_id(raw: object, level: str = "campaign") -> str:
    """One Meta object id (digits 0-9 only); anything else, SQL included, is refused with a message."""
    label = LEVEL_LABELS.get(level, level)  # type: ignore[call-overload]
    text = "" if raw is None else str(raw).strip()
    if not text:
        raise InputError(f"enter the {label} id")
    ids = parse_entity_ids(text, what=f"{label} id")
    if len(ids) != 1:
        raise InputError(f"enter one {label} id, got {len(ids)}")
    return ids[0]
