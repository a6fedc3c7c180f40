"""The sync worker: the only process that writes insights.

It holds an exclusive lock on the data directory, runs scheduled syncs with `schedule`, serves
Sync now requests from the control channel within a couple of seconds, publishes a snapshot after
every sync and keeps a heartbeat the app reads. With INSIGHTS_STORE=ducklake it is one of many
workers: no lock file; it leases the ad accounts it syncs through PostgreSQL
(`insights_core.cluster.leases`), renews them from its heartbeat thread, and each account's scheduled
sync of an interval is done by whichever worker leases it first. SIGTERM and SIGINT stop it cleanly: a running
sync rolls back at its next step and no snapshot is half-written.

No I/O error ends the loop: a full disk, a permission, a deleted or corrupt control database fails
that one sync or request (its report and `sync_runs` say why), is logged as one line, and the loop
backs off and goes on. Only a stop signal ends it.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import schedule

from insights_core.control import (
    STALE_AFTER_SECONDS,
    WORKER_HEARTBEAT_SECONDS,
    Control,
    new_worker_id,
    open_control_channel,
)
from insights_core.datadir import PRIVATE_FILE_MODE, ensure_private_dir, make_private
from insights_core.engine import check_entity_ids, new_failed_report, run_sync
from insights_core.errors import InputError, InsightsError, PublishError, WorkerLockedError
from insights_core.manager.after_sync import evaluate_and_notify
from insights_core.models import Account, EntityTree, SyncReport, SyncRequest
from insights_core.settings import Settings
from insights_core.sources import InsightsSource, open_source
from insights_core.store.engines import open_warehouse

if TYPE_CHECKING:
    from insights_core.cluster.leases import AccountLeases, Lease

log = logging.getLogger("meta_insights.worker")
REQUEST_POLL_SECONDS = 1.0
MAINTENANCE_CHECK_SECONDS = 60.0
"""How often an idle worker on the lake asks whether maintenance is due (a PostgreSQL round trip)."""
PROGRESS_WRITE_SECONDS = 0.25
ERROR_BACKOFF_SECONDS = (1.0, 60.0)
"""After a failed loop step the worker waits the first figure, doubling up to the second, then tries again."""
PUBLISH_RETRY_SECONDS = 60.0
"""How often an idle worker retries a publish that failed (a full disk that was freed)."""
REPEAT_LOG_SECONDS = 300.0
"""The same error is logged again at most this often while it persists."""
ACCOUNTS_PER_SCHEDULED_SYNC = 1
"""Many workers: accounts leased for one scheduled sync. One spreads the accounts over the workers,
keeps each lake commit small (fewer write conflicts), and a killed worker loses one account's work."""
FAILED_SCHEDULED_RETRY_SECONDS = 60.0
"""Many workers: a failed scheduled sync of an account is due again this much later (by any worker)."""
LEASE_WAIT_POLL_SECONDS = 0.5
"""Many workers: how often a Sync now request looks again for accounts another worker holds."""
LEASE_WAIT_SECONDS = 600.0
"""Many workers: how long a Sync now request waits for accounts another worker is syncing (a scheduled
sync of a big account takes minutes) before it skips them and says so in its report."""


@contextmanager
def hold_worker_lock(data_dir: Path) -> Iterator[IO[str]]:
    """Exclusive lock on `<data dir>/worker.lock` for the life of the worker (released by the OS on kill)."""
    ensure_private_dir(data_dir)
    path = data_dir / "worker.lock"
    handle = os.fdopen(os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, PRIVATE_FILE_MODE), "a+", encoding="utf-8")
    make_private(path)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise WorkerLockedError(
            f"another sync worker (pid {holder}) is already running on {data_dir.resolve()}; "
            "stop it first, or give this one another INSIGHTS_DATA_DIR"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    try:
        yield handle
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


class _ErrorLog:
    """Logs a failing step as one line: once when it starts failing, again only if it changes or every
    REPEAT_LOG_SECONDS, and once when it works again. A loop retrying each second never floods the log."""

    def __init__(self) -> None:
        self._last: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def failed(self, step: str, exc: BaseException) -> None:
        line = f"{type(exc).__name__}: {exc}"
        now = time.monotonic()
        with self._lock:
            previous = self._last.get(step)
            if previous is not None and previous[0] == line and now - previous[1] < REPEAT_LOG_SECONDS:
                return
            self._last[step] = (line, now)
        log.error("%s failed: %s", step, line)

    def worked(self, step: str) -> None:
        with self._lock:
            previous = self._last.pop(step, None)
        if previous is not None:
            log.info("%s works again", step)


class SyncWorker:
    """Runs syncs against one data directory; `run_once` for the CLI, `run_forever` for the loop."""

    def __init__(
        self, settings: Settings, source: InsightsSource | None = None, lease_seconds: float | None = None
    ) -> None:
        """`lease_seconds` overrides INSIGHTS_LEASE_SECONDS (whose minimum is 10) for tests."""
        self.settings = settings
        self.source = source or open_source(settings)
        self.worker_id = new_worker_id()
        self._control: Control | None = None
        self.leases: AccountLeases | None = None
        """Many workers (INSIGHTS_STORE=ducklake): this worker's account leases; None for the single worker."""
        if settings.store == "ducklake":
            from insights_core.cluster.leases import AccountLeases  # psycopg only where PostgreSQL is used

            assert settings.catalog_url is not None  # the settings refuse ducklake without it
            self.leases = AccountLeases(
                settings.catalog_url.get_secret_value(), self.worker_id, lease_seconds or settings.lease_seconds
            )
        self._accounts: tuple[float, list[Account]] | None = None
        self._heartbeat_running = False
        self._next_orphan_sweep = 0.0
        self._next_maintenance_check = 0.0
        self.warehouse = open_warehouse(settings)
        self.stop_event = threading.Event()
        self.started_at = dt.datetime.now(dt.timezone.utc)
        self._state = "starting"
        self._progress: dict[str, Any] | None = None
        self._current_sync_id: str | None = None
        self._last_report: SyncReport | None = None
        self._status_lock = threading.Lock()
        self._last_progress_write = 0.0
        self._scheduled_due = False
        self._errors = _ErrorLog()
        self._publish_pending = False
        self._next_publish_retry = 0.0
        self._unfinished: list[tuple[int, SyncReport | None, str | None]] = []

    @property
    def control(self) -> Control:
        """The control channel, opened on first use: `--once` never creates control.sqlite."""
        if self._control is None:
            self._control = open_control_channel(self.settings, worker_id=self.worker_id)
        return self._control

    @property
    def last_report(self) -> SyncReport | None:
        """The report of the last sync this worker ran (also when the control DB could not take it)."""
        return self._last_report

    def close(self) -> None:
        self.warehouse.close()
        self.source.close()

    def install_signal_handlers(self) -> None:
        def request_stop(signum: int, _frame: object) -> None:
            log.info("received %s: stopping after the current step", signal.Signals(signum).name)
            self.stop_event.set()
            self.source.interrupt()

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)

    def sync_and_publish(
        self,
        request: SyncRequest,
        trees: list[EntityTree] | None = None,
        before_commit: Callable[[], None] | None = None,
    ) -> SyncReport:
        """Run one sync, publish a snapshot (also after a failure, so its report is visible), log it.

        Never raises for storage errors: a warehouse that cannot be opened, a sync that hits a full
        disk, or a failed publish give a report with success false whose first error says why.
        A publish that fails after the commit keeps the sync's rows; its run in `sync_runs` is
        rewritten as failed, and the next successful publish (retried while idle) shows them.
        """

        def on_progress(progress: dict[str, Any]) -> None:
            with self._status_lock:
                self._progress, self._current_sync_id = progress, progress["sync_id"]
            now = time.monotonic()
            if request.request_id is not None and now - self._last_progress_write >= PROGRESS_WRITE_SECONDS:
                self._last_progress_write = now
                try:
                    self.control.save_request_progress(request.request_id, progress["sync_id"], progress)
                    self._errors.worked("progress write")
                except Exception as exc:  # progress is advisory; the sync goes on
                    self._errors.failed("progress write", exc)

        self._set_state("syncing")
        try:
            try:
                self.warehouse.ensure_open()
            except Exception as exc:
                report = new_failed_report(request, self.source.mode, f"the warehouse cannot be opened: {exc}")
                report.worker = self.worker_id
            else:
                report = run_sync(
                    request,
                    source=self.source,
                    warehouse=self.warehouse,
                    settings=self.settings,
                    on_progress=on_progress,
                    should_stop=self.stop_event.is_set,
                    trees=trees,
                    before_commit=before_commit,
                    worker=self.worker_id,
                )
                self._publish_after(report)
                if report.success:  # alerts never fail a sync: evaluate_and_notify does not raise
                    evaluate_and_notify(self.settings, self.warehouse.con, report.sync_id)
        finally:
            with self._status_lock:
                self._progress, self._current_sync_id = None, None
            self._set_state("idle")
        self._last_report = report
        log.info(
            "Sync completed" if report.success else f"Sync {report.status}",
            extra={
                "sync_id": report.sync_id,
                "sync_type": report.sync_type,
                "campaigns": report.campaigns.processed,
                "adsets": report.adsets.processed,
                "ads": report.ads.processed,
                "duration_seconds": report.total_duration_seconds,
                "errors": len(report.errors),
                "rows_read": report.rows_read,
                "rate_limit_hits": report.rate_limit_hits,
                "mode": report.mode,
                "success": report.success,
            },
        )
        for line in report.errors[:5]:
            log.warning("sync %s: %s", report.sync_id, line)
        return report

    def _publish_after(self, report: SyncReport) -> None:
        try:
            self._publish()
        except PublishError as exc:
            line = f"{exc}; the sync's rows are stored and the next successful publish shows them"
            report.errors.insert(0 if report.success else len(report.errors), line)
            report.status, report.success = "failed", False
            try:
                self.warehouse.ensure_open()
                self.warehouse.save_sync_run(report)
            except Exception as record_error:
                report.errors.append(f"this run could not be recorded in sync_runs: {record_error}")

    def _publish(self) -> None:
        try:
            self.warehouse.publish(self.settings.snapshot_dir, self.settings.current_snapshot_link)
        except PublishError as exc:
            self._publish_pending = True
            self._next_publish_retry = time.monotonic() + PUBLISH_RETRY_SECONDS
            self._errors.failed("publish", exc)
            raise
        self._publish_pending = False
        self._errors.worked("publish")

    def run_once(self, request: SyncRequest, trees: list[EntityTree] | None = None) -> SyncReport:
        """One sync (the CLI's --once, a Sync now request); among many workers, of the accounts it leases."""
        if self.leases is not None:
            return self._sync_leasing(request, trees)
        return self.sync_and_publish(request, trees)

    def run_forever(self) -> None:
        """The loop: scheduled syncs, Sync now requests and the heartbeat, until SIGTERM/SIGINT."""
        try:
            orphaned = self.control.fail_orphaned_requests()
            if orphaned:
                log.warning("marked %d request(s) left running by a previous worker as failed", orphaned)
        except Exception as exc:
            self._errors.failed("control database", exc)
        heartbeat = threading.Thread(target=self._heartbeat_loop, name="heartbeat", daemon=True)
        self._heartbeat_running = True
        heartbeat.start()
        if self.leases is not None:
            log.info("one of many workers (%s): account leases of %.0f s", self.worker_id, self.leases.lease_seconds)
            if not self.settings.sync_enabled:
                log.info("INSIGHTS_SYNC_ENABLED is false: serving Sync now requests only")
        elif self.settings.sync_enabled:
            schedule.every(self.settings.sync_interval_minutes).minutes.do(self._mark_scheduled_due)
            if self._data_is_fresh():
                log.info(
                    "data is fresh (synced less than %d minutes ago): first sync at the next interval",
                    self.settings.sync_interval_minutes,
                )
            else:
                self._scheduled_due = True
        else:
            log.info("INSIGHTS_SYNC_ENABLED is false: serving Sync now requests only")
        if self.warehouse.applied_migrations and self.settings.current_snapshot_link.exists():
            # the dashboard queries the new schema: publish it now rather than at the next sync
            self._publish_pending, self._next_publish_retry = True, 0.0
        self._set_state("idle")
        log.info(
            "worker started",
            extra={
                "mode": self.settings.mode,
                "pid": os.getpid(),
                "interval_minutes": self.settings.sync_interval_minutes,
            },
        )
        backoff = ERROR_BACKOFF_SECONDS[0]
        try:
            while not self.stop_event.is_set():
                try:
                    busy = self._run_one_step()
                    self._errors.worked("worker loop")
                    backoff = ERROR_BACKOFF_SECONDS[0]
                except Exception as exc:  # one failed step must not end the worker
                    self._errors.failed("worker loop", exc)
                    self.stop_event.wait(backoff)
                    backoff = min(backoff * 2, ERROR_BACKOFF_SECONDS[1])
                    continue
                if not busy:
                    self.stop_event.wait(REQUEST_POLL_SECONDS)
        finally:
            schedule.clear()
            self._set_state("stopped")
            try:
                self._write_heartbeat()
            except Exception as exc:
                self._errors.failed("heartbeat", exc)
            log.info("worker stopped")

    def _run_one_step(self) -> bool:
        """One turn of the loop; True when it did work (so the loop looks again at once)."""
        self._finish_unfinished_requests()
        schedule.run_pending()
        if self._serve_one_request():
            return True
        if self.leases is not None:
            self._sweep_orphaned_requests()
            if self.settings.sync_enabled and self._sync_due_accounts(self.leases):
                return True
            self._maintain_lake_if_due()
        elif self._scheduled_due:
            self._scheduled_due = False
            self.sync_and_publish(SyncRequest(sync_type="scheduled"))
            return True
        if self._publish_pending and time.monotonic() >= self._next_publish_retry:
            self.warehouse.ensure_open()
            try:
                self._publish()
                log.info("published the snapshot held back (by a failed publish or a schema migration)")
            except PublishError:
                pass  # logged once by _publish; retried after PUBLISH_RETRY_SECONDS
        return False

    def _maintain_lake_if_due(self) -> None:
        """Between syncs, at most once a minute: ask whether the lake's maintenance is due (one worker runs it)."""
        from insights_core.store.lake_warehouse import LakeWarehouse  # the embedded store never loads the lake

        if time.monotonic() < self._next_maintenance_check or not isinstance(self.warehouse, LakeWarehouse):
            return
        self._next_maintenance_check = time.monotonic() + MAINTENANCE_CHECK_SECONDS
        try:
            run = self.warehouse.run_maintenance_if_due(self.worker_id)
        except InsightsError as exc:  # the catalog unreachable: syncs report it; maintenance waits
            log.warning("lake maintenance skipped: %s", exc)
            return
        if run is not None:
            log.info(
                "lake maintenance: %d -> %d data files, %d snapshots expired, %d files deleted in %.1f s%s",
                run.files_before,
                run.files_after,
                run.snapshots_expired,
                run.files_deleted,
                run.seconds,
                f" (failed: {run.error})" if run.error else "",
            )

    def _mark_scheduled_due(self) -> None:
        self._scheduled_due = True

    def _serve_one_request(self) -> bool:
        """Run the oldest queued Sync now request (claimed validated); False when none is queued.

        Its ids are checked against the entities the sync fetches, as for `--once --entity-ids`: an
        unknown id fails the request with a report that echoes it and says which ids are unknown.
        """
        request = self.control.claim_next_request(self.settings.max_days_back)
        if request is None:
            return False
        request_id = request.request_id
        assert request_id is not None  # the control channel sets it on every claimed request
        report: SyncReport | None = None
        error: str | None = None
        try:
            log.info("serving Sync now request %d from %s", request_id, request.requested_by or "unknown")
            report = self.run_once(request)
        except InputError as exc:
            log.warning("request %d refused: %s", request_id, exc)
            error = str(exc)
            report = new_failed_report(request, self.source.mode, error)
        except Exception as exc:  # the request fails with a message; the loop goes on
            error = f"the sync failed: {type(exc).__name__}: {exc}"
            self._errors.failed(f"request {request_id}", exc)
        self._unfinished.append((request_id, report, error))
        self._finish_unfinished_requests()
        return True

    def _finish_unfinished_requests(self) -> None:
        """Record finished requests; one the control DB refused is retried at the next turn."""
        while self._unfinished:
            request_id, report, error = self._unfinished[0]
            self.control.finish_request(request_id, report, error=error)
            self._unfinished.pop(0)

    def _sync_due_accounts(self, leases: AccountLeases) -> bool:
        """Many workers: lease accounts whose scheduled sync is due and sync them; False when none is."""
        accounts = self._fetch_accounts(leases)
        due = leases.claim_due(
            self.settings.sync_interval_minutes * 60.0,
            ACCOUNTS_PER_SCHEDULED_SYNC,
            among=[account.account_id for account in accounts],
        )
        if not due:
            return False
        log.info("scheduled sync of %s", ", ".join(lease.account_id for lease in due))
        report: SyncReport | None = None
        try:
            ids = {lease.account_id for lease in due}
            trees = [self.source.fetch_entities(account) for account in accounts if account.account_id in ids]
            report = self.sync_and_publish(
                SyncRequest(sync_type="scheduled"), trees, before_commit=lambda: leases.confirm(due)
            )
        finally:
            # a cancelled sync (the worker stops) leaves the account due: another worker takes it at once;
            # a failed one is tried again soon, not an interval later (a commit cut by a database restart)
            done = report is not None and report.status != "cancelled"
            retry = None if report is None or report.success else FAILED_SCHEDULED_RETRY_SECONDS
            leases.release(due, scheduled_done=done, retry_in=retry)
        return True

    def _sync_leasing(self, request: SyncRequest, trees: list[EntityTree] | None) -> SyncReport:
        """Many workers: sync the request's accounts this worker can lease.

        Accounts another worker holds (it is syncing them) are waited for, up to LEASE_WAIT_SECONDS,
        then skipped: each skipped account is a line in the report's errors and the request is
        reported failed, so nobody mistakes it for done.
        """
        from insights_core.cluster.leased_sync import accounts_needed, describe_skipped, restrict_request

        assert self.leases is not None
        leases = self.leases
        if trees is None:
            trees = [self.source.fetch_entities(account) for account in self._fetch_accounts(leases)]
        check_entity_ids(trees, request)  # an unknown id is refused before anything is leased
        needed = accounts_needed(trees, request)
        held: list[Lease] = []
        # renewed while waiting too: the accounts leased first must not expire (and go to another
        # worker) while this request waits minutes for one that another worker is syncing
        with self._renewing_leases(leases):
            try:
                held += leases.claim(needed)
                if len(held) < len(needed):
                    log.info("waiting for %d account(s) another worker is syncing", len(needed) - len(held))
                deadline = time.monotonic() + LEASE_WAIT_SECONDS
                while len(held) < len(needed) and time.monotonic() < deadline and not self.stop_event.is_set():
                    self.stop_event.wait(LEASE_WAIT_POLL_SECONDS)
                    taken = {lease.account_id for lease in held}
                    held += leases.claim([account_id for account_id in needed if account_id not in taken])
                taken = {lease.account_id for lease in held}
                skipped = [account_id for account_id in needed if account_id not in taken]
                now = dt.datetime.now(dt.timezone.utc)
                skipped_lines = describe_skipped(skipped, leases.fetch_holders(skipped), now)
                if not held:
                    return new_failed_report(request, self.source.mode, "; ".join(skipped_lines) or "no ad account")
                restricted, leased_trees = restrict_request(trees, request, taken)
                report = self.sync_and_publish(restricted, leased_trees, before_commit=lambda: leases.confirm(held))
            finally:
                leases.release(held)
        if skipped_lines:
            report.errors[:0] = skipped_lines
            report.status, report.success = "failed", False
        return report

    @contextmanager
    def _renewing_leases(self, leases: AccountLeases) -> Iterator[None]:
        """Renew the leases while the body runs when no heartbeat thread does (`--once`)."""
        if self._heartbeat_running:
            yield
            return
        done = threading.Event()

        def renew() -> None:
            while not done.wait(self._heartbeat_period()):
                try:
                    leases.renew_held()
                except Exception as exc:  # the fencing check before the commit tells whether it mattered
                    self._errors.failed("lease renewal", exc)

        thread = threading.Thread(target=renew, name="lease-renewal", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()

    def _heartbeat_period(self) -> float:
        # leases are renewed at least three times per lease period, so one slow renewal loses nothing
        if self.leases is None:
            return WORKER_HEARTBEAT_SECONDS
        return min(WORKER_HEARTBEAT_SECONDS, self.leases.lease_seconds / 3)

    def _fetch_accounts(self, leases: AccountLeases) -> list[Account]:
        """The source's accounts (a network call per account in live mode), fetched again each interval
        and made leasable in PostgreSQL."""
        now = time.monotonic()
        if self._accounts is None or now - self._accounts[0] >= self.settings.sync_interval_minutes * 60:
            accounts = self.source.fetch_accounts()
            leases.save_accounts(account.account_id for account in accounts)
            self._accounts = (now, accounts)
        return self._accounts[1]

    def _sweep_orphaned_requests(self) -> None:
        """Many workers: fail the requests of a worker that died (any worker may, every few seconds)."""
        now = time.monotonic()
        if now < self._next_orphan_sweep:
            return
        self._next_orphan_sweep = now + STALE_AFTER_SECONDS
        orphaned = self.control.fail_orphaned_requests()
        if orphaned:
            log.warning("marked %d request(s) left running by a stopped worker as failed", orphaned)

    def _data_is_fresh(self) -> bool:
        try:
            self.warehouse.ensure_open()
            last = self.warehouse.fetch_last_success_time()
        except Exception as exc:
            self._errors.failed("warehouse", exc)
            return False
        if last is None:
            return False
        age = dt.datetime.now(dt.timezone.utc) - last
        return age < dt.timedelta(minutes=self.settings.sync_interval_minutes)

    def _set_state(self, state: str) -> None:
        with self._status_lock:
            self._state = state

    def _heartbeat_loop(self) -> None:
        period = self._heartbeat_period()
        while not self.stop_event.is_set():
            try:
                self._write_heartbeat()
                self._errors.worked("heartbeat")
            except Exception as exc:  # a locked or full disk must not kill the worker; the app will see staleness
                self._errors.failed("heartbeat", exc)
            if self.leases is not None:
                try:
                    self.leases.renew_held()
                    self._errors.worked("lease renewal")
                except Exception as exc:  # an unrenewed lease expires; the fencing check stops its commit
                    self._errors.failed("lease renewal", exc)
            self.stop_event.wait(period)

    def _write_heartbeat(self) -> None:
        with self._status_lock:
            state, progress, sync_id = self._state, self._progress, self._current_sync_id
        next_run = schedule.next_run() if self.settings.sync_enabled and schedule.get_jobs() else None
        self.control.save_heartbeat(
            mode=self.settings.mode,
            state=state,
            started_at=self.started_at,
            interval_minutes=self.settings.sync_interval_minutes,
            sync_enabled=self.settings.sync_enabled,
            next_run_at=next_run.astimezone(dt.timezone.utc) if next_run else None,
            current_sync_id=sync_id,
            progress=progress,
            last_report=self._last_report,
        )
