"""What the login state costs per dashboard page run and per API request, in the data dir's files and in PostgreSQL.

    .venv/bin/python benchmarks/bench_auth_state.py              # starts a local PostgreSQL under /tmp
    .venv/bin/python benchmarks/bench_auth_state.py --runs 500

With INSIGHTS_STORE=ducklake nothing is cached across checks, so every page run reads the users and
the logouts from PostgreSQL (what `login.load_auth` and the session check do), and every API request
looks its token up and reads the users. Printed: the median and p95 of each, for both stores, and
what opening one new connection costs (why connections are kept for reuse). The server is the
Debian package's, on loopback, as the tests start it; on another machine add the network's round trips
(two per page run, two per request).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from insights_core.auth import check_users_for_mode  # noqa: E402
from insights_core.auth_state import AuthState, auth_state  # noqa: E402
from insights_core.cluster.pg import connect_with_retry  # noqa: E402
from insights_core.cluster.postgres_server import PostgresServer  # noqa: E402
from insights_core.settings import Settings  # noqa: E402
from tests.helpers import make_settings  # noqa: E402
from tests.servers import free_port  # noqa: E402


def time_calls(work: Callable[[], object], runs: int) -> tuple[float, float]:
    """(median, p95) in milliseconds of `runs` calls, after 5 warm-up calls."""
    for _ in range(5):
        work()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1]


def page_run_reads(state: AuthState, settings: Settings) -> Callable[[], object]:
    def run() -> object:
        state.users.ensure_demo_users()
        state.ensure_generated_cookie_key()
        config = state.users.fetch_users()
        check_users_for_mode(config, settings.mode)
        return state.logouts.fetch_logouts().get("manager")

    return run


def api_request_reads(state: AuthState, token: str) -> Callable[[], object]:
    def run() -> object:
        record = state.tokens.find_token(token)
        assert record is not None
        return state.users.fetch_users(missing_ok=True).user(record.username)

    return run


def bench_store(name: str, settings: Settings, runs: int) -> None:
    state = auth_state(settings)
    state.users.ensure_demo_users()
    user = state.users.fetch_users().users["viewer"]
    _, token = state.tokens.create_token(user.username, user.password_hash)
    state.logouts.save_logout("manager", 1.0)
    for label, work in (
        ("page run (users + logouts)", page_run_reads(state, settings)),
        ("API request (token + users)", api_request_reads(state, token)),
        ("failed login recorded", lambda: state.throttle.record_failure("mallory", None, time.time())),
    ):
        median, p95 = time_calls(work, runs)
        print(f"{name:10} {label:30} median {median:7.3f} ms   p95 {p95:7.3f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-auth-"))
    pg_root = Path(tempfile.mkdtemp(prefix="bench-auth-pg-"))  # its own: the server's user must reach it
    server = PostgresServer(pg_root, free_port())
    server.start()
    try:
        url = server.create_database("bench_auth")
        bench_store("files", make_settings(root / "files"), args.runs)
        lake = make_settings(root / "lake-dir", store="ducklake", catalog_url=url, lake_data_path=str(root / "lake"))
        bench_store("postgres", lake, args.runs)

        def connect_once() -> None:
            connect_with_retry(url, autocommit=True).close()

        median, p95 = time_calls(connect_once, 50)
        print(f"{'postgres':10} {'a new connection (not kept)':30} median {median:7.3f} ms   p95 {p95:7.3f} ms")
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(pg_root, ignore_errors=True)


if __name__ == "__main__":
    main()
