"""Live mode against the Graph API emulator: requests and wall time of a full sync, next to one
insights request per entity (GET /<id>/insights).

    .venv/bin/python benchmarks/bench_live.py                  # 100 x 5 x 3, 30 days, 100 ms per request
    .venv/bin/python benchmarks/bench_live.py --scaling        # also 2x the entities and 2x the days
    .venv/bin/python benchmarks/bench_live.py --breakdowns     # live requests with and without breakdowns,
                                                               # 100 x 5 x 3 and 200 x 5 x 3, 7 days

Live source: the real sync (run_sync + DuckDB writes) with default settings (500 rows per page,
report polls from 1 s up to 5 s, 5 report runs in flight). The per-entity approach, as first
specified: campaigns in batches of 5 in parallel; per campaign its insights and its ad sets,
per ad set its insights and its ads, per ad its insights (GET /<id>/insights, time_increment=1,
limit=100 so a 30-day window is one page). It only fetches; it writes nothing. Both read every
status (archived and deleted included), so they return the same rows. Prints figures; asserts nothing.

--breakdowns reads the live source directly (fetch_insights, then fetch_breakdowns with all four
families; nothing is written) on two account sizes: report runs and status polls stay the same
when the entities double, pages grow with the rows the segments add.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from facebook_business.adobjects.adaccount import AdAccount  # noqa: E402
from facebook_business.adobjects.adset import AdSet  # noqa: E402
from facebook_business.adobjects.campaign import Campaign  # noqa: E402

from graph_emulator import ACCOUNT_ID, AccountShape, GraphEmulator  # noqa: E402
from insights_core.engine import run_sync  # noqa: E402
from insights_core.models import BREAKDOWN_FAMILIES, DateWindow, Scope, SyncRequest  # noqa: E402
from insights_core.settings import Settings  # noqa: E402
from insights_core.sources.live import LiveSource  # noqa: E402
from insights_core.sources.live.api import GraphApi, effective_statuses, fetch_raw_insights  # noqa: E402
from insights_core.store.warehouse import Warehouse  # noqa: E402

TOKEN = "benchmark-token"
INSIGHT_FIELDS = [
    "campaign_id",
    "adset_id",
    "ad_id",
    "date_start",
    "date_stop",
    "spend",
    "impressions",
    "clicks",
    "reach",
    "frequency",
    "unique_clicks",
    "ctr",
    "cpc",
    "actions",
    "action_values",
]


def fetch_entity_insights_json(api: GraphApi, entity_id: str, params: dict, fields: Sequence[str]) -> list[dict]:
    """GET /<entity id>/insights: one entity's rows, synchronously (the original collector's per-entity approach, which
    only this benchmark uses; the source reads account-level report runs)."""
    return list(fetch_raw_insights(api, entity_id, params, fields))


def run_live_sync(emulator: GraphEmulator, days: int, data_dir: Path) -> dict:
    settings = Settings(
        _env_file=None,
        data_dir=data_dir,
        mode="live",
        graph_url=emulator.url,  # type: ignore[call-arg]
        access_token=TOKEN,
        ad_account_ids=ACCOUNT_ID,
    )
    source, warehouse = LiveSource(settings), Warehouse(settings.db_path)
    emulator.reset_counts()
    started = time.perf_counter()
    report = run_sync(SyncRequest(days_back=days), source=source, warehouse=warehouse, settings=settings)
    wall = time.perf_counter() - started
    warehouse.close()
    source.close()
    if not report.success or report.errors:
        raise SystemExit(f"live sync failed: {report.errors[:3]}")
    return {
        "requests": emulator.total_requests,
        "wall_s": wall,
        "rows": report.rows_read,
        "by_kind": dict(emulator.requests),
        "window": (report.since, report.until),
    }


def run_per_entity(emulator: GraphEmulator, window: tuple[str, str], parallel: int) -> dict:
    """The per-entity loop, through the same SDK session type (no pacing needed: the emulator does not throttle)."""
    settings = Settings(
        _env_file=None,
        mode="live",
        graph_url=emulator.url,
        access_token=TOKEN,  # type: ignore[call-arg]
        ad_account_ids=ACCOUNT_ID,
    )
    api = LiveSource(settings).api
    api.policy = None
    params = {"time_range": {"since": window[0], "until": window[1]}, "time_increment": 1, "limit": 100}

    def insights(entity_id: str) -> int:
        return len(fetch_entity_insights_json(api, entity_id, params, INSIGHT_FIELDS))

    def one_campaign(campaign_id: str) -> int:
        rows = insights(campaign_id)
        adsets = Campaign(campaign_id, api=api).get_ad_sets(
            fields=["id"], params={"limit": 100, "effective_status": effective_statuses("adset")}
        )
        for adset in adsets:
            rows += insights(adset["id"])
            ads = AdSet(adset["id"], api=api).get_ads(
                fields=["id"], params={"limit": 100, "effective_status": effective_statuses("ad")}
            )
            rows += sum(insights(ad["id"]) for ad in ads)
        return rows

    emulator.reset_counts()
    started = time.perf_counter()
    campaigns = AdAccount(ACCOUNT_ID, api=api).get_campaigns(
        fields=["id"], params={"limit": 100, "effective_status": effective_statuses("campaign")}
    )
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        rows = sum(pool.map(one_campaign, [c["id"] for c in campaigns]))
    wall = time.perf_counter() - started
    return {"requests": emulator.total_requests, "wall_s": wall, "rows": rows, "by_kind": dict(emulator.requests)}


def measure(shape: AccountShape, days: int, latency_ms: float, parallel: int, per_entity: bool) -> None:
    entities = shape.campaigns * (1 + shape.adsets_per_campaign * (1 + shape.ads_per_adset))
    print(
        f"\n{shape.campaigns} x {shape.adsets_per_campaign} x {shape.ads_per_adset} ({entities:,} entities), "
        f"{days} days, {latency_ms:.0f} ms per request"
    )
    with GraphEmulator(shape, latency_ms=latency_ms) as emulator, tempfile.TemporaryDirectory() as tmp:
        live = run_live_sync(emulator, days, Path(tmp) / "data")
        results = [("async report runs (live source, full sync)", live)]
        if per_entity:
            results.append(
                (f"per entity, {parallel} campaigns in parallel", run_per_entity(emulator, live["window"], parallel))
            )
    print(f"  {'approach':<46}{'requests':>10}{'wall s':>10}{'rows':>10}")
    for name, result in results:
        print(f"  {name:<46}{result['requests']:>10,}{result['wall_s']:>10.1f}{result['rows']:>10,}")
    for name, result in results:
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(result["by_kind"].items()))
        print(f"  {name.split(' (')[0]}: {kinds}")
    if per_entity:
        baseline = results[1][1]
        print(
            f"  live / per entity: requests {live['requests'] / baseline['requests']:.1%}, "
            f"wall time {live['wall_s'] / baseline['wall_s']:.1%}"
        )


def read_source(emulator: GraphEmulator, window: DateWindow, breakdowns: bool, page_size: int) -> dict:
    """Requests, seconds and rows of one full-account read by the live source: totals, plus breakdowns if asked."""
    settings = Settings(
        _env_file=None,
        mode="live",
        graph_url=emulator.url,  # type: ignore[call-arg]
        access_token=TOKEN,
        ad_account_ids=ACCOUNT_ID,
        insights_page_size=page_size,
    )
    source = LiveSource(settings)
    account = source.fetch_accounts()[0]
    source.fetch_entities(account)
    emulator.reset_counts()
    started = time.perf_counter()
    rows = sum(len(b.rows) for b in source.fetch_insights(account, window, Scope({}, True), "bench"))
    segment_rows = 0
    if breakdowns:
        for batch in source.fetch_breakdowns(account, window, Scope({}, True), BREAKDOWN_FAMILIES, "bench"):
            if batch.failures:
                raise SystemExit(f"breakdowns failed: {list(batch.failures.values())[:1]}")
            segment_rows += len(batch.rows)
    wall = time.perf_counter() - started
    source.close()
    return {
        "requests": emulator.total_requests,
        "wall_s": wall,
        "rows": rows + segment_rows,
        "by_kind": dict(emulator.requests),
    }


def measure_breakdowns(shapes: Sequence[AccountShape], days: int, latency_ms: float, page_size: int) -> None:
    window = DateWindow(dt.date(2026, 11, 1), dt.date(2026, 11, days))
    print(
        f"\nlive requests with and without breakdowns ({', '.join(BREAKDOWN_FAMILIES)}), {days} days, "
        f"{latency_ms:.0f} ms per request, {page_size} rows per page"
    )
    print(f"  {'account':<28}{'read':<20}{'requests':>9}{'starts':>8}{'polls':>7}{'pages':>7}{'wall s':>8}{'rows':>10}")
    for shape in shapes:
        entities = shape.campaigns * (1 + shape.adsets_per_campaign * (1 + shape.ads_per_adset))
        name = f"{shape.campaigns}x{shape.adsets_per_campaign}x{shape.ads_per_adset} ({entities:,} entities)"
        with GraphEmulator(shape, latency_ms=latency_ms) as emulator:
            for label, with_breakdowns in (("totals", False), ("totals + breakdowns", True)):
                r = read_source(emulator, window, with_breakdowns, page_size)
                k = r["by_kind"]
                print(
                    f"  {name:<28}{label:<20}{r['requests']:>9,}{k.get('report_start', 0):>8}"
                    f"{k.get('report_status', 0):>7}{k.get('report_page', 0):>7}{r['wall_s']:>8.1f}{r['rows']:>10,}"
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", default="100x5x3", help="campaigns x ad sets per campaign x ads per ad set")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--latency-ms", type=float, default=100)
    parser.add_argument("--parallel", type=int, default=5, help="campaigns the per-entity approach reads at once")
    parser.add_argument("--scaling", action="store_true", help="also run the live sync on 2x entities and 2x days")
    parser.add_argument(
        "--breakdowns", action="store_true", help="only: live requests with and without breakdowns on the shape and 2x"
    )
    parser.add_argument("--breakdown-days", type=int, default=7, help="window of the --breakdowns reads")
    parser.add_argument("--page-size", type=int, default=500, help="META_INSIGHTS_PAGE_SIZE of the --breakdowns reads")
    args = parser.parse_args()
    campaigns, adsets, ads = (int(n) for n in args.shape.split("x"))
    shape = AccountShape(campaigns, adsets, ads)
    print(f"bench_live {dt.datetime.now():%Y-%m-%d %H:%M}")
    if args.breakdowns:
        shapes = (shape, AccountShape(campaigns * 2, adsets, ads))
        measure_breakdowns(shapes, args.breakdown_days, args.latency_ms, args.page_size)
        return
    measure(shape, args.days, args.latency_ms, args.parallel, per_entity=True)
    if args.scaling:
        measure(AccountShape(campaigns * 2, adsets, ads), args.days, args.latency_ms, args.parallel, False)
        measure(shape, args.days * 2, args.latency_ms, args.parallel, False)


if __name__ == "__main__":
    main()
