"""Faults the worker must survive: a full disk during publish, a deleted or corrupt control DB.

Each fault fails one sync or one request (with a message in its report and in `sync_runs`), leaves no
`.partial-*` copy behind, loses no committed row, and the loop goes on serving requests and heartbeats.
Faults are injected in process (always run); one test fills a real 16 MB tmpfs when `mount` is allowed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import json
import logging
import os
import shutil
import sqlite3
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

import insights_core.control as control_module
import insights_core.store.snapshots as snapshots_module
import insights_core.worker as worker_module
from insights_core.control import ControlChannel
from insights_core.errors import StoreError
from insights_core.models import SyncRequest
from insights_core.settings import Settings
from insights_core.store.snapshots import publish_snapshot
from insights_core.worker import SyncWorker
from tests.helpers import PYTHON, ROOT, SMALL_SHAPE, make_settings, subprocess_env, wait_for


def enospc(*_args, **_kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def partial_copy_then_enospc(src, dst, *args, **kwargs):
    """A copy that fills the disk half-way: the partial file exists when the error is raised."""
    Path(dst).write_bytes(Path(src).read_bytes()[:4096])
    enospc()


def stored_rows(db_path: Path) -> int:
    with duckdb.connect(str(db_path), read_only=True) as con:
        return con.execute("SELECT count(*) FROM meta_ad_insights").fetchone()[0]


def snapshot_runs(data: Path) -> dict[str, tuple]:
    with duckdb.connect(str((data / "current.duckdb").resolve()), read_only=True) as con:
        rows = con.execute("SELECT sync_id, status, success, rows_read FROM sync_runs").fetchall()
    return {r[0]: r[1:] for r in rows}


def leftovers(data: Path) -> list[str]:
    return [p.name for p in data.rglob("*") if p.name.startswith(".partial-") or p.name.endswith(".tmp")]


def fresh_heartbeat(path: Path, after: dt.datetime) -> bool:
    """The worker wrote a heartbeat after `after`, read without creating or repairing the file."""
    if not path.exists():
        return False
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            row = con.execute("SELECT heartbeat_at, state FROM worker_status WHERE id = 1").fetchone()
        finally:
            con.close()
    except sqlite3.DatabaseError:
        return False
    return bool(row) and dt.datetime.fromisoformat(row[0]) > after and row[1] != "stopped"


@pytest.fixture
def fast_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker_module, "REQUEST_POLL_SECONDS", 0.05)
    monkeypatch.setattr(worker_module, "WORKER_HEARTBEAT_SECONDS", 0.1)
    monkeypatch.setattr(worker_module, "ERROR_BACKOFF_SECONDS", (0.05, 0.2), raising=False)


@contextlib.contextmanager
def running_loop(settings: Settings) -> Iterator[tuple[SyncWorker, threading.Thread]]:
    worker = SyncWorker(settings)
    thread = threading.Thread(target=worker.run_forever, name="loop", daemon=True)
    thread.start()
    try:
        yield worker, thread
    finally:
        worker.stop_event.set()
        thread.join(timeout=60)
        worker.close()
    assert not thread.is_alive(), "the loop stopped when asked"


def finished(control: ControlChannel, request_id: int):
    try:
        record = control.fetch_request(request_id)
    except StoreError:  # the test reads through a full disk too
        return None
    return record if record is not None and not record.is_open else None


@pytest.fixture
def loop_settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "data", sync_enabled=False, **SMALL_SHAPE)


def test_a_publish_error_fails_the_sync_keeps_its_rows_and_the_next_publish_recovers(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    worker = SyncWorker(settings)
    try:
        monkeypatch.setattr(snapshots_module.shutil, "copyfile", partial_copy_then_enospc)
        failed = worker.run_once(SyncRequest(days_back=5))
        assert failed.success is False and failed.status == "failed"
        assert "publish failed" in failed.errors[0] and "No space left on device" in failed.errors[0]
        assert failed.rows_read > 0
        assert leftovers(settings.data_dir) == []
        assert not settings.current_snapshot_link.exists(), "nothing was published"
        run = worker.warehouse.con.execute(
            "SELECT status, success, error_count FROM sync_runs WHERE sync_id = ?", [failed.sync_id]
        ).fetchone()
        assert run == ("failed", False, 1)
        assert (
            worker.warehouse.con.execute("SELECT count(*) FROM meta_ad_insights").fetchone()[0] == failed.rows_read
        ), "the sync's rows stay committed"

        monkeypatch.undo()
        ok = worker.run_once(SyncRequest(days_back=5))
        assert ok.success is True, ok.errors
    finally:
        worker.close()
    assert stored_rows(settings.current_snapshot_link.resolve()) == failed.rows_read
    runs = snapshot_runs(settings.data_dir)
    assert runs[failed.sync_id][:2] == ("failed", False) and runs[ok.sync_id][:2] == ("succeeded", True)


@pytest.mark.parametrize("fault", ["replace", "symlink"])
def test_a_failed_rename_or_link_swap_leaves_no_new_generation_or_partial(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    worker = SyncWorker(settings)
    try:
        first = worker.run_once(SyncRequest(days_back=3))
        assert first.success
        before = sorted(p.name for p in settings.snapshot_dir.iterdir())
        target_before = settings.current_snapshot_link.resolve()
        monkeypatch.setattr(snapshots_module.os, fault, enospc)
        failed = worker.run_once(SyncRequest(days_back=3))
        monkeypatch.undo()
        assert failed.success is False and "publish failed" in failed.errors[0]
        assert sorted(p.name for p in settings.snapshot_dir.iterdir()) == before
        assert settings.current_snapshot_link.resolve() == target_before
        assert leftovers(settings.data_dir) == []
    finally:
        worker.close()


def test_partial_copies_left_by_a_crash_are_removed_by_the_next_publish(settings: Settings) -> None:
    worker = SyncWorker(settings)
    try:
        assert worker.run_once(SyncRequest(days_back=2)).success
        (settings.snapshot_dir / ".partial-insights-000009.duckdb").write_bytes(b"x" * 1000)
        assert worker.run_once(SyncRequest(days_back=2)).success
    finally:
        worker.close()
    assert leftovers(settings.data_dir) == []


def test_the_loop_survives_a_publish_error_and_serves_the_next_request(
    loop_settings: Settings, monkeypatch: pytest.MonkeyPatch, fast_loop: None
) -> None:
    calls = {"n": 0}
    real_copy = shutil.copyfile

    def fail_first_copy(src, dst, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            partial_copy_then_enospc(src, dst)
        return real_copy(src, dst, *args, **kwargs)

    monkeypatch.setattr(snapshots_module.shutil, "copyfile", fail_first_copy)
    with running_loop(loop_settings) as (worker, thread):
        control = ControlChannel(loop_settings.control_db_path)
        first, _ = control.save_request(SyncRequest(days_back=4, requested_by="test"))
        record = wait_for(lambda: finished(control, first), 30, "the first request to finish")
        assert record.status == "failed" and "No space left on device" in record.report["errors"][0]
        assert thread.is_alive()
        second, _ = control.save_request(SyncRequest(days_back=3, requested_by="test"))
        record = wait_for(lambda: finished(control, second), 30, "the second request to finish")
        assert record.status == "succeeded"
        assert thread.is_alive()
    assert leftovers(loop_settings.data_dir) == []
    runs = snapshot_runs(loop_settings.data_dir)
    assert [v[0] for v in runs.values()].count("failed") == 1


def test_the_loop_recreates_a_deleted_control_db_and_keeps_serving(
    loop_settings: Settings, fast_loop: None, caplog: pytest.LogCaptureFixture
) -> None:
    path = loop_settings.control_db_path
    started = dt.datetime.now(dt.timezone.utc)
    with running_loop(loop_settings) as (worker, thread):
        wait_for(lambda: fresh_heartbeat(path, started), 30, "a first heartbeat")
        with caplog.at_level(logging.WARNING):
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            deleted_at = dt.datetime.now(dt.timezone.utc)
            wait_for(lambda: fresh_heartbeat(path, deleted_at), 30, "a heartbeat in a recreated control DB")
            assert thread.is_alive()
            control = ControlChannel(path)
            request_id, _ = control.save_request(SyncRequest(days_back=2, requested_by="test"))
            assert wait_for(lambda: finished(control, request_id), 30, "the request").status == "succeeded"
            assert thread.is_alive()
    tracebacks = [r for r in caplog.records if r.exc_info or r.exc_text]
    assert tracebacks == [], "errors are logged as one line, without a traceback"


def test_the_loop_moves_a_corrupt_control_db_aside_and_keeps_serving(loop_settings: Settings, fast_loop: None) -> None:
    path = loop_settings.control_db_path
    started = dt.datetime.now(dt.timezone.utc)
    with running_loop(loop_settings) as (worker, thread):
        wait_for(lambda: fresh_heartbeat(path, started), 30, "a first heartbeat")
        for suffix in ("-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        path.write_bytes(b"this is not a database " * 400)
        garbled_at = dt.datetime.now(dt.timezone.utc)
        wait_for(lambda: list(path.parent.glob("control.sqlite.corrupt-*")), 30, "the corrupt file moved aside")
        wait_for(lambda: fresh_heartbeat(path, garbled_at), 30, "a heartbeat in a recreated control DB")
        control = ControlChannel(path)
        request_id, _ = control.save_request(SyncRequest(days_back=2, requested_by="test"))
        assert wait_for(lambda: finished(control, request_id), 30, "the request").status == "succeeded"
        assert thread.is_alive()
    aside = list(path.parent.glob("control.sqlite.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes().startswith(b"this is not a database")


def test_a_control_call_on_a_corrupt_file_raises_one_store_error_and_the_next_call_works(tmp_path: Path) -> None:
    path = tmp_path / "control.sqlite"
    control = ControlChannel(path)
    path.write_bytes(b"garbage" * 1000)
    with pytest.raises(StoreError, match="control"):
        control.claim_next_request(max_days_back=365)
    assert control.claim_next_request(max_days_back=365) is None
    assert control_module.ControlChannel(path).fetch_worker_status() is None


PUBLISH_FAILS_ONCE = """
import errno, os, runpy, sys
import shutil
def boom(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
shutil.copyfile = boom
sys.argv = ["sync_worker.py", "--once", "--days-back", "3"]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def test_once_with_a_full_disk_prints_a_failed_report_and_exits_1(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = subprocess_env(
        data, INSIGHTS_STUB_CAMPAIGNS="3", INSIGHTS_STUB_ADSETS_PER_CAMPAIGN="2", INSIGHTS_STUB_ADS_PER_ADSET="2"
    )
    result = subprocess.run(
        [PYTHON, "-c", PUBLISH_FAILS_ONCE], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    report = json.loads(result.stdout)
    assert report["success"] is False and "No space left on device" in report["errors"][0]
    assert stored_rows(data / "insights.duckdb") == report["rows_read"] > 0
    assert leftovers(data) == []


def mount_tmpfs(path: Path, size: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    mount_point = tmp_path / "tmpfs"
    if not mount_tmpfs(mount_point, "16m"):
        pytest.skip("mount -t tmpfs is not permitted here")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], capture_output=True, timeout=30)


@pytest.mark.parametrize("free_mb", [5, 1], ids=["copy-overflows", "write-overflows"])
def test_a_full_tmpfs_fails_the_sync_cleanly_and_the_next_sync_publishes_after_space_is_freed(
    small_tmpfs: Path, fast_loop: None, free_mb: int
) -> None:
    settings = make_settings(small_tmpfs / "data", sync_enabled=False, **SMALL_SHAPE)
    ballast = small_tmpfs / "ballast"
    started = dt.datetime.now(dt.timezone.utc)
    with running_loop(settings) as (worker, thread):
        control = ControlChannel(settings.control_db_path)
        wait_for(lambda: fresh_heartbeat(settings.control_db_path, started), 30, "a first heartbeat")
        # 5 MB free: the 30-day store (~4.7 MB) fits, its snapshot copy does not; 1 MB: the sync's writes overflow
        free = shutil.disk_usage(small_tmpfs).free
        with open(ballast, "wb") as out:
            out.write(b"\0" * max(0, free - free_mb * 1024 * 1024))
        first_id, _ = control.save_request(SyncRequest(days_back=30, requested_by="test"))
        # the control DB shares the full disk: the worker records the request once space is back
        report = wait_for(lambda: worker.last_report, 60, "the overflowing sync")
        assert report.success is False and any("No space left on device" in e for e in report.errors), report
        assert thread.is_alive()
        assert leftovers(settings.data_dir) == []
        ballast.unlink()
        overflowed = wait_for(lambda: finished(control, first_id), 60, "the failed request to be recorded")
        assert overflowed.status == "failed" and overflowed.report["sync_id"] == report.sync_id
        request_id, _ = control.save_request(SyncRequest(days_back=30, requested_by="test"))
        record = wait_for(lambda: finished(control, request_id), 60, "the sync after space was freed")
        assert record.status == "succeeded", record.report
        assert thread.is_alive()
    # rows a failed sync committed (before its publish failed) are all published; else the next sync's are
    committed = (overflowed.report or {}).get("rows_read") or record.report["rows_read"]
    assert stored_rows(settings.current_snapshot_link.resolve()) == stored_rows(settings.db_path) == committed > 0
    assert leftovers(settings.data_dir) == []


def test_publish_writes_private_files_whatever_the_umask(tmp_path: Path) -> None:
    db = tmp_path / "data" / "insights.duckdb"
    db.parent.mkdir()
    duckdb.connect(str(db)).close()
    old = os.umask(0o022)
    try:
        final = publish_snapshot(db, tmp_path / "data" / "snapshots", tmp_path / "data" / "current.duckdb")
    finally:
        os.umask(old)
    assert final.stat().st_mode & 0o077 == 0
    assert final.parent.stat().st_mode & 0o077 == 0


def test_once_on_a_full_tmpfs_prints_a_failed_report_without_a_traceback(small_tmpfs: Path) -> None:
    """Even the log file cannot be written: stderr gets one line about it, not a traceback per record."""
    data = small_tmpfs / "data"
    free = shutil.disk_usage(small_tmpfs).free
    (small_tmpfs / "ballast").write_bytes(b"\0" * (free - 2 * 1024 * 1024))
    env = subprocess_env(
        data, INSIGHTS_STUB_CAMPAIGNS="6", INSIGHTS_STUB_ADSETS_PER_CAMPAIGN="3", INSIGHTS_STUB_ADS_PER_ADSET="2"
    )
    result = subprocess.run(
        [PYTHON, str(ROOT / "sync_worker.py"), "--once", "--days-back", "30"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr[:3000]
    report = json.loads(result.stdout)
    assert report["success"] is False and any("No space left on device" in e for e in report["errors"])
    assert leftovers(data) == []
