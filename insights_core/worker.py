"""The sync worker: the only process that writes insights.

It holds an exclusive lock on the data directory, runs scheduled syncs with `schedule`, serves
Sync now requests from the control channel within a couple of seconds, publishes a snapshot after
every sync and keeps a heartbeat the app reads. SIGTERM and SIGINT stop it cleanly: a running
sync rolls back at its next step and no snapshot is half-written.
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
from typing import IO

import schedule

from insights_core.control import HEARTBEAT_SECONDS, ControlChannel
from insights_core.engine import run_sync
from insights_core.errors import InputError, WorkerLockedError
from insights_core.models import SyncReport, SyncRequest
from insights_core.settings import Settings
from insights_core.sources import InsightsSource, open_source
from insights_core.store.warehouse import Warehouse
from insights_core.sync_requests import parse_sync_request

log = logging.getLogger("meta_insights.worker")
REQUEST_POLL_SECONDS = 1.0
PROGRESS_WRITE_SECONDS = 0.25


@contextmanager
def hold_worker_lock(data_dir: Path) -> Iterator[IO[str]]:
    """Exclusive lock on `<data dir>/worker.lock` for the life of the worker (released by the OS on kill)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "worker.lock"
    handle = open(path, "a+", encoding="utf-8")
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


class SyncWorker:
    """Runs syncs against one data directory; `run_once` for the CLI, `run_forever` for the loop."""

    def __init__(self, settings: Settings, source: InsightsSource | None = None) -> None:
        self.settings = settings
        self.source = source or open_source(settings)
        self.control = ControlChannel(settings.control_db_path)
        self.warehouse = Warehouse(settings.db_path, settings.duckdb_memory_limit)
        self.stop_event = threading.Event()
        self.started_at = dt.datetime.now(dt.timezone.utc)
        self._state = "starting"
        self._progress: dict | None = None
        self._current_sync_id: str | None = None
        self._last_report: SyncReport | None = None
        self._status_lock = threading.Lock()
        self._last_progress_write = 0.0
        self._scheduled_due = False

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

    def sync_and_publish(self, request: SyncRequest) -> SyncReport:
        """Run one sync, publish a snapshot (also after a failure, so its report is visible), log it."""
        def on_progress(progress: dict) -> None:
            with self._status_lock:
                self._progress, self._current_sync_id = progress, progress["sync_id"]
            now = time.monotonic()
            if request.request_id is not None and now - self._last_progress_write >= PROGRESS_WRITE_SECONDS:
                self._last_progress_write = now
                self.control.save_request_progress(request.request_id, progress["sync_id"], progress)

        self._set_state("syncing")
        try:
            report = run_sync(request, source=self.source, warehouse=self.warehouse, settings=self.settings,
                              on_progress=on_progress, should_stop=self.stop_event.is_set)
            self.warehouse.publish(self.settings.snapshot_dir, self.settings.current_snapshot_link)
        finally:
            with self._status_lock:
                self._progress, self._current_sync_id = None, None
            self._set_state("idle")
        self._last_report = report
        log.info(
            "Sync completed" if report.success else f"Sync {report.status}",
            extra={"sync_id": report.sync_id, "sync_type": report.sync_type, "campaigns": report.campaigns.processed,
                   "adsets": report.adsets.processed, "ads": report.ads.processed,
                   "duration_seconds": report.total_duration_seconds, "errors": len(report.errors),
                   "rows_written": report.rows_written, "rate_limit_hits": report.rate_limit_hits,
                   "mode": report.mode, "success": report.success},
        )
        for line in report.errors[:5]:
            log.warning("sync %s: %s", report.sync_id, line)
        return report

    def run_once(self, request: SyncRequest) -> SyncReport:
        return self.sync_and_publish(request)

    def run_forever(self) -> None:
        """The loop: scheduled syncs, Sync now requests and the heartbeat, until SIGTERM/SIGINT."""
        orphaned = self.control.fail_orphaned_requests()
        if orphaned:
            log.warning("marked %d request(s) left running by a previous worker as failed", orphaned)
        heartbeat = threading.Thread(target=self._heartbeat_loop, name="heartbeat", daemon=True)
        heartbeat.start()
        if self.settings.sync_enabled:
            schedule.every(self.settings.sync_interval_minutes).minutes.do(self._mark_scheduled_due)
            if self._data_is_fresh():
                log.info("data is fresh (synced less than %d minutes ago): first sync at the next interval",
                         self.settings.sync_interval_minutes)
            else:
                self._scheduled_due = True
        else:
            log.info("INSIGHTS_SYNC_ENABLED is false: serving Sync now requests only")
        self._set_state("idle")
        log.info("worker started", extra={"mode": self.settings.mode, "pid": os.getpid(),
                                           "interval_minutes": self.settings.sync_interval_minutes})
        try:
            while not self.stop_event.is_set():
                schedule.run_pending()
                if self._serve_one_request():
                    continue
                if self._scheduled_due:
                    self._scheduled_due = False
                    self.sync_and_publish(SyncRequest(sync_type="scheduled"))
                    continue
                self.stop_event.wait(REQUEST_POLL_SECONDS)
        finally:
            schedule.clear()
            self._set_state("stopped")
            self._write_heartbeat()
            log.info("worker stopped")

    def _mark_scheduled_due(self) -> None:
        self._scheduled_due = True

    def _serve_one_request(self) -> bool:
        claimed = self.control.claim_next_request()
        if claimed is None:
            return False
        request_id, params, requested_by = claimed
        try:
            request = parse_sync_request(max_days_back=self.settings.max_days_back, sync_type="manual",
                                         request_id=request_id, requested_by=requested_by, **params)
            log.info("serving Sync now request %d from %s", request_id, requested_by or "unknown")
            report = self.sync_and_publish(request)
        except InputError as exc:
            log.warning("request %d refused: %s", request_id, exc)
            self.control.finish_request(request_id, None, error=str(exc))
            return True
        self.control.finish_request(request_id, report)
        return True

    def _data_is_fresh(self) -> bool:
        last = self.warehouse.fetch_last_success_time()
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
            except Exception:  # a locked or full disk must not kill the worker; the app will see staleness
                log.exception("heartbeat write failed")
            self.stop_event.wait(HEARTBEAT_SECONDS)

    def _write_heartbeat(self) -> None:
        with self._status_lock:
            state, progress, sync_id = self._state, self._progress, self._current_sync_id
        next_run = schedule.next_run() if self.settings.sync_enabled and schedule.get_jobs() else None
        self.control.save_heartbeat(
            mode=self.settings.mode, state=state, started_at=self.started_at,
            interval_minutes=self.settings.sync_interval_minutes, sync_enabled=self.settings.sync_enabled,
            next_run_at=next_run.astimezone(dt.timezone.utc) if next_run else None,
            current_sync_id=sync_id, progress=progress, last_report=self._last_report,
        )
