"""Live mode end to end: `python sync_worker.py --once` with META_INSIGHTS_MODE=live against the emulator."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pytest

from graph_emulator import FaultRule, GraphEmulator, Malformation
from insights_core.levels import LEVELS
from tests.live.helpers import TOKEN, assert_equals_truth, entities_under, run_worker, stored_rows, window_of

pytestmark = pytest.mark.slow


def every_stored_text(db_path: Path) -> str:
    """All values of all tables of a DuckDB file, as one string (to look for secrets)."""
    with duckdb.connect(str(db_path), read_only=True) as con:
        tables = [row[0] for row in con.execute("SELECT table_name FROM information_schema.tables").fetchall()]
        return "\n".join(str(con.execute(f'SELECT * FROM "{table}"').fetchall()) for table in tables)


def assert_token_nowhere(data_dir: Path, *outputs: str) -> None:
    for text in outputs:
        assert TOKEN not in text
    for path in data_dir.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path
    assert TOKEN not in every_stored_text(data_dir / "insights.duckdb")


def test_a_live_sync_stores_the_truth_at_every_level(tmp_path: Path, emulator: GraphEmulator) -> None:
    data = tmp_path / "data"
    result = run_worker(data, emulator, "--once", "--days-back", "14", META_INSIGHTS_PAGE_SIZE="25")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["success"] and report["mode"] == "live" and report["errors"] == []
    assert (report["campaigns"]["processed"], report["adsets"]["processed"], report["ads"]["processed"]) == (4, 12, 24)
    assert report["api_requests"] == emulator.total_requests and emulator.requests["entity_insights"] == 0
    since, until = window_of(report)
    for level in LEVELS:
        stored = stored_rows(data / "insights.duckdb", level)
        assert_equals_truth(stored, emulator.ground_truth(level, since, until))
        assert (stored["account_id"] == "act_5550001").all()
    assert stored_rows(data / "current.duckdb", "ad").equals(stored_rows(data / "insights.duckdb", "ad"))
    assert TOKEN in emulator.tokens_seen
    assert_token_nowhere(data, result.stdout, result.stderr)


def test_a_bad_token_exits_1_with_the_clear_message_and_no_token(tmp_path: Path, emulator: GraphEmulator) -> None:
    emulator.faults.bad_token = True  # the emulator echoes the token in its error message
    data = tmp_path / "data"
    result = run_worker(data, emulator, "--once", "--days-back", "3")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["success"] is False and report["status"] == "failed"
    assert report["errors"][0].startswith("Meta rejected the access token")
    assert "set META_ACCESS_TOKEN" in report["errors"][0] and "[redacted]" in report["errors"][0]
    assert "Meta rejected the access token" in result.stderr
    log = (data / "logs" / "meta_insights.log").read_text()
    assert "Meta rejected the access token" in log
    assert emulator.total_requests == 1
    assert_token_nowhere(data, result.stdout, result.stderr)


def test_a_missing_permission_exits_1_saying_which_permission(tmp_path: Path, emulator: GraphEmulator) -> None:
    emulator.faults.missing_permission = True
    result = run_worker(tmp_path / "data", emulator, "--once", "--days-back", "3")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert "ads_read" in report["errors"][0] and "META_AD_ACCOUNT_IDS" in report["errors"][0]


def test_throttling_transient_errors_and_job_failures_end_in_a_complete_sync(
    tmp_path: Path, emulator: GraphEmulator
) -> None:
    emulator.faults.rules += [FaultRule("throttle", every=5, code=80000), FaultRule("transient", every=7)]
    emulator.faults.job_failed_first = 1
    emulator.faults.job_skipped_first = 1
    emulator.faults.too_large_over_days = 6
    emulator.faults.usage_pct = 82  # paces requests by 1/3 of the (shrunk) base delay
    data = tmp_path / "data"
    result = run_worker(data, emulator, "--once", "--days-back", "10")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["success"] and report["errors"] == []
    assert report["rate_limit_hits"] == emulator.faults.rules[0].hits > 0
    since, until = window_of(report)
    for level in LEVELS:
        assert_equals_truth(stored_rows(data / "insights.duckdb", level), emulator.ground_truth(level, since, until))
    log = [json.loads(line) for line in (data / "logs" / "meta_insights.log").read_text().splitlines()]
    assert any(
        r["message"].startswith("throttle error (HTTP 400, code 80000") and "retry 1 of 3" in r["message"] for r in log
    )
    assert_token_nowhere(data, result.stdout, result.stderr)


def test_malformed_rows_and_a_broken_campaign_are_precise_errors_and_the_rest_is_stored(
    tmp_path: Path, emulator: GraphEmulator
) -> None:
    broken = emulator.account.ids["campaign"][1]
    emulator.faults.failing_campaigns = frozenset({broken})
    today = dt.datetime.now(ZoneInfo(emulator.account.timezone_name)).date()
    truth = emulator.ground_truth("adset", today - dt.timedelta(days=2), today)
    truth = truth[~truth["entity_id"].isin(entities_under(emulator, broken)["adset"])]
    bad = truth.iloc[0]
    emulator.faults.malformed = [Malformation("adset", bad["entity_id"], bad["date_start"], "spend_text")]
    data = tmp_path / "data"
    result = run_worker(data, emulator, "--once", "--days-back", "3")
    assert result.returncode == 0, result.stderr  # entity errors are counted; the sync itself succeeded
    report = json.loads(result.stdout)
    failed = entities_under(emulator, broken)
    assert (report["campaigns"]["errors"], report["adsets"]["errors"], report["ads"]["errors"]) == (
        1,
        len(failed["adset"]) + 1,
        len(failed["ad"]),
    )
    assert (
        f"Adset {bad['entity_id']}: malformed insights row for {bad['date_start']}: spend is '12,50 USD', "
        "not a number" in "\n".join(report["errors"])
    )
    since, until = window_of(report)
    for level in LEVELS:
        stored = stored_rows(data / "insights.duckdb", level)
        bad_day = {(bad["entity_id"], bad["date_start"])} if level == "adset" else set()
        assert_equals_truth(
            stored, emulator.ground_truth(level, since, until), without=failed[level], without_rows=bad_day
        )
        assert not stored["entity_id"].isin(failed[level]).any()


def test_an_entity_filtered_sync_reads_only_that_tree(tmp_path: Path, emulator: GraphEmulator) -> None:
    adset = emulator.account.ids["adset"][4]
    ads = {e["id"] for e in emulator.account.entities["ad"] if e["adset_id"] == adset}
    data = tmp_path / "data"
    result = run_worker(data, emulator, "--once", "--days-back", "5", "--entity-type", "adset", "--entity-ids", adset)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["campaigns"]["processed"], report["adsets"]["processed"], report["ads"]["processed"]) == (0, 1, 2)
    since, until = window_of(report)
    assert stored_rows(data / "insights.duckdb", "campaign").empty
    for level, ids in (("adset", {adset}), ("ad", ads)):
        truth = emulator.ground_truth(level, since, until)
        assert_equals_truth(stored_rows(data / "insights.duckdb", level), truth[truth["entity_id"].isin(ids)])
    assert {run.level for run in emulator.report_runs} == {"adset", "ad"}


def test_sigterm_cuts_a_throttle_wait_of_minutes_short(tmp_path: Path, emulator: GraphEmulator) -> None:
    """Meta may ask for a 10-minute pause; a stopping worker must not sit it out."""
    import signal
    import subprocess
    import time

    from insights_core.control import ControlChannel
    from insights_core.models import SyncRequest
    from tests.helpers import PYTHON, ROOT, subprocess_env, wait_for
    from tests.live.helpers import live_env

    data = tmp_path / "data"
    data.mkdir()
    emulator.faults.rules.append(FaultRule("throttle", endpoint="report_start", code=80000, regain_minutes=10))
    env = subprocess_env(
        data, **live_env(emulator, INSIGHTS_SYNC_ENABLED="false", META_API_RATE_LIMIT_RETRY_DELAY="600")
    )
    worker = subprocess.Popen(
        [PYTHON, str(ROOT / "sync_worker.py")],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    control = ControlChannel(data / "control.sqlite")
    request_id, _ = control.save_request(SyncRequest(days_back=3))
    deadline = time.monotonic() + 60
    while emulator.faults.rules[-1].hits == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert emulator.faults.rules[-1].hits >= 1, "the worker never reached the throttled report start"
    log = data / "logs" / "meta_insights.log"  # the retry is logged right before the 600 s wait starts
    wait_for(
        lambda: log.exists() and "throttle error" in log.read_text(errors="replace"),
        30,
        "the worker to log its throttle wait",
    )
    stopped_at = time.monotonic()
    worker.send_signal(signal.SIGTERM)
    _, err = worker.communicate(timeout=30)
    assert worker.returncode == 0, err
    assert time.monotonic() - stopped_at < 10
    assert control.fetch_request(request_id).status == "cancelled"
    assert TOKEN not in err
