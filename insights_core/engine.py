"""The sync engine: fetch from a source, write one transaction, report.

`plan_window` and `resolve_scope` are pure. `run_sync` chains the source and the warehouse; it
never publishes (the caller does, after the commit) and never knows which source it talks to.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import duckdb

from insights_core.creatives import sync_creatives
from insights_core.errors import FatalSyncError, InputError, InsightsError, SyncCancelledError
from insights_core.levels import LEVEL_PLURAL, LEVEL_SPECS, LEVELS, Level
from insights_core.logs import redact
from insights_core.models import BreakdownFamily, DateWindow, EntityTree, Scope, SyncReport, SyncRequest
from insights_core.settings import Settings
from insights_core.sources import InsightsSource
from insights_core.store.warehouse import Warehouse

log = logging.getLogger("meta_insights.sync")

ProgressSink = Callable[[dict[str, Any]], None]
MAX_ERRORS_LISTED = 50
"""The report lists this many entity errors one by one and sums up the rest in one line."""
MAX_FAILED_SHARE = 0.5
"""A sync whose failed entities exceed this share reports success=false (what it read is kept)."""


def resolve_scope(tree: EntityTree, request: SyncRequest) -> tuple[Scope, set[str]]:
    """The entities a request covers in one account, and the requested ids not found in it.

    A campaign brings its ad sets and ads, an ad set its ads (a Sync now of a campaign refreshes
    everything under it); an ad is itself.
    """
    known = {lvl: set(tree.frame(lvl)[LEVEL_SPECS[lvl].id_column]) for lvl in LEVELS}
    if request.entity_type is None:
        return Scope({lvl: frozenset(ids) for lvl, ids in known.items()}, is_full=True), set()
    wanted = set(request.entity_ids)
    spec = LEVEL_SPECS[request.entity_type]
    chosen = wanted & known[spec.level]
    ids: dict[Level, frozenset[str]] = {spec.level: frozenset(chosen)}
    for child in spec.children:
        frame = tree.frame(child)
        ids[child] = frozenset(frame.loc[frame[spec.id_column].isin(chosen), LEVEL_SPECS[child].id_column])
    return Scope(ids, is_full=False), wanted - known[spec.level]


def plan_window(request: SyncRequest, today: dt.date, synced_days: set[dt.date], settings: Settings) -> DateWindow:
    """The days to read, ending today (the account's calendar day).

    - With days_back: that many days. Unless `force`, a full-account sync skips the settled days
      (older than the lookback, which Meta no longer restates) that an earlier sync already stored.
    - Without days_back (scheduled): the lookback, reaching back further to fill any day missing
      in the backfill horizon; a first sync therefore backfills INSIGHTS_BACKFILL_DAYS days.
    `synced_days` are the days every level of this account has stored.
    """
    settled_before = today - dt.timedelta(days=settings.lookback_days - 1)
    if request.days_back is not None:
        horizon = today - dt.timedelta(days=request.days_back - 1)
    elif request.entity_type is not None:
        return DateWindow(min(settled_before, today), today)
    else:
        horizon = today - dt.timedelta(days=settings.backfill_days - 1)
    if request.force or request.entity_type is not None or horizon >= settled_before:
        return DateWindow(horizon, today)
    day = horizon
    while day < settled_before and day in synced_days:
        day += dt.timedelta(days=1)
    return DateWindow(day, today)


@dataclass
class _Tally:
    """Running counts of one sync, per level."""

    processed: dict[str, int] = field(default_factory=lambda: dict.fromkeys(LEVELS, 0))
    done: dict[str, int] = field(default_factory=lambda: dict.fromkeys(LEVELS, 0))
    failures: dict[str, dict[str, str]] = field(default_factory=lambda: {lvl: {} for lvl in LEVELS})
    rows: int = 0
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    breakdown_rows: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(("read", "inserted", "updated", "deleted"), 0)
    )
    """Segment rows (meta_ad_insight_breakdowns), counted apart: the report's row counts are the totals'."""
    notes: list[str] = field(default_factory=list)
    """Lines for the report's errors that concern no single entity (a breakdown family not collected)."""


def run_sync(
    request: SyncRequest,
    *,
    source: InsightsSource,
    warehouse: Warehouse,
    settings: Settings,
    now: dt.datetime | None = None,
    on_progress: ProgressSink | None = None,
    should_stop: Callable[[], bool] | None = None,
    trees: list[EntityTree] | None = None,
    before_commit: Callable[[], None] | None = None,
    worker: str | None = None,
) -> SyncReport:
    """Run one sync and store its report in `sync_runs`; return the report.

    Insights, entities and coverage of the whole sync commit in one transaction, or not at all.
    Entity errors are counted and the sync goes on; a fatal error, a storage error (full disk) or a
    stop request rolls back and the report says why. Unknown entity ids raise InputError before
    anything is written. `trees` are entity trees the caller already fetched (and checked with
    `check_entity_ids`), so they are not fetched twice. `before_commit` runs inside the transaction
    after the last row is written: raising a FatalSyncError there (a worker's account lease was taken
    over) rolls the sync back and fails it with that message. `worker` names the worker in the report.
    """
    now = now or dt.datetime.now(dt.timezone.utc)
    started = time.monotonic()
    secrets = settings.secret_values()
    report = SyncReport.for_request(
        request, sync_id=str(uuid.uuid4()), sync_timestamp=now.isoformat(), mode=source.mode
    )
    report.worker = worker
    stats_before = (source.stats.api_requests, source.stats.rate_limit_hits)
    tally = _Tally()
    progress = _ProgressReporter(report, tally, on_progress)

    def check_stop() -> None:
        if should_stop is not None and should_stop():
            raise SyncCancelledError()

    try:
        if trees is None:
            progress.emit("reading accounts and entities")
            trees = fetch_entity_trees(source)
        scopes = check_entity_ids(trees, request)
        check_stop()
        with warehouse.transaction():
            for tree, scope in zip(trees, scopes):
                _sync_account(
                    tree, scope, request, now, report, tally, source, warehouse, settings, progress, check_stop
                )
            if before_commit is not None:
                before_commit()
            _finish_report(report, tally, source, stats_before, started, secrets, status="succeeded")
            warehouse.save_sync_run(report)
    except InputError:
        raise
    except SyncCancelledError as exc:
        _finish_report(report, tally, source, stats_before, started, secrets, status="cancelled", fatal=str(exc))
        _save_run_if_possible(warehouse, report)
    except InsightsError as exc:
        reason = str(exc) if isinstance(exc, FatalSyncError) else f"sync failed: {exc}"
        _finish_report(report, tally, source, stats_before, started, secrets, status="failed", fatal=reason)
        _save_run_if_possible(warehouse, report)
    except (OSError, duckdb.Error) as exc:  # a full disk, a permission, a broken file: one line, no traceback
        reason = f"storage error, nothing of this sync was committed: {type(exc).__name__}: {exc}"
        log.error("sync %s: %s", report.sync_id, reason)
        _finish_report(report, tally, source, stats_before, started, secrets, status="failed", fatal=reason)
        _save_run_if_possible(warehouse, report)
    except Exception as exc:  # the report must still say what happened
        log.exception("sync %s crashed", report.sync_id)
        _finish_report(
            report,
            tally,
            source,
            stats_before,
            started,
            secrets,
            status="failed",
            fatal=f"unexpected error: {type(exc).__name__}: {exc}",
        )
        _save_run_if_possible(warehouse, report)
    progress.emit("done")
    return report


def fetch_entity_trees(source: InsightsSource) -> list[EntityTree]:
    """Every account's entity tree, from the source (network in live mode)."""
    return [source.fetch_entities(account) for account in source.fetch_accounts()]


def new_failed_report(request: SyncRequest, mode: str, reason: str) -> SyncReport:
    """The report of a sync that could not start (storage unusable, unknown ids): success false, `reason` first."""
    report = SyncReport.for_request(
        request, sync_id=str(uuid.uuid4()), sync_timestamp=dt.datetime.now(dt.timezone.utc).isoformat(), mode=mode
    )
    report.status, report.success, report.errors = "failed", False, [reason]
    return report


def _save_run_if_possible(warehouse: Warehouse, report: SyncReport) -> None:
    """Record a failed run; when storage itself is failing, the report says the record is missing."""
    try:
        warehouse.save_sync_run(report)
    except (InsightsError, OSError, duckdb.Error) as exc:
        line = f"this run could not be recorded in sync_runs: {type(exc).__name__}: {exc}"
        log.error("sync %s: %s", report.sync_id, line)
        report.errors.append(line)


def check_entity_ids(trees: list[EntityTree], request: SyncRequest) -> list[Scope]:
    """Each account's scope for the request; InputError naming requested ids found in no account."""
    scopes, missing = [], set(request.entity_ids)
    for tree in trees:
        scope, not_here = resolve_scope(tree, request)
        scopes.append(scope)
        missing &= not_here
    if missing:
        shown = ", ".join(sorted(missing)[:5]) + (" ..." if len(missing) > 5 else "")
        raise InputError(f"unknown {request.entity_type} id{'s' if len(missing) > 1 else ''}: {shown}")
    return scopes


def _sync_account(
    tree: EntityTree,
    scope: Scope,
    request: SyncRequest,
    now: dt.datetime,
    report: SyncReport,
    tally: _Tally,
    source: InsightsSource,
    warehouse: Warehouse,
    settings: Settings,
    progress: _ProgressReporter,
    check_stop: Callable[[], None],
) -> None:
    account = tree.account
    report.accounts.append(account.account_id)
    for level in LEVELS:
        tally.processed[level] += len(scope.ids(level))
    warehouse.upsert_entities(tree, now)
    sync_creatives(tree, scope, source, warehouse, settings, now, report, check_stop)
    synced = set.intersection(*(warehouse.fetch_synced_days(account.account_id, lvl) for lvl in LEVELS))
    window = plan_window(request, account.today(now), synced, settings)
    report.since = min(report.since or window.since.isoformat(), window.since.isoformat())
    report.until = max(report.until or window.until.isoformat(), window.until.isoformat())
    progress.emit(f"{account.account_id}: reading {window.since}..{window.until}")

    failed_here: dict[str, set[str]] = {lvl: set() for lvl in LEVELS}
    fresh = {lvl: warehouse.count_insights(account.account_id, lvl, window.since, window.until) == 0 for lvl in LEVELS}
    for batch in source.fetch_insights(account, window, scope, report.sync_id, on_status=progress.emit):
        check_stop()
        inserted, updated = warehouse.upsert_insights(batch.rows, now, fresh=fresh[batch.level])
        tally.rows += len(batch.rows)
        tally.inserted += inserted
        tally.updated += updated
        tally.failures[batch.level].update(batch.failures)
        failed_here[batch.level].update(batch.failures)
        tally.done[batch.level] += batch.entities_done
        progress.emit(f"{LEVEL_PLURAL[batch.level]} of {account.account_id}")

    check_stop()
    for level in LEVELS:
        read_ok = None if scope.is_full and not failed_here[level] else scope.ids(level) - failed_here[level]
        if not fresh[level]:
            tally.deleted += warehouse.delete_stale_insights(
                account.account_id, level, window.since, window.until, read_ok
            )
        if scope.is_full and not failed_here[level]:
            warehouse.save_synced_days(account.account_id, level, window.dates(), now)
    if settings.breakdowns:
        _sync_breakdowns(
            tree, scope, window, failed_here, now, report, tally, source, warehouse, settings, progress, check_stop
        )


def _sync_breakdowns(
    tree: EntityTree,
    scope: Scope,
    window: DateWindow,
    totals_failed: dict[str, set[str]],
    now: dt.datetime,
    report: SyncReport,
    tally: _Tally,
    source: InsightsSource,
    warehouse: Warehouse,
    settings: Settings,
    progress: _ProgressReporter,
    check_stop: Callable[[], None],
) -> None:
    """Segment rows of the account for `settings.breakdowns`, in the sync's transaction.

    The source yields the levels it reads; each level it did not is rolled up from the level below
    (sums; reach NULL), bottom-up, after the level below dropped its stale rows. A parent with a
    child that failed is not rolled up (its sums would miss that child), nor one whose totals were
    not read (`totals_failed`): both keep their stored rows, which match their stored totals.
    A family the source yields nothing for is named in the report rather than skipped silently.
    """
    account_id = tree.account.account_id
    families = settings.breakdowns
    counts = tally.breakdown_rows
    fresh = {
        (lvl, fam): warehouse.count_breakdowns(account_id, lvl, fam, window.since, window.until) == 0
        for lvl in LEVELS
        for fam in families
    }
    failed: dict[tuple[Level, BreakdownFamily], set[str]] = {key: set() for key in fresh}
    yielded: set[tuple[Level, BreakdownFamily]] = set()
    fetch = getattr(source, "fetch_breakdowns", None)
    try:
        if fetch is None:
            raise NotImplementedError(f"the {source.mode} source does not read breakdowns")
        for batch in fetch(tree.account, window, scope, families, report.sync_id, on_status=progress.emit):
            check_stop()
            inserted, updated = warehouse.upsert_breakdowns(batch.rows, now, fresh=fresh[(batch.level, batch.family)])
            counts["read"] += len(batch.rows)
            counts["inserted"] += inserted
            counts["updated"] += updated
            yielded.add((batch.level, batch.family))
            failed[(batch.level, batch.family)].update(batch.failures)
            progress.emit(f"{batch.family} breakdown of {LEVEL_PLURAL[batch.level]} of {account_id}")
            reasons = set(batch.failures.values())
            if len(reasons) == 1 and set(batch.failures) >= scope.ids(batch.level):
                # one reason for every entity (Meta refused the family): one report line, and no entity
                # counted as failed, so a refused family never fails a sync whose totals were stored
                note = f"{account_id}: {batch.family} breakdown of {LEVEL_PLURAL[batch.level]}: {reasons.pop()}"
                if note not in tally.notes:
                    tally.notes.append(note)
                continue
            for entity_id, reason in batch.failures.items():
                tally.failures[batch.level].setdefault(entity_id, f"{batch.family} breakdown: {reason}")
    except NotImplementedError as exc:
        tally.notes.append(f"{account_id}: breakdowns not collected ({exc or 'not supported by the source'})")
        return
    check_stop()
    for family in families:
        if not any(fam == family for _, fam in yielded):
            tally.notes.append(
                f"{account_id}: {family} breakdown not collected (the {source.mode} source returned none)"
            )
            continue
        below: Level | None = None
        for level in reversed(LEVELS):  # ads first: a parent is rolled up from the level below it
            key = (level, family)
            if key not in yielded:
                if below is None:
                    tally.notes.append(f"{account_id}: {family} breakdown of {LEVEL_PLURAL[level]} not collected")
                    continue
                kept = (
                    scope.ids(level) - totals_failed[level] - _parents_of(tree, below, failed[(below, family)], level)
                )
                _, inserted, updated = warehouse.roll_up_breakdowns(
                    account_id, level, family, window.since, window.until, kept, now, fresh=fresh[key]
                )
                failed[key] = set(scope.ids(level) - kept)
                counts["inserted"] += inserted
                counts["updated"] += updated
            if not fresh[key]:
                read_ok = None if scope.is_full and not failed[key] else scope.ids(level) - failed[key]
                counts["deleted"] += warehouse.delete_stale_breakdowns(
                    account_id, level, family, window.since, window.until, read_ok
                )
            below = level
        check_stop()


def _parents_of(tree: EntityTree, child: Level, child_ids: set[str], parent: Level) -> set[str]:
    """The `parent`-level ids of the given `child`-level entities."""
    if not child_ids:
        return set()
    frame = tree.frame(child)
    chosen = frame[frame[LEVEL_SPECS[child].id_column].isin(child_ids)]
    return set(chosen[LEVEL_SPECS[parent].id_column].astype(str))


def _finish_report(
    report: SyncReport,
    tally: _Tally,
    source: InsightsSource,
    stats_before: tuple[int, int],
    started: float,
    secrets: list[str],
    status: str,
    fatal: str | None = None,
) -> None:
    for level in LEVELS:
        counts = report.counts(level)
        counts.processed = tally.processed[level]
        counts.errors = len(tally.failures[level])
        counts.success = counts.processed - counts.errors
    errors = [
        f"{level.capitalize()} {entity_id}: {reason}"
        for level in LEVELS
        for entity_id, reason in sorted(tally.failures[level].items())
    ]
    if len(errors) > MAX_ERRORS_LISTED:
        errors = errors[:MAX_ERRORS_LISTED] + [f"... and {len(errors) - MAX_ERRORS_LISTED} more entity errors"]
    errors += tally.notes
    committed = status == "succeeded"
    processed = sum(tally.processed.values())
    failed = sum(len(f) for f in tally.failures.values())
    if committed and processed and failed / processed > MAX_FAILED_SHARE:
        # the entities that were read are stored, but a sync that missed most of them did not succeed
        status = "failed"
        stored = "the others were stored" if failed < processed else "nothing was read"
        fatal = f"{failed} of {processed} entities failed (more than {MAX_FAILED_SHARE:.0%}); {stored}"
    if fatal:
        errors.insert(0, fatal)
    report.errors = [redact(e, secrets) for e in errors]
    report.rows_read = tally.rows if committed else 0
    report.rows_inserted = tally.inserted if committed else 0
    report.rows_updated = tally.updated if committed else 0
    report.rows_deleted = tally.deleted if committed else 0
    report.api_requests = source.stats.api_requests - stats_before[0]
    report.rate_limit_hits = source.stats.rate_limit_hits - stats_before[1]
    if committed and any(tally.breakdown_rows.values()):
        log.info("sync %s: breakdown rows %s", report.sync_id, tally.breakdown_rows)
    report.status = status  # type: ignore[assignment]
    report.success = status == "succeeded"
    report.total_duration_seconds = round(time.monotonic() - started, 3)


class _ProgressReporter:
    """Turns running counts into the progress dict the control channel stores."""

    def __init__(self, report: SyncReport, tally: _Tally, sink: ProgressSink | None) -> None:
        self.report, self.tally, self.sink = report, tally, sink

    def emit(self, message: str) -> None:
        if self.sink is None:
            return
        self.sink(
            {
                "sync_id": self.report.sync_id,
                "message": message,
                "levels": {lvl: {"done": self.tally.done[lvl], "total": self.tally.processed[lvl]} for lvl in LEVELS},
                "rows_read": self.tally.rows,
            }
        )
