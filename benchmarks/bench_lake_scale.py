"""The switch-over point between the embedded store and the lake, with figures: the same stub accounts
synced into both, one account at a time, as a worker syncs them.

    .venv/bin/python benchmarks/bench_lake_scale.py               # 10 accounts x 1000x10x10, 38 days (~33M rows)
    .venv/bin/python benchmarks/bench_lake_scale.py --accounts 1  # one account (~3.3M rows)
    .venv/bin/python benchmarks/bench_lake_scale.py --accounts 2 --shape 20x3x2 --days 30  # a quick check
    .venv/bin/python benchmarks/bench_lake_scale.py --only lake --keep /var/tmp/scale      # keep the stores

Accounts are synced in turn into each engine (account 1 into both, then account 2, ...), so the two
stores hold the same rows at every point, with run_sync over one account's entity tree and a forced
read of the whole window (what a first sync or a backfill writes), as a worker syncs an account:

- embedded: the sync's seconds, then the publish (the copy of the whole DuckDB file readers open) and
  the file's size. The publish grows with the store, not with the change: the figure the switch-over
  point rests on.
- lake (DuckLake, catalog in a PostgreSQL the benchmark starts, data in a directory): the sync's
  seconds, its commit included; publishing is the commit.

At each checkpoint (--checkpoints, default after the first and the last account): one lake maintenance
pass (merge, rewrite, expire, clean up: `compact_lake`) with the data files before and after, then the
Overview page on each store in fresh processes through bench_pages.py's child mode (the same AppTest
run as every page figure): cold+imports, cold, warm and uncached. Prints the load average, since the
figures compare only on a quiet machine. Segment breakdowns are off unless --breakdowns (the ~33M rows
are the totals, as in bench_sync.py's large scenarios). Creatives are stored without their images
unless --images: the stub hands over an image for each of an account's 100,000 ads in its first sync
(drawing them took ~15 of 22 s of an embedded sync of 100x10x10 here), where a live sync downloads at
most 300 a sync; the figures are the store's. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from insights_core.cluster.postgres_server import PostgresServer  # noqa: E402
from insights_core.engine import run_sync  # noqa: E402
from insights_core.models import BREAKDOWN_FAMILIES, Account, Creative, EntityTree, SyncRequest  # noqa: E402
from insights_core.settings import Settings  # noqa: E402
from insights_core.sources import InsightsSource, open_source  # noqa: E402
from insights_core.sources.stub_creatives import stub_creative_text  # noqa: E402
from insights_core.store.engines import open_warehouse  # noqa: E402
from insights_core.store.lake import LAKE  # noqa: E402
from insights_core.store.lake_maintenance import compact_lake  # noqa: E402
from insights_core.store.lake_warehouse import LakeWarehouse, hold_commit_lock  # noqa: E402
from insights_core.store.warehouse import Warehouse  # noqa: E402

ENGINES = ("embedded", "lake")


def parse_shape(text: str) -> tuple[int, int, int]:
    parts = text.lower().split("x")
    if len(parts) != 3 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise argparse.ArgumentTypeError(f"a shape is CAMPAIGNSxADSETSxADS, e.g. 1000x10x10, not {text!r}")
    return int(parts[0]), int(parts[1]), int(parts[2])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_settings(data_dir: Path, args: argparse.Namespace, **lake: object) -> Settings:
    campaigns, adsets, ads = args.shape
    return Settings(
        _env_file=None,
        data_dir=data_dir,
        stub_accounts=args.accounts,  # type: ignore[call-arg]
        stub_campaigns=campaigns,
        stub_adsets_per_campaign=adsets,
        stub_ads_per_adset=ads,
        breakdowns=BREAKDOWN_FAMILIES if args.breakdowns else (),
        **lake,
    )


def leave_images_out(source: InsightsSource) -> None:
    """Make the stub `source` hand over its creatives without images (text, link and call to action only):
    no image is drawn, as none is downloaded in a live sync past its 300."""

    def fetch_without_images(account: Account, creative_ids: Sequence[str]) -> list[Creative]:
        return [
            Creative(creative_id, account.account_id, *stub_creative_text(creative_id), image_url=None)
            for creative_id in dict.fromkeys(creative_ids)
        ]

    source.fetch_creatives = fetch_without_images  # type: ignore[method-assign]


def count_rows(warehouse: Warehouse) -> int:
    row = warehouse.con.execute("SELECT count(*) FROM meta_ad_insights").fetchone()
    assert row is not None
    return int(row[0])


def sync_account(
    engine: str,
    number: int,
    settings: Settings,
    warehouse: Warehouse,
    source: InsightsSource,
    tree: EntityTree,
    days: int,
) -> None:
    """Sync one account's tree into `warehouse` and publish; print the figures' line."""
    started = time.perf_counter()
    report = run_sync(
        SyncRequest(days_back=days, force=True), source=source, warehouse=warehouse, settings=settings, trees=[tree]
    )
    synced = time.perf_counter()
    if not report.success:
        sys.exit(f"{engine}: the sync of {tree.account.account_id} failed: {report.errors[:3]}")
    warehouse.publish(settings.snapshot_dir, settings.current_snapshot_link)
    published = time.perf_counter()
    size = f"{settings.db_path.stat().st_size / 1e6:>8,.0f}" if engine == "embedded" else f"{'-':>8}"
    print(
        f"{engine:<9} {number:>3} {tree.account.account_id:<16} {report.rows_read:>10,} {count_rows(warehouse):>12,} "
        f"{synced - started:>7.1f} {published - synced:>9.2f} {size} "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:>8,.0f}",
        flush=True,
    )


def compact(warehouse: LakeWarehouse, settings: Settings) -> None:
    """One maintenance pass over the whole lake, keeping no old snapshot (no reader is pinned now)."""
    with hold_commit_lock(settings):
        run = compact_lake(warehouse.con, LAKE, keep_snapshots=dt.timedelta(0), worker="benchmark")
    print(
        f"lake maintenance: data files {run.files_before:,} -> {run.files_after:,} "
        f"({run.bytes_before / 1e6:,.0f} MB -> {run.bytes_after / 1e6:,.0f} MB), "
        f"delete files {run.delete_files_before}, merged {run.files_merged}, rewritten {run.files_rewritten}, "
        f"snapshots expired {run.snapshots_expired}, files deleted {run.files_deleted}, {run.seconds:.1f} s",
        flush=True,
    )


def page_env(settings: Settings) -> dict[str, str]:
    """The dashboard's environment for `settings`' store (stub mode: the demo users)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("META_", "INSIGHTS_"))}
    env.update({"INSIGHTS_DATA_DIR": str(settings.data_dir), "META_INSIGHTS_MODE": "stub", "PYTHONPATH": str(ROOT)})
    if settings.store == "ducklake":
        assert settings.catalog_url is not None and settings.lake_data_path is not None
        env.update(
            {
                "INSIGHTS_STORE": "ducklake",
                "INSIGHTS_CATALOG_URL": settings.catalog_url.get_secret_value(),
                "INSIGHTS_LAKE_DATA_PATH": str(settings.lake_data_path),
            }
        )
    return env


def time_overview(engine: str, settings: Settings, warm_runs: int) -> None:
    """The Overview page in two fresh processes (bench_pages.py's child): one timed from before streamlit
    is imported, one that imported the app's modules first (cold, then warm runs)."""
    figures = {}
    for preimport in (False, True):
        out = subprocess.run(
            [
                sys.executable,
                str(ROOT / "benchmarks" / "bench_pages.py"),
                "--child",
                "overview",
                "--warm-runs",
                str(warm_runs),
                *(["--preimport"] if preimport else []),
            ],
            capture_output=True,
            text=True,
            env=page_env(settings),
            cwd=ROOT,
        )
        if out.returncode != 0:
            print(f"{engine}: the Overview page failed: {out.stderr.strip().splitlines()[-1:]}")
            return
        result = json.loads(out.stdout.strip().splitlines()[-1])
        if result["problems"]:
            print(f"{engine}: the Overview page showed problems: {result['problems'][:2]}")
            return
        figures[preimport] = result
    fresh, warm = figures[False], figures[True]
    print(
        f"{engine:<9} overview: cold+imports {fresh['since_start_s']:.2f} s, cold {warm['cold_s']:.2f} s, "
        f"warm median {statistics.median(warm['warm_s']):.3f} s (max {max(warm['warm_s']):.3f} s), "
        f"uncached median {statistics.median(warm['uncached_s']):.3f} s",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=10)
    parser.add_argument("--shape", type=parse_shape, default=(1000, 10, 10), help="CAMPAIGNSxADSETSxADS per account")
    parser.add_argument("--days", type=int, default=38, help="38 days of 1000x10x10 are ~3.3M rows an account")
    parser.add_argument("--only", choices=ENGINES, action="append", help="one engine (repeatable)")
    parser.add_argument("--warm-runs", type=int, default=3)
    parser.add_argument(
        "--checkpoints",
        type=int,
        nargs="+",
        help="after these accounts: maintenance and the Overview (default: 1, last)",
    )
    parser.add_argument("--breakdowns", action="store_true", help="also collect every segment family")
    parser.add_argument("--images", action="store_true", help="also keep each creative's image")
    parser.add_argument("--keep", type=Path, help="build the stores here and keep them (default: a temporary dir)")
    args = parser.parse_args()

    root = args.keep.resolve() if args.keep else Path(tempfile.mkdtemp(prefix="bench-lake-scale-"))
    root.mkdir(parents=True, exist_ok=True)
    engines = args.only or list(ENGINES)
    print(
        f"{args.accounts} accounts x {'x'.join(map(str, args.shape))}, {args.days} days, engines {', '.join(engines)}, "
        f"in {root}; load average at start {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs",
        flush=True,
    )
    print(
        f"{'engine':<9} {'#':>3} {'account':<16} {'rows read':>10} {'rows stored':>12} {'sync s':>7} "
        f"{'publish s':>9} {'db MB':>8} {'RSS MB':>8}"
    )
    checkpoints = set(args.checkpoints or [1, args.accounts])
    server = None
    warehouses: dict[str, Warehouse] = {}
    try:
        stores = {}
        for engine in engines:
            if engine == "embedded":
                settings = make_settings(root / "embedded", args)
            else:
                server = PostgresServer(root / "postgres", free_port())
                server.start()
                (root / "lake").mkdir(exist_ok=True)
                settings = make_settings(
                    root / "lake-worker",
                    args,
                    store="ducklake",
                    catalog_url=server.create_database("bench_lake"),
                    lake_data_path=str(root / "lake"),
                )
            settings.data_dir.mkdir(parents=True, exist_ok=True)
            stores[engine], warehouses[engine] = settings, open_warehouse(settings)
        source = open_source(stores[engines[0]])
        if not args.images:
            leave_images_out(source)
        for number, account in enumerate(source.fetch_accounts(), start=1):
            tree = source.fetch_entities(account)
            for engine, settings in stores.items():
                sync_account(engine, number, settings, warehouses[engine], source, tree, args.days)
            if number in checkpoints:
                for engine, settings in stores.items():
                    if isinstance(warehouses[engine], LakeWarehouse):
                        compact(warehouses[engine], settings)  # type: ignore[arg-type]
                    time_overview(engine, settings, args.warm_runs)
    finally:
        for warehouse in warehouses.values():
            warehouse.close()
        if server is not None:
            server.stop()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
