"""Live mode: the Marketing API through the facebook-business SDK.

- `api`: the SDK session on META_GRAPH_URL; the only module that talks HTTP.
- `throttle`: error classification, usage headers, pacing and retries.
- `reports`: account-level async report runs, polling, splitting, paging.
- `transform`: pure JSON -> frames, tested on recorded payloads.

Tests and the benchmark run it unchanged against `graph_emulator`, a local Graph API.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

from insights_core.levels import LEVEL_SPECS, LEVELS
from insights_core.models import (
    Account,
    BreakdownBatch,
    BreakdownFamily,
    Creative,
    DateWindow,
    EntityTree,
    InsightBatch,
    Scope,
    SourceStats,
)
from insights_core.settings import Settings
from insights_core.sources import StatusCallback
from insights_core.sources.live.api import connect_api, fetch_account_json, fetch_entities_json
from insights_core.sources.live.creatives import creative_from_json, fetch_creatives_json
from insights_core.sources.live.reports import SEGMENTS, TOTALS, ReportContext, ReportRunner, plan_chunks
from insights_core.sources.live.throttle import Pacer, RetryPolicy
from insights_core.sources.live.transform import account_from_json, entity_frame


class LiveSource:
    """Ad accounts read from Meta. `sleep`, `clock` and `rng` are injectable so tests can check
    waits (minutes, per Meta's headers) without spending them."""

    mode = "live"

    def __init__(
        self,
        settings: Settings,
        *,
        sleep: Callable[[float], object] | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.stats = SourceStats()
        self._stop = threading.Event()
        self.sleep = sleep or self._stop.wait  # close() cuts a long wait short
        self.clock = clock
        self.pacer = Pacer(settings.rate_limit_retry_delay, self.stats, self.sleep, clock)
        self.policy = RetryPolicy(
            self.pacer, self.stats, settings.max_retries, settings.rate_limit_retry_delay, settings.secret_values(), rng
        )
        self.api = connect_api(settings, self.policy)
        self._trees: dict[str, EntityTree] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> LiveSource:
        return cls(settings)

    def interrupt(self) -> None:
        self._stop.set()

    def close(self) -> None:
        self._stop.set()
        self.api._session.requests.close()

    def fetch_accounts(self) -> list[Account]:
        """The configured accounts, in their order. One request each, as many in flight as report runs:
        a worker reads them at start and every interval, and one at a time kept a worker with many
        accounts from its first sync for a round trip per account."""
        ids = list(self.settings.ad_account_ids)
        with ThreadPoolExecutor(max_workers=max(1, min(len(ids), self.settings.report_runs_in_flight))) as pool:
            answers = list(pool.map(lambda account_id: fetch_account_json(self.api, account_id), ids))
        return [account_from_json(answer, account_id) for answer, account_id in zip(answers, ids)]

    def fetch_entities(self, account: Account) -> EntityTree:
        page = self.settings.insights_page_size
        frames = {}
        for level in LEVELS:
            records = fetch_entities_json(self.api, account.account_id, level, page)
            frames[LEVEL_SPECS[level].plural] = entity_frame(level, records, account)
        tree = EntityTree(account, **frames)
        self._trees[account.account_id] = tree
        return tree

    def fetch_creatives(self, account: Account, creative_ids: Sequence[str]) -> list[Creative]:
        records = fetch_creatives_json(self.api, creative_ids)
        return [c for c in (creative_from_json(r, account.account_id) for r in records) if c is not None]

    def fetch_insights(
        self, account: Account, window: DateWindow, scope: Scope, sync_id: str, on_status: StatusCallback | None = None
    ) -> Iterator[InsightBatch]:
        tree = self._trees.get(account.account_id) or self.fetch_entities(account)
        if scope.is_full:
            levels = [lvl for lvl in LEVELS if not tree.frame(lvl).empty]
        else:
            levels = [lvl for lvl in LEVELS if scope.ids(lvl)]
        chunks = plan_chunks(levels, window, self.settings.report_max_days)
        ctx = self._report_context(account, tree, scope, on_status)
        yield from ReportRunner(ctx, chunks, TOTALS).batches()

    def fetch_breakdowns(
        self,
        account: Account,
        window: DateWindow,
        scope: Scope,
        families: tuple[BreakdownFamily, ...],
        sync_id: str,
        on_status: StatusCallback | None = None,
    ) -> Iterator[BreakdownBatch]:
        """Segment rows per level and family: one account-level report run per level, family and window.

        Per level rather than ads only with a roll-up: reach per segment exists only at the level
        it is fetched at, so campaigns and ad sets keep theirs (the segments managers open first),
        and each level's segments sum to the totals Meta sent for that level. It costs three runs
        per family and window instead of one — still flat in the number of entities — and the
        parent levels add about 40% more rows (pages) than the ads alone. A family Meta refuses
        fails with its reason; the others go on.
        """
        if not families:
            return
        tree = self._trees.get(account.account_id) or self.fetch_entities(account)
        if scope.is_full:
            levels = [lvl for lvl in LEVELS if not tree.frame(lvl).empty]
        else:
            levels = [lvl for lvl in LEVELS if scope.ids(lvl)]
        chunks = plan_chunks(levels, window, self.settings.report_max_days, families)
        yield from ReportRunner(self._report_context(account, tree, scope, on_status), chunks, SEGMENTS).batches()

    def _report_context(
        self, account: Account, tree: EntityTree, scope: Scope, on_status: StatusCallback | None
    ) -> ReportContext:
        return ReportContext(
            api=self.api,
            account=account,
            tree=tree,
            scope=scope,
            conversion_types=self.settings.conversion_action_types,
            page_size=self.settings.insights_page_size,
            concurrency=self.settings.report_runs_in_flight,
            max_poll_seconds=self.settings.report_poll_seconds,
            max_resubmits=self.settings.max_retries,
            sleep=self.sleep,
            clock=self.clock,
            on_status=on_status,
        )


__all__ = ["LiveSource"]
