"""The lists' pacing columns on a large store: what they add to one page of the Ad sets and Campaigns lists.

    .venv/bin/python benchmarks/bench_list_pacing.py /path/to/data   # a data dir with a published snapshot
    .venv/bin/python benchmarks/bench_sync.py --only large --keep /path/to/data   # builds 1000x10x10, 30 days

For each level: the list query alone (one page of 50 by spend, the last 30 days), the pacing of that
page's rows (`manager.views.load_page_pacing` without Streamlit's cache: entities by id, their days,
`pacing.budget_pacing`), and for contrast the pacing of the whole level as the Pacing page computes it.
Median of 5 runs each. Prints figures; asserts nothing.
"""

from __future__ import annotations

import datetime as dt
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = 5


def median_seconds(work: Callable[[], object]) -> float:
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from insights_core.levels import LEVEL_SPECS, Level
    from insights_core.manager import reads
    from insights_core.manager.pacing import budget_pacing, pacing_since
    from insights_core.store import lists
    from insights_core.store.snapshots import connect_snapshot, resolve_current_snapshot

    data_dir = Path(sys.argv[1])
    con = connect_snapshot(resolve_current_snapshot(data_dir / "current.duckdb"))
    as_of = reads.fetch_last_day(con)
    assert as_of is not None, "the store holds no insights"
    since = as_of - dt.timedelta(days=29)
    levels: tuple[Level, ...] = ("campaign", "adset")
    for level in levels:
        row = con.execute(f"SELECT count(*) FROM {LEVEL_SPECS[level].table}").fetchone()
        count = int(row[0]) if row else 0
        request = lists.ListRequest(level, since, as_of)
        page = lists.fetch_entity_list(con, request)
        ids = [str(i) for i in page.rows["entity_id"]]

        def page_pacing(level: Level = level, ids: list[str] = ids) -> object:
            entities = reads.fetch_entities(con, level, ids)
            daily = lists.fetch_daily_spend_of(con, level, ids, pacing_since(entities, as_of), as_of)
            return budget_pacing(entities, daily, as_of)

        def level_pacing(level: Level = level) -> object:
            entities = reads.fetch_entities(con, level)
            return budget_pacing(entities, reads.fetch_daily(con, level, pacing_since(entities, as_of), as_of), as_of)

        listed = median_seconds(partial(lists.fetch_entity_list, con, request))
        paced = median_seconds(page_pacing)
        whole = median_seconds(level_pacing)
        print(
            f"{level}: {count:,} entities; list page of {len(ids)}: {listed:.3f} s; its pacing columns add "
            f"{paced:.3f} s ({paced / listed:.0%}); pacing every {level} (Pacing page): {whole:.3f} s"
        )
    con.close()


if __name__ == "__main__":
    main()
