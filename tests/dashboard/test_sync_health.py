"""Pure sync-health helpers: the words a report's window is shown in, each run's accounts, lake maintenance."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest

from insights_core.dashboard.sync_health import (
    MAINTENANCE_COLUMNS,
    describe_maintenance_run,
    describe_next_maintenance,
    history_table,
    maintenance_table,
    report_window,
    run_accounts,
)
from insights_core.store.lake_maintenance import MaintenanceHistory, MaintenanceRun

HISTORY_COLUMNS = [
    "sync_timestamp",
    "sync_type",
    "mode",
    "status",
    "total_duration_seconds",
    "since",
    "until",
    "entity_type",
    "campaigns_processed",
    "campaigns_errors",
    "adsets_processed",
    "adsets_errors",
    "ads_processed",
    "ads_errors",
    "rows_read",
    "rate_limit_hits",
    "sync_id",
]


@pytest.mark.parametrize(
    ("report", "expected"),
    [
        ({"since": "2026-11-01", "until": "2026-11-30"}, "days 2026-11-01 to 2026-11-30"),
        ({"since": "2026-11-30", "until": "2026-11-30"}, "day 2026-11-30"),
        ({"since": None, "until": None}, "no days read"),
        ({}, "no days read"),
        ({"since": "2026-11-01", "until": None}, "no days read"),
    ],
)
def test_report_window(report: dict, expected: str) -> None:
    assert report_window(report) == expected


@pytest.mark.parametrize(
    ("report_json", "names", "expected"),
    [
        ('{"accounts": ["act_1", "act_2"]}', {"act_1": "Shop", "act_2": "Blog"}, "act_1 (Shop), act_2 (Blog)"),
        ('{"accounts": ["act_1", "act_3"]}', {"act_1": "Shop"}, "act_1 (Shop), act_3"),  # not in the snapshot
        ('{"accounts": ["act_1"]}', None, "act_1"),
        ('{"accounts": []}', {"act_1": "Shop"}, ""),  # failed before it reached an account
        ('{"errors": ["boom"]}', {}, ""),  # a report without the key
        ("not json", {}, ""),
        (None, {}, ""),
    ],
)
def test_run_accounts(report_json: str | None, names: dict[str, str] | None, expected: str) -> None:
    assert run_accounts(report_json, names) == expected


def test_history_table_has_each_runs_accounts_and_first_error() -> None:
    reports = [
        {"accounts": ["act_2"], "errors": ["act_2: ads failed"], "worker": "host-b:41:a1b2c3"},
        {"accounts": ["act_1", "act_2"], "errors": []},  # stored before reports named their worker
    ]
    runs = pd.DataFrame(
        {
            **{column: [None, None] for column in HISTORY_COLUMNS},
            "report_json": [json.dumps(r) for r in reports],
        }
    )
    table = history_table(runs, {"act_1": "Shop", "act_2": "Blog"})
    assert table["accounts"].tolist() == ["act_2 (Blog)", "act_1 (Shop), act_2 (Blog)"]
    assert table["worker"].tolist() == ["host-b:41:a1b2c3", ""]
    assert table["first_error"].tolist() == ["act_2: ads failed", ""]
    assert list(table.columns[:6]) == ["sync_timestamp", "sync_type", "mode", "status", "accounts", "worker"]


NOW = dt.datetime(2026, 5, 1, 12, 0, tzinfo=dt.timezone.utc)


@pytest.mark.parametrize(
    ("due_at", "expected"),
    [
        (None, "due now"),  # never succeeded
        (NOW - dt.timedelta(minutes=5), "due now"),
        (NOW, "due now"),
        (NOW + dt.timedelta(minutes=30), "due 2026-05-01 12:30 UTC, in 30 min"),
        (NOW + dt.timedelta(hours=5, minutes=30), "due 2026-05-01 17:30 UTC, in 5.5 h"),
    ],
)
def test_describe_next_maintenance(due_at: dt.datetime | None, expected: str) -> None:
    assert describe_next_maintenance(due_at, NOW).startswith(expected)


def test_next_maintenance_is_due_every_period_after_the_last_success() -> None:
    history = MaintenanceHistory(runs=[], last_success_at=NOW)
    assert history.next_due_at(dt.timedelta(hours=6)) == NOW + dt.timedelta(hours=6)
    assert MaintenanceHistory(runs=[], last_success_at=None).next_due_at(dt.timedelta(hours=6)) is None


def test_maintenance_table_and_summary() -> None:
    ok = MaintenanceRun(
        started_at=NOW,
        seconds=1.5,
        worker="w1",
        files_before=1200,
        files_after=40,
        bytes_before=52_300_000,
        bytes_after=48_100_000,
        delete_files_before=30,
        files_merged=1150,
        files_rewritten=12,
        snapshots_expired=96,
        files_deleted=1190,
    )
    failed = MaintenanceRun(started_at=NOW, seconds=0.0, worker="w2", error="lock timeout")
    assert describe_maintenance_run(ok) == (
        "1,200 → 40 data files (52.3 MB → 48.1 MB; 1,150 merged, 12 rewritten, 30 delete files before), "
        "96 snapshots expired, 1,190 files deleted"
    )
    table = maintenance_table([ok, failed])
    assert table.columns.tolist() == list(MAINTENANCE_COLUMNS)
    assert table[["worker", "files_before", "files_after", "error"]].values.tolist() == [
        ["w1", 1200, 40, ""],
        ["w2", 0, 0, "lock timeout"],
    ]
    assert maintenance_table([]).empty
