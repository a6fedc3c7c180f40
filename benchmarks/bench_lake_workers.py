"""Many sync workers on one lake, live mode against the Graph API emulator: wall time of 1 worker
against N workers for the scheduled syncs of M ad accounts, with a latency added to every request.

    .venv/bin/python benchmarks/bench_lake_workers.py                   # 16 accounts of 4 x 3 x 2, 30 days,
                                                                        # 100 ms per request, 1 then 4 workers
    .venv/bin/python benchmarks/bench_lake_workers.py --workers 8 --latency-ms 50 --breakdowns ""

Needs PostgreSQL's server binaries (`bash scripts/ensure_postgres.sh` installs them). Everything runs
under a temporary directory that is removed at the end (`--keep` leaves it, with the workers' logs):
a PostgreSQL server on a free loopback port, the emulator (in this process) serving the accounts, and
per run a fresh catalog database and lake data directory, migrated before the clock starts (a new
lake's DDL is many catalog commits; production starts from a lake that exists). Then the real
`sync_worker.py` loop runs in N processes (INSIGHTS_STORE=ducklake, META_AD_ACCOUNT_IDS with every
account), each leasing one due account at a time through PostgreSQL, with product defaults otherwise
(breakdowns, creatives, report polling). The clock runs from starting the processes until every account's
scheduled sync has succeeded (`account_leases.last_scheduled_at` set, no `retry_at`), so it includes
the workers' start-up, which is printed apart. Prints figures; asserts nothing. It exits non-zero with
the reason when a sync fails, a worker exits, or `--timeout` passes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from graph_emulator import AccountShape, GraphEmulator  # noqa: E402
from insights_core.cluster.control_pg import PostgresControlChannel  # noqa: E402
from insights_core.cluster.pg import SCHEMA  # noqa: E402
from insights_core.cluster.postgres_server import PostgresServer, find_postgres_bin  # noqa: E402
from insights_core.errors import ConfigError  # noqa: E402
from insights_core.settings import Settings  # noqa: E402
from insights_core.store.lake import connect_lake  # noqa: E402
from insights_core.store.lake_warehouse import LakeWarehouse  # noqa: E402

TOKEN = "benchmark-token"
POLL_SECONDS = 0.2
ROW_TABLES = ("meta_ad_insights", "meta_ad_insight_breakdowns", "meta_ad_creatives")


class BenchmarkFailed(Exception):
    """A run did not finish: the message says which account or worker and why."""


@dataclass
class RunFigures:
    workers: int
    wall_seconds: float
    first_sync_seconds: float
    """From starting the processes to the first sync's start: the workers' start-up."""
    requests: int
    rows: dict[str, int]
    sync_seconds: list[float]
    commit_replays: int
    """Lake commits that conflicted and were replayed under the commit lock (counted in the workers' logs)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def lake_settings(data_dir: Path, catalog_url: str, lake_dir: Path) -> Settings:
    return Settings(
        _env_file=None,
        data_dir=data_dir,
        store="ducklake",
        catalog_url=catalog_url,  # type: ignore[arg-type]
        lake_data_path=str(lake_dir),
    )


def ensure_fresh_lake(server: PostgresServer, name: str, run_dir: Path) -> tuple[str, Path]:
    """A new catalog database and data directory, migrated, with the workers' shared tables."""
    url = server.create_database(name)
    lake_dir = run_dir / "lake"
    lake_dir.mkdir(parents=True)
    LakeWarehouse(lake_settings(run_dir / "migrate", url, lake_dir)).close()
    PostgresControlChannel(url)  # creates the shared tables the completion check reads
    return url, lake_dir


def start_worker(
    data_dir: Path, emulator: GraphEmulator, catalog_url: str, lake_dir: Path, args: argparse.Namespace
) -> subprocess.Popen[bytes]:
    """`python sync_worker.py` (the loop) in live mode on the lake; its output goes to <data dir>.log."""
    data_dir.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("META_", "INSIGHTS_"))}
    env.update(
        PYTHONPATH=str(ROOT),
        PYTHONUNBUFFERED="1",
        INSIGHTS_DATA_DIR=str(data_dir),
        META_INSIGHTS_MODE="live",
        META_ACCESS_TOKEN=TOKEN,
        META_AD_ACCOUNT_IDS=",".join(emulator.accounts),
        META_GRAPH_URL=emulator.url,
        INSIGHTS_STORE="ducklake",
        INSIGHTS_CATALOG_URL=catalog_url,
        INSIGHTS_LAKE_DATA_PATH=str(lake_dir),
        INSIGHTS_BACKFILL_DAYS=str(args.days),
        INSIGHTS_SYNC_INTERVAL_MINUTES="1440",  # each account is due once in the run
    )
    if args.breakdowns is not None:
        env["INSIGHTS_BREAKDOWNS"] = args.breakdowns
    with open(data_dir.with_suffix(".log"), "wb") as log:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, str(ROOT / "sync_worker.py")], env=env, cwd=data_dir, stdout=log, stderr=subprocess.STDOUT
        )


def fetch_lease_states(catalog_url: str) -> tuple[int, list[str]]:
    """(accounts whose scheduled sync succeeded, accounts whose scheduled sync failed and waits for a retry)."""
    with psycopg.connect(catalog_url) as con:
        rows = con.execute(
            f"SELECT account_id, last_scheduled_at IS NOT NULL AS done, retry_at IS NOT NULL AS failed"
            f" FROM {SCHEMA}.account_leases"
        ).fetchall()
    return sum(1 for _, done, failed in rows if done and not failed), sorted(a for a, _, failed in rows if failed)


def fetch_scheduled_reports(settings: Settings) -> list[dict]:
    con = connect_lake(settings)
    try:
        rows = con.execute("SELECT report_json FROM sync_runs WHERE sync_type = 'scheduled'").fetchall()
    finally:
        con.close()
    return [json.loads(row[0]) for row in rows]


def fetch_row_counts(settings: Settings) -> dict[str, int]:
    con = connect_lake(settings)
    try:
        return {table: int(con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]) for table in ROW_TABLES}
    finally:
        con.close()


def stop_workers(workers: list[subprocess.Popen[bytes]]) -> None:
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
    for worker in workers:
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def log_tail(path: Path, lines: int = 15) -> str:
    text = path.read_text(errors="replace").splitlines() if path.exists() else []
    return "\n".join("    " + line for line in text[-lines:])


def run_workers(
    server: PostgresServer, emulator: GraphEmulator, count: int, root: Path, args: argparse.Namespace
) -> RunFigures:
    """A fresh lake, `count` workers until every account's scheduled sync succeeded; the figures."""
    run_dir = root / f"run-{count}-workers"
    catalog_url, lake_dir = ensure_fresh_lake(server, f"lake_{count}_workers", run_dir)
    emulator.reset_counts()
    wanted = len(emulator.accounts)
    started = time.monotonic()
    start_wall = time.time()
    workers = [start_worker(run_dir / f"worker{n}", emulator, catalog_url, lake_dir, args) for n in range(count)]
    try:
        while True:
            done, failed = fetch_lease_states(catalog_url)
            if failed:
                reports = fetch_scheduled_reports(lake_settings(run_dir / "reader", catalog_url, lake_dir))
                errors = [e for r in reports if not r.get("success") for e in r.get("errors", [])][:5]
                raise BenchmarkFailed(f"scheduled sync failed for {', '.join(failed)}: {errors or 'see the logs'}")
            if done == wanted:
                break
            exited = [(n, w.returncode) for n, w in enumerate(workers) if w.poll() is not None]
            if exited:
                n, code = exited[0]
                tail = log_tail(run_dir / f"worker{n}.log")
                raise BenchmarkFailed(f"worker {n} exited with code {code} before the syncs were done:\n{tail}")
            if time.monotonic() - started > args.timeout:
                raise BenchmarkFailed(f"{done} of {wanted} accounts synced after {args.timeout:.0f} s (--timeout)")
            time.sleep(POLL_SECONDS)
        wall = time.monotonic() - started
        requests = emulator.total_requests
    finally:
        stop_workers(workers)
    reader = lake_settings(run_dir / "reader", catalog_url, lake_dir)
    reports = fetch_scheduled_reports(reader)
    first_start = min(_timestamp(r["sync_timestamp"]) for r in reports)
    return RunFigures(
        workers=count,
        wall_seconds=wall,
        first_sync_seconds=first_start - start_wall,
        requests=requests,
        rows=fetch_row_counts(reader),
        sync_seconds=sorted(float(r["total_duration_seconds"]) for r in reports if r.get("success")),
        commit_replays=sum(
            log.read_text(errors="replace").count("replaying its writes under the lock")
            for log in run_dir.glob("worker*.log")
        ),
    )


def _timestamp(text: str) -> float:
    import datetime as dt

    stamp = dt.datetime.fromisoformat(text)
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.timezone.utc)
    return stamp.timestamp()


def print_run(figures: RunFigures) -> None:
    syncs = figures.sync_seconds
    busy = sum(syncs)
    print(
        f"{figures.workers} worker(s): wall {figures.wall_seconds:6.1f} s  (first sync started after "
        f"{figures.first_sync_seconds:4.1f} s)  requests {figures.requests}  "
        f"commits replayed {figures.commit_replays}"
    )
    if syncs:
        print(
            f"    {len(syncs)} syncs: {syncs[0]:.1f} / {syncs[len(syncs) // 2]:.1f} / {syncs[-1]:.1f} s "
            f"(min / median / max), {busy:.0f} s in all = {busy / figures.wall_seconds:.2f} syncs at once on average"
        )
    print("    rows in the lake: " + ", ".join(f"{table} {count}" for table, count in figures.rows.items()))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=16)
    parser.add_argument("--workers", type=int, default=4, help="the second run's workers (the first has one)")
    parser.add_argument("--latency-ms", type=float, default=100, help="added to every emulator request")
    default = AccountShape()  # the emulator's: 20 x 3 x 2 with every breakdown family takes minutes per account
    parser.add_argument("--campaigns", type=int, default=default.campaigns)
    parser.add_argument("--adsets-per-campaign", type=int, default=default.adsets_per_campaign)
    parser.add_argument("--ads-per-adset", type=int, default=default.ads_per_adset)
    parser.add_argument("--days", type=int, default=30, help="INSIGHTS_BACKFILL_DAYS: the first sync's window")
    parser.add_argument(
        "--breakdowns", default=None, help="INSIGHTS_BREAKDOWNS for the workers (default: the product's, every family)"
    )
    parser.add_argument("--timeout", type=float, default=900, help="seconds a run may take before it counts as failed")
    parser.add_argument("--keep", action="store_true", help="leave the temporary directory (logs, lake, cluster)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the finally blocks stop the workers and the server
    try:
        find_postgres_bin()
    except ConfigError as exc:
        print(f"bench_lake_workers: {exc} (bash scripts/ensure_postgres.sh)", file=sys.stderr)
        return 2
    root = Path(tempfile.mkdtemp(prefix="bench-lake-workers-"))
    server = PostgresServer(root / "postgres", free_port())
    shape = AccountShape(args.campaigns, args.adsets_per_campaign, args.ads_per_adset)
    print(
        f"{args.accounts} accounts of {shape.campaigns} x {shape.adsets_per_campaign} x {shape.ads_per_adset}, "
        f"{args.days} days, {args.latency_ms:g} ms per request, breakdowns "
        f"{'default' if args.breakdowns is None else args.breakdowns or 'none'}; 1 worker, then {args.workers}",
        flush=True,
    )
    try:
        server.start()
        with GraphEmulator(shape, accounts=args.accounts, latency_ms=args.latency_ms) as emulator:
            runs = []
            for count in (1, args.workers):
                runs.append(run_workers(server, emulator, count, root, args))
                print_run(runs[-1])
        one, many = runs
        print(
            f"speed-up {one.wall_seconds / many.wall_seconds:.2f}x with {args.workers} workers "
            f"(wall {one.wall_seconds:.1f} s -> {many.wall_seconds:.1f} s); rows equal: {one.rows == many.rows}"
        )
    except BenchmarkFailed as exc:
        print(f"bench_lake_workers: {exc}", file=sys.stderr)
        return 1
    finally:
        server.stop()
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
