"""The worker as a process: CLI contract, lock, loop, signals, readers during syncs, kill -9."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from insights_core.control import ControlChannel
from insights_core.models import SyncRequest
from tests.helpers import PYTHON, ROOT, subprocess_env, wait_for

pytestmark = pytest.mark.slow
SMALL = {"INSIGHTS_STUB_CAMPAIGNS": "6", "INSIGHTS_STUB_ADSETS_PER_CAMPAIGN": "3", "INSIGHTS_STUB_ADS_PER_ADSET": "2"}


def run_cli(data_dir: Path, *args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PYTHON, str(ROOT / "sync_worker.py"), *args],
        capture_output=True,
        text=True,
        env=subprocess_env(data_dir, **(env or SMALL)),
        timeout=timeout,
        cwd=data_dir.parent,
    )


def start_worker(data_dir: Path, env: dict | None = None) -> subprocess.Popen:
    log = open(data_dir.parent / f"worker-{time.monotonic_ns()}.err", "w")
    return subprocess.Popen(
        [PYTHON, str(ROOT / "sync_worker.py")],
        stdout=subprocess.DEVNULL,
        stderr=log,
        env=subprocess_env(data_dir, **(env or SMALL)),
        cwd=data_dir.parent,
    )


def snapshot_rows(data_dir: Path) -> list[tuple]:
    with duckdb.connect(str((data_dir / "current.duckdb").resolve()), read_only=True) as con:
        return con.execute(
            "SELECT entity_type, entity_id, date_start, spend, created_at FROM meta_ad_insights ORDER BY 1, 2, 3"
        ).fetchall()


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
    if proc.poll() is None:
        proc.send_signal(sig)
    return proc.wait(timeout=timeout)


def test_once_prints_the_report_logs_it_and_exits_zero(tmp_path: Path) -> None:
    data = tmp_path / "data"
    result = run_cli(data, "--once", "--days-back", "7")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["success"] is True and report["campaigns"]["processed"] == 6 and report["ads"]["processed"] == 36
    host, pid, _suffix = report["worker"].split(":")  # the run history names the worker that ran it
    assert host == socket.gethostname() and pid.isdigit() and int(pid) != os.getpid()
    assert "Sync completed" in result.stderr
    records = [json.loads(line) for line in (data / "logs" / "meta_insights.log").read_text().splitlines()]
    done = [r for r in records if r["message"] == "Sync completed"]
    assert len(done) == 1
    assert {"campaigns": 6, "errors": 0, "mode": "stub"}.items() <= done[0].items()
    assert done[0]["duration_seconds"] == report["total_duration_seconds"]
    assert (data / "current.duckdb").is_symlink()
    assert len(snapshot_rows(data)) == report["rows_read"] == done[0]["rows_read"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--once", "--days-back", "0"], "days back must be from 1 to 365"),
        (["--once", "--days-back", "400"], "days back must be from 1 to 365"),
        (["--once", "--days-back", "abc"], "whole number"),
        (["--once", "--entity-type", "page", "--entity-ids", "1"], "invalid choice: 'page'"),
        (["--once", "--entity-ids", "1,2"], "entity ids need an entity type"),
        (["--once", "--entity-type", "ad", "--entity-ids", "1;drop table x"], "not a Meta object id"),
        (["--once", "--entity-type", "ad", "--entity-ids", "\u0661\u0662\u0663"], "not a Meta object id"),
        (["--once", "--days-back", "\u0663"], "whole number"),
        (["--once", "--days-back", "1_0"], "whole number"),
        (["--days-back", "5"], "need --once"),
        (["--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_bad_arguments_exit_non_zero_with_one_line_and_write_nothing(tmp_path: Path, args, message) -> None:
    data = tmp_path / "data"
    result = run_cli(data, *args)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert not data.exists()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"META_INSIGHTS_MODE": "production"}, "META_INSIGHTS_MODE"),
        ({"INSIGHTS_SYNC_INTERVAL_MINUTES": "0"}, "INSIGHTS_SYNC_INTERVAL_MINUTES"),
        ({"INSIGHTS_MAX_DAYS_BACK": "lots"}, "INSIGHTS_MAX_DAYS_BACK"),
        ({"META_INSIGHTS_MODE": "live"}, "live mode needs META_ACCESS_TOKEN and META_AD_ACCOUNT_IDS"),
    ],
)
def test_bad_settings_stop_start_up_with_one_line(tmp_path: Path, env: dict, message: str) -> None:
    data = tmp_path / "data"
    result = run_cli(data, "--once", env={**SMALL, **env})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert not data.exists()


def files_with_mtimes(data_dir: Path) -> dict[str, int]:
    return {str(p.relative_to(data_dir)): p.lstat().st_mtime_ns for p in data_dir.rglob("*")}


def test_unknown_ids_on_a_new_data_dir_write_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    result = run_cli(data, "--once", "--entity-type", "campaign", "--entity-ids", "424242")
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "unknown campaign id: 424242" in lines[0], result.stderr
    assert not data.exists(), "no data dir, database, control DB, log or lock"


def test_unknown_ids_change_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert run_cli(data, "--once", "--days-back", "3").returncode == 0
    before = snapshot_rows(data)
    files_before = files_with_mtimes(data)
    result = run_cli(data, "--once", "--entity-type", "campaign", "--entity-ids", "424242")
    assert result.returncode == 2 and "unknown campaign id: 424242" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert snapshot_rows(data) == before
    assert files_with_mtimes(data) == files_before, "not even the log or the lock file was touched"
    with duckdb.connect(str(data / "insights.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM sync_runs").fetchone()[0] == 1


def test_known_ids_sync_with_the_entities_read_for_the_check(tmp_path: Path) -> None:
    data = tmp_path / "data"
    known = "120210000000000001"
    mixed = run_cli(data, "--once", "--days-back", "3", "--entity-type", "campaign", "--entity-ids", f"{known},424242")
    assert mixed.returncode == 2 and "unknown campaign id: 424242" in mixed.stderr
    assert not data.exists()
    result = run_cli(data, "--once", "--days-back", "3", "--entity-type", "campaign", "--entity-ids", known)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["success"] and report["campaigns"]["processed"] == 1 and report["ads"]["processed"] == 6


def test_a_data_dir_that_is_a_file_stops_with_one_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.write_text("not a directory")
    result = run_cli(data, "--once")
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "is a file, not a directory" in lines[0], result.stderr
    assert data.read_text() == "not a directory"


def test_a_read_only_data_dir_stops_with_one_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    if (
        subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(data)], capture_output=True).returncode
        != 0
    ):
        pytest.skip("mount is not permitted here")
    try:
        result = run_cli(data, "--once")
    finally:
        subprocess.run(["umount", "-l", str(data)], capture_output=True)
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "is not writable" in lines[0], result.stderr


def test_every_file_the_worker_writes_is_private(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert run_cli(data, "--once", "--days-back", "3").returncode == 0
    worker = start_worker(data)
    try:
        control = ControlChannel(data / "control.sqlite")
        request_id, _ = control.save_request(SyncRequest(days_back=2, requested_by="test"))
        wait_for(lambda: (r := control.fetch_request(request_id)) and not r.is_open, 30, "a Sync now request")
    finally:
        assert stop(worker) == 0
    entries = [p for p in [data, *data.rglob("*")] if not p.is_symlink()]
    names = {str(p.relative_to(data)) for p in entries}
    assert {"insights.duckdb", "control.sqlite", "worker.lock", "logs/meta_insights.log", "snapshots"} <= names
    open_to_others = {
        str(p.relative_to(data)): oct(p.stat().st_mode & 0o777) for p in entries if p.stat().st_mode & 0o077
    }
    assert open_to_others == {}, "files in the data dir hold spend and revenue"


def test_loop_serves_sync_now_within_seconds_refuses_a_second_worker_and_stops_cleanly(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    worker = start_worker(data)
    try:
        control = ControlChannel(data / "control.sqlite")
        wait_for(
            lambda: (s := control.fetch_worker_status()) and s.is_alive() and s.state == "idle",
            30,
            "the first scheduled sync and an idle heartbeat",
        )
        second = run_cli(data, "--once")
        assert second.returncode == 3
        assert "another sync worker (pid" in second.stderr and "already running" in second.stderr

        asked = time.monotonic()
        request_id, created = control.save_request(SyncRequest(days_back=5, requested_by="test"))
        assert created
        record = wait_for(
            lambda: (r := control.fetch_request(request_id)) and not r.is_open and r, 10, "the request to finish"
        )
        assert time.monotonic() - asked < 5.0
        assert record.status == "succeeded" and record.report["sync_type"] == "manual"
        assert record.report["ads"]["processed"] == 36
    finally:
        code = stop(worker)
    assert code == 0
    assert control.fetch_worker_status().state == "stopped"
    assert not control.fetch_worker_status().is_alive()


BIG = {
    "INSIGHTS_STUB_CAMPAIGNS": "300",
    "INSIGHTS_STUB_ADSETS_PER_CAMPAIGN": "5",
    "INSIGHTS_STUB_ADS_PER_ADSET": "3",
    "INSIGHTS_SYNC_ENABLED": "false",
}


def start_long_sync(data: Path) -> tuple[subprocess.Popen, ControlChannel, int]:
    """A worker busy with a year-long sync of 300 x 5 x 3 (about 2.5M rows), caught mid-write."""
    worker = start_worker(data, env=BIG)
    control = ControlChannel(data / "control.sqlite")
    request_id, _ = control.save_request(SyncRequest(days_back=365, force=True))
    wait_for(
        lambda: (r := control.fetch_request(request_id)).progress and r.progress["rows_read"] > 0,
        60,
        "the sync to be half-way through writing",
    )
    return worker, control, request_id


def test_sigterm_during_a_sync_exits_zero_and_publishes_nothing_half_written(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert run_cli(data, "--once", "--days-back", "5", env=BIG).returncode == 0
    before = snapshot_rows(data)
    generations = sorted(p.name for p in (data / "snapshots").iterdir())
    worker, control, request_id = start_long_sync(data)
    assert stop(worker, signal.SIGTERM, timeout=30) == 0
    record = control.fetch_request(request_id)
    assert record.status == "cancelled" and record.report["rows_read"] == 0
    assert snapshot_rows(data) == before
    after = sorted(p.name for p in (data / "snapshots").iterdir())
    assert not [name for name in after if name.startswith(".partial")]
    assert len(after) >= len(generations)


def test_kill_9_mid_sync_loses_nothing_and_the_next_sync_leaves_no_duplicates(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = run_cli(data, "--once", "--days-back", "30", env=BIG)
    assert first.returncode == 0
    committed = snapshot_rows(data)
    worker, control, request_id = start_long_sync(data)
    worker.kill()
    worker.wait(timeout=10)
    assert snapshot_rows(data) == committed, "the last snapshot is still readable and unchanged"

    again = run_cli(data, "--once", "--days-back", "30", env=BIG)
    assert again.returncode == 0, again.stderr
    assert control.fetch_request(request_id).status == "running", "only a loop worker fails orphaned requests"
    with duckdb.connect(str(data / "insights.duckdb"), read_only=True) as con:
        dupes = con.execute(
            "SELECT count(*) FROM (SELECT 1 FROM meta_ad_insights GROUP BY entity_type, entity_id,"
            " date_start HAVING count(*) > 1)"
        ).fetchone()[0]
        assert dupes == 0
        runs = con.execute("SELECT status FROM sync_runs ORDER BY sync_timestamp").fetchall()
    assert [r[0] for r in runs] == ["succeeded", "succeeded"], "the killed sync left no run behind"
    recovered = snapshot_rows(data)
    assert {r[:3] for r in committed} <= {r[:3] for r in recovered}, "nothing committed was lost"
    first_day = min(c[2] for c in committed)
    same_window = {r[:4] for r in recovered if r[2] >= first_day}
    assert {r[:4] for r in committed} <= same_window, "re-synced values equal the committed ones"
    created = {r[:3]: r[4] for r in committed}
    assert all(created[r[:3]] == r[4] for r in recovered if r[:3] in created), "created_at survives"


READER = r"""
import json, os, sys, time
import duckdb
link, stop_file = sys.argv[1], sys.argv[2]
reads = errors = partial = 0
seen = set()
problems = []
while not os.path.exists(stop_file):
    try:
        path = os.path.realpath(link)
        con = duckdb.connect(path, read_only=True)
        sync_id, since, until, rows_read = con.execute(
            "SELECT sync_id, since, until, rows_read FROM sync_runs ORDER BY sync_timestamp DESC LIMIT 1").fetchone()
        from_sync = con.execute("SELECT count(*) FROM meta_ad_insights WHERE date_start BETWEEN ? AND ?",
                                [since, until]).fetchone()[0]
        levels = con.execute("SELECT entity_type, sum(spend), sum(clicks) FROM meta_ad_insights GROUP BY 1").fetchall()
        con.close()
        totals = {(round(float(s), 2), int(c)) for _, s, c in levels}
        if from_sync != rows_read or len(totals) != 1 or len(levels) != 3:
            partial += 1
            problems.append([path, sync_id, from_sync, rows_read, sorted(map(list, totals))])
        seen.add(sync_id)
        reads += 1
    except Exception as exc:
        errors += 1
        problems.append(repr(exc))
print(json.dumps({"reads": reads, "errors": errors, "partial": partial, "syncs_seen": len(seen),
                  "problems": problems[:5]}))
"""


def test_a_reader_never_sees_an_error_or_a_partial_sync_while_the_worker_runs_20_syncs(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {
        "INSIGHTS_STUB_CAMPAIGNS": "40",
        "INSIGHTS_STUB_ADSETS_PER_CAMPAIGN": "5",
        "INSIGHTS_STUB_ADS_PER_ADSET": "3",
        "INSIGHTS_SYNC_ENABLED": "false",
    }
    assert run_cli(data, "--once", "--days-back", "28", env=env).returncode == 0
    stop_file = tmp_path / "stop-reader"
    reader = subprocess.Popen(
        [PYTHON, "-c", READER, str(data / "current.duckdb"), str(stop_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    worker = start_worker(data, env=env)
    control = ControlChannel(data / "control.sqlite")
    try:
        # full-account syncs of 5..24 days: each one reads one day more than the last, so a reader
        # that saw half of one would find the newest run's window short of its rows_read
        ids = [control.save_request(SyncRequest(days_back=5 + i))[0] for i in range(20)]
        wait_for(lambda: all(not control.fetch_request(i).is_open for i in ids), 300, "20 syncs", interval=0.5)
        statuses = {control.fetch_request(i).status for i in ids}
    finally:
        stop_file.touch()
        out, err = reader.communicate(timeout=60)
        assert stop(worker) == 0
    assert statuses == {"succeeded"}
    result = json.loads(out)
    assert result["errors"] == 0, result["problems"]
    assert result["partial"] == 0, result["problems"]
    assert result["reads"] > 50
    assert result["syncs_seen"] >= 10, "the reader followed the published generations"


def test_worker_module_runs_without_the_app_installed_bits() -> None:
    """The worker imports no Streamlit (it runs headless on servers without the dashboard)."""
    code = "import sys, sync_worker, insights_core.worker; print('streamlit' in sys.modules)"
    out = subprocess.run(
        [PYTHON, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=True,
    ).stdout.strip()
    assert out == "False"
    assert sys.executable


def test_a_data_dir_from_before_the_renames_is_migrated_and_published_at_start(tmp_path: Path) -> None:
    """The dashboard queries the new column names: the worker publishes them without waiting for a sync."""
    from insights_core.store.snapshots import publish_snapshot

    data = tmp_path / "data"
    assert run_cli(data, "--once", "--days-back", "3").returncode == 0
    with duckdb.connect(str(data / "insights.duckdb")) as con:  # back to schema version 1, as an old worker left it
        con.execute(
            "ALTER TABLE sync_runs RENAME COLUMN rows_read TO rows_written;"
            "ALTER TABLE synced_days RENAME COLUMN entity_type TO level;"
            "DELETE FROM schema_migrations WHERE version IN (2, 3)"
        )
    old_snapshot = publish_snapshot(data / "insights.duckdb", data / "snapshots", data / "current.duckdb")
    proc = start_worker(data)  # the data is fresh: no scheduled sync runs at start
    try:
        wait_for(lambda: (data / "current.duckdb").resolve() != old_snapshot.resolve(), 60, "a new snapshot")
    finally:
        assert stop(proc) == 0
    with duckdb.connect(str((data / "current.duckdb").resolve()), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM sync_runs").fetchone()[0] == 1, "published, not synced"
        assert con.execute("SELECT rows_read FROM sync_runs").fetchone()[0] == len(snapshot_rows(data)) > 0
        assert con.execute("SELECT count(DISTINCT entity_type) FROM synced_days").fetchone()[0] == 3
