"""Alerts that reach people: after each successful sync the worker evaluates every rule and delivers
each due alert once to a local webhook receiver and a local SMTP server (aiosmtpd); not again within
the cooldown, again after it; a receiver that is down is retried, reported, and never fails a sync."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest

from insights_core.manager.after_sync import evaluate_and_notify
from insights_core.manager.alert_store import open_alert_store
from insights_core.manager.channels import send_webhook
from insights_core.models import SyncRequest
from insights_core.settings import Settings
from insights_core.worker import SyncWorker
from tests.helpers import SMALL_SHAPE, make_settings
from tests.manager.receivers import free_port, smtp_server, webhook_receiver
from tests.manager.stub_frames import ALL_SCENARIOS


def _settings(data_dir: Path, **overrides: object) -> Settings:
    return make_settings(data_dir, **SMALL_SHAPE, stub_scenarios=ALL_SCENARIOS, **overrides)


def _sync(settings: Settings) -> None:
    worker = SyncWorker(settings)
    try:
        report = worker.run_once(SyncRequest(days_back=70, force=True))
        assert report.success, report.errors
    finally:
        worker.close()


def test_each_alert_arrives_once_by_webhook_and_email_then_again_after_the_cooldown(tmp_path: Path) -> None:
    with webhook_receiver() as hook, smtp_server() as (mailbox, port):
        settings = _settings(
            tmp_path / "data",
            alert_webhook_url=hook.url,
            alert_smtp_host="127.0.0.1",
            alert_smtp_port=port,
            alert_email_to=("manager@example.com",),
            alert_cooldown_hours=6,
        )
        _sync(settings)
        store = open_alert_store(settings)
        active = store.fetch_alerts()
        rules = set(active["rule"])
        assert {"pacing", "fatigue", "anomaly"} <= rules, rules
        assert len(hook.texts) == len(active) == len(set(hook.texts))  # one post per alert
        assert len(mailbox.messages) == len(active)
        for key, message in zip(active["key"], active["message"]):
            assert sum(message in text for text in hook.texts) == 1, key
        sender, recipients, content = mailbox.messages[0]
        assert sender == "meta-insights@localhost" and recipients == ["manager@example.com"]
        assert "Subject: [Meta Insights]" in content
        fatigue = active[active["rule"] == "fatigue"].iloc[0]
        assert any("looks worn out" in text and "frequency" in text for text in hook.texts), fatigue

        _sync(settings)  # a second sync within the cooldown: the same alerts, nothing sent again
        assert len(hook.texts) == len(active) and len(mailbox.messages) == len(active)
        assert store.fetch_alerts()["first_seen"].tolist() == active["first_seen"].tolist()

        later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=6, minutes=1)
        with duckdb.connect(str(settings.db_path), read_only=True) as con:
            result = evaluate_and_notify(settings, con, "after-cooldown", now=later)
        assert result.errors == [] and result.delivered == {"webhook": len(active), "email": len(active)}
        assert len(hook.texts) == 2 * len(active) and len(mailbox.messages) == 2 * len(active)


def test_acknowledged_and_muted_alerts_are_not_sent_again(tmp_path: Path) -> None:
    with webhook_receiver() as hook:
        settings = _settings(tmp_path / "data", alert_webhook_url=hook.url, alert_cooldown_hours=0)
        _sync(settings)
        store = open_alert_store(settings)
        keys = list(store.fetch_alerts()["key"])
        now = dt.datetime.now(dt.timezone.utc)
        store.acknowledge(keys[0], "manager", now)
        store.mute(keys[1], "manager", now + dt.timedelta(days=7))
        sent = len(hook.texts)
        _sync(settings)  # cooldown 0: everything still firing goes out again, except those two
        assert len(hook.texts) - sent == len(keys) - 2


def test_a_receiver_that_is_down_is_retried_reported_and_never_fails_the_sync(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}/hook"
    settings = _settings(tmp_path / "data", alert_webhook_url=dead, alert_delivery_retries=1)
    worker = SyncWorker(settings)
    try:
        report = worker.run_once(SyncRequest(days_back=70, force=True))
    finally:
        worker.close()
    assert report.success and report.errors == []
    store = open_alert_store(settings)
    failures = store.fetch_deliveries(failed_only=True)
    # the channel gave up after its retries on the first alert, and was not hammered for the others
    assert len(failures) == 1 and failures.iloc[0]["attempts"] == 2
    assert "could not be reached" in failures.iloc[0]["error"] and dead not in failures.iloc[0]["error"]
    assert len(store.fetch_due("webhook", dt.datetime.now(dt.timezone.utc), dt.timedelta(hours=24))) > 0
    assert store.fetch_evaluations().iloc[0]["sync_id"] == report.sync_id


def test_retries_back_off_and_a_recovering_receiver_gets_the_post() -> None:
    waits: list[float] = []
    with webhook_receiver() as hook:
        hook.fail_next = 2
        result = send_webhook(hook.url, "hello", timeout=5, retries=3, sleep=waits.append)
    assert result.ok and result.attempts == 3 and waits == [1.0, 2.0]
    assert hook.requests == 3 and hook.texts == ["hello"]


def test_refused_connections_are_retried_and_client_errors_are_not() -> None:
    waits: list[float] = []
    result = send_webhook("http://127.0.0.1:9/x", "hello", timeout=0.5, retries=2, sleep=waits.append)
    assert not result.ok and result.attempts == 3 and waits == [1.0, 2.0]  # refused: retried
    with webhook_receiver() as hook:
        hook.server.RequestHandlerClass.do_POST = lambda self: (self.send_response(404), self.end_headers())  # type: ignore[attr-defined]
        waits.clear()
        result = send_webhook(hook.url, "hello", timeout=5, retries=2, sleep=waits.append)
    assert not result.ok and result.attempts == 1 and waits == [] and result.error == "the webhook answered HTTP 404"


def test_evaluation_never_raises(tmp_path: Path) -> None:
    settings = _settings(tmp_path / "data")
    con = duckdb.connect()
    con.close()
    result = evaluate_and_notify(settings, con, "s1")
    assert result.errors and "alert evaluation failed" in result.errors[0]


@pytest.mark.parametrize("retries", [0])
def test_an_smtp_server_that_is_down_is_reported(tmp_path: Path, retries: int) -> None:
    settings = _settings(
        tmp_path / "data",
        alert_smtp_host="127.0.0.1",
        alert_smtp_port=free_port(),
        alert_email_to=("a@example.com",),
        alert_delivery_retries=retries,
    )
    _sync(settings)
    failures = open_alert_store(settings).fetch_deliveries(failed_only=True)
    assert list(failures["channel"]) == ["email"] and "SMTP server 127.0.0.1" in failures.iloc[0]["error"]
