"""Dashboard pages: the time of one full script run of app.py per page, cold and warm.

    .venv/bin/python benchmarks/bench_pages.py                   # the default stub store and the 3.3M-row store
    .venv/bin/python benchmarks/bench_pages.py --only large-3.3M # one store
    .venv/bin/python benchmarks/bench_pages.py --store-dir DIR --warm-runs 9 --pages overview campaign

A run is what a click costs on the server: app.py logs the session in (admin, who sees every page),
builds the navigation and runs the page with its queries, charts and tables, driven headless by
Streamlit's AppTest as in tests/dashboard/app_harness.py. The detail pages open deep links to the busiest
entities of the store (the campaign with most insight rows, its busiest ad set and that ad set's
busiest ad). Each figure comes from fresh processes, two per page:

- cold+imports: a process that has imported nothing: importing streamlit and AppTest, then the
  first run, which imports the app's modules (plotly, duckdb, streamlit-authenticator, ...) itself.
- first click: the same minus importing streamlit (which imports pandas), since `streamlit run`
  has done that before it serves anything: what the first click on a freshly started server costs.
- cold: the first run (no st.cache_* entry, no DuckDB connection yet) of a process that imported
  the app's modules beforehand, as a server that has served any page has them.
- warm: the next --warm-runs runs of that session (cached results), median and max.
- uncached: further runs after st.cache_data.clear() (connection open, every query runs again).

Stores are built once with `bench_sync.py --only <store> --keep` into --store-dir/<store> (default
benchmarks/results/stores, ignored by git) and reused; delete a store's folder to rebuild it. The
dashboard's users file and cookie key are generated there on the first run (stub mode).
The list scenarios (`--lists`, all by default; `--lists` alone skips them) run the Ads page without an id,
the list of every ad, with its widget state set before the first run; after them the list query alone is
timed on the store's connection (no Streamlit), for a 30-day period.
Targets, on the 3.3M-row store: warm <= 0.5 s, cold <= 2 s. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import pkgutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STORES = ("default", "large-3.3M")
"""bench_sync.py scenarios: 100x5x3 over 30 days (~52k rows) and 1000x10x10 over 38 days (~3.35M rows)."""
TARGETS = {"large-3.3M": {"warm_s": 0.5, "cold_s": 2.0}}
PAGES = ("overview", "campaign", "adset", "ad", "timeline", "sync", "users")
LISTS = ("ads-list", "ads-list-roas", "ads-list-name")
"""The Ads page without an id is the list of every ad (1000x10x10: 100,000 ads): its first page by spend, worst
ROAS first among ads that spent, and filtered by a word of the busiest ad's name. Widget state is set before
the first run, as a click would."""
UNCACHED_RUNS = 3


def ensure_store(name: str, store_dir: Path) -> Path:
    """The data dir of store `name`, built with bench_sync.py on first use."""
    data_dir = store_dir / name
    if not (data_dir / "current.duckdb").exists():
        print(f"building the {name} store in {data_dir} (bench_sync.py --only {name} --keep) ...", flush=True)
        subprocess.run(
            [sys.executable, str(ROOT / "benchmarks" / "bench_sync.py"), "--only", name, "--keep", str(data_dir)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return data_dir


def fetch_busy_entities(data_dir: Path) -> tuple[int, dict[str, dict[str, str]]]:
    """(insight rows in the store, each page's deep-link query params) for its busiest entities."""
    import duckdb

    con = duckdb.connect(str(data_dir / "current.duckdb"), read_only=True)
    try:
        rows = con.execute("SELECT count(*) FROM meta_ad_insights").fetchone()[0]

        def busiest(column: str, where: str = "TRUE", value: str | None = None) -> str:
            return con.execute(
                f"SELECT {column} FROM meta_ad_insights WHERE {column} IS NOT NULL AND {where}"
                f" GROUP BY {column} ORDER BY count(*) DESC, {column} LIMIT 1",
                [value] if value is not None else [],
            ).fetchone()[0]

        campaign = busiest("campaign_id")
        adset = busiest("adset_id", "campaign_id = ?", campaign)
        ad = busiest("ad_id", "adset_id = ?", adset)
    finally:
        con.close()
    return rows, {
        "campaign": {"campaign_id": campaign},
        "adset": {"adset_id": adset},
        "ad": {"ad_id": ad},
        "timeline": {"entity_type": "campaign", "entity_id": campaign, "days": "30"},
    }


def list_states(data_dir: Path) -> dict[str, dict[str, object]]:
    """The Ads list's widget state per list scenario; the name filter is a word of the busiest ad's name."""
    import duckdb

    with duckdb.connect(str(data_dir / "current.duckdb"), read_only=True) as con:
        [(name,)] = con.execute(
            "SELECT a.name FROM ads a JOIN (SELECT entity_id, count(*) AS n FROM meta_ad_insights"
            " WHERE entity_type = 'ad' GROUP BY 1 ORDER BY n DESC, 1 LIMIT 1) i ON i.entity_id = a.ad_id"
        ).fetchall()
    word = max(name.replace("·", " ").split(), key=len)
    return {
        "ads-list": {},
        "ads-list-roas": {"ad_sort": "roas", "ad_order": "worst", "ad_min_spend": 1.0},
        "ads-list-name": {"ad_search": word},
    }


def measure_lists(data_dir: Path, repeats: int = 3) -> None:
    """The list query alone (no Streamlit): what a new filter or sort costs on the store, median of `repeats`."""
    sys.path.insert(0, str(ROOT))
    from insights_core.store import lists, queries
    from insights_core.store.snapshots import connect_snapshot, resolve_current_snapshot

    con = connect_snapshot(resolve_current_snapshot(data_dir / "current.duckdb"))
    try:
        bounds = queries.fetch_data_bounds(con)
        assert bounds.last_day is not None
        since, until = bounds.last_day - dt.timedelta(days=29), bounds.last_day
        [(ads,)] = con.execute("SELECT count(*) FROM ads").fetchall()
        word = str(list_states(data_dir)["ads-list-name"]["ad_search"])
        cases = {
            "by spend": lists.ListRequest("ad", since, until),
            "worst ROAS first, spend >= 1": lists.ListRequest(
                "ad", since, until, sort="roas", best_first=False, min_spend=1
            ),
            f"name contains {word!r}": lists.ListRequest("ad", since, until, name=word),
            "page 200 by ROAS": lists.ListRequest("ad", since, until, sort="roas", offset=199 * 50),
        }
        for label, request in cases.items():
            times, page = [], None
            for _ in range(repeats):
                started = time.perf_counter()
                page = lists.fetch_entity_list(con, request)
                times.append(time.perf_counter() - started)
            assert page is not None
            print(
                f"  list query, {ads:,} ads, 30 days, {label}: median {statistics.median(times):.3f} s,"
                f" max {max(times):.3f} s ({page.total:,} match, {len(page.rows)} rows read)",
                flush=True,
            )
    finally:
        con.close()


def measure_page(
    page: str, query: dict[str, str], warm_runs: int, preimport: bool, state: dict[str, object] | None = None
) -> dict:
    """In this (fresh) process: run app.py on `page` as admin.

    preimport=False: only the cold run, timed from before streamlit is imported.
    preimport=True: import the app's modules first, then cold, warm and uncached runs.
    """
    started = time.perf_counter()
    sys.path.insert(0, str(ROOT))
    import logging

    import streamlit as st
    import streamlit.runtime.scriptrunner.script_runner as script_runner_module
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.testing.v1 import AppTest

    streamlit_s = time.perf_counter() - started

    class NavigationMode(PagesManager):
        uses_pages_directory = False  # every run goes through app.py, as on a live server (see app_harness)

    script_runner_module.PagesManager = NavigationMode
    logging.disable(logging.WARNING)  # "No runtime found" and "missing ScriptRunContext" chatter

    imports_s = None
    if preimport:
        import insights_core.dashboard as dashboard

        for module in pkgutil.iter_modules(dashboard.__path__, f"{dashboard.__name__}."):
            importlib.import_module(module.name)  # what app.py and the pages import (plotly, pandas, duckdb, ...)
        imports_s = time.perf_counter() - started

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    at.session_state["authentication_status"] = True
    at.session_state["username"] = "admin"
    at.switch_page(f"pages/{page}.py")  # before the first run the page is found by its file name
    at.query_params.update(query)
    for key, value in (state or {}).items():
        at.session_state[key] = value

    def timed_run() -> float:
        started = time.perf_counter()
        at.run()
        return time.perf_counter() - started

    cold = timed_run()
    result: dict = {
        "imports_s": imports_s,
        "streamlit_s": streamlit_s,
        "cold_s": cold,
        "since_start_s": time.perf_counter() - started,
    }
    if preimport:
        result["warm_s"] = [timed_run() for _ in range(warm_runs)]
        result["uncached_s"] = []
        for _ in range(UNCACHED_RUNS):
            st.cache_data.clear()
            result["uncached_s"].append(timed_run())

    from insights_core.roles import PAGES_BY_KEY

    problems = [str(e.value) for e in (*at.exception, *at.error)]
    titles = [str(t.value) for t in at.title]
    if titles != [PAGES_BY_KEY[page].title]:
        problems.append(f"expected the {PAGES_BY_KEY[page].title} page, got titles {titles}")
    return {**result, "problems": problems}


def run_child(
    data_dir: Path, page: str, query: dict[str, str], warm_runs: int, preimport: bool, state: dict | None = None
) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("META_", "INSIGHTS_"))}
    env.update({"INSIGHTS_DATA_DIR": str(data_dir.resolve()), "META_INSIGHTS_MODE": "stub", "PYTHONPATH": str(ROOT)})
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            page,
            "--query",
            json.dumps(query),
            "--warm-runs",
            str(warm_runs),
            "--state",
            json.dumps(state or {}),
            *(["--preimport"] if preimport else []),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
    )  # cwd: .streamlit/config.toml
    if out.returncode != 0:
        return {"failed": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def verdict(store: str, warm: dict, fresh: dict) -> str:
    """ok, or the targets missed; "-" for a store without targets."""
    target = TARGETS.get(store)
    if target is None:
        return "-"
    checks = (
        ("warm", max(warm["warm_s"]), target["warm_s"]),
        ("cold", warm["cold_s"], target["cold_s"]),
        ("first click", fresh["since_start_s"] - fresh["streamlit_s"], target["cold_s"]),
        ("cold+imports", fresh["since_start_s"], target["cold_s"]),
    )
    misses = [f"{kind} > {limit:g} s" for kind, value, limit in checks if value > limit]
    return "MISS: " + ", ".join(misses) if misses else "ok"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=STORES)
    parser.add_argument("--pages", nargs="+", choices=PAGES, default=list(PAGES))
    parser.add_argument("--store-dir", type=Path, default=ROOT / "benchmarks" / "results" / "stores")
    parser.add_argument("--warm-runs", type=int, default=5)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--query", default="{}", help=argparse.SUPPRESS)
    parser.add_argument("--state", default="{}", help=argparse.SUPPRESS)
    parser.add_argument("--preimport", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--lists", nargs="*", choices=LISTS, default=list(LISTS), help="list scenarios (none: skip)")
    args = parser.parse_args()
    if args.child:
        print(
            json.dumps(
                measure_page(args.child, json.loads(args.query), args.warm_runs, args.preimport, json.loads(args.state))
            )
        )
        return

    stores = [args.only] if args.only else list(STORES)
    data_dirs = {name: ensure_store(name, args.store_dir) for name in stores}
    print(
        f"{'store':<10} {'rows':>9} {'page':<13} {'cold+imports s':>14} {'first click s':>13} {'cold s':>6} "
        f"{'warm med s':>10} {'warm max s':>10} {'uncached s':>10}  target (warm <= 0.5 s, cold <= 2 s)"
    )
    for name in stores:
        rows, queries = fetch_busy_entities(data_dirs[name])
        states = list_states(data_dirs[name])
        imports = []
        for page in [*args.pages, *args.lists]:
            query = queries.get(page, {})
            script, state = ("ad", states[page]) if page in LISTS else (page, {})
            fresh = run_child(data_dirs[name], script, query, args.warm_runs, preimport=False, state=state)
            warm = run_child(data_dirs[name], script, query, args.warm_runs, preimport=True, state=state)
            failed = [r.get("failed") or r["problems"][:2] for r in (fresh, warm) if "failed" in r or r["problems"]]
            if failed:
                print(f"{name:<10} {rows:>9,} {page:<13} failed: {failed}")
                continue
            imports.append(warm["imports_s"])
            print(
                f"{name:<10} {rows:>9,} {page:<13} {fresh['since_start_s']:>14.2f} "
                f"{fresh['since_start_s'] - fresh['streamlit_s']:>13.2f} {warm['cold_s']:>6.2f} "
                f"{statistics.median(warm['warm_s']):>10.3f} {max(warm['warm_s']):>10.3f} "
                f"{statistics.median(warm['uncached_s']):>10.3f}  {verdict(name, warm, fresh)}",
                flush=True,
            )
        if args.lists:
            measure_lists(data_dirs[name])
        deep_links = "; ".join(f"{page}: " + "&".join(f"{k}={v}" for k, v in q.items()) for page, q in queries.items())
        print(f"{name:<10} deep links  {deep_links}")
        if imports:
            print(
                f"{name:<10} importing streamlit and the app's modules before the cold run: "
                f"{min(imports):.2f}-{max(imports):.2f} s"
            )


if __name__ == "__main__":
    main()
