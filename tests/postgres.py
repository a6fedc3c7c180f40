"""A real PostgreSQL for the lake tests: one server per test session, one fresh database per test.

The server comes from Debian's package (scripts/test.sh installs it) and is started under /tmp (the
server's unprivileged user cannot reach pytest's 0700 temp dirs). Tests get `lake_settings`: the
product's settings with INSIGHTS_STORE=ducklake pointed at their own catalog database and data dir.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from insights_core.cluster.postgres_server import PostgresServer
from insights_core.settings import Settings
from tests.helpers import SMALL_SHAPE, make_settings
from tests.servers import free_port


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    root = Path(tempfile.mkdtemp(prefix="insights-test-pg-"))
    server = PostgresServer(root, free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def catalog_url(postgres_server: PostgresServer) -> str:
    """A new, empty database on the session's server."""
    return postgres_server.create_database(f"test_{uuid.uuid4().hex[:12]}")


LAKE_TEMPLATE = "lake_template"
_TEMPLATE_DATA: dict[str, Path] = {}
"""Each template catalog's data directory (its Parquet files: the lake inlines no rows in the catalog)."""


@pytest.fixture(scope="session")
def lake_template(postgres_server: PostgresServer) -> Iterator[str]:
    """A lake catalog with the store's schema applied, cloned by each test: migrating a new lake takes
    seconds (every DDL statement is a catalog commit), cloning a database a fraction of one."""
    from insights_core.store.lake_warehouse import LakeWarehouse

    root = Path(tempfile.mkdtemp(prefix="insights-test-lake-template-"))
    url = postgres_server.create_database(LAKE_TEMPLATE)
    warehouse = LakeWarehouse(
        make_settings(root / "data", store="ducklake", catalog_url=url, lake_data_path=str(root / "lake"))
    )
    warehouse.close()
    _TEMPLATE_DATA[LAKE_TEMPLATE] = root / "lake"
    yield LAKE_TEMPLATE
    shutil.rmtree(root, ignore_errors=True)


def clone_lake(server: PostgresServer, template: str, data_path: Path) -> str:
    """A new catalog database copied from `template`, its data files copied to `data_path`; return its URL."""
    import psycopg

    name = f"lake_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server.url(), autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')  # names we chose
    url = server.url(name)
    if template in _TEMPLATE_DATA and _TEMPLATE_DATA[template].exists():
        shutil.copytree(_TEMPLATE_DATA[template], data_path, dirs_exist_ok=True)
    with psycopg.connect(url) as con:
        # the catalog keeps file paths relative to its data path: only the root changes
        con.execute("UPDATE ducklake_metadata SET value = %s WHERE key = 'data_path'", (f"{data_path}/",))
    return url


@pytest.fixture
def lake_settings(postgres_server: PostgresServer, lake_template: str, tmp_path: Path) -> Settings:
    """The small stub account's settings with INSIGHTS_STORE=ducklake, on a fresh migrated catalog."""
    lake = tmp_path / "lake"
    lake.mkdir()
    url = clone_lake(postgres_server, lake_template, lake)
    return make_settings(tmp_path / "data", store="ducklake", catalog_url=url, lake_data_path=str(lake), **SMALL_SHAPE)
