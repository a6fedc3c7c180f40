"""Move an embedded store (INSIGHTS_DATA_DIR/insights.duckdb) into the lake, in one lake commit,
then check both hold the same rows.

The embedded file is attached read-only into the lake's connection (stop the worker first: DuckDB
lets one process write a file or many read it), each table's stored columns are copied with one
INSERT ... SELECT, and the whole copy commits under the lake's commit lock. The check compares,
per table, the row count and a checksum over every stored column (keys and metrics included):
the sum of the rows' hashes, which ignores row order and counts a duplicated row.

Creative images: the embedded store keeps them as files in the data dir, the lake as rows of
`creative_images` (every replica reads them from there). The copy loads each file a creative refers
to into that table in the same commit, and its check compares the files' count and content hashes
with the lake's rows. A file that is gone is left out; the creative's next sync downloads it again
while its URL still answers.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from insights_core.creatives import creatives_dir
from insights_core.errors import ConfigError, StoreError
from insights_core.settings import Settings
from insights_core.store.creatives import save_creative_images
from insights_core.store.lake_warehouse import LakeWarehouse, hold_commit_lock
from insights_core.store.migrations import schema_version

SOURCE = "embedded"
BOOKKEEPING = ("schema_migrations",)
"""Tables each store keeps for itself (the lake has its own migrations)."""
IMAGES_TABLE = "creative_images"
"""Empty in the embedded store (its images are files); filled from those files by the copy."""
IMAGES_PER_BATCH = 50
"""Image files read per insert: at most 50 x 5 MB in memory at once."""


@dataclass(frozen=True)
class TableCheck:
    table: str
    source_rows: int
    lake_rows: int
    source_checksum: int
    lake_checksum: int

    @property
    def matches(self) -> bool:
        return (self.source_rows, self.source_checksum) == (self.lake_rows, self.lake_checksum)


class LakeNotEmptyError(StoreError):
    """The lake already holds rows; nothing was copied (pass --replace to overwrite them)."""


def copy_to_lake(settings: Settings, *, replace: bool = False) -> list[TableCheck]:
    """Copy every table of the embedded store into the lake in one commit; return the check per table.

    Raises LakeNotEmptyError (changing nothing) when a lake table holds rows and `replace` is False;
    with `replace` the lake's rows are deleted in the same commit.
    """
    source = settings.db_path
    if not source.is_file():
        raise ConfigError(f"no embedded store at {source} (INSIGHTS_DATA_DIR)")
    if settings.catalog_url is None or not settings.lake_data_path:
        raise ConfigError("copy --to ducklake needs INSIGHTS_CATALOG_URL and INSIGHTS_LAKE_DATA_PATH")
    warehouse = LakeWarehouse(settings, settings.duckdb_memory_limit)
    try:
        con = warehouse.con
        _attach_source(con, source)
        try:
            tables = _shared_tables(con)
            with hold_commit_lock(settings):
                images_checksum = _save_copy(con, tables, replace, creatives_dir(settings.data_dir))
            checks = [_check_table(con, table) for table in tables if table != IMAGES_TABLE]
            return [*checks, _check_images(con, images_checksum)]
        finally:
            con.execute(f"DETACH {SOURCE}")
    finally:
        warehouse.close()


def _attach_source(con: duckdb.DuckDBPyConnection, source: Path) -> None:
    try:
        con.execute(f"ATTACH '{str(source).replace(chr(39), chr(39) * 2)}' AS {SOURCE} (READ_ONLY)")
    except duckdb.Error as exc:
        first = str(exc).splitlines()[0]
        raise StoreError(f"cannot open {source} read-only (stop the sync worker first): {first}") from exc
    lake_version = schema_version(con)
    row = con.execute(f"SELECT max(version) FROM {SOURCE}.schema_migrations").fetchone()
    if not row or row[0] != lake_version:
        con.execute(f"DETACH {SOURCE}")
        raise StoreError(
            f"{source} is at schema version {row[0] if row else None}, the lake at {lake_version}:"
            " run the worker once on the embedded store (it applies the migrations), then copy"
        )


def _shared_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    rows = con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = $db AND schema_name = 'main' ORDER BY table_name",
        {"db": SOURCE},
    ).fetchall()
    return [r[0] for r in rows if r[0] not in BOOKKEEPING]


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    """The lake table's columns: the embedded one's stored columns (its generated ones are left out)."""
    rows = con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE database_name = current_database()"
        " AND schema_name = 'main' AND table_name = $table ORDER BY column_index",
        {"table": table},
    ).fetchall()
    if not rows:
        raise StoreError(f"the lake has no table {table}")
    return [r[0] for r in rows]


def _save_copy(con: duckdb.DuckDBPyConnection, tables: list[str], replace: bool, images: Path) -> tuple[int, int]:
    """Copy `tables` and the image files in `images` in one commit; return (files copied, their checksum)."""
    con.execute("BEGIN TRANSACTION")
    try:
        held = [t for t in tables if con.execute(f"SELECT EXISTS (SELECT 1 FROM {t})").fetchone() == (True,)]
        if held and not replace:
            raise LakeNotEmptyError(
                f"the lake already holds rows in {', '.join(held)}; nothing was copied"
                " (pass --replace to overwrite them)"
            )
        for table in tables:
            columns = ", ".join(_columns(con, table))
            if replace:
                con.execute(f"DELETE FROM {table}")
            con.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {SOURCE}.main.{table}")
        copied = _save_image_files(con, images)
        con.execute("COMMIT")
        return copied
    except duckdb.Error as exc:
        con.execute("ROLLBACK")
        raise StoreError(f"the copy failed, nothing was committed: {str(exc).splitlines()[0]}") from exc
    except BaseException:
        con.execute("ROLLBACK")
        raise


def _save_image_files(con: duckdb.DuckDBPyConnection, directory: Path) -> tuple[int, int]:
    """Insert the image files the embedded creatives refer to; return (files found, their checksum)."""
    names = [
        row[0]
        for row in con.execute(
            f"SELECT DISTINCT image_file FROM {SOURCE}.main.meta_ad_creatives WHERE image_file IS NOT NULL ORDER BY 1"
        ).fetchall()
    ]
    now, found, checksum = dt.datetime.now(dt.timezone.utc), 0, 0
    for start in range(0, len(names), IMAGES_PER_BATCH):
        files = [directory / name for name in names[start : start + IMAGES_PER_BATCH]]
        kept = [(f.name, f.read_bytes()) for f in files if f.is_file()]
        if not kept:
            continue
        save_creative_images(con, pd.DataFrame(kept, columns=["image_file", "content"]), now)
        contents = pa.table({"content": pa.array([content for _, content in kept], pa.binary())})
        con.register("copied_images", contents)
        try:
            row = con.execute("SELECT coalesce(sum(hash(content)::HUGEINT), 0) FROM copied_images").fetchone()
        finally:
            con.unregister("copied_images")
        assert row is not None
        found, checksum = found + len(kept), checksum + int(row[0])
    return found, checksum


def _check_images(con: duckdb.DuckDBPyConnection, copied: tuple[int, int]) -> TableCheck:
    """The image files copied against the lake's image rows (count and content hashes)."""
    row = con.execute(f"SELECT count(*), coalesce(sum(hash(content)::HUGEINT), 0) FROM {IMAGES_TABLE}").fetchone()
    assert row is not None
    return TableCheck(f"{IMAGES_TABLE} (files)", copied[0], int(row[0]), copied[1], int(row[1]))


def _check_table(con: duckdb.DuckDBPyConnection, table: str) -> TableCheck:
    columns = ", ".join(_columns(con, table))
    sql = "SELECT count(*), coalesce(sum(hash({columns})::HUGEINT), 0) FROM {source}"
    source = con.execute(sql.format(columns=columns, source=f"{SOURCE}.main.{table}")).fetchone()
    lake = con.execute(sql.format(columns=columns, source=table)).fetchone()
    assert source is not None and lake is not None
    return TableCheck(table, int(source[0]), int(lake[0]), int(source[1]), int(lake[1]))
