"""Creatives of the default stub account (100 x 5 x 3 = 1,500 ads): what keeping them costs a sync.

    .venv/bin/python benchmarks/bench_creatives.py

On an empty temporary data dir: `sync_creatives` alone, first (every creative drawn, checked and
written), then again (nothing to read: every image kept), then forced (every creative drawn again,
nothing rewritten). Prints wall and CPU seconds (the CPU figure is the one to compare on a
busy machine), files and bytes kept; asserts nothing.
"""

from __future__ import annotations

import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from insights_core.creatives import creatives_dir, sync_creatives
    from insights_core.engine import resolve_scope
    from insights_core.models import SyncReport, SyncRequest
    from insights_core.settings import Settings
    from insights_core.sources.stub import StubSource
    from insights_core.store.warehouse import Warehouse

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(_env_file=None, data_dir=Path(tmp) / "data")  # type: ignore[call-arg]
        source = StubSource.from_settings(settings)
        warehouse = Warehouse(settings.db_path)
        tree = source.fetch_entities(source.account)
        scope, _ = resolve_scope(tree, SyncRequest())
        now = dt.datetime.now(dt.timezone.utc)
        for label, force in (("first", False), ("again", False), ("forced", True)):
            report = SyncReport.for_request(SyncRequest(force=force), sync_id=label, sync_timestamp="", mode="stub")
            started, cpu = time.perf_counter(), time.process_time()
            with warehouse.transaction():
                sync_creatives(tree, scope, source, warehouse, settings, now, report)
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
            files = list(creatives_dir(settings.data_dir).iterdir())
            size = sum(f.stat().st_size for f in files)
            print(
                f"{label:>7}: {seconds:6.2f} s ({cpu:.2f} s CPU)  {len(tree.ads):,} ads"
                f"  {len(files):,} files  {size / 1e6:.1f} MB  warnings {len(report.warnings)}"
            )
        warehouse.close()


if __name__ == "__main__":
    main()
