"""Names of the levels above a row, for exports that put each id's name beside it (an ad's row names its
ad set and campaign). Kept beside `queries` (same rules: a cursor of a read-only snapshot, table and
column names only from `LEVEL_SPECS`); a separate module so the export owns it.
"""

from __future__ import annotations

import duckdb

from insights_core.levels import LEVEL_SPECS, Level


def fetch_ancestor_names(con: duckdb.DuckDBPyConnection, level: Level) -> dict[str, dict[str, str]]:
    """For each level above `level`: its id column -> {id: name}. A few thousand names at most per
    account (campaigns and ad sets), read once per export rather than joined into every row batch."""
    names: dict[str, dict[str, str]] = {}
    for spec in LEVEL_SPECS[level].ancestors:
        rows = con.execute(f"SELECT {spec.id_column}, name FROM {spec.table}").fetchall()
        names[spec.id_column] = {str(entity_id): str(name) for entity_id, name in rows if name is not None}
    return names
