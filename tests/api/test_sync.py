"""POST /meta/insights/sync-now: a manager's request is queued once and served by the worker, whose
report the status URL then shows; an analyst's is refused and queues nothing; bad bodies are 400."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from insights_core.control import ControlChannel
from insights_core.settings import Settings
from insights_core.sync_requests import request_params
from insights_core.worker import SyncWorker
from tests.api.helpers import PREFIX, TestClient, api_client, bearer, build_api_data_dir, query_store, role_tokens
from tests.dashboard.app_harness import CAMPAIGN


@pytest.fixture
def synced(tmp_path: Path) -> Iterator[tuple[Settings, dict[str, str], TestClient]]:
    settings = build_api_data_dir(tmp_path / "data", days_back=5)
    with api_client(settings) as client:
        yield settings, role_tokens(settings), client


def _requests(settings: Settings) -> list[int]:
    return [r.id for r in ControlChannel(settings.control_db_path).fetch_recent_requests(100)]


def test_a_managers_sync_now_is_served_by_the_worker(synced: tuple[Settings, dict[str, str], TestClient]) -> None:
    settings, tokens, client = synced
    body = {"days_back": 2, "force": True, "entity_type": "campaign", "entity_ids": [CAMPAIGN]}
    answer = client.post(f"{PREFIX}/sync-now", json=body, headers=bearer(tokens["manager"]))
    assert answer.status_code == 202, answer.text
    queued = answer.json()
    assert queued["created"] is True and queued["worker_running"] is False and "not running" in queued["message"]
    assert queued["status_url"] == f"{PREFIX}/sync-now/{queued['request_id']}" == answer.headers["location"]
    assert _requests(settings) == [queued["request_id"]]
    pending = client.get(queued["status_url"], headers=bearer(tokens["admin"])).json()
    assert pending["status"] == "pending" and pending["requested_by"] == "manager" and pending["report"] is None
    assert pending["params"] == {"days_back": 2, "entity_type": "campaign", "entity_ids": [CAMPAIGN], "force": True}
    # the same request again while it is open: the same id, nothing new queued
    again = client.post(f"{PREFIX}/sync-now", json=body, headers=bearer(tokens["admin"])).json()
    assert again["request_id"] == queued["request_id"] and again["created"] is False
    assert len(_requests(settings)) == 1

    before = client.get(f"{PREFIX}/overview", headers=bearer(tokens["viewer"])).json()["last_sync"]["sync_id"]
    worker = SyncWorker(settings)  # what the worker loop does each turn
    try:
        assert worker._serve_one_request() is True
        assert worker._serve_one_request() is False  # exactly one request was queued
    finally:
        worker.close()
    done = client.get(queued["status_url"], headers=bearer(tokens["manager"])).json()
    assert done["status"] == "succeeded" and done["error"] is None and done["finished_at"]
    report = done["report"]
    assert report["sync_type"] == "manual" and report["success"] is True
    assert report["campaigns"] == {"processed": 1, "success": 1, "errors": 0}
    assert report["adsets"]["processed"] == 3 and report["ads"]["processed"] == 6
    assert report["sync_id"] == done["sync_id"]
    stored = query_store(settings, "SELECT request_id, status FROM sync_runs WHERE sync_id = ?", [report["sync_id"]])
    assert stored == [(queued["request_id"], "succeeded")]
    # the overview follows the new snapshot at once (its cached answer was for the one before)
    overview = client.get(f"{PREFIX}/overview", headers=bearer(tokens["viewer"])).json()
    assert overview["last_sync"]["sync_id"] == report["sync_id"] != before


def test_an_analysts_sync_now_is_refused_and_queues_nothing(
    synced: tuple[Settings, dict[str, str], TestClient],
) -> None:
    settings, tokens, client = synced
    for role in ("analyst", "viewer"):
        answer = client.post(f"{PREFIX}/sync-now", json={"days_back": 1}, headers=bearer(tokens[role]))
        assert answer.status_code == 403 and answer.json()["error"]
    assert client.post(f"{PREFIX}/sync-now", json={"days_back": 1}).status_code == 401
    assert _requests(settings) == []


def test_an_empty_body_queues_the_scheduled_window(synced: tuple[Settings, dict[str, str], TestClient]) -> None:
    settings, tokens, client = synced
    answer = client.post(f"{PREFIX}/sync-now", headers=bearer(tokens["admin"]))
    assert answer.status_code == 202
    record = ControlChannel(settings.control_db_path).fetch_request(answer.json()["request_id"])
    assert record is not None and record.requested_by == "admin"
    assert record.request is not None
    assert request_params(record.request) == {"days_back": None, "entity_type": None, "entity_ids": [], "force": False}


@pytest.mark.parametrize(
    "body, words",
    [
        (b"{not json", "must be a JSON object"),
        (b"[1, 2]", "must be a JSON object"),
        (b'{"days": 7}', "unknown field 'days'"),
        (b'{"days_back": 0}', "days back must be from 1"),
        (b'{"days_back": 100000}', "INSIGHTS_MAX_DAYS_BACK"),
        (b'{"days_back": "7.5"}', "whole number"),
        (b'{"days_back": true}', "whole number"),
        (b'{"force": "yes"}', "force must be true or false"),
        (b'{"entity_ids": ["1"]}', "need an entity type"),
        (b'{"entity_type": "campaign"}', "needs at least one entity id"),
        (b'{"entity_type": "account", "entity_ids": ["1"]}', "entity type must be one of"),
        (b'{"entity_type": "campaign", "entity_ids": ["abc"]}', "not a Meta object id"),
        (b'{"entity_type": "campaign", "entity_ids": [{"id": 1}]}', "entity_ids must hold ids"),
        (b'{"entity_type": "campaign", "entity_ids": 5}', "entity_ids must be a list"),
    ],
)
def test_bad_bodies_are_400_and_queue_nothing(
    synced: tuple[Settings, dict[str, str], TestClient], body: bytes, words: str
) -> None:
    settings, tokens, client = synced
    answer = client.post(
        f"{PREFIX}/sync-now", content=body, headers={**bearer(tokens["manager"]), "Content-Type": "application/json"}
    )
    assert answer.status_code == 400, answer.text
    assert words in answer.json()["error"]
    assert _requests(settings) == []


def test_an_unknown_id_is_queued_and_the_worker_fails_it_as_on_the_sync_page(
    synced: tuple[Settings, dict[str, str], TestClient],
) -> None:
    """Only the worker's fresh fetch knows an entity created since the last publish: it decides, for every
    entry point."""
    settings, tokens, client = synced
    answer = client.post(
        f"{PREFIX}/sync-now",
        json={"days_back": 1, "entity_type": "campaign", "entity_ids": ["999"]},
        headers=bearer(tokens["manager"]),
    )
    assert answer.status_code == 202
    worker = SyncWorker(settings)
    try:
        assert worker._serve_one_request() is True
    finally:
        worker.close()
    done = client.get(answer.json()["status_url"], headers=bearer(tokens["manager"])).json()
    assert done["status"] == "failed" and done["report"]["errors"] == ["unknown campaign id: 999"]


def test_a_huge_body_is_refused(synced: tuple[Settings, dict[str, str], TestClient]) -> None:
    settings, tokens, client = synced
    answer = client.post(f"{PREFIX}/sync-now", content=b" " * 70_000, headers=bearer(tokens["manager"]))
    assert answer.status_code == 413 and _requests(settings) == []
