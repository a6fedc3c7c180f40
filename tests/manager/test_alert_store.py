"""Alert state in SQLite: deduplicated by key with first and last seen, resolved and re-opened,
acknowledged and muted from the dashboard, deliveries recorded; errors are one AlertStoreError."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from insights_core.errors import InputError, StoreError
from insights_core.manager.alert_store import AlertStore, AlertStoreError, EvaluationLog
from insights_core.manager.rules import Finding

T0 = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.timezone.utc)
HOUR = dt.timedelta(hours=1)
COOLDOWN = dt.timedelta(hours=24)
A = Finding("pacing:campaign:1:over:2026-11-01", "pacing", "warning", "c1 is over pace", "campaign", "1")
B = Finding("fatigue:ad:9", "fatigue", "error", "ad 9 looks worn out", "ad", "9")


@pytest.fixture
def store(tmp_path: Path) -> AlertStore:
    return AlertStore(tmp_path / "data" / "alerts.sqlite")


def test_findings_are_deduplicated_with_first_and_last_seen(store: AlertStore) -> None:
    store.save_findings([A, B], T0)
    store.save_findings([A, B, A], T0 + HOUR)
    alerts = store.fetch_alerts().set_index("key")
    assert len(alerts) == 2
    assert alerts.loc[A.key, "first_seen"] == "2026-11-20T12:00:00+00:00"
    assert alerts.loc[A.key, "last_seen"] == "2026-11-20T13:00:00+00:00"
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


def test_unknown_keys_and_broken_files_give_one_clear_error(store: AlertStore, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no alert with key 'nope'"):
        store.acknowledge("nope", "manager", T0)
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(AlertStoreError, match="cannot be used") as caught:
        AlertStore(bad)
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
