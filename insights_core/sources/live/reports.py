"""Account-level async report runs: one per level per date window, split when Meta refuses.

Asking for insights one entity at a time takes 2,100 requests for 100 x 5 x 3 entities. Here
each level of each window is one report run on the ad account, so requests grow with result
pages, not with entities. Up to INSIGHTS_DEFAULT_BATCH_SIZE runs are in flight at once: Meta
works on them in parallel while this single thread polls them in turn, so there are no client
threads, and every callback and yield happens on the engine's thread.

- "Job Completed" and 100 %: read every page (`after` cursors), transform, yield one batch.
- "Job Skipped" (it expired before it ran): submit it again, up to META_API_MAX_RETRIES times.
- "Job Failed", or error 100/1487534 (too much data): split the window in halves down to one
  day, then its campaigns in halves down to one; whatever still fails is reported per entity.

Breakdown reports are the same runs with `breakdowns` set (one family per run): a chunk with a
`family` reads segment rows into BreakdownBatches, a chunk without one reads totals into
InsightBatches; splitting, polling, paging, retries and pacing are shared. A family Meta refuses
(code 100/1504041) fails for every level and window, and the other families go on.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any, Generic, TypeVar

import pandas as pd

from insights_core.errors import EntityError, FatalSyncError
from insights_core.levels import LEVEL_SPECS, Level
from insights_core.models import (
    BREAKDOWN_SOURCE_COLUMNS,
    Account,
    BreakdownBatch,
    BreakdownFamily,
    DateWindow,
    EntityTree,
    InsightBatch,
    Scope,
)
from insights_core.sources.live.api import (
    GraphApi,
    effective_statuses,
    fetch_report_rows,
    fetch_report_status,
    start_report_run,
)
from insights_core.sources.live.throttle import InvalidBreakdownError, ReportTooLargeError
from insights_core.sources.live.transform import BREAKDOWN_FIELDS, ParsedRows, breakdown_rows, insight_rows

log = logging.getLogger("meta_insights.live")

JOB_COMPLETED, JOB_FAILED, JOB_SKIPPED = "Job Completed", "Job Failed", "Job Skipped"
REPORT_TIMEOUT_SECONDS = 3600
"""Meta says a report run can take up to an hour; after that its entities count as errors."""
FIRST_POLL_SECONDS = 1.0
STOP_CHECK_SECONDS = 2.0
"""While runs are in flight, an empty batch goes to the engine this often so a stop request is seen."""
MAX_FILTER_IDS = 200
"""Longer id lists are filtered by their campaigns instead (and cut down to the scope afterwards)."""
METRIC_FIELDS = (
    "date_start",
    "date_stop",
    "spend",
    "impressions",
    "clicks",
    "reach",
    "frequency",
    "unique_clicks",
    "ctr",
    "cpc",
    "cpm",
    "actions",
    "action_values",
)
BREAKDOWN_METRIC_FIELDS = (
    "date_start",
    "date_stop",
    "spend",
    "impressions",
    "clicks",
    "reach",
    "actions",
    "action_values",
)
"""Per segment: the additive metrics and reach (as reported; Meta omits it over 13 months back)."""


@dataclass(frozen=True)
class ReportChunk:
    """One report run to make: a level, a window and optionally a set of campaigns."""

    level: Level
    window: DateWindow
    campaign_ids: tuple[str, ...] | None = None
    share: Fraction = Fraction(1)
    """This chunk's part of its level's work, for progress."""
    resubmits: int = 0
    family: BreakdownFamily | None = None
    """None: the level's totals; a family: its segment rows (`breakdowns` per BREAKDOWN_FIELDS)."""

    @property
    def label(self) -> str:
        return f"{self.level} {self.family} breakdown report" if self.family else f"{self.level} report"


@dataclass
class ReportContext:
    """What a report run needs; built once per `fetch_insights` call."""

    api: GraphApi
    account: Account
    tree: EntityTree
    scope: Scope
    conversion_types: Sequence[str]
    page_size: int
    concurrency: int
    max_poll_seconds: float
    max_resubmits: int
    sleep: Callable[[float], object]
    clock: Callable[[], float]
    on_status: Callable[[str], None] | None = None


def plan_chunks(
    levels: Sequence[Level],
    window: DateWindow,
    max_days: int,
    families: Sequence[BreakdownFamily | None] = (None,),
) -> list[ReportChunk]:
    """Consecutive windows of at most `max_days`, one chunk per level (and family) each."""
    chunks: list[ReportChunk] = []
    since = window.since
    while since <= window.until:
        until = min(window.until, since + dt.timedelta(days=max_days - 1))
        part = DateWindow(since, until)
        share = Fraction(part.days, window.days)
        chunks.extend(ReportChunk(level, part, None, share, family=f) for level in levels for f in families)
        since = until + dt.timedelta(days=1)
    return chunks


def split_chunk(chunk: ReportChunk, campaigns: Sequence[str]) -> list[ReportChunk]:
    """Two smaller chunks: the window's halves, or at one day the campaigns' halves; [] at the floor."""
    window = chunk.window
    if window.days > 1:
        middle = window.since + dt.timedelta(days=window.days // 2 - 1)
        halves = [DateWindow(window.since, middle), DateWindow(middle + dt.timedelta(days=1), window.until)]
        return [
            replace(chunk, window=w, share=chunk.share * Fraction(w.days, window.days), resubmits=0) for w in halves
        ]
    ids = chunk.campaign_ids if chunk.campaign_ids is not None else tuple(campaigns)
    if len(ids) <= 1:
        return []
    cut = len(ids) // 2
    return [
        replace(chunk, campaign_ids=part, share=chunk.share * Fraction(len(part), len(ids)), resubmits=0)
        for part in (ids[:cut], ids[cut:])
    ]


def campaign_of(tree: EntityTree, level: Level) -> dict[str, str]:
    frame = tree.frame(level)
    return dict(zip(frame[LEVEL_SPECS[level].id_column].astype(str), frame["campaign_id"].astype(str)))


def scope_entities(tree: EntityTree, scope: Scope, level: Level) -> set[str]:
    if not scope.is_full:
        return set(scope.ids(level))
    return set(tree.frame(level)[LEVEL_SPECS[level].id_column].astype(str))


def scope_filters(level: Level, scope: Scope, campaigns_of_level: dict[str, str]) -> list[dict[str, Any]]:
    """Graph `filtering` entries that keep a report to the scope (none for a full-account sync)."""
    if scope.is_full:
        return []
    ids = sorted(scope.ids(level))
    if len(ids) <= MAX_FILTER_IDS:
        return [{"field": f"{level}.id", "operator": "IN", "value": ids}]
    campaigns = sorted({campaigns_of_level[i] for i in ids if i in campaigns_of_level})
    if len(campaigns) <= MAX_FILTER_IDS:
        return [{"field": "campaign.id", "operator": "IN", "value": campaigns}]
    return []


def insight_id_fields(level: Level) -> tuple[str, ...]:
    """The ids a report row of the level carries: its ancestors', outermost first, then its own."""
    spec = LEVEL_SPECS[level]
    return (*spec.parent_id_columns, spec.id_column)


def report_params(chunk: ReportChunk, extra_filters: list[dict[str, Any]]) -> dict[str, Any]:
    """The POST act_<id>/insights parameters of one chunk: daily rows, every status, its filters.

    `use_unified_attribution_setting` counts conversions with each ad set's own attribution
    setting, as Ads Manager does, rather than the API's legacy default windows.
    """
    filtering = [
        {"field": f"{chunk.level}.effective_status", "operator": "IN", "value": effective_statuses(chunk.level)},
        *extra_filters,
    ]
    if chunk.campaign_ids is not None:
        filtering.append({"field": "campaign.id", "operator": "IN", "value": list(chunk.campaign_ids)})
    metrics = BREAKDOWN_METRIC_FIELDS if chunk.family else METRIC_FIELDS
    params: dict[str, Any] = {
        "level": chunk.level,
        "time_range": {"since": chunk.window.since.isoformat(), "until": chunk.window.until.isoformat()},
        "time_increment": 1,
        "fields": [*insight_id_fields(chunk.level), *metrics],
        "filtering": filtering,
        "use_unified_attribution_setting": True,
    }
    if chunk.family:
        params["breakdowns"] = list(BREAKDOWN_FIELDS[chunk.family])
    return params


@dataclass
class _Run:
    chunk: ReportChunk
    run_id: str
    submitted_at: float
    next_poll_at: float
    wait: float
    last_text: str = ""


@dataclass
class _Progress:
    totals: dict[Level, int]
    done: dict[tuple[Level, str | None], Fraction] = field(default_factory=dict)
    emitted: dict[tuple[Level, str | None], int] = field(default_factory=dict)

    def advance(self, chunk: ReportChunk) -> int:
        """Entities of the chunk's level this share completes, so the level's batches (of one
        family, or of the totals) add up to its total."""
        key = (chunk.level, chunk.family)
        self.done[key] = self.done.get(key, Fraction(0)) + chunk.share
        total = self.totals.get(chunk.level, 0)
        target = total if self.done[key] >= 1 else math.floor(self.done[key] * total)
        delta = target - self.emitted.get(key, 0)
        self.emitted[key] = target
        return max(delta, 0)


B = TypeVar("B", InsightBatch, BreakdownBatch)


@dataclass(frozen=True)
class ReportReader(Generic[B]):
    """What a finished report's rows become: totals (InsightBatch) or segments (BreakdownBatch)."""

    parse: Callable[[list[dict[str, Any]], ReportChunk, ReportContext], ParsedRows]
    """Raw rows -> typed rows (with `entity_id` and `campaign_id`), failures and unattributed rows."""
    batch: Callable[[ReportChunk, pd.DataFrame, dict[str, str], int], B]
    """(chunk, rows, failures, entities done) -> the batch the engine gets."""


def _parse_totals(records: list[dict[str, Any]], chunk: ReportChunk, ctx: ReportContext) -> ParsedRows:
    return insight_rows(records, chunk.level, ctx.account.account_id, chunk.window, ctx.conversion_types)


def _parse_segments(records: list[dict[str, Any]], chunk: ReportChunk, ctx: ReportContext) -> ParsedRows:
    family = _family(chunk)
    return breakdown_rows(records, chunk.level, family, ctx.account.account_id, chunk.window, ctx.conversion_types)


def _totals_batch(chunk: ReportChunk, rows: pd.DataFrame, failures: dict[str, str], done: int) -> InsightBatch:
    return InsightBatch(chunk.level, rows, failures, entities_done=done)


def _segments_batch(chunk: ReportChunk, rows: pd.DataFrame, failures: dict[str, str], done: int) -> BreakdownBatch:
    return BreakdownBatch(chunk.level, _family(chunk), rows[list(BREAKDOWN_SOURCE_COLUMNS)], failures)


def _family(chunk: ReportChunk) -> BreakdownFamily:
    if chunk.family is None:
        raise ValueError(f"{chunk.label} has no breakdown family")
    return chunk.family


TOTALS: ReportReader[InsightBatch] = ReportReader(_parse_totals, _totals_batch)
SEGMENTS: ReportReader[BreakdownBatch] = ReportReader(_parse_segments, _segments_batch)


class ReportRunner(Generic[B]):
    """Runs chunks as async report runs and turns each finished one into a batch (`reader` says which)."""

    def __init__(self, ctx: ReportContext, chunks: Sequence[ReportChunk], reader: ReportReader[B]) -> None:
        self.ctx = ctx
        self.reader: ReportReader[B] = reader
        self.pending: deque[ReportChunk] = deque(chunks)
        self.running: list[_Run] = []
        levels = {c.level for c in chunks}
        self.campaigns = {lvl: campaign_of(ctx.tree, lvl) for lvl in levels}
        self.entities = {lvl: scope_entities(ctx.tree, ctx.scope, lvl) for lvl in levels}
        self.filters = {lvl: scope_filters(lvl, ctx.scope, self.campaigns[lvl]) for lvl in levels}
        self.progress = _Progress({lvl: len(self.entities[lvl]) for lvl in levels})
        self.status_text = ""

    def batches(self) -> Iterator[B]:
        clock = self.ctx.clock
        last_yield = clock()
        while self.pending or self.running:
            ready: list[B] = []
            while self.pending and len(self.running) < self.ctx.concurrency:
                ready += self._submit(self.pending.popleft())
            if self.running and not ready:
                run = min(self.running, key=lambda r: r.next_poll_at)
                delay = run.next_poll_at - clock()
                if delay > 0 and clock() - last_yield >= STOP_CHECK_SECONDS:
                    ready.append(self._batch(run.chunk, self.reader.parse([], run.chunk, self.ctx).rows, {}, 0))
                elif delay > 0:
                    self.ctx.sleep(delay)
                    continue
                else:
                    ready += self._poll(run)
            for batch in ready:
                yield batch
                last_yield = clock()
                if self.running and self.status_text and self.ctx.on_status is not None:
                    self.ctx.on_status(self.status_text)  # the engine just overwrote it with its own

    def _submit(self, chunk: ReportChunk) -> list[B]:
        params = report_params(chunk, self.filters[chunk.level])
        try:
            run_id = start_report_run(self.ctx.api, self.ctx.account.account_id, params)
        except ReportTooLargeError as exc:
            return self._split_or_fail(chunk, str(exc))
        except InvalidBreakdownError as exc:
            return self._refuse_family(chunk, exc)
        except FatalSyncError:
            raise
        except EntityError as exc:
            return [self._failed(chunk, f"starting the report failed: {exc}")]
        now = self.ctx.clock()
        first = min(FIRST_POLL_SECONDS, self.ctx.max_poll_seconds)
        self.running.append(_Run(chunk, run_id, now, now + first, first))
        return []

    def _poll(self, run: _Run) -> list[B]:
        chunk = run.chunk
        try:
            status, percent = fetch_report_status(self.ctx.api, run.run_id)
        except FatalSyncError:
            raise
        except EntityError as exc:
            self.running.remove(run)
            return [self._failed(chunk, f"checking the report failed: {exc}")]
        if status == JOB_COMPLETED and percent >= 100:
            self.running.remove(run)
            return [self._read(run)]
        if status == JOB_FAILED:
            self.running.remove(run)
            return self._split_or_fail(chunk, "Meta could not run the report (Job Failed)")
        if status == JOB_SKIPPED:
            self.running.remove(run)
            if chunk.resubmits < self.ctx.max_resubmits:
                log.info("report run %s skipped by Meta; submitting it again", run.run_id)
                self.pending.appendleft(replace(chunk, resubmits=chunk.resubmits + 1))
                return []
            return [self._failed(chunk, f"Meta skipped the report run {chunk.resubmits + 1} times (Job Skipped)")]
        now = self.ctx.clock()
        if now - run.submitted_at > REPORT_TIMEOUT_SECONDS:
            self.running.remove(run)
            return [
                self._failed(
                    chunk,
                    f"the report did not finish within {REPORT_TIMEOUT_SECONDS // 60} minutes "
                    f"({status or 'no status'}, {percent}%)",
                )
            ]
        run.wait = min(run.wait * 1.5, self.ctx.max_poll_seconds)
        run.next_poll_at = now + run.wait
        text = f"{chunk.label} {percent}% ({chunk.window.since}..{chunk.window.until})"
        if text != run.last_text:
            run.last_text = self.status_text = text
            if self.ctx.on_status is not None:
                self.ctx.on_status(text)
        return []

    def _read(self, run: _Run) -> B:
        chunk, ctx = run.chunk, self.ctx
        try:
            records = list(fetch_report_rows(ctx.api, run.run_id, ctx.page_size))
        except FatalSyncError:
            raise
        except EntityError as exc:
            return self._failed(chunk, f"reading the report failed: {exc}")
        parsed = self.reader.parse(records, chunk, ctx)
        if parsed.unattributed:
            return self._failed(
                chunk,
                f"Meta returned {len(parsed.unattributed)} row(s) that name no {chunk.level}, "
                f"e.g. {parsed.unattributed[0]}; no row of this report was kept",
            )
        rows, failures = parsed.rows, parsed.failures
        wanted = self.entities[chunk.level] if not ctx.scope.is_full else None
        if wanted is not None:
            rows = rows[rows["entity_id"].isin(wanted)]
            failures = {k: v for k, v in failures.items() if k in wanted}
        if chunk.campaign_ids is not None:
            rows = rows[rows["campaign_id"].isin(chunk.campaign_ids)]
        window = f"{chunk.window.since}..{chunk.window.until}"
        what = f"{chunk.family} breakdown report" if chunk.family else "report"
        failures = {k: f"{v} ({what} {window})" for k, v in failures.items()}
        return self._batch(chunk, rows.reset_index(drop=True), failures, self.progress.advance(chunk))

    def _batch(self, chunk: ReportChunk, rows: pd.DataFrame, failures: dict[str, str], done: int) -> B:
        return self.reader.batch(chunk, rows, failures, done)

    def _refuse_family(self, chunk: ReportChunk, exc: InvalidBreakdownError) -> list[B]:
        """Meta refuses the family's breakdowns: every level and window of it fails, with one clear reason;
        the chunks of other families (and the totals) go on."""
        family = chunk.family
        fields = ", ".join(BREAKDOWN_FIELDS[family]) if family else "none"
        reason = f"{family} breakdowns ({fields}) not collected: {exc}"
        log.warning("%s; the other breakdowns go on", reason)
        dropped: list[ReportChunk] = [c for c in self.pending if c.family == family]
        self.pending = deque(c for c in self.pending if c.family != family)
        return [self._failed(c, reason) for c in (chunk, *dropped)]

    def _split_or_fail(self, chunk: ReportChunk, reason: str) -> list[B]:
        campaign = self.campaigns[chunk.level]
        parts = split_chunk(chunk, sorted({campaign[e] for e in self.entities[chunk.level] if e in campaign}))
        if not parts:
            return [self._failed(chunk, f"{reason}, even for one day and one campaign")]
        log.info("%s %s..%s: %s; splitting it in two", chunk.label, chunk.window.since, chunk.window.until, reason)
        self.pending.extendleft(reversed(parts))
        return []

    def _failed(self, chunk: ReportChunk, reason: str) -> B:
        covered = self.entities[chunk.level]
        if chunk.campaign_ids is not None:
            campaign = self.campaigns[chunk.level]
            covered = {e for e in covered if campaign.get(e) in chunk.campaign_ids}
        window = f"{chunk.window.since}..{chunk.window.until}"
        log.warning("%s %s failed for %d entities: %s", chunk.label, window, len(covered), reason)
        empty = self.reader.parse([], chunk, self.ctx).rows
        return self._batch(
            chunk, empty, dict.fromkeys(sorted(covered), f"{reason} ({window})"), self.progress.advance(chunk)
        )
