"""Meta Insights sync worker.

    python sync_worker.py                  run the loop (scheduled syncs + Sync now requests)
    python sync_worker.py --once [--days-back N] [--entity-type campaign|adset|ad --entity-ids ID,ID] [--force]
                                           run one sync, print its report as JSON, exit 0 if it succeeded

Exit codes: 0 success; 1 the sync failed or was cancelled; 2 bad arguments or configuration;
3 another worker holds the data directory (INSIGHTS_STORE=duckdb; with ducklake, many workers run at once).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sqlite3
import sys
from typing import NoReturn

import duckdb

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
    parser.add_argument(
        "--force", action="store_true", help="re-read settled days (older than INSIGHTS_LOOKBACK_DAYS) already stored"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    os.umask(0o077)  # everything this process creates in the data dir is private (it holds spend and revenue)
    args = build_parser().parse_args(argv)
    sync_options = (args.days_back, args.entity_type, args.entity_ids, args.force or None)
    try:
        from insights_core.datadir import check_data_dir
        from insights_core.settings import load_settings
        from insights_core.sync_requests import parse_sync_request

        settings = load_settings()
        if not args.once and any(option is not None for option in sync_options):
            raise InputError("--days-back, --entity-type, --entity-ids and --force need --once")
        request = (
            parse_sync_request(
                max_days_back=settings.max_days_back,
                sync_type="manual",
                days_back=args.days_back,
                entity_type=args.entity_type,
                entity_ids=args.entity_ids,
                force=args.force,
                requested_by="cli",
            )
            if args.once
            else None
        )
        if settings.mode == "live":
            settings.require_live_credentials()
        check_data_dir(settings.data_dir)
    except (ConfigError, InputError) as exc:
        return _fail(exc, EXIT_BAD_INPUT)
    return _run(settings, request)


def _run(settings, request) -> int:  # type: ignore[no-untyped-def]
    from insights_core.logs import configure_logging
    from insights_core.sources import open_source

    configure_logging(None, settings.secret_values())  # stderr only: nothing is written before the checks
    source = None
    try:
        source = open_source(settings)
        trees = _check_entity_ids(source, request) if request is not None and request.entity_ids else None
        return _run_locked(settings, request, source, trees)
    except InputError as exc:
        return _fail(exc, EXIT_BAD_INPUT)
    except WorkerLockedError as exc:
        return _fail(exc, EXIT_LOCKED)
    except (InsightsError, OSError, sqlite3.Error, duckdb.Error) as exc:
        if request is None:
            return _fail(exc, EXIT_SYNC_FAILED)
        from insights_core.engine import new_failed_report

        report = new_failed_report(request, settings.mode, f"{type(exc).__name__}: {exc}")
        print(json.dumps(report.to_dict(), indent=2))
        return EXIT_SYNC_FAILED
    finally:
        if source is not None:
            source.close()


def _check_entity_ids(source, request):  # type: ignore[no-untyped-def]
    """Fetch the entities once and refuse unknown ids before the data dir is touched.

    The ids can only be checked against the source; doing it before the lock, the log file and the
    databases are created is what lets a typo write nothing. The trees are handed to the sync.
    """
    from insights_core.engine import check_entity_ids, fetch_entity_trees

    trees = fetch_entity_trees(source)
    check_entity_ids(trees, request)
    return trees


def _run_locked(settings, request, source, trees) -> int:  # type: ignore[no-untyped-def]
    from insights_core.datadir import ensure_private_data_dir
    from insights_core.logs import configure_logging
    from insights_core.worker import SyncWorker, hold_worker_lock

    # many workers (ducklake) share the store through PostgreSQL leases; one data dir per worker is not required
    lock = hold_worker_lock(settings.data_dir) if settings.store == "duckdb" else contextlib.nullcontext()
    with lock:
        ensure_private_data_dir(settings.data_dir)
        configure_logging(settings.log_path, settings.secret_values())
        worker = SyncWorker(settings, source=source)
        try:
            worker.install_signal_handlers()
            if request is None:
                worker.run_forever()
                return EXIT_OK
            report = worker.run_once(request, trees)
        finally:
            worker.warehouse.close()
    print(json.dumps(report.to_dict(), indent=2))
    return EXIT_OK if report.success else EXIT_SYNC_FAILED


def _fail(exc: BaseException, code: int) -> int:
    message = " ".join(str(exc).split()) or type(exc).__name__
    print(f"sync_worker: error: {message}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
