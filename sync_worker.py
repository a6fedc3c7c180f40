"""Meta Insights sync worker.

    python sync_worker.py                  run the loop (scheduled syncs + Sync now requests)
    python sync_worker.py --once [--days-back N] [--entity-type campaign|adset|ad --entity-ids ID,ID] [--force]
                                           run one sync, print its report as JSON, exit 0 if it succeeded

Exit codes: 0 success; 1 the sync failed or was cancelled; 2 bad arguments or configuration;
3 another worker holds the data directory.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import NoReturn

from insights_core.errors import ConfigError, InputError, InsightsError, WorkerLockedError

EXIT_OK, EXIT_SYNC_FAILED, EXIT_BAD_INPUT, EXIT_LOCKED = 0, 1, 2, 3


class _OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"sync_worker: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(prog="sync_worker", description="Meta Insights sync worker")
    parser.add_argument("--once", action="store_true", help="run one sync, print its report as JSON and exit")
    parser.add_argument("--days-back", metavar="N", help="days to read, ending today (1..INSIGHTS_MAX_DAYS_BACK)")
    parser.add_argument("--entity-type", choices=["campaign", "adset", "ad"], help="restrict to these entities")
    parser.add_argument("--entity-ids", metavar="ID,ID", help="comma-separated ids of --entity-type")
    parser.add_argument("--force", action="store_true",
                        help="re-read settled days (older than INSIGHTS_LOOKBACK_DAYS) already stored")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    sync_options = (args.days_back, args.entity_type, args.entity_ids, args.force or None)
    try:
        from insights_core.settings import load_settings
        from insights_core.sync_requests import parse_sync_request

        settings = load_settings()
        if not args.once and any(option is not None for option in sync_options):
            raise InputError("--days-back, --entity-type, --entity-ids and --force need --once")
        request = parse_sync_request(
            max_days_back=settings.max_days_back, sync_type="manual", days_back=args.days_back,
            entity_type=args.entity_type, entity_ids=args.entity_ids, force=args.force,
            requested_by="cli",
        ) if args.once else None
        if settings.mode == "live":
            settings.require_live_credentials()
    except (ConfigError, InputError) as exc:
        print(f"sync_worker: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return _run(settings, request)


def _run(settings, request) -> int:  # type: ignore[no-untyped-def]
    from insights_core.logs import configure_logging
    from insights_core.worker import SyncWorker, hold_worker_lock

    try:
        with hold_worker_lock(settings.data_dir):
            configure_logging(settings.log_path, settings.secret_values())
            worker = SyncWorker(settings)
            try:
                worker.install_signal_handlers()
                if request is None:
                    worker.run_forever()
                    return EXIT_OK
                report = worker.run_once(request)
            finally:
                worker.close()
    except WorkerLockedError as exc:
        print(f"sync_worker: error: {exc}", file=sys.stderr)
        return EXIT_LOCKED
    except InputError as exc:
        print(f"sync_worker: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except InsightsError as exc:
        print(f"sync_worker: error: {exc}", file=sys.stderr)
        return EXIT_SYNC_FAILED
    print(json.dumps(report.to_dict(), indent=2))
    return EXIT_OK if report.success else EXIT_SYNC_FAILED


if __name__ == "__main__":
    sys.exit(main())
