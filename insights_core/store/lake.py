"""Connections to the DuckLake store (INSIGHTS_STORE=ducklake): catalog in PostgreSQL, Parquet under
INSIGHTS_LAKE_DATA_PATH (a shared directory or s3://bucket/prefix).

The extensions come from the pinned PyPI wheels (`duckdb-extension-*`, built for this duckdb only)
and are loaded by path: DuckDB never downloads one, so a machine without network works and a
version mismatch fails here with a message rather than mid-sync. After the attach the connection
`USE`s the lake, so the store's unqualified SQL (queries, lists, breakdowns) runs unchanged.
Errors never show the catalog's password.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any

import duckdb

from insights_core.errors import ConfigError, SnapshotUnavailableError, StoreError
from insights_core.settings import Settings

LAKE = "lake"
"""The name the lake is attached under; every lake connection `USE`s it."""
EXTENSIONS = ("ducklake", "postgres_scanner", "httpfs")
BASE_CONFIG: dict[str, str | bool | int | float | list[str]] = {
    "autoinstall_known_extensions": False,  # never download: the wheels' files are loaded by path
    "autoload_known_extensions": False,
}


def extension_path(name: str) -> Path:
    """The extension file the wheel `duckdb-extension-<name>` ships for the running duckdb version."""
    spec = importlib.util.find_spec(f"duckdb_extension_{name}")
    if spec is None or spec.origin is None:
        raise ConfigError(
            f"the DuckDB extension {name} is not installed: pip install duckdb-extension-"
            f"{name.replace('_', '-')}=={duckdb.__version__} (see requirements.txt)"
        )
    path = Path(spec.origin).parent / "extensions" / f"v{duckdb.__version__}" / f"{name}.duckdb_extension"
    if not path.is_file():
        raise ConfigError(
            f"the installed duckdb-extension-{name.replace('_', '-')} is not built for duckdb {duckdb.__version__}"
            " (each wheel fits one duckdb version: install both from requirements.txt)"
        )
    return path


def load_extensions(con: duckdb.DuckDBPyConnection, *, s3: bool) -> None:
    """Load the lake's extensions from their wheels (httpfs only for s3://: each load takes a while)."""
    for name in EXTENSIONS if s3 else EXTENSIONS[:2]:
        con.execute(f"LOAD '{_quoted(str(extension_path(name)))}'")


def connect_lake(
    settings: Settings,
    *,
    snapshot: int | None = None,
    memory_limit: str | None = None,
    temp_dir: Path | None = None,
) -> duckdb.DuckDBPyConnection:
    """A new connection with the lake attached (as `lake`) and in use.

    `snapshot` pins the attach read-only at that lake snapshot (never half a sync); None attaches
    read-write at the head.
    """
    config = dict(BASE_CONFIG)
    if memory_limit:
        config["memory_limit"] = memory_limit
    if temp_dir is not None:
        config["temp_directory"] = str(temp_dir)
    con = duckdb.connect(config=config)
    try:
        prepare_lake_instance(con, settings)
        attach_lake(con, settings, LAKE, snapshot=snapshot, read_only=snapshot is not None)
        con.execute(f"USE {LAKE}")
    except BaseException:
        con.close()
        raise
    return con


def prepare_lake_instance(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    """Load the extensions (and the S3 secret for an s3:// data path) into a new DuckDB instance."""
    _, data_path = _lake_location(settings)
    try:
        con.execute("SET enable_progress_bar = false")  # a worker's log and a CLI's output are not terminals
        load_extensions(con, s3=data_path.startswith("s3://"))
        if data_path.startswith("s3://"):
            _create_s3_secret(con, settings)
    except duckdb.Error as exc:
        raise StoreError(f"cannot load the lake's extensions: {describe_lake_error(exc, settings)}") from exc


def attach_lake(
    con: duckdb.DuckDBPyConnection, settings: Settings, alias: str, *, snapshot: int | None, read_only: bool
) -> None:
    """Attach the lake as `alias`: at the head, or pinned at `snapshot`."""
    catalog, data_path = _lake_location(settings)
    # DATA_INLINING_ROW_LIMIT 0: every commit writes Parquet, none keeps its rows in the catalog. With
    # inlining (the default) maintenance failed on a migrated table ("Failed to read inlined-data
    # aggregates ... column not found", DuckLake 1.5.5); maintenance compacts the small files instead
    options = [f"DATA_PATH '{_quoted(data_path)}'", "DATA_INLINING_ROW_LIMIT 0"]
    if snapshot is not None:
        options.append(f"SNAPSHOT_VERSION {int(snapshot)}")
    if read_only:
        options.append("READ_ONLY")
    try:
        con.execute(f"ATTACH '{_quoted('ducklake:postgres:' + catalog)}' AS {alias} ({', '.join(options)})")
    except duckdb.Error as exc:
        raise StoreError(f"cannot open the lake: {describe_lake_error(exc, settings)}") from exc


def fetch_lake_snapshot(con: duckdb.DuckDBPyConnection, alias: str = LAKE) -> int:
    """The id of the lake snapshot this connection's transaction reads (the head, unless pinned)."""
    row = con.execute("SELECT id FROM ducklake_current_snapshot($alias)", {"alias": alias}).fetchone()
    assert row is not None
    return int(row[0])


def fetch_published_snapshot(con: duckdb.DuckDBPyConnection, alias: str = LAKE) -> int:
    """The newest lake snapshot readers may open; SnapshotUnavailableError before the first sync.

    Every sync commits its run to `sync_runs` in the same commit as its rows, so a lake without
    one has nothing to show yet (only the schema the first worker created).
    """
    snapshot = fetch_lake_snapshot(con, alias)
    tables = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_catalog = $lake AND table_name = 'sync_runs'",
        {"lake": alias},
    ).fetchone()
    if not tables or not tables[0]:
        raise SnapshotUnavailableError()
    runs = con.execute(f"SELECT EXISTS (SELECT 1 FROM {alias}.sync_runs)").fetchone()
    if not runs or not runs[0]:
        raise SnapshotUnavailableError()
    return snapshot


def describe_lake_error(exc: BaseException, settings: Settings) -> str:
    """The first line of `exc` with the catalog password and the S3 secret blanked."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    for secret in _secrets(settings):
        text = text.replace(secret, "***")
    return text


def _lake_location(settings: Settings) -> tuple[str, str]:
    if settings.catalog_url is None or not settings.lake_data_path:
        raise ConfigError("the lake needs INSIGHTS_CATALOG_URL and INSIGHTS_LAKE_DATA_PATH")
    data_path = settings.lake_data_path
    if not data_path.startswith("s3://"):
        directory = Path(data_path).expanduser().resolve()
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"INSIGHTS_LAKE_DATA_PATH {directory} cannot be created: {exc}") from exc
        data_path = str(directory)
    return settings.catalog_url.get_secret_value(), data_path.rstrip("/") + "/"


def _create_s3_secret(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    """A DuckDB secret for the lake's bucket, from the INSIGHTS_S3_* settings (path-style URLs, as
    S3-compatible servers such as SeaweedFS need)."""
    if not settings.s3_access_key_id or settings.s3_secret_access_key is None:
        raise ConfigError(
            "an s3:// INSIGHTS_LAKE_DATA_PATH needs INSIGHTS_S3_ACCESS_KEY_ID and INSIGHTS_S3_SECRET_ACCESS_KEY"
        )
    options = {
        "KEY_ID": settings.s3_access_key_id,
        "SECRET": settings.s3_secret_access_key.get_secret_value(),
        "REGION": settings.s3_region,
    }
    if settings.s3_endpoint:
        options["ENDPOINT"] = settings.s3_endpoint
        options["URL_STYLE"] = "path"
    body = ", ".join(f"{key} '{_quoted(value)}'" for key, value in options.items())
    con.execute(f"CREATE OR REPLACE SECRET insights_lake_s3 (TYPE s3, {body}, USE_SSL {bool(settings.s3_use_ssl)})")


def _secrets(settings: Settings) -> list[str]:
    found = []
    if settings.catalog_url is not None:
        password = re.match(r"^[a-z]+://[^:/@]+:([^@]+)@", settings.catalog_url.get_secret_value())
        if password:
            found.append(password.group(1))
        found += re.findall(r"password=(\S+)", settings.catalog_url.get_secret_value())
    if settings.s3_secret_access_key is not None:
        found.append(settings.s3_secret_access_key.get_secret_value())
    return [s for s in found if s]


def _quoted(text: str) -> str:
    """`text` inside a single-quoted SQL literal (ATTACH and SECRET options take no parameters)."""
    return text.replace("'", "''")


class LakeConnection:
    """A lake connection whose cursors read the lake as well: a DuckDB cursor is a new client that
    starts in the in-memory default catalog, so each one is pointed at the lake (`USE`) here.
    Everything else is the connection's own."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con

    def cursor(self) -> duckdb.DuckDBPyConnection:
        cursor = self._con.cursor()
        cursor.execute(f"USE {LAKE}")
        return cursor

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)
