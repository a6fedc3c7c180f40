"""Plain data shapes shared by sources, the sync engine, the store and the pages."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import pandas as pd

from insights_core.levels import LEVEL_PLURAL, LEVEL_SPECS, Level

SyncType = Literal["scheduled", "manual"]

INSIGHT_ID_COLUMNS = (
    "account_id",
    "entity_type",
    "entity_id",
    *(s.id_column for s in LEVEL_SPECS.values()),
    "date_start",
    "date_end",
)
ADDITIVE_METRICS = ("spend", "impressions", "clicks", "conversions", "revenue")
"""Metrics whose campaign value equals the sum of its ad sets' and of its ads'."""
NON_ADDITIVE_METRICS = ("reach", "unique_clicks", "frequency")
"""Reported per entity and day; summing them across days or children overstates them."""
INSIGHT_SOURCE_COLUMNS = INSIGHT_ID_COLUMNS + ADDITIVE_METRICS + NON_ADDITIVE_METRICS
"""The columns a source yields in every `InsightBatch.rows` frame (ratios are derived later)."""


@dataclass(frozen=True)
class Account:
    account_id: str
    name: str
    currency: str
    timezone_name: str
    account_status: str = "ACTIVE"

    def today(self, now: dt.datetime) -> dt.date:
        """The account's calendar day at `now` (an aware datetime): Meta's days are account days."""
        from zoneinfo import ZoneInfo

        return now.astimezone(ZoneInfo(self.timezone_name)).date()


@dataclass(frozen=True)
class DateWindow:
    """Inclusive on both ends, like Meta's `time_range`."""

    since: dt.date
    until: dt.date

    def __post_init__(self) -> None:
        if self.since > self.until:
            raise ValueError(f"window starts {self.since} after it ends {self.until}")

    @property
    def days(self) -> int:
        return (self.until - self.since).days + 1

    def dates(self) -> list[dt.date]:
        return [self.since + dt.timedelta(days=i) for i in range(self.days)]


@dataclass
class EntityTree:
    """One ad account's objects. Frames have their level's `LevelSpec.columns` (see insights_core.levels)."""

    account: Account
    campaigns: pd.DataFrame
    adsets: pd.DataFrame
    ads: pd.DataFrame

    def frame(self, level: Level) -> pd.DataFrame:
        frame: pd.DataFrame = getattr(self, LEVEL_SPECS[level].plural)
        return frame


@dataclass(frozen=True)
class Scope:
    """Which entities a sync reads, per level. The engine resolves it from a request."""

    ids_by_level: Mapping[Level, frozenset[str]]
    """A level left out has no entity in the scope."""
    is_full: bool
    """True when the scope is the whole account (no entity filter)."""

    def ids(self, level: Level) -> frozenset[str]:
        return self.ids_by_level.get(level, frozenset())


@dataclass
class InsightBatch:
    """Rows a source fetched for one level, plus the entities of that level it failed to fetch."""

    level: Level
    rows: pd.DataFrame
    failures: dict[str, str] = field(default_factory=dict)
    """entity id -> one-line reason, for this batch's part of the work (its window or chunk): the
    entity's rows from this batch are missing, though another batch may carry other days of it."""
    entities_done: int = 0
    """How many scope entities of this level this batch completes (for progress)."""


BreakdownFamily = Literal["age_gender", "country", "placement", "device_platform"]
BREAKDOWN_FAMILIES: tuple[BreakdownFamily, ...] = ("age_gender", "country", "placement", "device_platform")
"""The segment families collected (`INSIGHTS_BREAKDOWNS` chooses among them). The keys of each:
age_gender (Meta's age bucket, gender), country (ISO code, ''), placement (publisher_platform,
platform_position), device_platform (device, ''). Meta's "unknown" segments are kept as sent."""
BREAKDOWN_SOURCE_COLUMNS = (
    "account_id",
    "entity_type",
    "entity_id",
    "date_start",
    "breakdown",
    "key_1",
    "key_2",
    *ADDITIVE_METRICS,
    "reach",
)
"""The columns a source yields in every `BreakdownBatch.rows` frame. `reach` is as reported per
segment and day (NULL when Meta omits it); it is never summed across segments, days or levels."""


@dataclass
class BreakdownBatch:
    """Segment rows a source fetched for one level and family, plus the entities it failed to fetch.

    A source yields batches only for the levels it reads; the engine rolls the others up from the
    level below (additive metrics only, reach NULL).
    """

    level: Level
    family: BreakdownFamily
    rows: pd.DataFrame
    failures: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Creative:
    """An ad creative as shown in Ads Manager. The image is kept, not its URL: Meta's expire within days."""

    creative_id: str
    account_id: str
    title: str | None
    body: str | None
    call_to_action: str | None
    link_url: str | None
    image_url: str | None
    """Where the source found the image (live: Meta's expiring URL); the worker downloads it."""
    image_bytes: bytes | None = None
    """The image itself when the source has it at hand (the stub draws one); None: download image_url."""


@dataclass
class SourceStats:
    api_requests: int = 0
    rate_limit_hits: int = 0
    retries: int = 0
    throttle_wait_seconds: float = 0.0


@dataclass(frozen=True)
class SyncRequest:
    """What to sync: the one shape of a request from the Sync page or the CLI to the worker and its report.

    Build it with `insights_core.sync_requests.parse_sync_request`, which validates the input.
    """

    sync_type: SyncType = "manual"
    days_back: int | None = None
    """None: the scheduled window (lookback, or a backfill when nothing is stored)."""
    entity_type: Level | None = None
    entity_ids: tuple[str, ...] = ()
    force: bool = False
    request_id: int | None = None
    requested_by: str | None = None


@dataclass
class LevelCounts:
    processed: int = 0
    success: int = 0
    errors: int = 0


@dataclass
class SyncReport:
    """The sync report (the keys the original specification named, through `errors`), plus what an
    operator needs to trust it: the request it ran (echoed), its window, row counts and API usage."""

    sync_id: str
    sync_timestamp: str
    sync_type: SyncType
    mode: str
    campaigns: LevelCounts = field(default_factory=LevelCounts)
    adsets: LevelCounts = field(default_factory=LevelCounts)
    ads: LevelCounts = field(default_factory=LevelCounts)
    total_duration_seconds: float = 0.0
    success: bool = False
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    """What went wrong without failing the sync (a creative image not kept); never counted as errors."""
    status: Literal["running", "succeeded", "failed", "cancelled"] = "running"
    since: str | None = None
    until: str | None = None
    days_back: int | None = None
    entity_type: str | None = None
    entity_ids: list[str] = field(default_factory=list)
    force: bool = False
    accounts: list[str] = field(default_factory=list)
    rows_read: int = 0
    """Rows read from the source and committed: each inserted, updated, or found unchanged (then not
    rewritten); 0 when the sync rolled back. Reports stored before it was named so say `rows_written`."""
    rows_inserted: int = 0
    rows_updated: int = 0
    """Stored rows whose values changed (Meta restated them)."""
    rows_deleted: int = 0
    """Rows in the window Meta no longer returned."""
    api_requests: int = 0
    rate_limit_hits: int = 0
    request_id: int | None = None
    requested_by: str | None = None
    worker: str | None = None
    """The worker that ran it (`control.new_worker_id`: host:pid:suffix), so an admin can tell which of
    many workers, on which machine, synced an account; None for a sync run by a test or a script."""

    @classmethod
    def for_request(cls, request: SyncRequest, *, sync_id: str, sync_timestamp: str, mode: str) -> SyncReport:
        """A new report that echoes `request`, so a report always says what was asked."""
        return cls(
            sync_id=sync_id,
            sync_timestamp=sync_timestamp,
            sync_type=request.sync_type,
            mode=mode,
            days_back=request.days_back,
            entity_type=request.entity_type,
            entity_ids=list(request.entity_ids),
            force=request.force,
            request_id=request.request_id,
            requested_by=request.requested_by,
        )

    def counts(self, level: Level) -> LevelCounts:
        counts: LevelCounts = getattr(self, LEVEL_PLURAL[level])
        return counts

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SyncReport:
        """A report from its JSON, including reports stored under older key names."""
        values = upgrade_report_keys(data)
        for plural in LEVEL_PLURAL.values():
            values[plural] = LevelCounts(**values.get(plural, {}))
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in values.items() if k in known})


def upgrade_report_keys(report: Mapping[str, Any]) -> dict[str, Any]:
    """A stored report (control.sqlite, `sync_runs.report_json`) with today's key names.

    `rows_written` was renamed `rows_read` (it counts rows read from the source, not rows written).
    """
    values = dict(report)
    if "rows_read" not in values and "rows_written" in values:
        values["rows_read"] = values.pop("rows_written")
    return values
