"""Store tests run on both engines: `warehouse` is the embedded file or a lake on the suite's PostgreSQL.

The lake is one per test module, emptied before each test (one commit), because opening a lake
(loading the extensions, attaching the catalog) takes a second or two each time.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from insights_core.cluster.postgres_server import PostgresServer
from insights_core.settings import Settings
from insights_core.store.lake_warehouse import LakeWarehouse
from insights_core.store.warehouse import Warehouse
from tests.helpers import SMALL_SHAPE, make_settings
from tests.postgres import clone_lake

ENGINES = ("duckdb", "ducklake")


@pytest.fixture(scope="module")
def module_lake(
    postgres_server: PostgresServer, lake_template: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LakeWarehouse]:
    root = tmp_path_factory.mktemp("lake")
    (root / "lake").mkdir()
    url = clone_lake(postgres_server, lake_template, root / "lake")
    settings = make_settings(
        root / "data", store="ducklake", catalog_url=url, lake_data_path=str(root / "lake"), **SMALL_SHAPE
    )
    warehouse = LakeWarehouse(settings)
    yield warehouse
    warehouse.close()


def empty_lake(warehouse: Warehouse) -> None:
    """Delete every row but the migrations', in one commit."""
    tables = warehouse.con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database()"
        " AND table_name <> 'schema_migrations'"
    ).fetchall()
    warehouse.con.execute("BEGIN TRANSACTION")
    for (table,) in tables:
        warehouse.con.execute(f"DELETE FROM {table}")
    warehouse.con.execute("COMMIT")


@pytest.fixture(params=ENGINES)
def warehouse(request: pytest.FixtureRequest, settings: Settings, tmp_path: Path) -> Iterator[Warehouse]:
    if request.param == "duckdb":
        embedded = Warehouse(settings.db_path)
        yield embedded
        embedded.close()
        return
    lake: LakeWarehouse = request.getfixturevalue("module_lake")
    empty_lake(lake)
    yield lake
