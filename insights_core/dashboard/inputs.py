"""Validation of what people type into page boxes: one clear `InputError` line, before any query runs."""

from __future__ import annotations

from insights_core.errors import InputError
from insights_core.levels import LEVEL_LABELS
from insights_core.models import LEVELS, Level
from insights_core.sync_requests import parse_entity_ids


def parse_level(raw: object) -> Level:
    if raw not in LEVELS:
        raise InputError(f"entity type must be one of {', '.join(LEVELS)}, got {raw!r}")
    return raw  # type: ignore[return-value]


def refuse_other_digits(raw: object, what: str) -> str:
    """`raw` as text, refused if it has digits other than ASCII 0-9.

    Python's `int()` and regex `\\d` take any script's digits ("١٢٣", "１２３"), so they would pass as
    numbers here while Meta and the store know only 0-9.
    """
    text = "" if raw is None else str(raw)
    if any(ch.isdigit() and not ch.isascii() for ch in text):
        shown = text.strip() if len(text.strip()) <= 40 else text.strip()[:37] + "..."
        raise InputError(f"{what} must be written with the digits 0-9, got {shown!r}")
    return text


def parse_entity_id(raw: object, level: str = "campaign") -> str:
    """One Meta object id (digits only); anything else, SQL included, is refused with a message."""
    text = refuse_other_digits(raw, f"the {LEVEL_LABELS.get(level, level)} id").strip()
    if not text:
        raise InputError(f"enter the {LEVEL_LABELS.get(level, level)} id")
    ids = parse_entity_ids(text)
    if len(ids) != 1:
        raise InputError(f"enter one {LEVEL_LABELS.get(level, level)} id, got {len(ids)}")
    return ids[0]


def parse_days(raw: object, low: int = 1, high: int = 365) -> int:
    """A whole number of days from `low` to `high`."""
    message = f"days back must be a whole number from {low} to {high}, got {raw!r}"
    refuse_other_digits(raw, "days back")
    if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
        raise InputError(message)
    try:
        days = int(raw) if isinstance(raw, float) else int(str(raw).strip())
    except ValueError:
        raise InputError(message) from None
    if not low <= days <= high:
        raise InputError(f"days back must be from {low} to {high}, got {days}")
    return days
