"""The sync worker: the only process that writes insights.

It holds an exclusive lock on the data directory, runs scheduled syncs with `schedule`, serves
Sync now requests from the control channel within a couple of seconds, publishes a snapshot after
every sync and keeps a heartbeat the app reads. SIGTERM and SIGINT stop it cleanly: a running
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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import schedule

from insights_core.control import WORKER_HEARTBEAT_SECONDS, ControlChannel
from insights_core.datadir import PRIVATE_FILE_MODE, ensure_private_dir, make_private
from insights_core.engine import new_failed_report, run_sync
from insights_core.errors import InputError, PublishError, WorkerLockedError
from insights_core.manager.after_sync import evaluate_and_notify
from insights_core.models import EntityTree, SyncReport, SyncRequest
from insights_core.settings import Settings
from insights_core.sources import InsightsSource, open_source
from insights_core.store.engines import open_warehouse

log = logging.getLogger("meta_insights.worker")
REQUEST_POLL_SECONDS = 1.0
PROGRESS_WRITE_SECONDS = 0.25
ERROR_BACKOFF_SECONDS = (1.0, 60.0)
"""After a failed loop step the worker waits the first figure, doubling up to the second, then tries again."""
PUBLISH_RETRY_SECONDS = 60.0
"""How often an idle worker retries a publish that failed (a full disk that was freed)."""
REPEAT_LOG_SECONDS = 300.0
"""The same error is logged again at most this often while it persists."""


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

    def __init__(self, settings: Settings, source: InsightsSource | None = None) -> None:
        self.settings = settings
        self.source = source or open_source(settings)
        self._control: ControlChannel | None = None
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
    def control(self) -> ControlChannel:
        """The control channel, opened on first use: `--once` never creates control.sqlite."""
        if self._control is None:
            self._control = ControlChannel(self.settings.control_db_path)
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

    def sync_and_publish(self, request: SyncRequest, trees: list[EntityTree] | None = None) -> SyncReport:
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
            else:
                report = run_sync(
                    request,
                    source=self.source,
                    warehouse=self.warehouse,
                    settings=self.settings,
                    on_progress=on_progress,
                    should_stop=self.stop_event.is_set,
                    trees=trees,
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
        heartbeat.start()
        if self.settings.sync_enabled:
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
        if self._scheduled_due:
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
            report = self.sync_and_publish(request)
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
        while not self.stop_event.is_set():
            try:
                self._write_heartbeat()
                self._errors.worked("heartbeat")
            except Exception as exc:  # a locked or full disk must not kill the worker; the app will see staleness
                self._errors.failed("heartbeat", exc)
            self.stop_event.wait(WORKER_HEARTBEAT_SECONDS)

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
