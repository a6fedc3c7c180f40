"""REST API latency under 20 concurrent clients: overview, campaign and recent-insights, median and p95.

    .venv/bin/python benchmarks/bench_api.py                    # the default stub store and the 3.3M-row store
    .venv/bin/python benchmarks/bench_api.py --only default     # one store
    .venv/bin/python benchmarks/bench_api.py --clients 20 --requests 400 --seconds 60
    .venv/bin/python benchmarks/bench_api.py --only default --endpoint campaign --workload distinct

A real server (`streamlit run app.py`, pages and API on one loopback port, as scripts/run.sh starts
it) serves the store; `--clients` threads send GET requests with an admin's bearer token back to
back, each on a new connection as curl and most scripts do (stdlib http.client, so the client
costs little CPU), until `--requests` answers per endpoint or `--seconds` have passed.
`--keep-alive` reuses one connection per thread instead: on this Streamlit (1.67) every request
after the first on a connection then waits ~40 ms, for Streamlit's own /_stcore/health too: its
listening socket is created without IPPROTO_TCP, so asyncio never sets TCP_NODELAY on accepted
connections, and the response body waits for the delayed ACK of its headers (Nagle).
Latency is the time from sending a request to reading its whole answer, queueing in the server
included. The server's CPU time per request (all its threads, from /proc) says what the latency
is made of: with `--clients` requests in flight on N CPUs, the median cannot be much below
clients x CPU per request / N; the 1-minute load average shows what else ran. Two workloads per endpoint:

- repeated: the same request over and over (a dashboard or BI tool polling): the busiest campaign
  of the store (most insight rows), 30 days; the overview's default period. After the first
  answer these come from the API's per-snapshot cache (what the pages' st.cache_data does).
- distinct: every request different, so none is cached: campaigns in turn with days 1-365,
  overview periods of different days within the stored days, longest first (a period before the
  first stored day would be an empty, cheap answer). This is the cost of the queries and the math.

A few warm-up requests of the repeated URL run first (imports, the DuckDB connection).

Stores are built once with `bench_sync.py --only <store> --keep` into --store-dir/<store> (default
benchmarks/results/stores, ignored by git, shared with bench_pages.py) and reused. The benchmark's
token is revoked at the end. Target: p95 <= 100 ms on the default store. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench_pages import ensure_store  # noqa: E402  (the stores both benchmarks use)

from tests.servers import start_dashboard, stop, wait_healthy  # noqa: E402  (after the path is set)

STORES = ("default", "large-3.3M")
ENDPOINTS = ("overview", "campaign", "recent-insights")
WORKLOADS = ("repeated", "distinct")
TARGET_P95_S = {"default": 0.100}
WARMUP = 3


def fetch_store_facts(data_dir: Path) -> tuple[int, list[str], str, str]:
    """(insight rows, campaign ids busiest first, the first and the last stored day)."""
    import duckdb

    with duckdb.connect(str(data_dir / "current.duckdb"), read_only=True) as con:
        rows = con.execute("SELECT count(*) FROM meta_ad_insights").fetchone()[0]
        campaigns = [
            r[0]
            for r in con.execute(
                "SELECT entity_id FROM meta_ad_insights WHERE entity_type = 'campaign'"
                " GROUP BY entity_id ORDER BY count(*) DESC, entity_id"
            ).fetchall()
        ]
        first, last = con.execute("SELECT min(date_start), max(date_start) FROM meta_ad_insights").fetchone()
    return int(rows), campaigns, str(first), str(last)


def stored_periods(first: dt.date, last: dt.date) -> list[tuple[dt.date, dt.date]]:
    """Every (since, until) within the stored days, longest first (the costliest overviews first)."""
    days = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
    pairs = [(since, until) for since in days for until in days if since <= until]
    return sorted(pairs, key=lambda pair: (pair[0] - pair[1], pair[1]))


def start_server(data_dir: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("META_", "INSIGHTS_"))}
    env.update({"INSIGHTS_DATA_DIR": str(data_dir), "META_INSIGHTS_MODE": "stub", "PYTHONPATH": str(ROOT)})
    server, url = start_dashboard(env, log)
    try:
        wait_healthy(server, url, 120, log)
    except RuntimeError as exc:
        stop(server)
        raise SystemExit(str(exc)) from None
    return server, url


def _fetch(
    connection: http.client.HTTPConnection | None, url: str, headers: dict[str, str]
) -> tuple[int, http.client.HTTPConnection | None]:
    """GET `url` (on `connection` when keeping it alive); (status, the connection to reuse)."""
    parts = urllib.parse.urlsplit(url)
    own = connection or http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=60)
    own.request("GET", f"{parts.path}?{parts.query}" if parts.query else parts.path, headers=headers)
    answer = own.getresponse()
    answer.read()
    if connection is None:
        own.close()
    return answer.status, connection


def fetch_cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` so far, all its threads (Linux /proc; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def fetch_load() -> float:
    """The machine's 1-minute load average: other work on the same CPUs shows in every figure."""
    return os.getloadavg()[0]


def measure(
    urls: list[str], token: str, clients: int, seconds: float, keep_alive: bool, server_pid: int
) -> dict[str, float]:
    """GET each of `urls` once, from `clients` threads at once (or until `seconds`); latency figures."""
    latencies: list[float] = []
    failures: list[int] = []
    lock = threading.Lock()
    queue = list(reversed(urls))
    deadline = time.monotonic() + seconds
    headers = {"Authorization": f"Bearer {token}"}
    parts = urllib.parse.urlsplit(urls[0])

    def client() -> None:
        connection = (
            http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=60) if keep_alive else None
        )
        while time.monotonic() < deadline:
            with lock:
                if not queue:
                    break
                url = queue.pop()
            started = time.perf_counter()
            status, connection = _fetch(connection, url, headers)
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
                if status != 200:
                    failures.append(status)
        if connection is not None:
            connection.close()

    for _ in range(WARMUP):
        status, _ = _fetch(None, urls[0], headers)
        if status != 200:
            raise SystemExit(f"warm-up of {urls[0]} answered {status}")
    started = time.perf_counter()
    cpu_before = fetch_cpu_seconds(server_pid)
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    server_cpu = fetch_cpu_seconds(server_pid) - cpu_before
    ordered = sorted(latencies)
    return {
        "n": len(ordered),
        "median": statistics.median(ordered),
        "p95": ordered[int(0.95 * (len(ordered) - 1))],
        "max": ordered[-1],
        "rps": len(ordered) / wall,
        "failures": len(failures),
        "server_cpu_ms": server_cpu / len(ordered) * 1000,
        "load": fetch_load(),
    }


def bench_store(
    name: str,
    store_dir: Path,
    clients: int,
    requests: int,
    seconds: float,
    keep_alive: bool,
    endpoints: tuple[str, ...] = ENDPOINTS,
    workload_names: tuple[str, ...] = WORKLOADS,
) -> None:
    from insights_core.api_tokens import TokenStore
    from insights_core.auth import ensure_demo_auth_config, load_auth_config

    data_dir = ensure_store(name, store_dir)
    rows, campaigns, first_day, last_day = fetch_store_facts(data_dir)
    campaign = campaigns[0]
    ensure_demo_auth_config(data_dir / "auth.yaml")
    admin = load_auth_config(data_dir / "auth.yaml").user("admin")
    assert admin is not None
    tokens = TokenStore(data_dir)
    record, token = tokens.create_token("admin", admin.password_hash)
    server, base = start_server(data_dir, data_dir.parent / f"bench_api_{name}.out")
    try:
        p = f"{base}/meta/insights"
        last = dt.date.fromisoformat(last_day)
        periods = stored_periods(dt.date.fromisoformat(first_day), last)
        distinct = [(campaigns[i % len(campaigns)], 1 + i % 365) for i in range(requests)]
        workloads = {
            ("overview", "repeated"): [f"{p}/overview"] * requests,
            ("overview", "distinct"): [
                # a 30-day store has 465 periods; beyond them the list repeats (and those answers are cached)
                f"{p}/overview?since={since}&until={until}"
                for since, until in (periods * (requests // len(periods) + 1))[:requests]
            ],
            ("campaign", "repeated"): [f"{p}/campaign/{campaign}?days=30"] * requests,
            ("campaign", "distinct"): [f"{p}/campaign/{c}?days={d}" for c, d in distinct],
            ("recent-insights", "repeated"): [f"{p}/recent-insights/{campaign}?entity_type=campaign&days=30"]
            * requests,
            ("recent-insights", "distinct"): [
                f"{p}/recent-insights/{c}?entity_type=campaign&days={d}" for c, d in distinct
            ],
        }
        print(
            f"\n{name}: {rows:,} insight rows, {clients} concurrent clients, up to {requests} requests per row"
            f"{', keep-alive connections' if keep_alive else ', a connection per request'}"
        )
        print(
            f"{'endpoint':<16} {'workload':<9} {'n':>5} {'median ms':>10} {'p95 ms':>8} {'max ms':>8} {'req/s':>7}"
            f" {'non-200':>8} {'server CPU ms/req':>18} {'load':>5}"
        )
        for (label, workload), urls in workloads.items():
            if label not in endpoints or workload not in workload_names:
                continue
            figures = measure(urls, token, clients, seconds, keep_alive, server.pid)
            target = TARGET_P95_S.get(name)
            verdict = "" if target is None else ("  ok" if figures["p95"] <= target else "  above target")
            print(
                f"{label:<16} {workload:<9} {figures['n']:>5.0f} {figures['median'] * 1000:>10.1f}"
                f" {figures['p95'] * 1000:>8.1f} {figures['max'] * 1000:>8.1f} {figures['rps']:>7.1f}"
                f" {figures['failures']:>8.0f} {figures['server_cpu_ms']:>18.1f} {figures['load']:>5.1f}{verdict}",
                flush=True,
            )
    finally:
        stop(server)
        tokens.revoke_token(record.id)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=STORES)
    parser.add_argument("--store-dir", type=Path, default=ROOT / "benchmarks" / "results" / "stores")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=400, help="requests per endpoint and workload")
    parser.add_argument("--seconds", type=float, default=60.0, help="time limit per endpoint and workload")
    parser.add_argument("--keep-alive", action="store_true", help="one connection per client thread")
    parser.add_argument("--endpoint", action="append", choices=ENDPOINTS, help="only these endpoints (repeatable)")
    parser.add_argument("--workload", action="append", choices=WORKLOADS, help="only these workloads (repeatable)")
    args = parser.parse_args()
    for name in [args.only] if args.only else STORES:
        bench_store(
            name,
            args.store_dir,
            args.clients,
            args.requests,
            args.seconds,
            args.keep_alive,
            tuple(args.endpoint or ENDPOINTS),
            tuple(args.workload or WORKLOADS),
        )


if __name__ == "__main__":
    main()
