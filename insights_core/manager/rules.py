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
from dataclasses import dataclass, field

import duckdb
import pandas as pd

from insights_core.dashboard.alerts import performance_alerts, sync_alerts
from insights_core.manager import reads
from insights_core.manager.anomalies import campaign_anomalies, explain_anomaly
from insights_core.manager.fatigue import WINDOW_DAYS, FatigueThresholds, fatigue_from_week_sums
from insights_core.manager.pacing import budget_pacing, explain_pacing, pacing_since
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


def evaluate_rules(con: duckdb.DuckDBPyConnection, settings: Settings, now: dt.datetime) -> Evaluation:
    """Every rule on the store behind `con`; a rule that fails is reported in `errors`, the rest still run."""
    result = Evaluation([])
    as_of = reads.fetch_last_day(con)

    def run(name: str, rule: object) -> None:
        started = time.perf_counter()
        try:
            result.findings.extend(rule())  # type: ignore[operator]  # each rule is a closure below
        except Exception as exc:  # one broken rule must not hide the others
            result.errors.append(f"{name}: {exc}")
        result.seconds[name] = time.perf_counter() - started

    def sync_rule() -> list[Finding]:
        runs = queries.fetch_sync_runs(con)
        return [Finding(f"sync:{a.code}", "sync", a.severity, a.message) for a in sync_alerts(runs, now)]

    run("sync", sync_rule)
    if as_of is None:
        return result
    campaigns = reads.fetch_entities(con, "campaign")
    names = _names(campaigns)

    def performance_rule() -> list[Finding]:
        since = as_of - dt.timedelta(days=PERFORMANCE_DAYS - 1)
        prev_until = since - dt.timedelta(days=1)
        prev_since = prev_until - dt.timedelta(days=PERFORMANCE_DAYS - 1)
        summary = queries.fetch_campaign_summary(con, since, as_of, prev_since, prev_until)
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
        out = []
        for level, entities in (("campaign", campaigns), ("adset", reads.fetch_entities(con, "adset"))):
            daily = reads.fetch_daily(con, level, pacing_since(entities, as_of), as_of)
            pacing = budget_pacing(entities, daily, as_of, settings.pacing_tolerance_percent)
            out += pacing_findings(pacing, level, _names(entities))
        return out

    def fatigue_rule() -> list[Finding]:
        week = dt.timedelta(days=WINDOW_DAYS)
        now_sums = reads.fetch_ad_week_sums(con, as_of - week + dt.timedelta(days=1), as_of)
        before_sums = reads.fetch_ad_week_sums(con, as_of - 2 * week + dt.timedelta(days=1), as_of - week)
        thresholds = FatigueThresholds(
            settings.fatigue_ctr_drop_percent,
            settings.fatigue_cpm_rise_percent,
            settings.fatigue_frequency,
            settings.fatigue_min_spend,
        )
        tired = fatigue_from_week_sums(now_sums, before_sums, thresholds)
        # ad names only when there is something to name: listing every ad costs more than the rule
        return fatigue_findings(tired, _names(reads.fetch_entities(con, "ad")) if not tired.empty else pd.Series())

    def anomaly_rule() -> list[Finding]:
        weeks = settings.anomaly_baseline_weeks
        daily = reads.fetch_daily(con, "campaign", as_of - dt.timedelta(days=21 * weeks), as_of)
        found = campaign_anomalies(daily, as_of, settings.anomaly_z, weeks, settings.anomaly_min_spend)
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
