"""The one place that picks the store's engine from the settings (INSIGHTS_STORE)."""

from __future__ import annotations

from insights_core.settings import Settings
from insights_core.store.warehouse import Warehouse


def open_warehouse(settings: Settings) -> Warehouse:
    """The worker's read-write warehouse: the embedded DuckDB file, or the lake (many workers)."""
    if settings.store == "ducklake":
        from insights_core.store.lake_warehouse import LakeWarehouse  # loads the lake's extensions only when used

        return LakeWarehouse(settings, settings.duckdb_memory_limit)
    return Warehouse(settings.db_path, settings.duckdb_memory_limit)
