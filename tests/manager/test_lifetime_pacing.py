"""Lifetime budgets paced over their own schedule, on hand-made frames, and migration 6 on an old store."""

from __future__ import annotations

import datetime as dt

import duckdb
import numpy as np
import pandas as pd
import pytest

from insights_core.manager.pacing import NO_END_DATE, budget_pacing, pacing_since
from insights_core.manager.reads import fetch_entities
from insights_core.store.migrations import MIGRATIONS, ensure_schema

AS_OF = dt.date(2026, 11, 10)
START = pd.Timestamp("2026-11-01 00:00")  # a 20-day flight, 1 Nov to 20 Nov: 10 days elapsed, 10 left
STOP = pd.Timestamp("2026-11-21 00:00")  # a stop at midnight ends the day before


def _lifetime(entity_id: str, budget: float, start: object = START, stop: object = STOP) -> dict[str, object]:
    return {
        "entity_id": entity_id,
        "name": entity_id,
        "campaign_id": entity_id,
        "effective_status": "ACTIVE",
        "daily_budget": np.nan,
        "lifetime_budget": budget,
        "start_time": start,
        "stop_time": stop,
    }


def _spend(entity_id: str, first: dt.date, days: int, spend: float) -> pd.DataFrame:
    dates = pd.date_range(pd.Timestamp(first), periods=days, freq="D")
    return pd.DataFrame({"entity_id": entity_id, "date": dates, "spend": spend})


def test_lifetime_budgets_over_under_and_on_pace() -> None:
    entities = pd.DataFrame(
        [_lifetime("over", 2000), _lifetime("under", 2000), _lifetime("even", 2000), _lifetime("late", 2000)]
    )
    before = dt.date(2026, 10, 25)  # spend before the flight starts is not the flight's
    daily = pd.concat(
        [
            _spend("over", before, 17, 150.0),
            _spend("under", dt.date(2026, 11, 1), 10, 60.0),
            _spend("even", dt.date(2026, 11, 1), 10, 100.0),
        ]
    )
    out = budget_pacing(entities, daily, AS_OF).set_index("entity_id")
    assert list(out.index[:3]) == ["late", "over", "under"]  # worst first: nothing spent is -100%
    over = out.loc["over"]
    assert over["budget_type"] == "lifetime" and over["budget"] == 2000 and over["period_budget"] == 2000
    assert (over["period_start"], over["period_end"]) == (dt.date(2026, 11, 1), dt.date(2026, 11, 20))
    assert over["spend_to_date"] == 1500 and over["expected_to_date"] == pytest.approx(1000)
    assert over["status"] == "over" and over["deviation"] == pytest.approx(0.5)
    assert over["projected_spend"] == pytest.approx(1500 + 10 * 150)
    assert over["needed_per_day"] == pytest.approx((2000 - 1500) / 10)
    assert out.loc["under", "status"] == "under" and out.loc["under", "deviation"] == pytest.approx(-0.4)
    assert out.loc["even", "status"] == "on pace" and out.loc["even", "needed_per_day"] == pytest.approx(100)
    assert out.loc["late", "status"] == "under" and out.loc["late", "spend_to_date"] == 0


def test_a_lifetime_budget_without_a_stop_time_is_listed_as_not_paceable() -> None:
    entities = pd.DataFrame([_lifetime("open", 5000, stop=pd.NaT), _lifetime("even", 2000)])
    daily = pd.concat([_spend("open", dt.date(2026, 11, 1), 10, 80.0), _spend("even", dt.date(2026, 11, 1), 10, 100.0)])
    out = budget_pacing(entities, daily, AS_OF).set_index("entity_id")
    assert list(out.index) == ["even", "open"]  # rows without a deviation come last
    row = out.loc["open"]
    assert row["status"] == NO_END_DATE and row["spend_to_date"] == 800 and pd.isna(row["period_end"])
    assert all(pd.isna(row[c]) for c in ("expected_to_date", "deviation", "projected_spend", "needed_per_day"))


def test_a_schedule_not_started_or_already_ended_is_not_paced() -> None:
    entities = pd.DataFrame(
        [
            _lifetime("future", 2000, start=pd.Timestamp("2026-11-11 09:00"), stop=pd.Timestamp("2026-12-01")),
            _lifetime("ended", 2000, start=pd.Timestamp("2026-10-01"), stop=pd.Timestamp("2026-11-10 00:00")),
            _lifetime("last day", 2000, start=pd.Timestamp("2026-10-22"), stop=pd.Timestamp("2026-11-10 23:00")),
        ]
    )
    daily = _spend("last day", dt.date(2026, 10, 22), 20, 100.0)
    out = budget_pacing(entities, daily, AS_OF)
    assert list(out["entity_id"]) == ["last day"]  # a stop at midnight of the 10th ended on the 9th
    assert out.loc[0, "status"] == "on pace" and pd.isna(out.loc[0, "needed_per_day"])
    assert pacing_since(entities, AS_OF) == dt.date(2026, 10, 22)


def test_daily_and_lifetime_rows_share_one_shape() -> None:
    daily_row = {**_lifetime("d", np.nan), "daily_budget": 100.0, "start_time": pd.NaT, "stop_time": pd.NaT}
    entities = pd.DataFrame([daily_row, _lifetime("l", 2000)])
    daily = pd.concat([_spend("d", dt.date(2026, 11, 1), 10, 100.0), _spend("l", dt.date(2026, 11, 1), 10, 100.0)])
    out = budget_pacing(entities, daily, AS_OF).set_index("entity_id")
    assert dict(out["budget_type"]) == {"d": "daily", "l": "lifetime"}
    assert out.loc["d", "period_budget"] == 3000 and out.loc["d", "period_end"] == dt.date(2026, 11, 30)
    assert (out["status"] == "on pace").all()


def test_migration_6_adds_the_schedule_to_an_old_store_and_keeps_its_rows() -> None:
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE schema_migrations"
        " (version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMP NOT NULL)"
    )
    for version, name, sql in MIGRATIONS[:5]:  # a store as the last release left it
        con.execute(sql)
        con.execute("INSERT INTO schema_migrations VALUES (?, ?, now()::TIMESTAMP)", [version, name])
    con.execute(
        "INSERT INTO campaigns (campaign_id, account_id, name, status, effective_status, lifetime_budget,"
        " updated_at) VALUES ('c1', 'a', 'Old', 'ACTIVE', 'ACTIVE', 900, now()::TIMESTAMP)"
    )
    assert ensure_schema(con) == [version for version, _, _ in MIGRATIONS[5:]]  # 6, and any later ones
    assert ensure_schema(con) == []  # safe to repeat
    old = fetch_entities(con, "campaign").iloc[0]
    assert old["name"] == "Old" and old["lifetime_budget"] == 900 and pd.isna(old["stop_time"])
    con.execute("UPDATE adsets SET stop_time = NULL")  # the column exists on ad sets too
    assert fetch_entities(con, "campaign", ids=["nope"]).empty
