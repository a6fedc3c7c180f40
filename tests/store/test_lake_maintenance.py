"""Lake maintenance against a real PostgreSQL catalog: fewer files, the same rows, one runner at a time."""

from __future__ import annotations

import datetime as dt
from contextlib import nullcontext
from pathlib import Path

import duckdb
import psycopg
import pytest

from insights_core.store.lake_maintenance import (
    MAINTENANCE_LOCK_KEY,
    compact_lake,
    fetch_maintenance_runs,
    run_lake_maintenance_if_due,
)


def _extension(module: str, name: str) -> str:
    package = __import__(module)
    return str(next(Path(package.__file__).parent.glob(f"extensions/*/{name}.duckdb_extension")))


@pytest.fixture
def lake(catalog_url: str, tmp_path: Path) -> duckdb.DuckDBPyConnection:
    """A lake with one table written by 8 appends and 2 in-place updates (10 data files, 2 delete files)."""
    con = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
    con.execute(f"LOAD '{_extension('duckdb_extension_postgres_scanner', 'postgres_scanner')}'")
    con.execute(f"LOAD '{_extension('duckdb_extension_ducklake', 'ducklake')}'")
    con.execute(f"ATTACH 'ducklake:postgres:{catalog_url}' AS lake (DATA_PATH '{tmp_path / 'lake'}/')")
    con.execute("USE lake")
    con.execute("CREATE TABLE t (k INTEGER, v INTEGER)")
    for i in range(8):
        con.execute("INSERT INTO t SELECT range + ?, 0 FROM range(1000)", [i * 1000])
    for i in range(2):
        con.execute(
            "MERGE INTO t USING (SELECT range + ? AS k, ? AS v FROM range(500)) s ON t.k = s.k"
            " WHEN MATCHED THEN UPDATE SET v = s.v",
            [i * 1000, i + 1],
        )
    return con


def test_compaction_leaves_fewer_files_and_the_same_rows(lake: duckdb.DuckDBPyConnection) -> None:
    before = lake.execute("SELECT count(*), sum(k), sum(v) FROM t").fetchone()
    run = compact_lake(lake, "lake", keep_snapshots=dt.timedelta(0), worker="test")
    assert run.files_before >= 10 and run.delete_files_before >= 2
    assert run.files_after < run.files_before / 4
    assert run.files_merged > 0 and run.snapshots_expired > 0 and run.files_deleted > 0
    assert lake.execute("SELECT count(*), sum(k), sum(v) FROM t").fetchone() == before == (8_000, 31_996_000, 1_500)


def test_one_worker_runs_it_at_most_once_per_period(lake: duckdb.DuckDBPyConnection, catalog_url: str) -> None:
    def due() -> object:
        return run_lake_maintenance_if_due(
            catalog_url,
            lake,
            "lake",
            every=dt.timedelta(hours=6),
            keep_snapshots=dt.timedelta(hours=1),
            worker="w1",
            commit_lock=nullcontext,
        )

    with psycopg.connect(catalog_url, autocommit=True) as other:  # another worker is running it
        other.execute("SELECT pg_advisory_lock(%s)", (MAINTENANCE_LOCK_KEY,))
        assert due() is None
    first = due()
    assert first is not None and first.error is None and first.files_after < first.files_before
    assert due() is None  # ran less than 6 hours ago
    runs = fetch_maintenance_runs(catalog_url)
    assert [(r.worker, r.files_before, r.files_after) for r in runs] == [("w1", first.files_before, first.files_after)]
