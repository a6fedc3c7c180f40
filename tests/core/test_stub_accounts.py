"""INSIGHTS_STUB_ACCOUNTS: several demo accounts whose entity ids never collide, the first one the
one-account stub's, numbers still a pure function of (entity id, date)."""

from __future__ import annotations

from pathlib import Path

from insights_core.engine import resolve_scope
from insights_core.models import DateWindow, SyncRequest
from insights_core.sources import open_source
from insights_core.sources.stub import StubSource
from insights_core.sources.stub_accounts import StubAccounts
from tests.helpers import FIXED_NOW, SMALL_SHAPE, make_settings


def test_accounts_have_their_own_ids_and_the_first_is_the_single_stub(tmp_path: Path) -> None:
    single = open_source(make_settings(tmp_path, **SMALL_SHAPE))
    many = open_source(make_settings(tmp_path, stub_accounts=3, **SMALL_SHAPE))
    assert isinstance(single, StubSource) and isinstance(many, StubAccounts)
    accounts = many.fetch_accounts()
    assert [a.account_id for a in accounts] == ["act_1000000000001", "act_1000000000002", "act_1000000000003"]
    assert accounts[0] == single.fetch_accounts()[0]
    trees = [many.fetch_entities(account) for account in accounts]
    for level in ("campaign", "adset", "ad"):
        column = f"{level}_id"
        ids = [set(tree.frame(level)[column]) for tree in trees]
        assert len(set.union(*ids)) == sum(len(i) for i in ids)  # no id in two accounts
        assert ids[0] == set(single.fetch_entities(single.fetch_accounts()[0]).frame(level)[column])
    assert set(trees[2].ads["account_id"]) == {"act_1000000000003"}

    today = accounts[0].today(FIXED_NOW)
    window = DateWindow(today, today)
    scope, _ = resolve_scope(trees[0], SyncRequest())
    first = [b.rows for b in many.fetch_insights(accounts[0], window, scope, "s")]
    alone = [b.rows for b in single.fetch_insights(accounts[0], window, scope, "s")]
    assert all(a.equals(b) for a, b in zip(first, alone, strict=True))
