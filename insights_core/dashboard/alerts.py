"""Alerts, as pure functions of stored sync runs and campaign sums (tested with small tables).

Four sync alerts, each with a fixed threshold:
- a sync failed more than twice in a row;
- the latest sync took more than twice the average of earlier comparable syncs;
- more than 10 rate-limit hits within one hour (any hour of the last day);
- entity errors above 5% of the entities the latest sync processed.
When workers sync different ad accounts (INSIGHTS_STORE=ducklake with many workers), the first, second
and fourth are judged per account, on the runs that synced it (`runs_by_account`), and name the accounts.
Performance alerts compare each campaign's ratio with the previous period of the same length
(e.g. ROAS down more than 30%), for campaigns that spent enough in both periods to mean it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

import numpy as np
import pandas as pd

from insights_core.dashboard.sync_health import report_accounts
from insights_core.levels import LEVEL_PLURAL, LEVELS
from insights_core.metrics import RATIO_FORMULAS, pct_change, ratio, ratio_array

Severity = Literal["error", "warning", "info"]

MAX_CONSECUTIVE_FAILURES = 2
SLOW_FACTOR = 2.0
MIN_HISTORY = 3
"""Earlier comparable syncs needed before a duration can be called slow."""
MAX_RATE_LIMIT_HITS_PER_HOUR = 10
RATE_LIMIT_LOOKBACK = dt.timedelta(hours=24)
MAX_ENTITY_ERROR_SHARE = 0.05
PERFORMANCE_DROP_PERCENT = 30.0
MIN_SPEND_FOR_PERFORMANCE = 10.0
MAX_LISTED = 5
_FINISHED = ("succeeded", "failed")


@dataclass(frozen=True)
class Alert:
    severity: Severity
    code: str
    message: str
    campaign_id: str | None = None


def _finished_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """Succeeded or failed runs, newest first (cancelled runs say nothing about health), each with the
    accounts its report names as `_accounts` (a tuple; the reports are parsed here, once)."""
    if runs.empty:
        return runs
    done = runs[runs["status"].isin(_FINISHED)].sort_values("sync_timestamp", ascending=False, kind="stable")
    reports = done["report_json"] if "report_json" in done.columns else [None] * len(done)
    return done.assign(
        _accounts=pd.Series([tuple(report_accounts(r)) for r in reports], index=done.index, dtype=object)
    )


def _account_sets(named: Iterable[Sequence[str]]) -> set[frozenset[str]]:
    """The different sets of accounts that runs name (runs that name none left out)."""
    return {accounts for names in named if (accounts := frozenset(names))}


def runs_by_account(done: pd.DataFrame) -> list[tuple[str | None, pd.DataFrame]]:
    """`done` (finished runs, newest first) as each ad account saw them: (account, the runs that synced it
    or named no account) when runs name different accounts (many workers, each with the accounts it
    leased: one account's successes must not break another's streak of failures); else one
    (None, `done`), and nothing is said per account (one worker syncs every account each run)."""
    if done.empty:
        return [(None, done)]
    kinds = _account_sets(done["_accounts"])
    if len(kinds) <= 1:
        return [(None, done)]
    return [
        (account, done[[not accounts or account in accounts for accounts in done["_accounts"]]])
        for account in sorted(frozenset().union(*kinds))
    ]


def _failure_streak(done: pd.DataFrame) -> int:
    streak = 0
    for status in done["status"]:
        if status != "failed":
            break
        streak += 1
    return streak


def longest_failure_streak(runs: pd.DataFrame) -> int:
    """The most finished syncs in a row that failed, for any one account (`runs_by_account`): what
    `consecutive_failures_alert` compares with MAX_CONSECUTIVE_FAILURES, for /metrics."""
    done = _finished_runs(runs)
    return 0 if done.empty else max(_failure_streak(scoped) for _, scoped in runs_by_account(done))


def consecutive_failures_alert(runs: pd.DataFrame) -> Alert | None:
    done = _finished_runs(runs)
    if done.empty:
        return None
    failing = [
        (account, streak, scoped)
        for account, scoped in runs_by_account(done)
        if (streak := _failure_streak(scoped)) > MAX_CONSECUTIVE_FAILURES
    ]
    if not failing:
        return None
    latest = _when(max(scoped["sync_timestamp"].iloc[0] for _, _, scoped in failing))
    if failing[0][0] is None:
        message = f"The last {failing[0][1]} syncs failed in a row (latest at {latest})."
    else:
        streaks = ", ".join(f"{account} ({streak} in a row)" for account, streak, _ in failing[:MAX_LISTED])
        more = f" and {len(failing) - MAX_LISTED} more" if len(failing) > MAX_LISTED else ""
        message = (
            f"The syncs of {len(failing)} ad account{'s' if len(failing) > 1 else ''} failed more than "
            f"{MAX_CONSECUTIVE_FAILURES} times in a row: {streaks}{more} (latest at {latest})."
        )
    return Alert("error", "sync_failing", f"{message} See the Sync page for their errors.")


def _latest_runs(done: pd.DataFrame) -> list[tuple[pd.Series, pd.DataFrame, bool]]:
    """(latest run, the runs it is judged among, whether to name its accounts): the latest run, or with
    runs of different accounts the latest of each account, once each (a run of two accounts is the
    latest of both)."""
    seen: set[object] = set()
    out = []
    for account, scoped in runs_by_account(done):
        if scoped.empty or scoped.index[0] in seen:
            continue
        seen.add(scoped.index[0])
        out.append((scoped.iloc[0], scoped, account is not None))
    return out


def _of_accounts(run: pd.Series, named: bool) -> str:
    return f" of {', '.join(run['_accounts'])}" if named and run["_accounts"] else ""


def _slow_run(latest: pd.Series, done: pd.DataFrame, named: bool) -> str | None:
    scoped = done["entity_type"].notna() & (done["entity_type"].astype(str) != "")
    same = (done["sync_type"] == latest["sync_type"]) & (scoped == scoped.iloc[0])
    if named:  # a run of one account is not compared with a run of five
        accounts = set(latest["_accounts"])
        same &= np.array([set(names) == accounts for names in done["_accounts"]], dtype=bool)
    history = done[same].iloc[1:]
    if len(history) < MIN_HISTORY:
        return None
    average = float(history["total_duration_seconds"].mean())
    duration = float(latest["total_duration_seconds"])
    if average <= 0 or duration <= SLOW_FACTOR * average:
        return None
    return (
        f"The latest {latest['sync_type']} sync{_of_accounts(latest, named)} took {duration:.1f} s, more than "
        f"{SLOW_FACTOR:g}× the average of the {len(history)} before it ({average:.1f} s)."
    )


def _judge_latest_runs(
    runs: pd.DataFrame, code: str, judge: Callable[[pd.Series, pd.DataFrame, bool], str | None]
) -> Alert | None:
    """A warning `code` saying what `judge` found in each latest run (`_latest_runs`); None if nothing."""
    done = _finished_runs(runs)
    if done.empty:
        return None
    found = [m for latest, scoped, named in _latest_runs(done) if (m := judge(latest, scoped, named))]
    return Alert("warning", code, " ".join(found[:MAX_LISTED])) if found else None


def slow_sync_alert(runs: pd.DataFrame) -> Alert | None:
    """The latest sync against the average of earlier syncs of the same type and scope (and accounts)."""
    return _judge_latest_runs(runs, "sync_slow", _slow_run)


def peak_rate_limit_hits(runs: pd.DataFrame, now: dt.datetime) -> tuple[int, dt.datetime | None]:
    """The most rate-limit hits within any one hour ending at a sync of the last day, and that sync's time."""
    if runs.empty:
        return 0, None
    stamps = pd.to_datetime(runs["sync_timestamp"])
    cutoff = pd.Timestamp(_naive_utc(now) - RATE_LIMIT_LOOKBACK)
    recent = runs.assign(_t=stamps)[stamps >= cutoff].sort_values("_t")
    best, best_at = 0, None
    times = recent["_t"].to_numpy()
    hits = recent["rate_limit_hits"].fillna(0).to_numpy()
    for end in times:
        window = (times > end - np.timedelta64(1, "h")) & (times <= end)
        total = int(hits[window].sum())
        if total > best:
            best, best_at = total, pd.Timestamp(end).to_pydatetime()
    return best, best_at


def rate_limit_alert(runs: pd.DataFrame, now: dt.datetime) -> Alert | None:
    """Hits are summed over every account (Meta also limits the app as a whole); with many workers the
    accounts whose syncs were throttled in that hour are named, most hits first."""
    peak, at = peak_rate_limit_hits(runs, now)
    if peak <= MAX_RATE_LIMIT_HITS_PER_HOUR or at is None:
        return None
    return Alert(
        "warning",
        "rate_limited",
        f"{peak} rate-limit hits within one hour (the hour up to {_when(at)}), above "
        f"{MAX_RATE_LIMIT_HITS_PER_HOUR} per hour: syncs{_throttled_accounts(runs, at)} are being throttled by Meta.",
    )


def _throttled_accounts(runs: pd.DataFrame, hour_end: dt.datetime) -> str:
    """The accounts whose syncs hit rate limits in the hour up to `hour_end`, most hits first, as
    ' of act_1 (9), act_2 (3)', when runs name different accounts (many workers); '' otherwise."""
    if "report_json" not in runs.columns or len(_account_sets(map(report_accounts, runs["report_json"]))) <= 1:
        return ""
    end = pd.Timestamp(hour_end)
    stamps = pd.to_datetime(runs["sync_timestamp"])
    hour = runs[(stamps > end - pd.Timedelta(hours=1)) & (stamps <= end)]
    hits: dict[str, int] = {}
    for report, count in zip(hour["report_json"], hour["rate_limit_hits"].fillna(0)):
        for account in report_accounts(report):
            hits[account] = hits.get(account, 0) + int(count)
    ranked = sorted((item for item in hits.items() if item[1]), key=lambda item: (-item[1], item[0]))
    return f" of {', '.join(f'{account} ({n})' for account, n in ranked[:MAX_LISTED])}" if ranked else ""


def _entity_errors(latest: pd.Series, _runs: pd.DataFrame, named: bool) -> str | None:
    processed = sum(int(latest[f"{LEVEL_PLURAL[lvl]}_processed"]) for lvl in LEVELS)
    errors = sum(int(latest[f"{LEVEL_PLURAL[lvl]}_errors"]) for lvl in LEVELS)
    share = ratio(errors, processed)
    if share is None or share <= MAX_ENTITY_ERROR_SHARE:
        return None
    return (
        f"The latest sync{_of_accounts(latest, named)} could not read {errors:,} of {processed:,} entities "
        f"({share:.1%}), above {MAX_ENTITY_ERROR_SHARE:.0%}: their numbers may be out of date."
    )


def entity_error_alert(runs: pd.DataFrame) -> Alert | None:
    return _judge_latest_runs(runs, "entity_errors", _entity_errors)


def sync_alerts(runs: pd.DataFrame, now: dt.datetime) -> list[Alert]:
    """The four sync alerts that fire on `runs` (rows of `sync_runs`)."""
    found = (
        consecutive_failures_alert(runs),
        slow_sync_alert(runs),
        rate_limit_alert(runs, now),
        entity_error_alert(runs),
    )
    return [alert for alert in found if alert is not None]


def period_change(campaigns: pd.DataFrame, metric: str) -> pd.DataFrame:
    """`metric` now (from the period's sums), before (from the `prev_*` sums) and the change in percent."""
    num, den, scale = RATIO_FORMULAS[metric]
    current = ratio_array(campaigns[num].to_numpy(), campaigns[den].to_numpy(), scale)
    previous = ratio_array(campaigns[f"prev_{num}"].to_numpy(), campaigns[f"prev_{den}"].to_numpy(), scale)
    change = [pct_change(c, p) for c, p in zip(current, previous)]
    return pd.DataFrame(
        {
            "current": current,
            "previous": previous,
            "change": np.array([np.nan if c is None else c for c in change], dtype="float64"),
        },
        index=campaigns.index,
    )


@dataclass(frozen=True)
class MetricDrop:
    campaign_id: str
    name: str
    current: float
    previous: float
    change: float


def metric_drop_rows(
    campaigns: Iterable[Mapping[str, Any]],
    metric: str = "roas",
    drop_percent: float = PERFORMANCE_DROP_PERCENT,
    min_spend: float = MIN_SPEND_FOR_PERFORMANCE,
) -> list[MetricDrop]:
    """Campaigns whose `metric` fell more than `drop_percent` against the previous period, worst first.

    Each campaign carries the period's sums and the previous period's as `prev_*` keys. Both
    periods need at least `min_spend`, so a campaign that barely ran is not flagged.
    """
    num, den, scale = RATIO_FORMULAS[metric]
    drops = []
    for row in campaigns:
        if not (row["spend"] >= min_spend and row["prev_spend"] >= min_spend):
            continue
        current = ratio(row[num], row[den], scale)
        previous = ratio(row[f"prev_{num}"], row[f"prev_{den}"], scale)
        change = pct_change(current, previous)
        # a hair of tolerance: 1.4 against 2.0 is a 30% drop, not 30.000000000000004%
        if current is not None and previous is not None and change is not None and change < -drop_percent - 1e-9:
            drops.append(MetricDrop(str(row["campaign_id"]), str(row["name"]), current, previous, change))
    return sorted(drops, key=lambda drop: drop.change)


def performance_alerts(
    campaigns: pd.DataFrame | Sequence[Mapping[str, Any]],
    metrics: tuple[str, ...] = ("roas", "ctr"),
    drop_percent: float = PERFORMANCE_DROP_PERCENT,
    min_spend: float = MIN_SPEND_FOR_PERFORMANCE,
) -> list[Alert]:
    """`campaigns`: a frame or rows of `store.queries.fetch_campaign_summary` (period and `prev_*` sums)."""
    rows = (
        cast(list[dict[str, Any]], campaigns.to_dict("records")) if isinstance(campaigns, pd.DataFrame) else campaigns
    )
    alerts: list[Alert] = []
    for metric in metrics:
        drops = metric_drop_rows(rows, metric, drop_percent, min_spend)
        label = metric.upper()
        for drop in drops[:MAX_LISTED]:
            alerts.append(
                Alert(
                    "warning",
                    f"{metric}_drop",
                    f"{drop.name}: {label} fell {abs(drop.change):.0f}% against the previous period "
                    f"({drop.previous:.2f} → {drop.current:.2f}).",
                    campaign_id=drop.campaign_id,
                )
            )
        if len(drops) > MAX_LISTED:
            alerts.append(
                Alert(
                    "info",
                    f"{metric}_drop_more",
                    f"{len(drops) - MAX_LISTED} more campaigns' {label} fell more than "
                    f"{drop_percent:.0f}% (sort the campaign table by {label} to see them).",
                )
            )
    return alerts


def _naive_utc(moment: dt.datetime) -> dt.datetime:
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(dt.timezone.utc).replace(tzinfo=None)


def _when(value: object) -> str:
    if value is None:
        return "—"
    return pd.Timestamp(value).strftime("%Y-%m-%d %H:%M UTC")  # type: ignore[arg-type]  # Timestamp() is the check
