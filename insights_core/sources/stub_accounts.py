"""Several deterministic demo accounts behind one source (INSIGHTS_STUB_ACCOUNTS), for many workers.

Account k is a `StubSource` of the same shape whose entity ids are shifted by k * ID_STRIDE, so no two
accounts share an id and every number is still a pure function of (entity id, date). The first
account is the one-account stub's, ids and all.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

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
from insights_core.sources import InsightsSource, StatusCallback
from insights_core.sources.stub import STUB_ACCOUNT, StubShape, StubSource

ID_STRIDE = 1_000_000_000
"""Entity ids of account k start k strides on: room for a billion entities per level per account."""


def stub_account(index: int) -> Account:
    """The index-th demo account (0 is the one-account stub's)."""
    if index == 0:
        return STUB_ACCOUNT
    number = int(STUB_ACCOUNT.account_id.removeprefix("act_")) + index
    return Account(f"act_{number}", f"Demo Store {index + 1} (stub)", STUB_ACCOUNT.currency, STUB_ACCOUNT.timezone_name)


def open_stub_source(settings: Settings) -> InsightsSource:
    """The stub the settings ask for: one account (the default) or INSIGHTS_STUB_ACCOUNTS of them."""
    if settings.stub_accounts == 1:
        return StubSource.from_settings(settings)
    return StubAccounts(settings)


class StubAccounts:
    """`settings.stub_accounts` demo accounts; each call goes to the account's own StubSource."""

    mode = "stub"

    def __init__(self, settings: Settings) -> None:
        shape = StubShape(settings.stub_campaigns, settings.stub_adsets_per_campaign, settings.stub_ads_per_adset)
        self.stats = SourceStats()
        self._sources: dict[str, StubSource] = {}
        for index in range(settings.stub_accounts):
            source = StubSource(
                shape,
                settings.stub_error_rate,
                account=stub_account(index),
                scenarios=settings.stub_scenarios,
                id_offset=index * ID_STRIDE,
            )
            source.stats = self.stats  # one tally for the sync report
            self._sources[source.account.account_id] = source

    def _source(self, account: Account) -> StubSource:
        return self._sources[account.account_id]

    def fetch_accounts(self) -> list[Account]:
        return [source.account for source in self._sources.values()]

    def fetch_entities(self, account: Account) -> EntityTree:
        return self._source(account).fetch_entities(account)

    def fetch_insights(
        self, account: Account, window: DateWindow, scope: Scope, sync_id: str, on_status: StatusCallback | None = None
    ) -> Iterator[InsightBatch]:
        return self._source(account).fetch_insights(account, window, scope, sync_id, on_status)

    def fetch_breakdowns(
        self,
        account: Account,
        window: DateWindow,
        scope: Scope,
        families: tuple[BreakdownFamily, ...],
        sync_id: str,
        on_status: StatusCallback | None = None,
    ) -> Iterator[BreakdownBatch]:
        return self._source(account).fetch_breakdowns(account, window, scope, families, sync_id, on_status)

    def fetch_creatives(self, account: Account, creative_ids: Sequence[str]) -> list[Creative]:
        return self._source(account).fetch_creatives(account, creative_ids)

    def interrupt(self) -> None:
        pass  # nothing here waits

    def close(self) -> None:
        pass
