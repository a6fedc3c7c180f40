"""The lake engine on the suite's PostgreSQL: its schema, its errors, pinned readers, concurrent
writers, and the copy from an embedded store."""

from __future__ import annotations

import multiprocessing
import queue
import sys
import time
import types
from contextlib import suppress
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import duckdb
import pytest

from insights_core.errors import SnapshotUnavailableError, StoreError
from insights_core.settings import Settings
from insights_core.sources.stub import StubSource
from insights_core.store import lake_warehouse
from insights_core.store.copy import LakeNotEmptyError, copy_to_lake
from insights_core.store.lake import connect_lake
from insights_core.store.lake_reader import LakeReader
from insights_core.store.lake_warehouse import LakeWarehouse
from insights_core.store.migrations import MIGRATIONS, schema_version
from insights_core.store.warehouse import Warehouse
from tests.helpers import FIXED_NOW
from tests.store.lake_writes import fetch_state, save_sync, writer_process

GENERATED = {"ctr", "cpc", "cpm", "roas", "cost_per_conversion", "id"}
"""meta_ad_insights' derived columns: the lake has no generated columns, and no query reads these."""


def _columns(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[str, str]]]:
    rows = con.execute(
        "SELECT table_name, column_name, data_type FROM duckdb_columns()"
        " WHERE database_name = current_database() AND schema_name = 'main' ORDER BY table_name, column_index"
    ).fetchall()
    found: dict[str, list[tuple[str, str]]] = {}
    for table, column, kind in rows:
        if column not in GENERATED:
            found.setdefault(table, []).append((column, kind))
    return found


def test_the_lake_has_the_embedded_schemas_tables_and_stored_columns(settings: Settings, lake_settings) -> None:
    embedded = Warehouse(settings.db_path)
    lake = LakeWarehouse(lake_settings)
    try:
        assert _columns(lake.con) == _columns(embedded.con)
        assert schema_version(lake.con) == schema_version(embedded.con) == MIGRATIONS[-1][0]
    finally:
        embedded.close()
        lake.close()


def test_a_wrong_catalog_password_fails_clearly_without_showing_it(lake_settings: Settings) -> None:
    url = lake_settings.catalog_url.get_secret_value()
    password = url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
    wrong = lake_settings.model_copy(
        update={"catalog_url": type(lake_settings.catalog_url)(url.replace(password, "x" + password))}
    )
    with pytest.raises(StoreError) as failure:
        connect_lake(wrong)
    assert "cannot open the lake" in str(failure.value)
    assert password not in str(failure.value)


def test_a_reader_pinned_to_a_snapshot_keeps_it_while_a_sync_commits(lake_settings: Settings) -> None:
    warehouse = LakeWarehouse(lake_settings)
    reader = LakeReader(lake_settings)
    try:
        with pytest.raises(SnapshotUnavailableError):
            reader.fetch_published_snapshot()  # the schema only: nothing synced yet
        save_sync(warehouse, "act_1", 0)
        first = reader.fetch_published_snapshot()
        page_run = reader.cursor(first)
        seen = fetch_state(page_run)
        save_sync(warehouse, "act_2", 0)
        assert fetch_state(page_run) == seen, "a page run never sees a sync committed meanwhile"
        assert fetch_state(reader.cursor(first)) == seen
        newer = reader.fetch_published_snapshot()
        assert newer > first
        assert fetch_state(reader.cursor(newer)) == fetch_state(warehouse.con) != seen
        with pytest.raises(duckdb.Error):
            page_run.execute("DELETE FROM sync_runs")
    finally:
        reader.close()
        warehouse.close()


def test_a_commit_that_conflicts_is_replayed_under_the_lock(
    lake_settings: Settings, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lake_warehouse, "SPILL_ROWS", 10)  # the replayed batches come back from local Parquet
    one, two, expected = LakeWarehouse(lake_settings), LakeWarehouse(lake_settings), Warehouse(settings.db_path)
    try:
        for n in range(2):
            for account in ("act_1", "act_2"):
                save_sync(expected, account, n)
        save_sync(one, "act_1", 0)
        save_sync(two, "act_2", 0)
        # act_2's sync 1 updates and deletes rows of the tables act_1's sync 1 is writing, and commits first
        save_sync(one, "act_1", 1, meanwhile=lambda: save_sync(two, "act_2", 1))
        assert (one.replays, two.replays) == (1, 0)
        assert fetch_state(one.con) == fetch_state(expected.con)
        assert not list(one.temp_dir.glob("journal-*")), "the spilled batches are deleted after the commit"
    finally:
        one.close()
        two.close()
        expected.close()


def test_a_replayed_write_that_makes_another_runs_in_the_replay(
    lake_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """upsert_entities writes the account too: replayed, that inner write joins the replay's transaction
    (committing it on its own waited for the commit lock the replay held, until the lock timed out)."""
    monkeypatch.setattr(lake_warehouse, "LOCK_WAIT", "5s")
    source = StubSource.from_settings(lake_settings)
    tree = source.fetch_entities(source.account)
    one, two = LakeWarehouse(lake_settings), LakeWarehouse(lake_settings)
    try:
        save_sync(two, "act_2", 0)
        with one.transaction():
            one.upsert_entities(tree, FIXED_NOW)
            save_sync(two, "act_2", 1)  # updates ad_accounts, which the open transaction writes too
        assert one.replays == 1
        counts = one.con.execute("SELECT (SELECT count(*) FROM ad_accounts), (SELECT count(*) FROM ads)").fetchone()
        assert counts == (2, len(tree.ads))
    finally:
        one.close()
        two.close()


@dataclass
class _Writers:
    """Spawned writer processes, one per list of accounts (`lake_writes.write_accounts`)."""

    processes: list[BaseProcess]
    results: Any  # the queue each writer puts its replayed commits on
    start: Any  # the barrier they pass together: the parent keeps it alive until they have it

    def failed(self) -> bool:
        return any(process.exitcode not in (None, 0) for process in self.processes)

    def join(self, timeout: float = 180) -> list[int]:
        """Each writer's replayed commits, once all of them exited cleanly."""
        replays: list[int] = []
        deadline = time.monotonic() + timeout
        while len(replays) < len(self.processes) and not self.failed() and time.monotonic() < deadline:
            with suppress(queue.Empty):
                replays.append(self.results.get(timeout=0.5))
        for process in self.processes:
            process.join(timeout=30)
        assert [process.exitcode for process in self.processes] == [0] * len(self.processes)
        return replays


def _start_writers(
    lake_settings: Settings, accounts: list[list[str]], syncs: int, monkeypatch: pytest.MonkeyPatch
) -> _Writers:
    """Start a writer process per list of accounts; they sync from the moment the last one is ready."""
    # a spawned child re-imports the parent's __main__; after an AppTest run in this process that is the
    # test script AppTest wrote (it fails outside AppTest), so the children get an empty one instead
    monkeypatch.setitem(sys.modules, "__main__", types.ModuleType("__main__"))
    context = multiprocessing.get_context("spawn")
    start, results = context.Barrier(len(accounts)), context.Queue()
    processes = [
        context.Process(target=writer_process, args=(lake_settings, mine, syncs, start, results)) for mine in accounts
    ]
    for process in processes:
        process.start()
    return _Writers(processes, results, start)


def _one_writer_states(settings: Settings, accounts: list[list[str]], syncs: int) -> list[dict[str, list[tuple]]]:
    """What the writers' syncs leave when one process runs them one after the other (the embedded
    store): the state after each round of syncs, the last one what they all leave."""
    one_writer = Warehouse(settings.db_path)
    states = []
    try:
        for n in range(syncs):
            for mine in accounts:
                for account in mine:
                    save_sync(one_writer, account, n)
            states.append(fetch_state(one_writer.con))
        return states
    finally:
        one_writer.close()


def _fetch_lake_state(lake_settings: Settings) -> dict[str, list[tuple]]:
    """The lake's head as `fetch_state` reads it, after checking no insight key is stored twice."""
    lake = LakeWarehouse(lake_settings)
    try:
        found = fetch_state(lake.con)
    finally:
        lake.close()
    assert len({r[:4] for r in found["meta_ad_insights"]}) == len(found["meta_ad_insights"]), "no key twice"
    return found


def test_concurrent_writers_leave_exactly_the_rows_one_writer_would(
    lake_settings: Settings, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    writers, syncs = 3, 3
    accounts = [[f"act_{w}"] for w in range(writers)]
    replays = _start_writers(lake_settings, accounts, syncs, monkeypatch).join()
    print(f"{writers} writers x {syncs} syncs: {sum(replays)} of {writers * syncs} commits replayed after a conflict")
    assert _fetch_lake_state(lake_settings) == _one_writer_states(settings, accounts, syncs)[-1]


def _by_account(state: dict[str, list[tuple]]) -> dict[str, dict[str, list[tuple]]]:
    """`fetch_state`'s rows per account (a run by its sync id, `<account>-sync-<n>`)."""
    found: dict[str, dict[str, list[tuple]]] = {}
    for table, rows in state.items():
        for row in rows:
            account = row[0].rsplit("-sync-", 1)[0] if table == "sync_runs" else row[0]
            found.setdefault(account, {name: [] for name in state})[table].append(row)
    return found


def test_a_pinned_reader_sees_each_of_20_concurrent_syncs_whole_or_not_at_all(
    lake_settings: Settings, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """20 writer processes sync an account each at once, twice (the second sync restates, updates and
    deletes rows, so commits conflict and are replayed). Meanwhile a reader pins every snapshot it finds,
    as a page run does, and checks each account in it holds exactly one whole sync's rows in every table,
    and that no pinned snapshot changes while newer ones commit."""
    writers, syncs = 20, 2
    accounts = [[f"act_{w:02}"] for w in range(writers)]
    started = _start_writers(lake_settings, accounts, syncs, monkeypatch)
    rounds = _one_writer_states(settings, accounts, syncs)  # while the writers start
    after = [_by_account(state) for state in rounds]  # after[n][account]: that account's rows after its sync n
    reader = LakeReader(lake_settings, keep=4 * writers * syncs)  # every pinned snapshot stays attached
    pinned: dict[int, tuple[duckdb.DuckDBPyConnection, dict[str, list[tuple]], int]] = {}
    try:
        deadline = time.monotonic() + 180
        state: dict[str, list[tuple]] = {}
        while state != rounds[-1] and time.monotonic() < deadline and not started.failed():
            try:
                snapshot = reader.fetch_published_snapshot()
            except SnapshotUnavailableError:
                snapshot = None  # no sync committed yet
            if snapshot is None or snapshot in pinned:
                time.sleep(0.02)
                continue
            page_run = reader.cursor(snapshot)
            state = fetch_state(page_run)
            landed = 0
            for account, rows in _by_account(state).items():
                whole = [n for n in range(syncs) if rows == after[n][account]]
                assert whole, f"snapshot {snapshot} holds part of a sync of {account}"
                landed += whole[0] + 1
            pinned[snapshot] = (page_run, state, landed)
            for older, seen, _ in list(pinned.values())[-4:-1]:
                assert fetch_state(older) == seen, "a pinned snapshot changed while syncs committed"
        replays = started.join()
        for page_run, seen, _ in pinned.values():
            assert fetch_state(page_run) == seen, "a pinned snapshot changed while syncs committed"
    finally:
        reader.close()
    landed_by_snapshot = [landed for _, _, landed in pinned.values()]
    print(f"syncs landed in each pinned snapshot: {landed_by_snapshot}; {sum(replays)} commits replayed")
    assert sum(replays) > 0, "the syncs ran concurrently: a commit found another's committed meanwhile"
    assert any(0 < n < writers * syncs for n in landed_by_snapshot), "snapshots pinned while syncs were landing"
    assert _fetch_lake_state(lake_settings) == rounds[-1]


def test_copy_moves_an_embedded_store_into_the_lake_and_the_check_agrees(
    settings: Settings, lake_settings: Settings
) -> None:
    embedded = Warehouse(settings.db_path)
    for n in range(2):
        save_sync(embedded, "act_1", n)
    expected = fetch_state(embedded.con)
    embedded.close()
    combined = lake_settings.model_copy(update={"data_dir": settings.data_dir})

    checks = copy_to_lake(combined)
    assert {c.table for c in checks} >= {"meta_ad_insights", "sync_runs", "synced_days", "ad_accounts"}
    assert all(c.matches for c in checks)
    by_table = {c.table: c for c in checks}
    assert by_table["meta_ad_insights"].lake_rows == len(expected["meta_ad_insights"]) > 0
    lake = LakeWarehouse(combined)
    try:
        assert fetch_state(lake.con) == expected
        snapshot = lake.publish(Path(), Path())

        with pytest.raises(LakeNotEmptyError, match="--replace"):
            copy_to_lake(combined)
        assert lake.publish(Path(), Path()) == snapshot, "a refused copy commits nothing"

        assert all(c.matches for c in copy_to_lake(combined, replace=True))
        assert fetch_state(lake.con) == expected
    finally:
        lake.close()


def test_pages_and_api_read_the_newest_lake_snapshot_pinned(lake_settings: Settings) -> None:
    from insights_core.api.reads import SnapshotReader
    from insights_core.dashboard import data

    api = SnapshotReader(lake_settings.current_snapshot_link, LakeReader(lake_settings))
    with pytest.raises(SnapshotUnavailableError):
        data.current_snapshot(lake_settings)
    with pytest.raises(SnapshotUnavailableError):
        api.current_key()
    warehouse = LakeWarehouse(lake_settings)
    try:
        save_sync(warehouse, "act_1", 0)
        first = data.current_snapshot(lake_settings)
        assert first.stamp == warehouse.publish(Path(), Path()) == api.current_key()[1]
        with data.snapshot_cursor(first) as cur:
            seen = fetch_state(cur)
        save_sync(warehouse, "act_2", 0)
        second = data.current_snapshot(lake_settings)
        assert second.stamp > first.stamp, "a new page run keys its caches on the new snapshot"
        with data.snapshot_cursor(first) as cur:
            assert fetch_state(cur) == seen
        with data.snapshot_cursor(second) as cur, api.cursor() as api_cur:
            assert fetch_state(cur) == fetch_state(api_cur) == fetch_state(warehouse.con) != seen
    finally:
        warehouse.close()
        api.lake.close()  # type: ignore[union-attr]


def test_a_commit_lock_held_too_long_fails_the_commit_and_stores_nothing(
    lake_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import psycopg

    warehouse = LakeWarehouse(lake_settings)
    monkeypatch.setattr(lake_warehouse, "LOCK_WAIT", "200ms")
    try:
        with psycopg.connect(lake_settings.catalog_url.get_secret_value(), autocommit=True) as other:
            other.execute("SELECT pg_advisory_lock(%s)", [lake_warehouse.COMMIT_LOCK_KEY])
            with pytest.raises(StoreError, match="commit lock could not be taken"):
                save_sync(warehouse, "act_1", 0)
        assert fetch_state(warehouse.con)["meta_ad_insights"] == []
        save_sync(warehouse, "act_1", 0)  # the lock is free again (released with the other session)
        assert fetch_state(warehouse.con)["sync_runs"] == [("act_1-sync-0", "succeeded", True)]
    finally:
        warehouse.close()
