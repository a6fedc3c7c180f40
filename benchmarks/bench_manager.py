"""Manager insights after a sync: time to evaluate every alert rule and to forecast, against the sync's own time.

    .venv/bin/python benchmarks/bench_manager.py                  # default store (100x5x3, 120 days)
    .venv/bin/python benchmarks/bench_manager.py --only large     # 1000x10x10 over 38 days (~3.3M rows)

Each store is built in a fresh temporary data dir (a first sync of its history), then the measured
pass is what the worker does on a schedule: a forced re-sync of the last 28 days (INSIGHTS_LOOKBACK_DAYS)
with its publish, then `after_sync.evaluate_and_notify` (every rule, the alert store, no channel), and
the account's forecasts (spend, conversions, revenue: ETS fits) with and without their backtests.
The worker runs only the rules after a sync; forecasts are computed by the Forecast page (cached per
snapshot), and are timed here so their cost is known. Target: rules under 10% of the sync's time.

The re-sync is timed twice: with the default settings, which collect the four breakdown families
beside the totals (the default store only: the large store is built without breakdowns, as its
earlier figures were, so that one run stays within minutes on a 2-CPU machine), and with breakdowns
off (the totals alone, the cheapest sync and so the strict comparison). The rules are timed RULE_RUNS times in
the benchmark's warm process, as in a long-running worker; the first run also pays one-off costs
(pandas' lazily imported paths, DuckDB's first plans) and is printed beside the median. Module imports
are not timed: the worker imports the rules at start, not per sync (statsmodels, for forecasts, is
never imported on that path). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STORES = {"default": (100, 5, 3, 120, True), "large": (1000, 10, 10, 38, False)}
"""name -> (campaigns, ad sets per campaign, ads per ad set, days of history, with the default breakdowns)."""
RESYNC_DAYS = 28
RULE_RUNS = 3


def run_store(name: str, data_dir: Path) -> dict[str, object]:
    sys.path.insert(0, str(ROOT))
    from insights_core.engine import run_sync
    from insights_core.manager import reads
    from insights_core.manager.after_sync import evaluate_and_notify
    from insights_core.manager.forecast import FORECAST_METRICS, backtest_series, daily_series, forecast_series
    from insights_core.manager.rules import evaluate_rules
    from insights_core.models import SyncReport, SyncRequest
    from insights_core.settings import Settings
    from insights_core.sources.stub import StubSource
    from insights_core.store.warehouse import Warehouse

    campaigns, adsets, ads, days, with_breakdowns = STORES[name]
    settings = Settings(
        _env_file=None,
        data_dir=data_dir,
        stub_campaigns=campaigns,  # type: ignore[call-arg]
        stub_adsets_per_campaign=adsets,
        stub_ads_per_adset=ads,
    )
    totals_only = settings.model_copy(update={"breakdowns": ()})
    if not with_breakdowns:
        settings = totals_only
    source = StubSource.from_settings(settings)
    warehouse = Warehouse(settings.db_path, settings.duckdb_memory_limit)
    report = run_sync(SyncRequest(days_back=days, force=True), source=source, warehouse=warehouse, settings=settings)
    assert report.success, report.errors
    rows = warehouse.con.execute("SELECT count(*) FROM meta_ad_insights").fetchone()[0]  # type: ignore[index]

    def resync(with_settings: Settings) -> tuple[float, SyncReport]:
        started = time.perf_counter()
        report = run_sync(
            SyncRequest(days_back=RESYNC_DAYS, force=True), source=source, warehouse=warehouse, settings=with_settings
        )
        warehouse.publish(with_settings.snapshot_dir, with_settings.current_snapshot_link)
        assert report.success, report.errors
        return time.perf_counter() - started, report

    sync_s, report = resync(settings)
    totals_sync_s, _ = resync(totals_only) if with_breakdowns else (sync_s, report)

    now = dt.datetime.now(dt.timezone.utc)
    runs = []
    for _ in range(RULE_RUNS):  # the first run pays one-time costs (lazy imports, DuckDB plans): the median is typical
        started = time.perf_counter()
        evaluation = evaluate_rules(warehouse.con.cursor(), settings, now)
        runs.append(time.perf_counter() - started)
    first_rules_s, rules_s = runs[0], statistics.median(runs)
    hooks = []
    for _ in range(RULE_RUNS):  # the first writes every alert, the next ones see them again (the steady state)
        started = time.perf_counter()
        hook = evaluate_and_notify(settings, warehouse.con, report.sync_id)
        hooks.append(time.perf_counter() - started)
    hook_s = statistics.median(hooks)

    cur = warehouse.con.cursor()
    as_of = reads.fetch_last_day(cur)
    assert as_of is not None
    account = reads.fetch_account_daily(cur, as_of - dt.timedelta(days=399), as_of)
    forecast_runs = []
    for _ in range(RULE_RUNS):  # the first run imports statsmodels (once per process), timed apart
        started = time.perf_counter()
        forecasts = [
            forecast_series(daily_series(account, m, as_of), m, settings.forecast_horizon_days, 28)
            for m in FORECAST_METRICS
        ]
        forecast_runs.append(time.perf_counter() - started)
    first_forecast_s, forecast_s = forecast_runs[0], statistics.median(forecast_runs[1:])
    started = time.perf_counter()
    backtests = [
        backtest_series(daily_series(account, m, as_of), m, settings.forecast_horizon_days, 28)
        for m in FORECAST_METRICS
    ]
    backtest_s = time.perf_counter() - started
    warehouse.close()
    return {
        "store": name,
        "shape": f"{campaigns}x{adsets}x{ads}",
        "days": days,
        "rows": rows,
        "resync_rows": report.rows_read,
        "sync_s": sync_s,
        "totals_sync_s": totals_sync_s,
        "breakdowns": list(settings.breakdowns),
        "rules_s": rules_s,
        "first_rules_s": first_rules_s,
        "per_rule_s": evaluation.seconds,
        "findings": len(evaluation.findings),
        "rule_errors": evaluation.errors,
        "hook_s": hook_s,
        "hook_errors": hook.errors,
        "forecast_s": forecast_s,
        "first_forecast_s": first_forecast_s,
        "forecasts": sum(f.frame is not None for f in forecasts),
        "backtest_s": backtest_s,
        "backtest_fits": sum(b.origins for b in backtests),
        "coverage": [b.coverage for b in backtests],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=sorted(STORES))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_store(args.child, args.dir)))
        return
    for name in [args.only] if args.only else ["default"]:
        with tempfile.TemporaryDirectory(prefix=f"bench-manager-{name}-") as tmp:
            out = subprocess.run(
                [sys.executable, __file__, "--child", name, "--dir", str(Path(tmp) / "data")],
                capture_output=True,
                text=True,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )
        if out.returncode != 0:
            print(f"{name}: failed\n{out.stderr}")
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        share, strict = r["rules_s"] / r["sync_s"], r["rules_s"] / r["totals_sync_s"]
        print(f"store {r['store']} ({r['shape']}, {r['days']} days, {r['rows']:,} rows)")
        if r["breakdowns"]:
            print(
                f"  re-sync of {RESYNC_DAYS} days + publish, default settings (breakdowns "
                f"{','.join(r['breakdowns'])}): {r['sync_s']:.2f} s ({r['resync_rows']:,} total rows read)"
            )
        print(f"  re-sync of {RESYNC_DAYS} days + publish, breakdowns off: {r['totals_sync_s']:.2f} s")
        rules = ", ".join(f"{k} {v:.3f}" for k, v in r["per_rule_s"].items())
        print(
            f"  every rule (median of {RULE_RUNS}; first {r['first_rules_s']:.3f} s): {r['rules_s']:.3f} s = "
            + (f"{share:.1%} of the default re-sync, " if r["breakdowns"] else "")
            + f"{strict:.1%} of the re-sync without breakdowns "
            f"({'within' if strict < 0.10 else 'ABOVE'} the 10% target); {r['findings']} findings"
        )
        print(f"  seconds by step: {rules}")
        print(
            f"  worker hook (rules + alert store, no channel; median of {RULE_RUNS}): {r['hook_s']:.3f} s = "
            f"{r['hook_s'] / r['totals_sync_s']:.1%} of the re-sync without breakdowns"
        )
        print(
            f"  account forecasts, 3 metrics (median of {RULE_RUNS - 1} after a first run that imports statsmodels: "
            f"{r['first_forecast_s']:.2f} s): {r['forecast_s']:.2f} s ({r['forecasts']} fitted); "
            f"with backtests: +{r['backtest_s']:.2f} s ({r['backtest_fits']} fits)"
        )
        both = r["rules_s"] + r["forecast_s"]
        print(
            f"  rules + forecasts: {both:.3f} s = {both / r['sync_s']:.1%} of the default re-sync, "
            f"{both / r['totals_sync_s']:.1%} of the re-sync without breakdowns"
        )
        if r["rule_errors"] or r["hook_errors"]:
            print(f"  errors: {r['rule_errors'] + r['hook_errors']}")


if __name__ == "__main__":
    main()
