"""Full stub syncs: wall time (sync + publish), rows written (totals and segments), rows/s (both), peak RSS.

    .venv/bin/python benchmarks/bench_sync.py                 # every scenario below
    .venv/bin/python benchmarks/bench_sync.py --only default  # one scenario
    .venv/bin/python benchmarks/bench_sync.py --only default --only default-breakdowns  # with vs without

Each scenario runs in a fresh process (so peak RSS is its own) on an empty temporary data dir:
a first sync (inserts), then a forced second sync of the same window (the upsert path scheduled
syncs take for the days they re-read). Prints figures; asserts nothing. `--keep DIR` leaves the data dir
for the page benchmark.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ALL_FAMILIES = ("age_gender", "country", "placement", "device_platform")
SCENARIOS = {
    "default": (100, 5, 3, 30, ()),
    "default-breakdowns": (100, 5, 3, 30, ALL_FAMILIES),
    "large": (1000, 10, 10, 30, ()),
    "large-3.3M": (1000, 10, 10, 38, ()),
}
"""name -> (campaigns, ad sets per campaign, ads per ad set, days, INSIGHTS_BREAKDOWNS families). Paused
and archived entities deliver only in some weeks, so 30 days of 1000x10x10 give ~2.65M rows; 38 days
give the ~3.3M rows an always-on account of that size would have in 30. Scenarios without families
measure the totals alone (as before breakdowns existed); "default-breakdowns" is the default account
with every family, to compare with "default"."""


def run_scenario(name: str, data_dir: Path) -> dict:
    sys.path.insert(0, str(ROOT))
    from insights_core.engine import run_sync
    from insights_core.models import SyncRequest
    from insights_core.settings import Settings
    from insights_core.sources.stub import StubSource
    from insights_core.store.warehouse import Warehouse

    campaigns, adsets, ads, days, families = SCENARIOS[name]
    settings = Settings(
        _env_file=None,
        data_dir=data_dir,
        stub_campaigns=campaigns,  # type: ignore[call-arg]
        stub_adsets_per_campaign=adsets,
        stub_ads_per_adset=ads,
        breakdowns=families,
    )
    source = StubSource.from_settings(settings)
    warehouse = Warehouse(settings.db_path, settings.duckdb_memory_limit)
    passes = []
    # force: the re-sync re-reads every day of the window (the upsert path), settled days included
    for label in ("first sync", "re-sync"):
        started = time.perf_counter()
        report = run_sync(
            SyncRequest(days_back=days, force=True), source=source, warehouse=warehouse, settings=settings
        )
        synced = time.perf_counter()
        warehouse.publish(settings.snapshot_dir, settings.current_snapshot_link)
        done = time.perf_counter()
        assert report.success, report.errors
        passes.append(
            {
                "pass": label,
                "sync_s": synced - started,
                "publish_s": done - synced,
                "wall_s": done - started,
                "rows": report.rows_read,
                "segment_rows": warehouse.con.execute("SELECT count(*) FROM meta_ad_insight_breakdowns").fetchone()[0],
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    warehouse.close()
    return {
        "scenario": name,
        "shape": f"{campaigns}x{adsets}x{ads}",
        "entities": campaigns * (1 + adsets * (1 + ads)),
        "days": days,
        "passes": passes,
        "db_mb": settings.db_path.stat().st_size / 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=sorted(SCENARIOS), action="append", help="a scenario (repeatable)")
    parser.add_argument("--keep", type=Path, help="run in this data dir and keep it (with --only)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_scenario(args.child, args.keep)))
        return
    if args.keep and args.only and len(args.only) > 1:
        parser.error("--keep takes one --only scenario")

    print(
        f"{'scenario':<18} {'shape':<10} {'entities':>8} {'pass':<10} {'rows':>10} {'segment rows':>12} {'sync s':>7} "
        f"{'publish s':>9} {'wall s':>7} {'rows/s':>10} {'peak RSS MB':>11} {'db MB':>7}"
    )
    for name in args.only or list(SCENARIOS):
        with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp:
            data_dir = args.keep if args.keep else Path(tmp) / "data"
            out = subprocess.run(
                [sys.executable, __file__, "--child", name, "--keep", str(data_dir)],
                capture_output=True,
                text=True,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )
            if out.returncode != 0:
                print(f"{name}: failed\n{out.stderr}")
                continue
            result = json.loads(out.stdout.strip().splitlines()[-1])
        for p in result["passes"]:
            print(
                f"{result['scenario']:<18} {result['shape']:<10} {result['entities']:>8} {p['pass']:<10} "
                f"{p['rows']:>10,} {p['segment_rows']:>12,} {p['sync_s']:>7.2f} {p['publish_s']:>9.2f} "
                f"{p['wall_s']:>7.2f} {(p['rows'] + p['segment_rows']) / p['wall_s']:>10,.0f} "
                f"{p['peak_rss_mb']:>11.0f} {result['db_mb']:>7.0f}"
            )


if __name__ == "__main__":
    main()
