"""A sync worker among many with a lease shorter than INSIGHTS_LEASE_SECONDS allows (its minimum is 10),
so tests see takeovers in seconds: `python tests/lake_worker.py LEASE_SECONDS`, settings from the
environment as for `sync_worker.py`. Everything else is the product's worker loop."""

from __future__ import annotations

import sys

from insights_core.datadir import ensure_private_data_dir
from insights_core.logs import configure_logging
from insights_core.settings import load_settings
from insights_core.worker import SyncWorker


def main() -> int:
    settings = load_settings()
    ensure_private_data_dir(settings.data_dir)
    configure_logging(settings.log_path, settings.secret_values())
    worker = SyncWorker(settings, lease_seconds=float(sys.argv[1]))
    worker.install_signal_handlers()
    try:
        worker.run_forever()
    finally:
        worker.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
