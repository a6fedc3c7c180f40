"""The PostgreSQL control channel with many workers: one heartbeat row each, summarised for the
dashboard; claims by N processes taken once each; orphans only of dead workers; a server restart."""

from __future__ import annotations

import datetime as dt
import subprocess
import threading
import uuid
from collections import Counter

import psycopg

from insights_core.cluster.control_pg import PostgresControlChannel
from insights_core.cluster.leases import AccountLeases
from insights_core.cluster.pg import SCHEMA
from insights_core.cluster.postgres_server import PostgresServer
from insights_core.control import STALE_AFTER_SECONDS
from insights_core.models import SyncRequest
from tests.helpers import PYTHON, ROOT, wait_for

MAX_DAYS = 365


def _beat(control: PostgresControlChannel, state: str = "idle", sync_id: str | None = None) -> None:
    control.save_heartbeat(
        mode="stub",
        state=state,
        started_at=dt.datetime.now(dt.timezone.utc),
        interval_minutes=30,
        sync_enabled=True,
        current_sync_id=sync_id,
    )


def _age_heartbeat(url: str, worker_id: str, seconds: float) -> None:
    with psycopg.connect(url) as con:
        con.execute(
            f"UPDATE {SCHEMA}.worker_heartbeats SET heartbeat_at = now() - make_interval(secs => %s)"
            " WHERE worker_id = %s",
            [seconds, worker_id],
        )


def test_every_worker_has_its_row_and_the_status_summarises_them(catalog_url: str) -> None:
    idle, busy, dead = (PostgresControlChannel(catalog_url, worker_id=name) for name in ("idle", "busy", "dead"))
    _beat(idle)
    _beat(busy, "syncing", "s1")
    _beat(dead)
    _age_heartbeat(catalog_url, "dead", STALE_AFTER_SECONDS + 5)
    AccountLeases(catalog_url, "busy", 30).claim(["act_2", "act_1"])
    status = idle.fetch_worker_status()
    assert status is not None and status.is_alive()
    assert status.worker_id == "busy" and status.state == "syncing" and status.accounts == ("act_1", "act_2")
    assert {w.worker_id for w in status.workers} == {"idle", "busy", "dead"}
    assert {w.worker_id for w in status.alive_workers()} == {"idle", "busy"}
    _beat(busy, "stopped")
    _beat(idle, "stopped")
    assert not idle.fetch_worker_status().is_alive()


def test_only_requests_of_workers_without_a_fresh_heartbeat_are_orphaned(catalog_url: str) -> None:
    live, dead = PostgresControlChannel(catalog_url, worker_id="live"), PostgresControlChannel(catalog_url, "dead")
    live_id, _ = live.save_request(SyncRequest(days_back=1))
    dead_id, _ = live.save_request(SyncRequest(days_back=2))
    assert live.claim_next_request(MAX_DAYS).request_id == live_id
    assert dead.claim_next_request(MAX_DAYS).request_id == dead_id
    _beat(live)
    _beat(dead)
    with psycopg.connect(catalog_url) as con:  # both claimed long ago; only "dead" stopped beating
        con.execute(f"UPDATE {SCHEMA}.sync_requests SET claimed_at = now() - interval '1 hour'")
    assert live.fail_orphaned_requests() == 0
    _age_heartbeat(catalog_url, "dead", STALE_AFTER_SECONDS + 5)
    assert live.fail_orphaned_requests() == 1
    assert live.fetch_request(dead_id).status == "failed" and live.fetch_request(live_id).status == "running"


_CLAIM_ALL = """
import sys
from insights_core.cluster.control_pg import PostgresControlChannel
control = PostgresControlChannel(sys.argv[1])
while (request := control.claim_next_request(365)) is not None:
    print(request.request_id, flush=True)
"""


def test_processes_claiming_at_once_take_each_request_exactly_once(catalog_url: str) -> None:
    control = PostgresControlChannel(catalog_url)
    ids = [control.save_request(SyncRequest(days_back=days))[0] for days in range(1, 61)]
    workers = [
        subprocess.Popen([PYTHON, "-c", _CLAIM_ALL, catalog_url], stdout=subprocess.PIPE, text=True, cwd=ROOT)
        for _ in range(4)
    ]
    outputs = [worker.communicate(timeout=60)[0].split() for worker in workers]
    assert all(worker.returncode == 0 for worker in workers)
    claimed = Counter(int(request_id) for output in outputs for request_id in output)
    assert claimed == Counter(ids)
    assert all(record.status == "running" for record in control.fetch_recent_requests(100))


def test_heartbeats_and_claims_carry_on_through_a_server_restart(
    catalog_url: str, postgres_server: PostgresServer
) -> None:
    """A worker-like loop beats and claims every 50 ms while the server restarts: calls made during
    the restart are retried (or fail one turn), and the loop carries on afterwards."""
    control = PostgresControlChannel(catalog_url, worker_id="survivor")
    claimed: list[int] = []
    failures: list[str] = []
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                _beat(control)
                request = control.claim_next_request(MAX_DAYS)
                if request is not None and request.request_id is not None:
                    claimed.append(request.request_id)
            except Exception as exc:  # the worker's loop logs and goes on, as here
                failures.append(type(exc).__name__)
            stop.wait(0.05)

    thread = threading.Thread(target=loop)
    thread.start()
    try:
        before, _ = control.save_request(SyncRequest(days_back=1))
        wait_for(lambda: before in claimed, timeout=20, what="a claim before the restart")
        postgres_server.restart()
        after, _ = control.save_request(SyncRequest(days_back=2))  # the app's side retries too
        wait_for(lambda: after in claimed, timeout=30, what="a claim after the restart")
        restarted_at = dt.datetime.now(dt.timezone.utc)
        wait_for(
            lambda: control.fetch_worker_status().heartbeat_at > restarted_at,
            timeout=30,
            what="a heartbeat after the restart",
        )
    finally:
        stop.set()
        thread.join()
    assert set(failures) <= {"ControlChannelError"}  # never a raw driver error


def test_workers_creating_the_shared_tables_at_once_all_get_them(postgres_server: PostgresServer) -> None:
    """Concurrent CREATE ... IF NOT EXISTS can fail in PostgreSQL's catalog: the advisory lock serialises them."""
    failures: list[Exception] = []

    def open_channel(url: str) -> None:
        try:
            PostgresControlChannel(url)
            AccountLeases(url, "w", 30).save_accounts(["act_1"])
        except Exception as exc:
            failures.append(exc)

    for attempt in range(3):
        url = postgres_server.create_database(f"fresh_{attempt}_{uuid.uuid4().hex[:8]}")
        threads = [threading.Thread(target=open_channel, args=(url,)) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert failures == []
