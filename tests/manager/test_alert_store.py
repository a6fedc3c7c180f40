"""Alert state in SQLite (one data dir) and in PostgreSQL (the lake): deduplicated by key with first and
last seen, resolved and re-opened, acknowledged and muted from the dashboard, deliveries recorded;
errors are one AlertStoreError. Each test runs on both stores, through `open_alert_store`."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from insights_core.errors import InputError, StoreError
from insights_core.manager.after_sync import AfterSync, Channel, deliver_due_alerts
from insights_core.manager.alert_store import (
    AlertStore,
    AlertStoreError,
    EvaluationLog,
    SqliteAlertStore,
    StoredAlert,
    open_alert_store,
)
from insights_core.manager.channels import DeliveryResult
from insights_core.manager.rules import Finding
from tests.helpers import make_settings

T0 = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.timezone.utc)
HOUR = dt.timedelta(hours=1)
COOLDOWN = dt.timedelta(hours=24)
A = Finding("pacing:campaign:1:over:2026-11-01", "pacing", "warning", "c1 is over pace", "campaign", "1")
B = Finding("fatigue:ad:9", "fatigue", "error", "ad 9 looks worn out", "ad", "9")


@pytest.fixture(params=["sqlite", "postgres"])
def new_store(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], AlertStore]:
    """Opens another store object on one alert state, as another worker or dashboard replica would."""
    if request.param == "postgres":
        url = request.getfixturevalue("catalog_url")
        settings = make_settings(tmp_path / "data", store="ducklake", catalog_url=url, lake_data_path=str(tmp_path))
    else:
        settings = make_settings(tmp_path / "data")
    return lambda: open_alert_store(settings)


@pytest.fixture
def store(new_store: Callable[[], AlertStore]) -> AlertStore:
    return new_store()


def test_findings_are_deduplicated_with_first_and_last_seen(store: AlertStore) -> None:
    store.save_findings([A, B], T0)
    store.save_findings([A, B, A], T0 + HOUR)
    alerts = store.fetch_alerts().set_index("key")
    assert len(alerts) == 2
    assert alerts.loc[A.key, "first_seen"] == "2026-11-20T12:00:00+00:00"
    assert alerts.loc[A.key, "last_seen"] == "2026-11-20T13:00:00+00:00"


def test_the_sqlite_file_is_private(tmp_path: Path) -> None:
    store = open_alert_store(make_settings(tmp_path / "data"))
    assert isinstance(store, SqliteAlertStore) and store.path == tmp_path / "data" / "alerts.sqlite"
    assert (store.path.stat().st_mode & 0o077) == 0


def test_missing_findings_resolve_and_a_return_is_a_new_episode(store: AlertStore) -> None:
    store.save_findings([A, B], T0)
    store.acknowledge(A.key, "manager", T0)
    store.save_findings([B], T0 + HOUR)
    assert list(store.fetch_alerts()["key"]) == [B.key]
    resolved = store.fetch_alerts(include_resolved=True).set_index("key")
    assert resolved.loc[A.key, "resolved_at"] == "2026-11-20T13:00:00+00:00"
    store.save_findings([A, B], T0 + 2 * HOUR)
    again = store.fetch_alerts().set_index("key")
    assert again.loc[A.key, "first_seen"] == "2026-11-20T14:00:00+00:00"
    assert again.loc[A.key, "acknowledged_at"] is None  # a new episode asks for attention again


def test_due_respects_cooldown_acknowledgement_and_mute(store: AlertStore) -> None:
    store.save_findings([A, B], T0)
    assert [a.key for a in store.fetch_due("webhook", T0, COOLDOWN)] == sorted([A.key, B.key])
    store.save_delivery("webhook", A.key, True, 1, None, T0)
    store.save_delivery("webhook", B.key, False, 4, "down", T0)
    assert [a.key for a in store.fetch_due("webhook", T0 + HOUR, COOLDOWN)] == [B.key]  # failed: still due
    assert {a.key for a in store.fetch_due("email", T0 + HOUR, COOLDOWN)} == {A.key, B.key}  # per channel
    assert {a.key for a in store.fetch_due("webhook", T0 + COOLDOWN, COOLDOWN)} == {A.key, B.key}
    store.acknowledge(B.key, "manager", T0)
    store.mute(A.key, "admin", T0 + 48 * HOUR)
    assert store.fetch_due("webhook", T0 + COOLDOWN, COOLDOWN) == []
    assert [a.key for a in store.fetch_due("webhook", T0 + 49 * HOUR, COOLDOWN)] == [A.key]  # the mute ran out
    store.unmute(A.key)
    assert [a.key for a in store.fetch_due("webhook", T0 + COOLDOWN, COOLDOWN)] == [A.key]
    failures = store.fetch_deliveries(failed_only=True)
    assert list(failures["error"]) == ["down"] and list(failures["attempts"]) == [4]


def test_unknown_keys_give_one_clear_error(store: AlertStore) -> None:
    for change in (
        lambda: store.acknowledge("nope", "manager", T0),
        lambda: store.mute("nope", "admin", T0),
        lambda: store.unmute("nope"),
    ):
        with pytest.raises(InputError, match="no alert with key 'nope'"):
            change()


def test_broken_files_give_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(AlertStoreError, match="cannot be used") as caught:
        SqliteAlertStore(bad)
    assert isinstance(caught.value, StoreError)
    assert bad.read_bytes().startswith(b"this is not a database")  # people's decisions are never replaced


def test_a_failed_write_changes_nothing(store: AlertStore) -> None:
    store.save_findings([A], T0)
    broken = Finding(B.key, "fatigue", "error", None, "ad", "9")  # type: ignore[arg-type]  # NOT NULL message
    with pytest.raises(AlertStoreError):
        store.save_findings([broken], T0 + HOUR)
    alerts = store.fetch_alerts().set_index("key")
    assert list(alerts.index) == [A.key] and alerts.loc[A.key, "last_seen"] == "2026-11-20T12:00:00+00:00"


def test_an_evaluation_row_lands_with_its_findings_or_not_at_all(store: AlertStore) -> None:
    store.save_findings([A, B], T0, EvaluationLog("sync-1", 0.25, 2, ("anomaly: boom",)))
    (row,) = store.fetch_evaluations().to_dict("records")
    assert row == {
        "at": "2026-11-20T12:00:00+00:00",
        "sync_id": "sync-1",
        "seconds": 0.25,
        "findings": 2,
        "errors": "anomaly: boom",
    }
    broken = Finding(B.key, "fatigue", "error", None, "ad", "9")  # type: ignore[arg-type]  # NOT NULL message
    with pytest.raises(AlertStoreError):
        store.save_findings([A, broken], T0 + HOUR, EvaluationLog("sync-2", 0.1, 2))
    assert list(store.fetch_evaluations()["sync_id"]) == ["sync-1"]
    assert set(store.fetch_alerts()["last_seen"]) == {"2026-11-20T12:00:00+00:00"}
    store.save_findings([A], T0 + HOUR, EvaluationLog("sync-3", 0.1, 1))
    assert list(store.fetch_evaluations()["sync_id"]) == ["sync-3", "sync-1"]


def test_a_rule_that_did_not_run_to_the_end_keeps_its_alerts_open(store: AlertStore) -> None:
    store.save_findings([A, B], T0)
    store.acknowledge(B.key, "manager", T0)
    # fatigue failed this time (or had no data to read): its alert is neither resolved nor, next time, a new episode
    store.save_findings([], T0 + HOUR, rules={"pacing", "anomaly"})
    alerts = store.fetch_alerts().set_index("key")
    assert list(alerts.index) == [B.key]
    store.save_findings([B], T0 + 2 * HOUR, rules={"pacing", "fatigue"})
    again = store.fetch_alerts().set_index("key")
    assert again.loc[B.key, "first_seen"] == "2026-11-20T12:00:00+00:00"
    assert again.loc[B.key, "acknowledged_by"] == "manager"


def test_an_acknowledgement_and_a_mute_on_one_replica_hold_on_another(new_store: Callable[[], AlertStore]) -> None:
    replica_a, replica_b, worker = new_store(), new_store(), new_store()
    worker.save_findings([A, B], T0)
    replica_a.acknowledge(A.key, "manager", T0 + HOUR)
    replica_a.mute(B.key, "admin", T0 + 48 * HOUR)
    seen = replica_b.fetch_alerts().set_index("key")
    assert seen.loc[A.key, "acknowledged_by"] == "manager"
    assert seen.loc[A.key, "acknowledged_at"] == "2026-11-20T13:00:00+00:00"
    assert seen.loc[B.key, "muted_until"] == "2026-11-22T12:00:00+00:00" and seen.loc[B.key, "muted_by"] == "admin"
    assert worker.fetch_due("webhook", T0 + 2 * HOUR, COOLDOWN) == []
    replica_b.unmute(B.key)
    assert [a.key for a in worker.fetch_due("webhook", T0 + 2 * HOUR, COOLDOWN)] == [B.key]


class RecordingChannel:
    """A channel that keeps what it was sent, slowly enough that two workers' rounds overlap."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self._lock = threading.Lock()

    def send(self, alert: StoredAlert) -> DeliveryResult:
        time.sleep(0.05)
        with self._lock:
            self.sent.append(alert.key)
        return DeliveryResult(ok=True, attempts=1)


def test_two_workers_delivering_at_once_send_each_alert_once(new_store: Callable[[], AlertStore]) -> None:
    findings = [Finding(f"sync:{n}", "sync", "warning", f"alert {n}") for n in range(4)]
    new_store().save_findings(findings, T0)
    hook = RecordingChannel()
    start = threading.Barrier(2)
    results = [AfterSync(), AfterSync()]

    def worker(result: AfterSync) -> None:
        store = new_store()  # each worker has its own store object, its own connections
        start.wait()
        deliver_due_alerts(store, [Channel("webhook", hook.send)], T0, COOLDOWN, result)

    threads = [threading.Thread(target=worker, args=(result,)) for result in results]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(hook.sent) == sorted(f.key for f in findings)  # each once, none twice
    assert sorted(r.delivered["webhook"] for r in results) == [0, 4] and all(not r.failed for r in results)
    assert len(new_store().fetch_deliveries()) == 4
    assert new_store().fetch_due("webhook", T0 + HOUR, COOLDOWN) == []


def test_a_lock_held_too_long_is_reported_and_the_alerts_stay_due(new_store: Callable[[], AlertStore]) -> None:
    store, other = new_store(), new_store()
    store.save_findings([A], T0)
    hook = RecordingChannel()
    result = AfterSync()
    refused = pytest.raises(AlertStoreError, match="alert lock 'delivery:webhook'")
    with other.hold_lock("delivery:webhook"), refused, store.hold_lock("delivery:webhook", wait_seconds=0.2):
        pass
    deliver_due_alerts(store, [Channel("webhook", hook.send)], T0, COOLDOWN, result)  # released: delivered
    assert hook.sent == [A.key] and result.delivered == {"webhook": 1}
