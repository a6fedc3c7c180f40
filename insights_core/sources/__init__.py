"""Where insights come from. Stub, live and the emulator sit behind one interface; the sync
engine never knows which one it talks to."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

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

StatusCallback = Callable[[str], None]
"""Receives short phrases such as "ad report 40% (2026-10-01..2026-10-30)" while a level is slow."""


class InsightsSource(Protocol):
    mode: str
    stats: SourceStats

    def fetch_accounts(self) -> list[Account]:
        """The ad accounts this source reads."""
        ...

    def fetch_entities(self, account: Account) -> EntityTree:
        """Every campaign, ad set (with targeting) and ad of the account, paused and archived included."""
        ...

    def fetch_insights(
        self, account: Account, window: DateWindow, scope: Scope, sync_id: str, on_status: StatusCallback | None = None
    ) -> Iterator[InsightBatch]:
        """Daily rows for the scope's entities over the window, one batch per level and chunk.

        A failure that concerns some entities goes into `InsightBatch.failures`; a failure that
        makes the whole sync pointless (bad token, missing permission) raises FatalSyncError.
        """
        ...

    def fetch_breakdowns(
        self,
        account: Account,
        window: DateWindow,
        scope: Scope,
        families: tuple[BreakdownFamily, ...],
        sync_id: str,
        on_status: StatusCallback | None = None,
    ) -> Iterator[BreakdownBatch]:
        """Daily segment rows (BREAKDOWN_SOURCE_COLUMNS) of the scope's entities over the window,
        batches per level and family, for the levels the source reads (any subset: the engine rolls
        the others up from the level below). Per entity, day and family the segments' additive
        metrics sum to the entity's totals row; entities it failed on go in `BreakdownBatch.failures`.
        A source that cannot read a family yields no batch for it (or raises NotImplementedError),
        and the sync report says so.
        """
        ...

    def fetch_creatives(self, account: Account, creative_ids: Sequence[str]) -> list[Creative]:
        """The creatives with these ids (those the source cannot read are left out). Each carries its
        image's bytes (the stub draws them) or its URL (live: Meta's, expiring; the worker downloads it)."""
        ...

    def interrupt(self) -> None:
        """Cut any wait short (a throttle back-off, a report poll): the sync is being stopped.

        Called from a signal handler; the next step of the sync raises or yields promptly.
        """
        ...

    def close(self) -> None: ...


def open_source(settings: Settings) -> InsightsSource:
    """The source the settings ask for. Live credentials are checked here, before any network call."""
    if settings.mode == "stub":
        from insights_core.sources.stub_accounts import open_stub_source

        return open_stub_source(settings)
    from insights_core.sources.live import LiveSource

    settings.require_live_credentials()
    return LiveSource.from_settings(settings)


__all__ = ["InsightsSource", "StatusCallback", "open_source"]
