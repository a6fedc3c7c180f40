"""meta_ad_insight_breakdowns on its own: migration 4, upsert, stale deletion and roll-up with hand-made rows."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from insights_core.errors import StoreError
from insights_core.models import BREAKDOWN_SOURCE_COLUMNS
from insights_core.store import breakdowns
from insights_core.store.migrations import schema_version
from insights_core.store.warehouse import Warehouse
from tests.helpers import FIXED_NOW

DAY = dt.date(2026, 11, 1)
LATER = FIXED_NOW + dt.timedelta(hours=1)


def segment(entity_id: str, key_1: str, spend: float, impressions: int, level: str = "ad", **extra: object) -> dict:
    row = dict(
        account_id="act_1",
        entity_type=level,
        entity_id=entity_id,
        date_start=DAY,
        breakdown="country",
        key_1=key_1,
        key_2="",
        spend=spend,
        impressions=impressions,
        clicks=impressions // 10,
        conversions=1.0,
        revenue=spend * 2,
        reach=impressions - 1,
    )
    return {**row, **extra}


def frame(*rows: dict) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=list(BREAKDOWN_SOURCE_COLUMNS))


def stored(warehouse: Warehouse) -> pd.DataFrame:
    return warehouse.con.execute(
        "SELECT entity_type, entity_id, key_1, spend::DOUBLE AS spend, impressions, reach, created_at, updated_at"
        " FROM meta_ad_insight_breakdowns ORDER BY entity_type, entity_id, key_1"
    ).df()


@pytest.fixture
def ads_of_one_adset(warehouse: Warehouse) -> Warehouse:
    warehouse.con.execute(
        "INSERT INTO ads (ad_id, account_id, campaign_id, adset_id, name, updated_at) VALUES"
        " ('a1', 'act_1', 'c1', 's1', 'one', now()), ('a2', 'act_1', 'c1', 's1', 'two', now())"
    )
    return warehouse


def test_migration_4_creates_the_table_keyed_by_the_upsert_not_a_primary_key(warehouse: Warehouse) -> None:
    assert schema_version(warehouse.con) >= 4
    columns = [r[0] for r in warehouse.con.execute("DESCRIBE meta_ad_insight_breakdowns").fetchall()]
    assert columns == [
        "entity_type", "entity_id", "account_id", "date_start", "breakdown", "key_1", "key_2",
        "spend", "impressions", "clicks", "conversions", "revenue", "reach", "created_at", "updated_at",
    ]  # fmt: skip
    key = warehouse.con.execute(
        "SELECT constraint_column_names FROM duckdb_constraints()"
        " WHERE table_name = 'meta_ad_insight_breakdowns' AND constraint_type = 'PRIMARY KEY'"
    ).fetchone()
    assert key is None  # its in-memory index made a 4,500-ad first sync run out of memory at 512MB


def test_upsert_inserts_then_updates_only_changed_rows(warehouse: Warehouse) -> None:
    rows = frame(segment("a1", "US", 1.5, 100), segment("a1", "CA", 0.25, 20))
    with warehouse.transaction():
        assert warehouse.upsert_breakdowns(rows, FIXED_NOW, fresh=True) == (2, 0)
    first = stored(warehouse)
    restated = frame(segment("a1", "US", 1.75, 100), segment("a1", "CA", 0.25, 20), segment("a1", "GB", 0.1, 3))
    with warehouse.transaction():
        assert warehouse.upsert_breakdowns(restated, LATER) == (1, 1)
    after = stored(warehouse).set_index("key_1")
    assert after.loc["US", "spend"] == 1.75 and after.loc["US", "updated_at"] == pd.Timestamp(
        LATER.replace(tzinfo=None)
    )
    assert after.loc["CA", "updated_at"] == first.set_index("key_1").loc["CA", "updated_at"], "unchanged: not rewritten"
    assert (after["created_at"] == pd.Timestamp(FIXED_NOW.replace(tzinfo=None))).sum() == 2


def test_a_key_twice_fails_and_the_transaction_leaves_nothing(warehouse: Warehouse) -> None:
    rows = frame(segment("a1", "US", 1.5, 100), segment("a1", "US", 1.5, 100))
    for fresh in (True, False):
        with pytest.raises(StoreError, match="appear twice"), warehouse.transaction():
            warehouse.upsert_breakdowns(rows, FIXED_NOW, fresh=fresh)
        assert stored(warehouse).empty


def test_stale_rows_are_deleted_only_for_entities_read(warehouse: Warehouse) -> None:
    with warehouse.transaction():
        warehouse.upsert_breakdowns(
            frame(segment("a1", "US", 1, 10), segment("a1", "CA", 1, 10), segment("a2", "CA", 1, 10)), FIXED_NOW
        )
    with warehouse.transaction():
        warehouse.upsert_breakdowns(frame(segment("a1", "US", 1, 10)), LATER)
        deleted = warehouse.delete_stale_breakdowns("act_1", "ad", "country", DAY, DAY, ["a1"])
    assert deleted == 1
    assert stored(warehouse)[["entity_id", "key_1"]].values.tolist() == [["a1", "US"], ["a2", "CA"]]
    with warehouse.transaction():
        warehouse.upsert_breakdowns(frame(segment("a1", "US", 1, 10)), LATER)
        assert warehouse.delete_stale_breakdowns("act_1", "ad", "country", DAY, DAY, None) == 1
    assert stored(warehouse)[["entity_id", "key_1"]].values.tolist() == [["a1", "US"]]


def test_other_families_and_days_are_not_stale(warehouse: Warehouse) -> None:
    with warehouse.transaction():
        warehouse.upsert_breakdowns(
            frame(segment("a1", "US", 1, 10), segment("a1", "mobile_app", 1, 10, breakdown="device_platform")),
            FIXED_NOW,
        )
    with warehouse.transaction():
        warehouse.upsert_breakdowns(frame(segment("a1", "US", 1, 10)), LATER)
        assert warehouse.delete_stale_breakdowns("act_1", "ad", "country", DAY, DAY, None) == 0
        next_day = DAY + dt.timedelta(days=1)
        assert warehouse.delete_stale_breakdowns("act_1", "ad", "device_platform", next_day, next_day, None) == 0
    assert len(stored(warehouse)) == 2


def test_roll_up_sums_children_and_leaves_reach_null(ads_of_one_adset: Warehouse) -> None:
    warehouse = ads_of_one_adset
    children = frame(segment("a1", "US", 1.11, 100), segment("a2", "US", 2.22, 50), segment("a2", "CA", 0.01, 1))
    with warehouse.transaction():
        warehouse.upsert_breakdowns(children, FIXED_NOW)
        rows, inserted, updated = warehouse.roll_up_breakdowns("act_1", "adset", "country", DAY, DAY, ["s1"], FIXED_NOW)
    assert (rows, inserted, updated) == (2, 2, 0)
    parents = stored(warehouse)
    parents = parents[parents["entity_type"] == "adset"].set_index("key_1")
    assert parents.loc["US", "spend"] == pytest.approx(3.33) and parents.loc["US", "impressions"] == 150
    assert parents["reach"].isna().all(), "reach is never summed"
    with warehouse.transaction():  # the same children again: nothing changes
        assert warehouse.roll_up_breakdowns("act_1", "adset", "country", DAY, DAY, ["s1"], LATER) == (2, 0, 0)


def test_roll_up_only_touches_the_parents_asked_for(ads_of_one_adset: Warehouse) -> None:
    warehouse = ads_of_one_adset
    with warehouse.transaction():
        warehouse.upsert_breakdowns(frame(segment("a1", "US", 1, 10)), FIXED_NOW)
        assert warehouse.roll_up_breakdowns("act_1", "adset", "country", DAY, DAY, [], FIXED_NOW) == (0, 0, 0)
        assert warehouse.roll_up_breakdowns("act_1", "adset", "country", DAY, DAY, ["other"], FIXED_NOW)[0] == 0
    assert set(stored(warehouse)["entity_type"]) == {"ad"}


def test_reads_sum_segments_without_reach(ads_of_one_adset: Warehouse) -> None:
    warehouse = ads_of_one_adset
    with warehouse.transaction():
        warehouse.upsert_breakdowns(frame(segment("a1", "US", 1, 10), segment("a2", "US", 2, 20)), FIXED_NOW)
    sums = breakdowns.fetch_segment_sums(warehouse.con, "country", "ad", DAY, DAY, account_id="act_1")
    assert sums.to_dict("records")[0]["impressions"] == 30 and "reach" not in sums.columns
    one = breakdowns.fetch_segment_sums(warehouse.con, "country", "ad", DAY, DAY, entity_id="a2")
    assert one["spend"].tolist() == [2.0]
    reach = breakdowns.fetch_segment_daily_reach(warehouse.con, "country", "ad", "a1", DAY, DAY)
    assert reach["reach"].tolist() == [9]
    assert breakdowns.has_breakdowns_table(warehouse.con)
