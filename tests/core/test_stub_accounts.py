"""Several demo accounts (INSIGHTS_STUB_ACCOUNTS): disjoint ids, the first one the single demo, one sync for all."""

from __future__ import annotations

from pathlib import Path

import pytest

from insights_core.engine import run_sync
from insights_core.errors import ConfigError
from insights_core.models import SyncRequest
from insights_core.settings import load_settings
from insights_core.sources import open_source
from insights_core.sources.stub import StubSource
from insights_core.sources.stub_accounts import StubAccounts
from insights_core.store.warehouse import Warehouse
from tests.helpers import FIXED_NOW, SMALL_SHAPE, make_settings


def _rows(warehouse: Warehouse) -> list[tuple]:
    return warehouse.con.execute(
        "SELECT account_id, entity_type, entity_id, date_start, spend, impressions FROM meta_ad_insights ORDER BY ALL"
    ).fetchall()


def test_three_accounts_sync_together_with_disjoint_ids_and_the_first_is_the_single_demo(tmp_path: Path) -> None:
    many = make_settings(tmp_path / "many", stub_accounts=3, **SMALL_SHAPE)
    one = make_settings(tmp_path / "one", **SMALL_SHAPE)
    source = open_source(many)
    assert isinstance(source, StubAccounts) and isinstance(open_source(one), StubSource)
    accounts = source.fetch_accounts()
    assert [a.account_id for a in accounts] == ["act_1000000000001", "act_1000000000002", "act_1000000000003"]
    ids = [set(source.fetch_entities(a).ads["ad_id"]) for a in accounts]
    assert all(len(i) == 6 * 3 * 2 for i in ids) and not (ids[0] & ids[1] or ids[1] & ids[2] or ids[0] & ids[2])

    stores = {}
    for name, settings in (("many", many), ("one", one)):
        warehouse = Warehouse(settings.db_path)
        report = run_sync(
            SyncRequest(days_back=5),
            source=open_source(settings),
            warehouse=warehouse,
            settings=settings,
            now=FIXED_NOW,
        )
        assert report.status == "succeeded", report.errors
        stores[name] = _rows(warehouse)
        warehouse.close()
    per_account = {a.account_id: [r for r in stores["many"] if r[0] == a.account_id] for a in accounts}
    assert per_account["act_1000000000001"] == stores["one"]  # the first account is the single demo, unchanged
    for account, ad_ids in zip(accounts, ids):  # each account's ad rows are its own ads (days vary with creation)
        ad_rows = {r[2] for r in per_account[account.account_id] if r[1] == "ad"}
        assert ad_rows and ad_rows <= ad_ids
    # different ids give different numbers: the accounts are not copies of each other
    assert [r[4:] for r in per_account["act_1000000000002"]] != [r[4:] for r in stores["one"]]


def test_the_number_of_demo_accounts_is_bounded() -> None:
    assert load_settings(INSIGHTS_STUB_ACCOUNTS="100").stub_accounts == 100
    for bad in ("0", "101", "two"):
        with pytest.raises(ConfigError, match="INSIGHTS_STUB_ACCOUNTS"):
            load_settings(INSIGHTS_STUB_ACCOUNTS=bad)
