"""Fault switches of the emulator: what goes wrong, where, and how often.

Everything is deterministic (every n-th matching request, the first n report runs, named rows),
so a test knows exactly which entities must end up failed and which must equal the truth.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal

from insights_core.levels import Level

RequestKind = Literal[
    "account",
    "entities",
    "report_start",
    "report_status",
    "report_page",
    "entity_insights",
    "entity_edge",
    "node",
    "unknown",
]

PURCHASE_TYPES = ("omni_purchase", "purchase", "offsite_conversion.fb_pixel_purchase")
MALFORMATIONS: dict[str, str] = {
    "spend_text": "spend is '12,50 USD'",
    "missing_spend": "spend is left out",
    "null_clicks": "clicks is null",
    "negative_impressions": "impressions is negative",
    "null_actions": "actions is null",
    "bad_purchase_value": "a purchase count is 'n/a'",
    "actions_without_type": "an actions entry has no action_type",
    "unknown_action_types": "actions and action_values carry types nobody asked for",
    "numbers_as_json": "numbers arrive as JSON numbers instead of strings",
    "missing_reach": "reach and frequency are left out",
}
HARMLESS_MALFORMATIONS = frozenset({"unknown_action_types", "numbers_as_json", "missing_reach"})
"""Well-defined payloads a correct client must read as the truth (reach unknown for missing_reach)."""
BREAKDOWN_MALFORMATIONS: dict[str, str] = {
    "missing_breakdown_key": "the first breakdown field is left out",
    "breakdown_key_not_text": "the first breakdown field is a JSON object",
}
"""Malformations of breakdown rows only (totals rows carry no breakdown field and are left as they are)."""


@dataclass
class FaultRule:
    """Answer every `every`-th request of `endpoint` (all when None) with an error, at most `limit` times."""

    kind: Literal["throttle", "transient"]
    every: int = 1
    limit: int | None = None
    endpoint: RequestKind | None = None
    code: int = 80000
    subcode: int | None = 2446079
    regain_minutes: float = 0
    http_status: int = 400
    seen: int = 0
    hits: int = 0

    def fires(self, kind: RequestKind) -> bool:
        """Count a request and say whether this rule answers it (call under the emulator's lock)."""
        if self.endpoint is not None and kind != self.endpoint:
            return False
        self.seen += 1
        if self.seen % self.every or (self.limit is not None and self.hits >= self.limit):
            return False
        self.hits += 1
        return True


@dataclass(frozen=True)
class Malformation:
    """Corrupt the row of one entity on one day, in every report that returns it."""

    level: Level
    entity_id: str
    date: dt.date
    kind: str

    def __post_init__(self) -> None:
        if self.kind not in MALFORMATIONS and self.kind not in BREAKDOWN_MALFORMATIONS:
            known = ", ".join([*MALFORMATIONS, *BREAKDOWN_MALFORMATIONS])
            raise ValueError(f"unknown malformation {self.kind!r}; choose from {known}")


@dataclass
class Faults:
    rules: list[FaultRule] = field(default_factory=list)
    bad_token: bool = False
    """Every request answers code 190 (the message echoes the token, to prove clients redact it)."""
    missing_permission: bool = False
    usage_pct: float = 3.0
    """Utilisation reported in the usage headers of every answer."""
    job_failed_first: int = 0
    """The first n report runs end in "Job Failed"."""
    job_skipped_first: int = 0
    """The n report runs after those end in "Job Skipped"."""
    fail_over_days: int = 0
    """Report runs over more days than this end in "Job Failed" (0: off)."""
    too_large_over_days: int = 0
    """Report runs over more days than this are refused with error 100/1487534 (0: off)."""
    failing_campaigns: frozenset[str] = frozenset()
    """Report runs covering any of these campaigns always end in "Job Failed"."""
    malformed: list[Malformation] = field(default_factory=list)
    refused_breakdowns: frozenset[str] = frozenset()
    """Breakdown fields Meta refuses in any combination (code 100, subcode 1504041), as when it retires one."""


def malform(row: dict, kind: str, breakdown_fields: tuple[str, ...] = ()) -> None:
    """Apply one malformation to a rendered insights row, in place."""
    if kind in BREAKDOWN_MALFORMATIONS and not breakdown_fields:
        return
    if kind == "missing_breakdown_key":
        row.pop(breakdown_fields[0], None)
    elif kind == "breakdown_key_not_text":
        row[breakdown_fields[0]] = {"name": row.get(breakdown_fields[0])}
    elif kind == "spend_text":
        row["spend"] = "12,50 USD"
    elif kind == "missing_spend":
        row.pop("spend", None)
    elif kind == "null_clicks":
        row["clicks"] = None
    elif kind == "negative_impressions":
        row["impressions"] = f"-{row.get('impressions', '1')}"
    elif kind == "null_actions":
        row["actions"] = None
    elif kind == "bad_purchase_value":
        actions = row.setdefault("actions", [])
        purchases = [a for a in actions if a["action_type"] in PURCHASE_TYPES]
        if not purchases:
            actions.append({"action_type": PURCHASE_TYPES[0]})
            purchases = actions[-1:]
        for entry in purchases:
            entry["value"] = "n/a"
    elif kind == "actions_without_type":
        row.setdefault("actions", []).append({"value": "3"})
    elif kind == "unknown_action_types":
        row.setdefault("actions", []).extend(
            [
                {"action_type": "offsite_conversion.custom.987654321", "value": "41"},
                {"action_type": "onsite_conversion.flow_complete_v9", "value": "5"},
            ]
        )
        row.setdefault("action_values", []).append(
            {"action_type": "offsite_conversion.custom.987654321", "value": "999.99"}
        )
    elif kind == "numbers_as_json":
        for name in ("spend", "frequency", "ctr", "cpc", "cpm"):
            if isinstance(row.get(name), str):
                row[name] = float(row[name])
        for name in ("impressions", "clicks", "reach", "unique_clicks"):
            if isinstance(row.get(name), str):
                row[name] = int(row[name])
    elif kind == "missing_reach":
        row.pop("reach", None)
        row.pop("frequency", None)
