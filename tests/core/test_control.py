"""The control channel: Sync now requests, their progress and report, and the worker heartbeat."""

from __future__ import annotations

import datetime as dt
import threading

from insights_core.control import STALE_AFTER_SECONDS, ControlChannel
from insights_core.models import SyncReport, SyncRequest


def test_an_equal_request_while_one_is_open_does_not_queue_a_second(tmp_path) -> None:
    control = ControlChannel(tmp_path / "control.sqlite")
    first, created = control.save_request(SyncRequest(days_back=7, requested_by="ana"))
    again, created_again = control.save_request(SyncRequest(days_back=7, requested_by="bob"))
    other, created_other = control.save_request(SyncRequest(days_back=8))
    assert created and not created_again and created_other
    assert again == first and other != first
    claimed = control.claim_next_request()
    assert claimed is not None and claimed[0] == first and claimed[2] == "ana"
    # still open while running
    assert control.save_request(SyncRequest(days_back=7)) == (first, False)
    report = SyncReport(sync_id="s1", sync_timestamp="2026-11-20T00:00:00+00:00", sync_type="manual", mode="stub",
                        status="succeeded", success=True)
    control.finish_request(first, report)
    assert control.fetch_request(first).status == "succeeded"
    assert control.fetch_request(first).report["sync_id"] == "s1"
    # once finished, the same request queues again
    assert control.save_request(SyncRequest(days_back=7))[1] is True


def test_concurrent_double_clicks_queue_exactly_one_request(tmp_path) -> None:
    control = ControlChannel(tmp_path / "control.sqlite")
    results: list[tuple[int, bool]] = []
    threads = [threading.Thread(target=lambda: results.append(
        ControlChannel(tmp_path / "control.sqlite").save_request(SyncRequest(days_back=3)))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(created for _, created in results) == 1
    assert len({request_id for request_id, _ in results}) == 1
    assert control.claim_next_request() is not None and control.claim_next_request() is None


def test_claims_go_oldest_first_and_only_once(tmp_path) -> None:
    control = ControlChannel(tmp_path / "control.sqlite")
    ids = [control.save_request(SyncRequest(days_back=d))[0] for d in (1, 2, 3)]
    claimed = [control.claim_next_request()[0] for _ in range(3)]
    assert claimed == ids and control.claim_next_request() is None


def test_progress_and_failure_are_recorded(tmp_path) -> None:
    control = ControlChannel(tmp_path / "control.sqlite")
    request_id, _ = control.save_request(SyncRequest(days_back=2))
    control.claim_next_request()
    control.save_request_progress(request_id, "s9", {"sync_id": "s9", "levels": {"ad": {"done": 3, "total": 9}}})
    record = control.fetch_request(request_id)
    assert record.status == "running" and record.progress["levels"]["ad"] == {"done": 3, "total": 9}
    control.finish_request(request_id, None, error="unknown campaign id: 1")
    record = control.fetch_request(request_id)
    assert record.status == "failed" and record.error == "unknown campaign id: 1"


def test_orphaned_running_requests_are_failed_at_worker_start(tmp_path) -> None:
    control = ControlChannel(tmp_path / "control.sqlite")
    request_id, _ = control.save_request(SyncRequest(days_back=2))
    control.claim_next_request()
    assert control.fail_orphaned_requests() == 1
    record = control.fetch_request(request_id)
    assert record.status == "failed" and "nothing of it was committed" in record.error


def test_heartbeat_goes_stale(tmp_path) -> None:
    control = ControlChannel(tmp_path / "control.sqlite")
    assert control.fetch_worker_status() is None
    start = dt.datetime.now(dt.timezone.utc)
    control.save_heartbeat(mode="stub", state="idle", started_at=start, interval_minutes=30, sync_enabled=True)
    status = control.fetch_worker_status()
    assert status.is_alive() and status.state == "idle" and status.mode == "stub"
    assert not status.is_alive(status.heartbeat_at + dt.timedelta(seconds=STALE_AFTER_SECONDS + 1))
    control.save_heartbeat(mode="stub", state="stopped", started_at=start, interval_minutes=30, sync_enabled=True)
    assert not control.fetch_worker_status().is_alive()
