"""The worker's one entry point: after each successful sync, evaluate every rule, store the alerts
and deliver the ones that are due to the configured channels.

Nothing here may fail a sync: `evaluate_and_notify` catches everything, logs one line and records
what it could (the evaluation, each delivery) in the alert store for the Alerts and Sync pages. A
channel that stays down after its retries is skipped for the rest of the round, so one dead
receiver costs a sync its retries once, not once per alert; the alerts it missed stay due and go
out after the next sync.

Many workers (the lake) evaluate and deliver on one shared alert store, so each step holds a lock of
the store across processes and machines:

- evaluating and saving hold `EVALUATION_LOCK`: evaluations are saved in the order they read the
  store, so one that read the lake before another worker's commit cannot resolve (or reopen) what a
  later evaluation, which saw that commit, found. Every evaluation reads every account, so the alerts
  of an account whose worker is still mid-sync are found again on its last committed data.
- each channel's round holds `delivery_lock(channel)` from `fetch_due` to the last `save_delivery`:
  a second worker waits, then finds those alerts delivered (in their cooldown), so each goes out once.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import duckdb

from insights_core.manager.alert_store import (
    EVALUATION_LOCK,
    AlertStore,
    AlertStoreError,
    EvaluationLog,
    StoredAlert,
    delivery_lock,
    open_alert_store,
)
from insights_core.manager.channels import DeliveryResult, Sleep, SmtpConfig, send_email, send_webhook
from insights_core.manager.rules import evaluate_rules
from insights_core.settings import Settings

log = logging.getLogger("meta_insights.alerts")


@dataclass(frozen=True)
class Channel:
    name: str
    send: Callable[[StoredAlert], DeliveryResult]


@dataclass
class AfterSync:
    findings: int = 0
    seconds: float = 0.0
    delivered: dict[str, int] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    """Channel -> the error that made it give up this round."""
    errors: list[str] = field(default_factory=list)


def alert_text(alert: StoredAlert) -> str:
    return (
        f"*Meta Insights {alert.severity}* ({alert.rule}): {alert.message}\n"
        f"first seen {alert.first_seen:%Y-%m-%d %H:%M} UTC, last seen {alert.last_seen:%Y-%m-%d %H:%M} UTC"
    )


def configured_channels(settings: Settings, sleep: Sleep = time.sleep) -> list[Channel]:
    """The channels the settings turn on: a webhook URL, and an SMTP host with recipients."""
    channels = []
    if settings.alert_webhook_url is not None:
        url = settings.alert_webhook_url.get_secret_value()
        channels.append(
            Channel(
                "webhook",
                lambda a: send_webhook(
                    url, alert_text(a), settings.alert_webhook_timeout_seconds, settings.alert_delivery_retries, sleep
                ),
            )
        )
    if settings.alert_smtp_host and settings.alert_email_to:
        password = settings.alert_smtp_password.get_secret_value() if settings.alert_smtp_password else None
        config = SmtpConfig(
            settings.alert_smtp_host,
            settings.alert_smtp_port,
            settings.alert_email_from,
            settings.alert_email_to,
            settings.alert_smtp_starttls,
            settings.alert_smtp_user,
            password,
            settings.alert_webhook_timeout_seconds,
        )
        channels.append(
            Channel(
                "email",
                lambda a: send_email(
                    config,
                    f"[Meta Insights] {a.severity}: {a.message[:80]}",
                    alert_text(a).replace("*", ""),
                    settings.alert_delivery_retries,
                    sleep,
                ),
            )
        )
    return channels


def deliver_due_alerts(
    store: AlertStore, channels: list[Channel], now: dt.datetime, cooldown: dt.timedelta, result: AfterSync
) -> None:
    """Send each channel's due alerts, one channel round at a time across every process on `store`."""
    for channel in channels:
        sent = 0
        try:
            with store.hold_lock(delivery_lock(channel.name)):
                for alert in store.fetch_due(channel.name, now, cooldown):
                    outcome = channel.send(alert)
                    store.save_delivery(channel.name, alert.key, outcome.ok, outcome.attempts, outcome.error, now)
                    if not outcome.ok:
                        result.failed[channel.name] = outcome.error or "failed"
                        log.warning(
                            "alert channel %s failed after %d attempts: %s",
                            channel.name,
                            outcome.attempts,
                            outcome.error,
                        )
                        break
                    sent += 1
        except AlertStoreError as exc:  # the lock or the store: this channel's alerts stay due for the next round
            result.failed[channel.name] = str(exc)
            log.warning("alert channel %s skipped: %s", channel.name, exc)
        result.delivered[channel.name] = sent


def evaluate_and_notify(
    settings: Settings,
    con: duckdb.DuckDBPyConnection,
    sync_id: str | None,
    now: dt.datetime | None = None,
    sleep: Sleep = time.sleep,
) -> AfterSync:
    """Evaluate, store, deliver. Never raises: whatever fails is logged and returned in `errors`."""
    now = now or dt.datetime.now(dt.timezone.utc)
    result = AfterSync()
    started = time.perf_counter()
    try:
        store = open_alert_store(settings)
        with store.hold_lock(EVALUATION_LOCK):
            evaluating = time.perf_counter()
            evaluation = evaluate_rules(con.cursor(), settings, now)
            result.findings, result.errors = len(evaluation.findings), list(evaluation.errors)
            # the evaluation's row goes with its findings (one commit); its seconds are the rules', not the
            # deliveries' nor the wait for another worker's evaluation
            took = time.perf_counter() - evaluating
            log_row = EvaluationLog(sync_id, took, result.findings, tuple(result.errors))
            store.save_findings(evaluation.findings, now, log_row, rules=evaluation.completed)
        deliver_due_alerts(
            store, configured_channels(settings, sleep), now, dt.timedelta(hours=settings.alert_cooldown_hours), result
        )
        result.seconds = time.perf_counter() - started
    except Exception as exc:  # the sync has committed and published: alerts must not undo that
        result.errors.append(f"alert evaluation failed: {exc}")
        result.seconds = time.perf_counter() - started
        log.warning("alert evaluation after sync %s failed: %s", sync_id, exc)
    for line in result.errors:
        log.warning("alert rules: %s", line)
    return result
