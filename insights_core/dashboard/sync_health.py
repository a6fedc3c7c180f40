"""Sync health figures from stored sync runs: error share per level, coverage, report tables. Pure."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from insights_core.levels import LEVEL_PLURAL, LEVELS
from insights_core.metrics import ratio, ratio_array


def error_rates(runs: pd.DataFrame) -> pd.DataFrame:
    """Per run: the share of processed entities of each level that failed, in percent (NaN when none processed)."""
    out = pd.DataFrame({"sync_timestamp": runs["sync_timestamp"]})
    for level in LEVELS:
        plural = LEVEL_PLURAL[level]
        out[level] = ratio_array(runs[f"{plural}_errors"].to_numpy(), runs[f"{plural}_processed"].to_numpy(), 100.0)
    return out


def is_full_sync(runs: pd.DataFrame) -> pd.Series:
    return runs["entity_type"].isna() | (runs["entity_type"].astype(str) == "")


def entity_coverage(runs: pd.DataFrame) -> pd.DataFrame:
    """Per level, the share of entities the latest finished full-account sync read successfully (percent)."""
    done = runs[runs["status"].isin(("succeeded", "failed")) & is_full_sync(runs)]
    if done.empty:
        return pd.DataFrame({"level": list(LEVELS), "processed": 0, "success": 0, "coverage_pct": float("nan")})
    latest = done.sort_values("sync_timestamp").iloc[-1]
    rows = []
    for level in LEVELS:
        plural = LEVEL_PLURAL[level]
        processed, success = int(latest[f"{plural}_processed"]), int(latest[f"{plural}_success"])
        share = ratio(success, processed, 100.0)
        rows.append(
            {
                "level": level,
                "processed": processed,
                "success": success,
                "coverage_pct": float("nan") if share is None else share,
            }
        )
    return pd.DataFrame(rows)


def day_coverage(days: pd.DataFrame, window_days: int) -> pd.DataFrame:
    """`days` (account_id, entity_type, days_synced) with the share of the window's days stored, in percent."""
    return days.assign(
        window_days=window_days,
        coverage_pct=ratio_array(days["days_synced"].to_numpy(), np.full(len(days), float(window_days)), 100.0),
    )


def report_counts(report: Mapping[str, Any]) -> pd.DataFrame:
    """A sync report's counts per level (processed, success, errors of campaigns, adsets, ads) as a table."""
    rows = []
    for level in LEVELS:
        counts = report.get(LEVEL_PLURAL[level]) or {}
        rows.append(
            {
                "level": LEVEL_PLURAL[level],
                "processed": counts.get("processed", 0),
                "success": counts.get("success", 0),
                "errors": counts.get("errors", 0),
            }
        )
    return pd.DataFrame(rows)


def _report_list(report_json: str | None, key: str) -> list[str]:
    """A list-valued key of a stored report (`sync_runs.report_json`); [] for a missing or unreadable one."""
    if not report_json:
        return []
    try:
        return [str(e) for e in json.loads(report_json).get(key) or []]
    except (ValueError, AttributeError, TypeError):
        return []


def run_errors(report_json: str | None) -> list[str]:
    """The error lines of a stored report (`sync_runs.report_json`)."""
    return _report_list(report_json, "errors")


def run_accounts(report_json: str | None, names: Mapping[str, str] | None = None) -> str:
    """The ad accounts a stored run synced, as "act_1 (Name), act_2": the report lists them (each worker's
    run among many only has the accounts it leased); "" when it failed before reaching one."""
    names = names or {}
    return ", ".join(f"{a} ({names[a]})" if names.get(a) else a for a in _report_list(report_json, "accounts"))


def history_table(runs: pd.DataFrame, account_names: Mapping[str, str] | None = None) -> pd.DataFrame:
    """The run history as shown and exported: one row per sync, newest first, its accounts (named from
    `account_names`, account id to name) and first error inlined."""
    out = runs[
        [
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
    ].copy()
    out.insert(4, "accounts", [run_accounts(r, account_names) for r in runs["report_json"]])
    out["first_error"] = [next(iter(run_errors(r)), "") for r in runs["report_json"]]
    return out


def report_window(report: Mapping[str, Any]) -> str:
    """The days a report covers, in words; a sync that failed before it chose its days says so."""
    since, until = report.get("since"), report.get("until")
    if not since or not until:
        return "no days read"
    return f"day {since}" if since == until else f"days {since} to {until}"
