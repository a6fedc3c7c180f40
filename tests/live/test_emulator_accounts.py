"""The emulator serving several ad accounts: disjoint ids, each account's own truth through the real
live source, and a sync of one account that stores nothing of another."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
import requests

from graph_emulator import ACCOUNT_ID, GraphEmulator, SeededAccount, account_id_for, seeded_accounts
from insights_core.engine import run_sync
from insights_core.errors import InsightsError
from insights_core.levels import LEVELS
from insights_core.models import SyncReport, SyncRequest
from insights_core.settings import Settings
from insights_core.sources.live import LiveSource
from insights_core.store.warehouse import Warehouse
from tests.live.helpers import SHAPE, TOKEN, assert_equals_truth, live_settings, stored_rows, window_of

SECOND = account_id_for(1)


@pytest.fixture
def three_accounts() -> Iterator[GraphEmulator]:
    with GraphEmulator(SHAPE, accounts=3) as running:
        yield running


def _every_id(account: SeededAccount) -> set[str]:
    return {*itertools.chain.from_iterable(account.ids.values()), *account.creative_ids}


def _sync(settings: Settings) -> SyncReport:
    source, warehouse = LiveSource(settings), Warehouse(settings.db_path)
    try:
        return run_sync(SyncRequest(days_back=10), source=source, warehouse=warehouse, settings=settings)
    finally:
        warehouse.close()
        source.close()


def _stored_accounts(settings: Settings, table: str) -> set[str]:
    with duckdb.connect(str(settings.db_path), read_only=True) as con:
        return {row[0] for row in con.execute(f"SELECT DISTINCT account_id FROM {table}").fetchall()}  # our names


def test_accounts_have_their_own_act_ids_and_disjoint_entity_and_creative_ids() -> None:
    accounts = seeded_accounts(4, SHAPE)
    assert [a.account_id for a in accounts] == ["act_5550001", "act_5550002", "act_5550003", "act_5550004"]
    assert accounts[0].ids == SeededAccount(SHAPE).ids  # the single-account default keeps its ids
    for a, b in itertools.combinations(accounts, 2):
        assert not _every_id(a) & _every_id(b), (a.account_id, b.account_id)
    assert all(len(_every_id(a)) == 24 + 24 + 12 + 4 for a in accounts)  # ads, creatives, ad sets, campaigns
    since, until = dt.date(2026, 11, 1), dt.date(2026, 11, 7)
    again = seeded_accounts(4, SHAPE)
    for a, b in zip(accounts, again):  # deterministic, and each account has numbers of its own
        assert a.ground_truth("ad", since, until).equals(b.ground_truth("ad", since, until))
    spends = {round(a.ground_truth("campaign", since, until)["spend"].sum(), 2) for a in accounts}
    assert len(spends) == 4


def test_each_account_answers_for_itself_and_an_unknown_act_id_gets_graphs_error(
    three_accounts: GraphEmulator,
) -> None:
    def get(path: str, **params: object) -> requests.Response:
        return requests.get(f"{three_accounts.url}/v26.0/{path}", params={"access_token": TOKEN, **params}, timeout=10)

    second = three_accounts.accounts[SECOND]
    answer = get(SECOND)
    assert answer.json()["id"] == SECOND and json.loads(answer.headers["x-business-use-case-usage"]).keys() == {
        "5550002"
    }
    campaigns = get(f"{SECOND}/campaigns", fields="id", limit=100, effective_status=json.dumps(["ACTIVE"]))
    assert {c["id"] for c in campaigns.json()["data"]} == {
        e["id"] for e in second.entities["campaign"] if e["effective_status"] == "ACTIVE"
    }
    creative = get(second.creative_ids[0], fields="id,account_id,title").json()
    assert creative["account_id"] == "5550002"
    ad = second.ids["ad"][0]
    assert get(ad, fields="id,adset_id").json()["adset_id"] in second.ids["adset"]
    unknown = get(account_id_for(3))
    error = unknown.json()["error"]
    assert (unknown.status_code, error["code"], error["error_subcode"]) == (400, 100, 33)
    assert "'act_5550004' does not exist" in error["message"]


def test_each_accounts_insights_tie_out_with_its_own_truth_through_the_live_source(
    tmp_path: Path, three_accounts: GraphEmulator
) -> None:
    ids = ",".join(three_accounts.accounts)
    settings = live_settings(tmp_path / "data", three_accounts, ad_account_ids=ids, insights_page_size=50)
    report = _sync(settings)
    assert report.success and report.errors == [] and sorted(report.accounts) == sorted(three_accounts.accounts)
    since, until = window_of(report.to_dict())
    for account_id in three_accounts.accounts:
        for level in LEVELS:
            stored = stored_rows(settings.db_path, level)
            mine = stored[stored["account_id"] == account_id].reset_index(drop=True)
            assert_equals_truth(mine, three_accounts.ground_truth(level, since, until, account_id=account_id))
    assert {run.account_id for run in three_accounts.report_runs} == set(three_accounts.accounts)


def test_a_sync_of_the_second_account_stores_nothing_of_the_first(
    tmp_path: Path, three_accounts: GraphEmulator
) -> None:
    settings = live_settings(tmp_path / "data", three_accounts, ad_account_ids=SECOND)
    report = _sync(settings)
    assert report.success and report.accounts == [SECOND]
    since, until = window_of(report.to_dict())
    first = _every_id(three_accounts.accounts[ACCOUNT_ID])
    for level in LEVELS:
        stored = stored_rows(settings.db_path, level)
        assert set(stored["account_id"]) == {SECOND}
        assert not first & {*stored["entity_id"], *stored["campaign_id"]}
        assert_equals_truth(stored, three_accounts.ground_truth(level, since, until, account_id=SECOND))
    for table in ("campaigns", "adsets", "ads", "ad_accounts"):
        assert _stored_accounts(settings, table) == {SECOND}, table
    assert {run.account_id for run in three_accounts.report_runs} == {SECOND}


def test_the_accounts_are_read_together_and_come_back_in_the_configured_order(
    tmp_path: Path, three_accounts: GraphEmulator
) -> None:
    configured = list(reversed(three_accounts.accounts))
    settings = live_settings(tmp_path / "data", three_accounts, ad_account_ids=",".join(configured))
    source = LiveSource(settings)
    try:
        accounts = source.fetch_accounts()
        assert [a.account_id for a in accounts] == configured
        assert [a.name for a in accounts] == [three_accounts.accounts[i].account_json()["name"] for i in configured]
    finally:
        source.close()
    unknown = LiveSource(
        live_settings(tmp_path / "other", three_accounts, ad_account_ids=f"{SECOND},{account_id_for(3)}")
    )
    try:
        with pytest.raises(InsightsError, match="act_5550004"):  # one failed read fails them all, as before
            unknown.fetch_accounts()
    finally:
        unknown.close()
