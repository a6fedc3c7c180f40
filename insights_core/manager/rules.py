"""Every alert rule in one pass over a store: the sync and performance rules of the Overview
(`insights_core.dashboard.alerts`, imported as they are), budget pacing, creative fatigue and anomalies.

Each finding has a stable `key`: the same condition found by the next sync has the same key, so the
alert store deduplicates it (first seen, last seen) and the cooldown applies to it. Keys name what
would make a new alert worth sending: an anomaly's key holds the day its run started, a pacing
key the month and the direction.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import duckdb
import numpy as np
import numpy.typing as npt
import pandas as pd

from insights_core.dashboard.alerts import performance_alerts, sync_alerts
from insights_core.manager import reads
from insights_core.manager.anomalies import campaign_anomalies, explain_anomaly
from insights_core.manager.fatigue import WINDOW_DAYS, FatigueThresholds, fatigue_from_week_sums
from insights_core.manager.pacing import budget_pacing, explain_pacing, pacing_since
from insights_core.models import ADDITIVE_METRICS
from insights_core.settings import Settings
from insights_core.store import queries

MAX_PER_RULE = 5
"""Pacing findings per level and direction beyond this become one summary finding (an account whose
budgets are all set high should not send a hundred messages)."""
PERFORMANCE_DAYS = 7
_SEVERITY_RANK = {"error": 0, "warning": 1, "info": 2}
Names = pd.Series
"""Entity names indexed by entity id (`.get(id, default)`)."""


@dataclass(frozen=True)
class Finding:
    key: str
    rule: str
    severity: str
    """error, warning or info (the Overview's words); a critical fatigue is an error."""
    message: str
    entity_type: str | None = None
    entity_id: str | None = None


@dataclass
class Evaluation:
    findings: list[Finding]
    seconds: dict[str, float] = field(default_factory=dict)
    """Time each rule took, for the benchmark and the log."""
    errors: list[str] = field(default_factory=list)
    """Rules that could not be evaluated (the others still were)."""
    completed: set[str] = field(default_factory=set)
    """The steps that ran to the end (`Finding.rule` names, and `reads`): only their alerts may resolve,
    since a rule that failed or did not run (no data to read) says nothing about its alerts."""


def _names(entities: pd.DataFrame) -> Names:
    """Names by id, without turning every id into a Python string (a large account has 100k ads)."""
    return entities.set_index("entity_id")["name"]


def pacing_findings(pacing: pd.DataFrame, level: str, names: Names) -> list[Finding]:
    out: list[Finding] = []
    for status in ("over", "under"):
        rows = pacing[pacing["status"] == status]
        for _, row in rows.head(MAX_PER_RULE).iterrows():
            entity_id = str(row["entity_id"])
            out.append(
                Finding(
                    key=f"pacing:{level}:{entity_id}:{status}:{row['period_start']}",
                    rule="pacing",
                    severity="warning",
                    message=f"{names.get(entity_id, entity_id)} is {status} pace: {explain_pacing(row)}.",
                    entity_type=level,
                    entity_id=entity_id,
                )
            )
        if len(rows) > MAX_PER_RULE:
            out.append(
                Finding(
                    key=f"pacing:{level}:more:{status}:{rows['period_start'].iloc[0]}",
                    rule="pacing",
                    severity="info",
                    message=f"{len(rows) - MAX_PER_RULE} more {level}s are {status} pace (see the Pacing page).",
                    entity_type=level,
                )
            )
    return out


def fatigue_findings(fatigue: pd.DataFrame, names: Names) -> list[Finding]:
    return [
        Finding(
            key=f"fatigue:ad:{row['entity_id']}",
            rule="fatigue",
            severity="error" if row["severity"] == "critical" else "warning",
            message=f"{names.get(str(row['entity_id']), row['entity_id'])} looks worn out ({row['severity']}): "
            + "; ".join(row["flags"])
            + ".",
            entity_type="ad",
            entity_id=str(row["entity_id"]),
        )
        for _, row in fatigue.iterrows()
    ]


def anomaly_findings(anomalies: pd.DataFrame, names: Names) -> list[Finding]:
    return [
        Finding(
            key=f"anomaly:campaign:{row['entity_id']}:{row['metric']}:{row['direction']}:{row['since']}",
            rule="anomaly",
            severity="warning",
            message=f"{names.get(str(row['entity_id']), row['entity_id'])}: {explain_anomaly(row)}.",
            entity_type="campaign",
            entity_id=str(row["entity_id"]),
        )
        for _, row in anomalies.iterrows()
    ]


def campaign_period_sums(
    daily: pd.DataFrame,
    campaigns: pd.DataFrame,
    since: dt.date,
    until: dt.date,
    prev_since: dt.date,
    prev_until: dt.date,
) -> pd.DataFrame:
    """The performance rule's input as `queries.fetch_campaign_summary` gives it (campaign_id, name, each
    period's additive sums and `prev_*` sums; campaigns with a row in either period, biggest spender
    first), from the campaign rows the other rules read anyway, so the rule costs no query of its own.

    `daily`: `reads.fetch_daily` campaign rows covering both periods; `campaigns`: `reads.fetch_entities`.
    """
    codes, ids = pd.factorize(daily["entity_id"])
    dates = daily["date"].to_numpy()
    values = {m: daily[m].to_numpy(dtype="float64") for m in ADDITIVE_METRICS}

    def sums(start: dt.date, end: dt.date) -> tuple[npt.NDArray[np.int64], dict[str, npt.NDArray[np.float64]]]:
        inside = (dates >= np.datetime64(start)) & (dates <= np.datetime64(end))
        rows = np.bincount(codes[inside], minlength=len(ids))
        return rows, {
            m: np.bincount(codes[inside], v[inside], len(ids)).astype(np.float64, copy=False) for m, v in values.items()
        }

    (rows, current), (prev_rows, previous) = sums(since, until), sums(prev_since, prev_until)
    frame = pd.DataFrame(
        {
            "entity_id": ids,
            "_idle": rows == 0,
            "_spend": -current["spend"],
            **current,
            **{f"prev_{m}": v for m, v in previous.items()},
        }
    )[(rows > 0) | (prev_rows > 0)]
    out = campaigns[["entity_id", "name"]].merge(frame, on="entity_id")
    # the query's order: spend descending with campaigns idle in the period last, then the id
    out = out.sort_values(["_idle", "_spend", "entity_id"], kind="stable").drop(columns=["_idle", "_spend"])
    return out.rename(columns={"entity_id": "campaign_id"}).reset_index(drop=True)


def evaluate_rules(con: duckdb.DuckDBPyConnection, settings: Settings, now: dt.datetime) -> Evaluation:
    """Every rule on the store behind `con`; a rule that fails is reported in `errors`, the rest still run.

    The campaign rows are read once (`seconds["reads"]`) for the performance, pacing and anomaly rules;
    fatigue reads its two weeks of sums in one query, for the ads over its frequency gate only; ad sets
    are read only when one has a budget.
    """
    result = Evaluation([])

    def run(name: str, rule: Callable[[], list[Finding]]) -> bool:
        started = time.perf_counter()
        try:
            result.findings.extend(rule())
            result.completed.add(name)
            ok = True
        except Exception as exc:  # one broken rule must not hide the others
            result.errors.append(f"{name}: {exc}")
            ok = False
        result.seconds[name] = time.perf_counter() - started
        return ok

    def sync_rule() -> list[Finding]:
        runs = queries.fetch_sync_runs(con)
        return [Finding(f"sync:{a.code}", "sync", a.severity, a.message) for a in sync_alerts(runs, now)]

    run("sync", sync_rule)
    as_of = reads.fetch_last_day(con)
    if as_of is None:
        return result
    week = dt.timedelta(days=PERFORMANCE_DAYS)
    perf_since = as_of - week + dt.timedelta(days=1)
    perf_prev_since, perf_prev_until = perf_since - week, perf_since - dt.timedelta(days=1)
    anomaly_since = as_of - dt.timedelta(days=21 * settings.anomaly_baseline_weeks)
    frames: dict[str, pd.DataFrame] = {}

    def read_campaigns() -> list[Finding]:
        frames["campaigns"] = reads.fetch_entities(con, "campaign")
        # pacing reaches back to the earliest running lifetime budget's start
        since = min(perf_prev_since, pacing_since(frames["campaigns"], as_of), anomaly_since)
        frames["daily"] = reads.fetch_daily(con, "campaign", since, as_of)
        return []

    if not run("reads", read_campaigns):
        return result  # the campaign rules have nothing to read; the error says why
    campaigns, daily = frames["campaigns"], frames["daily"]
    names = _names(campaigns)

    def performance_rule() -> list[Finding]:
        summary = campaign_period_sums(daily, campaigns, perf_since, as_of, perf_prev_since, perf_prev_until)
        return [
            Finding(
                f"performance:{a.code}:{a.campaign_id or 'account'}",
                "performance",
                a.severity,
                a.message,
                "campaign" if a.campaign_id else None,
                a.campaign_id,
            )
            for a in performance_alerts(summary)
        ]

    def pacing_rule() -> list[Finding]:
        tolerance = settings.pacing_tolerance_percent
        in_window = daily[daily["date"] >= pd.Timestamp(pacing_since(campaigns, as_of))]
        out = pacing_findings(budget_pacing(campaigns, in_window, as_of, tolerance), "campaign", names)
        if reads.fetch_has_budget(con, "adset"):  # no ad set with a budget: nothing more to read
            adsets = reads.fetch_entities(con, "adset")
            adset_daily = reads.fetch_daily(con, "adset", pacing_since(adsets, as_of), as_of)
            out += pacing_findings(budget_pacing(adsets, adset_daily, as_of, tolerance), "adset", _names(adsets))
        return out

    def fatigue_rule() -> list[Finding]:
        thresholds = FatigueThresholds(
            settings.fatigue_ctr_drop_percent,
            settings.fatigue_cpm_rise_percent,
            settings.fatigue_frequency,
            settings.fatigue_min_spend,
        )
        now_sums, before_sums = reads.fetch_ad_two_week_sums(con, as_of, WINDOW_DAYS, thresholds.frequency[0])
        tired = fatigue_from_week_sums(now_sums, before_sums, thresholds)
        # ad names only when there is something to name: listing every ad costs more than the rule
        return fatigue_findings(tired, _names(reads.fetch_entities(con, "ad")) if not tired.empty else pd.Series())

    def anomaly_rule() -> list[Finding]:
        # exactly the baseline's window: a campaign's first row in it is where its history starts
        in_window = daily[daily["date"] >= pd.Timestamp(anomaly_since)]
        found = campaign_anomalies(
            in_window, as_of, settings.anomaly_z, settings.anomaly_baseline_weeks, settings.anomaly_min_spend
        )
        return anomaly_findings(found, names)

    for name, rule in (
        ("performance", performance_rule),
        ("pacing", pacing_rule),
        ("fatigue", fatigue_rule),
        ("anomaly", anomaly_rule),
    ):
        run(name, rule)
    result.findings.sort(key=lambda f: (_SEVERITY_RANK.get(f.severity, 3), f.rule, f.key))
    return result
