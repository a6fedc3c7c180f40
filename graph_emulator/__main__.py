"""Run the Graph API emulator by hand, for a demo of live mode:

    python -m graph_emulator --port 8765 [--latency-ms 100] [--campaigns 100 --adsets-per-campaign 5 --ads-per-adset 3]
                             [--accounts 16]

then, in another shell:

    META_INSIGHTS_MODE=live META_GRAPH_URL=http://127.0.0.1:8765 META_ACCESS_TOKEN=anything \\
    META_AD_ACCOUNT_IDS=act_5550001 python sync_worker.py --once --days-back 30

With --accounts N it serves act_5550001 .. act_<5550000 + N>, each of the same shape with its own ids
and numbers; the banner prints the comma-separated list for META_AD_ACCOUNT_IDS.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random

from graph_emulator.account import AccountShape, SeededAccount
from graph_emulator.faults import MALFORMATIONS, FaultRule, Faults, Malformation
from graph_emulator.server import GraphEmulator


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m graph_emulator", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (loopback by default)")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--latency-ms", type=float, default=0, help="added to every request")
    parser.add_argument("--accounts", type=int, default=1, help="ad accounts served, each of the shape below")
    parser.add_argument("--campaigns", type=int, default=20)
    parser.add_argument("--adsets-per-campaign", type=int, default=3)
    parser.add_argument("--ads-per-adset", type=int, default=2)
    parser.add_argument(
        "--hostile-names",
        action="store_true",
        help="names full of markdown and HTML (links, images to 127.0.0.2), to check they show as text",
    )
    parser.add_argument("--polls-to-complete", type=int, default=3, help="status polls before a report run ends")
    faults = parser.add_argument_group("faults")
    faults.add_argument("--throttle-every", type=int, default=0, help="every n-th request: error 80000")
    faults.add_argument("--regain-minutes", type=float, default=0, help="estimated_time_to_regain_access sent with it")
    faults.add_argument("--transient-every", type=int, default=0, help="every n-th request: HTTP 500 (code 2)")
    faults.add_argument("--usage-pct", type=float, default=3.0, help="utilisation in the usage headers")
    faults.add_argument("--job-failed-first", type=int, default=0)
    faults.add_argument("--job-skipped-first", type=int, default=0)
    faults.add_argument("--too-large-over-days", type=int, default=0, help="error 100/1487534 above this many days")
    faults.add_argument(
        "--malformed", type=int, default=0, help="corrupt this many random ad rows of the last 30 days (first account)"
    )
    faults.add_argument(
        "--refuse-breakdown",
        action="append",
        default=[],
        metavar="FIELD",
        help="answer breakdowns naming FIELD (e.g. country) with error 100/1504041; repeatable",
    )
    faults.add_argument("--bad-token", action="store_true", help="every request: error 190")
    faults.add_argument("--missing-permission", action="store_true", help="every request: error 200")
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.accounts < 1:
        parser.error("--accounts must be at least 1")
    account = SeededAccount(
        AccountShape(args.campaigns, args.adsets_per_campaign, args.ads_per_adset), hostile_names=args.hostile_names
    )
    rules = []
    if args.throttle_every:
        rules.append(FaultRule("throttle", every=args.throttle_every, regain_minutes=args.regain_minutes))
    if args.transient_every:
        rules.append(FaultRule("transient", every=args.transient_every, code=2, subcode=None, http_status=500))
    faults = Faults(
        rules=rules,
        bad_token=args.bad_token,
        missing_permission=args.missing_permission,
        usage_pct=args.usage_pct,
        job_failed_first=args.job_failed_first,
        job_skipped_first=args.job_skipped_first,
        too_large_over_days=args.too_large_over_days,
        malformed=_random_malformations(account, args.malformed),
        refused_breakdowns=frozenset(args.refuse_breakdown),
    )
    emulator = GraphEmulator(
        account=account,
        latency_ms=args.latency_ms,
        faults=faults,
        host=args.host,
        port=args.port,
        polls_to_complete=args.polls_to_complete,
        quiet=False,
        accounts=args.accounts,
    )
    s = account.shape
    served = ",".join(emulator.accounts)
    print(
        f"Graph API emulator on {emulator.url}: account{'s' if len(emulator.accounts) > 1 else ''} {served} "
        f"({account.timezone_name}), {s.campaigns} campaigns x {s.adsets_per_campaign} ad sets x {s.ads_per_adset} ads"
        f"{' each' if len(emulator.accounts) > 1 else ''}",
        flush=True,
    )
    for m in faults.malformed:
        print(f"  malformed: {m.level} {m.entity_id} on {m.date}: {MALFORMATIONS[m.kind]}", flush=True)
    try:
        emulator.serve_forever()
    except KeyboardInterrupt:
        pass


def _random_malformations(account: SeededAccount, count: int) -> list[Malformation]:
    today = dt.date.today()
    rng = random.Random(7)
    return [
        Malformation(
            "ad",
            rng.choice(account.ids["ad"]),
            today - dt.timedelta(days=rng.randrange(30)),
            rng.choice(sorted(MALFORMATIONS)),
        )
        for _ in range(count)
    ]


if __name__ == "__main__":
    main()
