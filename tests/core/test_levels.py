"""The level specs against what they describe: the migrated schema, the sync report and the SDK."""

from __future__ import annotations

import dataclasses

import duckdb
import pytest
from facebook_business.adobjects.ad import Ad
from facebook_business.adobjects.adset import AdSet
from facebook_business.adobjects.campaign import Campaign

from insights_core.levels import LEVEL_SPECS, LEVELS, LevelSpec
from insights_core.models import INSIGHT_ID_COLUMNS, SyncReport
from insights_core.store.migrations import ensure_schema

SPECS = list(LEVEL_SPECS.values())


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    ensure_schema(con)
    return con


def table_columns(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]]:
    return con.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position",
        [table],
    ).fetchall()


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.level)
def test_spec_columns_are_the_migrated_entity_table(con: duckdb.DuckDBPyConnection, spec: LevelSpec) -> None:
    # columns added by a later migration follow the store's own `updated_at`
    columns = table_columns(con, spec.table)
    assert ("updated_at", "TIMESTAMP") in columns
    assert [c for c in columns if c[0] != "updated_at"] == [(c.name, c.sql_type) for c in spec.columns]
    primary_key = con.execute(
        "SELECT constraint_column_names FROM duckdb_constraints()"
        " WHERE table_name = ? AND constraint_type = 'PRIMARY KEY'",
        [spec.table],
    ).fetchall()
    assert primary_key == [([spec.id_column],)]


def test_every_entity_table_of_the_schema_has_a_spec(con: duckdb.DuckDBPyConnection) -> None:
    tables = {
        row[0]
        for row in con.execute(
            "SELECT table_name FROM information_schema.columns WHERE column_name = 'effective_status'"
        ).fetchall()
    }
    assert tables == {s.table for s in SPECS}


def test_insight_rows_name_every_level_and_allow_exactly_the_levels(con: duckdb.DuckDBPyConnection) -> None:
    insight_columns = [name for name, _ in table_columns(con, "meta_ad_insights")]
    assert {s.id_column for s in SPECS} <= set(INSIGHT_ID_COLUMNS) <= set(insight_columns)
    insert = (
        "INSERT INTO meta_ad_insights (account_id, entity_type, entity_id, date_start, date_end, spend,"
        " impressions, clicks, conversions, revenue, created_at, updated_at)"
        " VALUES ('a', ?, '1', DATE '2026-01-01', DATE '2026-01-01', 0, 0, 0, 0, 0, now(), now())"
    )
    con.execute("BEGIN TRANSACTION")
    try:
        for level in LEVELS:
            con.execute(insert, [level])
        with pytest.raises(duckdb.ConstraintException):
            con.execute(insert, ["account"])
    finally:
        con.execute("ROLLBACK")


def test_report_keys_and_sync_run_counts_follow_the_plurals(con: duckdb.DuckDBPyConnection) -> None:
    report_fields = {f.name for f in dataclasses.fields(SyncReport)}
    run_columns = {name for name, _ in table_columns(con, "sync_runs")}
    for spec in SPECS:
        assert spec.plural in report_fields
        assert {f"{spec.plural}_{count}" for count in ("processed", "success", "errors")} <= run_columns


def test_hierarchy_is_one_chain_outermost_first() -> None:
    assert list(LEVEL_SPECS) == list(LEVELS)
    for index, spec in enumerate(SPECS):
        assert spec.level == LEVELS[index]
        assert spec.parent == (LEVELS[index - 1] if index else None)
        assert spec.children == LEVELS[index + 1 :]
        assert [a.level for a in spec.ancestors] == list(LEVELS[:index])
        # an object names its ancestors' ids right after its own id and the account's
        assert spec.column_names[: 2 + index] == (spec.id_column, "account_id", *spec.parent_id_columns)
    assert LEVEL_SPECS["ad"].parent_id_columns == ("campaign_id", "adset_id")


@pytest.mark.parametrize(("spec", "sdk_class"), list(zip(SPECS, (Campaign, AdSet, Ad))), ids=LEVELS)
def test_graph_fields_are_fields_the_sdk_knows_for_the_level(spec: LevelSpec, sdk_class: type) -> None:
    assert spec.graph_fields[0] == "id"
    unknown = [f for f in spec.graph_fields if not hasattr(sdk_class.Field, f)]
    assert unknown == []
