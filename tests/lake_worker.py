"""A sync worker among many with a lease shorter than INSIGHTS_LEASE_SECONDS allows (its minimum is 10),
so tests see takeovers in seconds: `python tests/lake_worker.py LEASE_SECONDS`, settings from the
environment as for `sync_worker.py`. Everything else is the product's worker loop.

Test hook, this wrapper's only (the product has none): with LAKE_WORKER_PAUSE_AT_COMMIT=<path>, the
first sync's commit takes the lake's commit lock, creates <path> and waits for `<path>.go` before it
sends COMMIT, so a test can kill the worker there, or let it go on into DuckLake's commit and stop
it inside (test_lake_worker's kill -9 test).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

from insights_core.datadir import ensure_private_data_dir
from insights_core.logs import configure_logging
from insights_core.settings import load_settings
from insights_core.store.lake import LakeConnection
from insights_core.store.lake_warehouse import LakeWarehouse
from insights_core.worker import SyncWorker

PAUSE_AT_COMMIT = "LAKE_WORKER_PAUSE_AT_COMMIT"


def pause_at_first_sync_commit(marker: Path) -> None:
    """Make the first commit of a sync's transaction (`LakeWarehouse._commit` with the transaction open)
    create `marker` and wait for `marker.go` holding the commit lock, just before it sends COMMIT."""
    go = marker.with_name(marker.name + ".go")
    commit = LakeWarehouse._commit
    committing = threading.local()

    def commit_pausing(self: LakeWarehouse, journal: Any, *, open_transaction: bool) -> list[Any]:
        committing.sync = open_transaction and not marker.exists()
        try:
            return commit(self, journal, open_transaction=open_transaction)
        finally:
            committing.sync = False

    def execute(self: LakeConnection, query: str, *args: Any) -> Any:
        if query == "COMMIT" and getattr(committing, "sync", False):
            committing.sync = False
            marker.touch()
            while not go.exists():
                time.sleep(0.02)
        return self._con.execute(query, *args)

    LakeWarehouse._commit = commit_pausing  # type: ignore[method-assign]
    LakeConnection.execute = execute  # type: ignore[attr-defined]


def main() -> int:
    settings = load_settings()
    ensure_private_data_dir(settings.data_dir)
    configure_logging(settings.log_path, settings.secret_values())
    if os.environ.get(PAUSE_AT_COMMIT):
        pause_at_first_sync_commit(Path(os.environ[PAUSE_AT_COMMIT]))
    worker = SyncWorker(settings, lease_seconds=float(sys.argv[1]))
    worker.install_signal_handlers()
    try:
        worker.run_forever()
    finally:
        worker.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
