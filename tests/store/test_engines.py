"""The store's write rules on both engines (the `warehouse` fixture is parametrized in conftest.py):
upserts, restatements, stale deletes, runs saved twice, all-or-nothing transactions."""

from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd
import pytest

from insights_core.errors import StoreError
from insights_core.store.warehouse import Warehouse
from tests.store.lake_writes import ADS, DAYS, fetch_state, insight_rows, save_sync, window


def test_a_first_sync_inserts_every_row_once(warehouse: Warehouse) -> None:
    save_sync(warehouse, "act_1", 0)
    state = fetch_state(warehouse.con)
    assert len(state["meta_ad_insights"]) == (ADS - 1) * DAYS
    assert len({r[:4] for r in state["meta_ad_insights"]}) == len(state["meta_ad_insights"])
    assert len(state["synced_days"]) == DAYS
    assert state["ad_accounts"][0][:2] == ("act_1", "Account act_1")
    assert state["sync_runs"] == [("act_1-sync-0", "succeeded", True)]


def test_a_resync_updates_only_changed_rows_and_deletes_what_was_not_returned(warehouse: Warehouse) -> None:
    save_sync(warehouse, "act_1", 0)
    before = {r[:4]: r for r in fetch_state(warehouse.con)["meta_ad_insights"]}
    rows = insight_rows("act_1", 0)
    again = rows[rows["entity_id"] != "act_1-ad-5"].copy()
    again.loc[again["entity_id"] == "act_1-ad-3", "spend"] += 1
    later = dt.datetime(2026, 11, 21, tzinfo=dt.timezone.utc)
    since, until = window(0)
    with warehouse.transaction():
        assert warehouse.upsert_insights(again, later) == (0, DAYS)
        assert warehouse.delete_stale_insights("act_1", "ad", since, until, None) == DAYS
    after = {r[:4]: r for r in fetch_state(warehouse.con)["meta_ad_insights"]}
    assert set(after) == {k for k in before if k[2] != "act_1-ad-5"}
    for key, row in after.items():
        changed = key[2] == "act_1-ad-3"
        assert row[12] == before[key][12], "created_at is kept"
        assert (row[13] == later.replace(tzinfo=None)) is changed, "updated_at moves only for changed rows"
        assert (row[4] == before[key][4] + 1) is changed


def test_stale_rows_of_entities_not_read_are_kept(warehouse: Warehouse) -> None:
    save_sync(warehouse, "act_1", 0)
    since, until = window(0)
    with warehouse.transaction():
        assert warehouse.delete_stale_insights("act_1", "ad", since, until, ["act_1-ad-9"]) == 0
        assert warehouse.delete_stale_insights("act_1", "ad", since, until, []) == 0
    assert len(fetch_state(warehouse.con)["meta_ad_insights"]) == (ADS - 1) * DAYS


def test_sliding_syncs_of_two_accounts_keep_each_key_once(warehouse: Warehouse) -> None:
    for n in range(2):
        for account in ("act_1", "act_2"):
            save_sync(warehouse, account, n)
    rows = fetch_state(warehouse.con)["meta_ad_insights"]
    assert len({r[:4] for r in rows}) == len(rows)
    runs = fetch_state(warehouse.con)["sync_runs"]
    assert len(runs) == 4 and len(fetch_state(warehouse.con)["ad_accounts"]) == 2


def test_a_run_saved_again_keeps_one_row_with_the_new_values(warehouse: Warehouse) -> None:
    save_sync(warehouse, "act_1", 0)
    report = _report(warehouse, "act_1-sync-0")
    assert report == ("succeeded", True)
    from insights_core.models import SyncReport, SyncRequest

    rewritten = SyncReport.for_request(
        SyncRequest(days_back=DAYS), sync_id="act_1-sync-0", sync_timestamp="2026-11-20T15:00:00+00:00", mode="stub"
    )
    rewritten.status, rewritten.success = "failed", False
    warehouse.save_sync_run(rewritten)  # outside a transaction: its own commit
    assert _report(warehouse, "act_1-sync-0") == ("failed", False)
    assert warehouse.con.execute("SELECT count(*) FROM sync_runs").fetchone() == (1,)


def test_a_failure_inside_the_transaction_commits_nothing(warehouse: Warehouse) -> None:
    save_sync(warehouse, "act_1", 0)
    before = fetch_state(warehouse.con)
    with pytest.raises(RuntimeError), warehouse.transaction():
        warehouse.upsert_insights(insight_rows("act_1", 1), dt.datetime(2026, 11, 22))
        warehouse.delete_stale_insights("act_1", "ad", *window(1), None)
        raise RuntimeError("the source failed")
    assert fetch_state(warehouse.con) == before


def test_a_key_twice_in_one_batch_fails_and_stores_nothing(warehouse: Warehouse) -> None:
    rows = insight_rows("act_1", 0)
    doubled = pd.concat([rows, rows.iloc[[0]]], ignore_index=True)
    for fresh in (True, False):
        with pytest.raises((StoreError, duckdb.Error)), warehouse.transaction():  # embedded: the primary key
            warehouse.upsert_insights(doubled, dt.datetime(2026, 11, 22), fresh=fresh)
        assert fetch_state(warehouse.con)["meta_ad_insights"] == []


def _report(warehouse: Warehouse, sync_id: str) -> tuple:
    return warehouse.con.execute("SELECT status, success FROM sync_runs WHERE sync_id = ?", [sync_id]).fetchone()
