"""Sync health figures from stored sync runs and lake maintenance runs: error share per level,
coverage, report tables. Pure."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from insights_core.levels import LEVEL_PLURAL, LEVELS
from insights_core.metrics import ratio, ratio_array

if TYPE_CHECKING:  # the store's module loads psycopg, which the embedded app never needs
    from insights_core.store.lake_maintenance import MaintenanceRun


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


def report_accounts(report_json: object) -> list[str]:
    """The ad accounts a stored run synced, from its report (each worker's run among many only has the
    accounts it leased); [] when it failed before reaching one, or for a run stored without a report."""
    return _report_list(report_json if isinstance(report_json, str) else None, "accounts")


def run_accounts(report_json: str | None, names: Mapping[str, str] | None = None) -> str:
    """The ad accounts a stored run synced, as "act_1 (Name), act_2"; "" when it names none."""
    names = names or {}
    return ", ".join(f"{a} ({names[a]})" if names.get(a) else a for a in report_accounts(report_json))


def run_worker(report_json: str | None) -> str:
    """The worker that ran a stored run (host:pid:suffix); "" for runs stored before reports named it."""
    if not report_json:
        return ""
    try:
        return str(json.loads(report_json).get("worker") or "")
    except (ValueError, AttributeError):
        return ""


def history_table(runs: pd.DataFrame, account_names: Mapping[str, str] | None = None) -> pd.DataFrame:
    """The run history as shown and exported: one row per sync, newest first, its accounts (named from
    `account_names`, account id to name), the worker that ran it and first error inlined."""
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
    out.insert(5, "worker", [run_worker(r) for r in runs["report_json"]])
    out["first_error"] = [next(iter(run_errors(r)), "") for r in runs["report_json"]]
    return out


def report_window(report: Mapping[str, Any]) -> str:
    """The days a report covers, in words; a sync that failed before it chose its days says so."""
    since, until = report.get("since"), report.get("until")
    if not since or not until:
        return "no days read"
    return f"day {since}" if since == until else f"days {since} to {until}"


MAINTENANCE_COLUMNS = (
    "started_at",
    "worker",
    "seconds",
    "files_before",
    "files_after",
    "delete_files_before",
    "files_merged",
    "files_rewritten",
    "snapshots_expired",
    "files_deleted",
    "error",
)
"""The `MaintenanceRun` fields the maintenance history shows, in its order (sizes are in the summary line)."""


def maintenance_table(runs: Sequence[MaintenanceRun]) -> pd.DataFrame:
    """Lake maintenance runs as shown and exported, in the order given (the store gives newest first)."""
    out = pd.DataFrame([{c: getattr(run, c) for c in MAINTENANCE_COLUMNS} for run in runs], columns=MAINTENANCE_COLUMNS)
    out["error"] = out["error"].fillna("")
    return out


def describe_maintenance_run(run: MaintenanceRun) -> str:
    """The figures of one successful run in a sentence (times and the worker are the caller's to add)."""
    return (
        f"{run.files_before:,} → {run.files_after:,} data files "
        f"({_megabytes(run.bytes_before)} → {_megabytes(run.bytes_after)}; "
        f"{run.files_merged:,} merged, {run.files_rewritten:,} rewritten, "
        f"{run.delete_files_before:,} delete files before), "
        f"{run.snapshots_expired:,} snapshots expired, {run.files_deleted:,} files deleted"
    )


def describe_next_maintenance(due_at: dt.datetime | None, now: dt.datetime) -> str:
    """When maintenance runs next: a worker asks between syncs, at most once a minute, whether it is due."""
    if due_at is None or due_at <= now:
        return "due now: the next idle worker runs it (workers ask once a minute between syncs)"
    return f"due {due_at.astimezone(dt.timezone.utc):%Y-%m-%d %H:%M} UTC, in {_hours(due_at - now)}"


def _megabytes(size: int) -> str:
    return f"{size / 1_000_000:,.1f} MB"


def _hours(delta: dt.timedelta) -> str:
    minutes = round(delta.total_seconds() / 60)
    return f"{minutes} min" if minutes < 90 else f"{minutes / 60:.1f} h"
