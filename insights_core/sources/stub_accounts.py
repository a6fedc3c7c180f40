"""Several deterministic demo accounts (INSIGHTS_STUB_ACCOUNTS > 1): agencies and many-worker set-ups.

Each account is a `StubSource` of the same shape whose ids start `ACCOUNT_ID_STRIDE` after the one
before, so no id is shared between accounts and every number is still a pure function of (id, date).
The first account is the single-account demo, unchanged.
"""

from __future__ import annotations

import datetime as dt
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
from insights_core.sources import StatusCallback
from insights_core.sources.stub import ACCOUNT_ID_STRIDE, MAX_STUB_ACCOUNTS, STUB_ACCOUNT, StubShape, StubSource


def stub_account(index: int) -> Account:
    """The `index`-th demo account (0 is the single-account demo's)."""
    if index == 0:
        return STUB_ACCOUNT
    number = int(STUB_ACCOUNT.account_id.removeprefix("act_")) + index
    return Account(
        account_id=f"act_{number}",
        name=f"Demo Store {index + 1} (stub)",
        currency=STUB_ACCOUNT.currency,
        timezone_name=STUB_ACCOUNT.timezone_name,
    )


class StubAccounts:
    """`count` demo accounts behind one source; every call goes to the account's own `StubSource`."""

    mode = "stub"

    def __init__(
        self,
        count: int,
        shape: StubShape,
        error_rate: float = 0.0,
        scenarios: tuple[str, ...] = (),
        today: dt.date | None = None,
    ) -> None:
        if not 1 <= count <= MAX_STUB_ACCOUNTS:
            raise ValueError(f"between 1 and {MAX_STUB_ACCOUNTS} demo accounts, not {count}")
        self.stats = SourceStats()
        self._sources: dict[str, StubSource] = {}
        for index in range(count):
            account = stub_account(index)
            source = StubSource(shape, error_rate, account, scenarios, today, id_offset=index * ACCOUNT_ID_STRIDE)
            source.stats = self.stats  # one tally for the sync report, whichever account counted
            self._sources[account.account_id] = source

    @classmethod
    def from_settings(cls, settings: Settings) -> StubAccounts:
        shape = StubShape(settings.stub_campaigns, settings.stub_adsets_per_campaign, settings.stub_ads_per_adset)
        return cls(settings.stub_accounts, shape, settings.stub_error_rate, scenarios=settings.stub_scenarios)

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
