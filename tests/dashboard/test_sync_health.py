"""Pure sync-health helpers: the words a report's window is shown in, each run's accounts."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from insights_core.dashboard.sync_health import (
    history_table,
    report_window,
    run_accounts,
)

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
        {"accounts": ["act_2"], "errors": ["act_2: ads failed"]},
        {"accounts": ["act_1", "act_2"], "errors": []},
    ]
    runs = pd.DataFrame(
        {
            **{column: [None, None] for column in HISTORY_COLUMNS},
            "report_json": [json.dumps(r) for r in reports],
        }
    )
    table = history_table(runs, {"act_1": "Shop", "act_2": "Blog"})
    assert table["accounts"].tolist() == ["act_2 (Blog)", "act_1 (Shop), act_2 (Blog)"]
    assert table["first_error"].tolist() == ["act_2: ads failed", ""]
    assert list(table.columns[:5]) == ["sync_timestamp", "sync_type", "mode", "status", "accounts"]
