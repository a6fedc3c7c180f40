"""Pure sync-health helpers: the words a report's window is shown in."""

from __future__ import annotations

import pytest

from insights_core.dashboard.sync_health import report_window


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
