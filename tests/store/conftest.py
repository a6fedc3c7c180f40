"""Store tests run on both engines: `warehouse` is the embedded file or a lake on the suite's PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from insights_core.settings import Settings
from insights_core.store.engines import open_warehouse
from insights_core.store.warehouse import Warehouse

ENGINES = ("duckdb", "ducklake")


@pytest.fixture(params=ENGINES)
def engine_settings(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    """The small stub account's settings for each engine (the lake on a fresh catalog)."""
    if request.param == "duckdb":
        return settings
    return request.getfixturevalue("lake_settings")


@pytest.fixture
def warehouse(engine_settings: Settings) -> Iterator[Warehouse]:
    wh = open_warehouse(engine_settings)
    yield wh
    wh.close()
