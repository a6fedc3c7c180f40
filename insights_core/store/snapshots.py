"""Immutable snapshot generations of the warehouse, and the `current.duckdb` pointer readers follow.

DuckDB lets one process write a file or many read it, never both, so readers never open the
worker's file. After each sync the worker copies its (checkpointed, closed) file to a new
generation, fsyncs it, and swaps the `current.duckdb` symlink with `os.replace` — atomic on POSIX,
so a reader resolves either the old generation or the new one, never a half-written file.
A reader keys its connection on the resolved path: DuckDB caches database instances by path.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from pathlib import Path

import duckdb

from insights_core.datadir import PRIVATE_FILE_MODE, ensure_private_dir
from insights_core.errors import SnapshotUnavailableError

log = logging.getLogger("meta_insights.snapshots")

_GENERATION = re.compile(r"^insights-(\d{6,})\.duckdb$")
KEEP_GENERATIONS = 2
"""The new generation and the one before it: a reader that resolved the link just before the swap
can still open its file. Readers already holding an older one keep reading it (unlinked inode)."""


def list_generations(snapshot_dir: Path) -> list[tuple[int, Path]]:
    if not snapshot_dir.is_dir():
        return []
    found = []
    for entry in snapshot_dir.iterdir():
        match = _GENERATION.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry))
    return sorted(found)


def publish_snapshot(db_path: Path, snapshot_dir: Path, link: Path) -> Path:
    """Copy the closed, checkpointed warehouse file to a new generation and point `link` at it.

    The caller must have closed its connection to `db_path` (so the file holds every committed
    transaction and no write is in flight). Returns the new generation's path. On any error (a full
    disk, a permission) the partial copy is removed and `link` keeps its target, so a failed publish
    leaves nothing behind to keep the disk full. Generation files are 0600: they hold spend and revenue.
    """
    ensure_private_dir(snapshot_dir)
    _remove_partials(snapshot_dir)
    generations = list_generations(snapshot_dir)
    number = (generations[-1][0] + 1) if generations else 1
    final = snapshot_dir / f"insights-{number:06d}.duckdb"
    partial = snapshot_dir / f".partial-{final.name}"
    try:
        shutil.copyfile(db_path, partial)
        os.chmod(partial, PRIVATE_FILE_MODE)
        _fsync(partial)
        os.replace(partial, final)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    try:
        swap_link(link, final)
    except BaseException:
        if os.path.realpath(link) != os.path.realpath(final):
            final.unlink(missing_ok=True)  # never linked: nobody can have opened it
        raise
    _fsync(snapshot_dir)
    try:
        prune_generations(snapshot_dir, keep=KEEP_GENERATIONS)
    except OSError as exc:  # the new generation is published; old ones go at the next publish
        log.warning("could not delete old snapshot generations: %s", exc)
    return final


def swap_link(link: Path, target: Path) -> None:
    """Atomically make `link` a relative symlink to `target`."""
    staging = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    if staging.is_symlink() or staging.exists():
        staging.unlink()
    try:
        os.symlink(os.path.relpath(target, link.parent), staging)
        os.replace(staging, link)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise
    _fsync(link.parent)


def prune_generations(snapshot_dir: Path, keep: int) -> None:
    """Delete all but the newest `keep` generations and any partial copy a crash left behind."""
    for _, path in list_generations(snapshot_dir)[:-keep]:
        path.unlink(missing_ok=True)
    _remove_partials(snapshot_dir)


def _remove_partials(snapshot_dir: Path) -> None:
    """Partial copies of a publish that crashed or failed (they would keep a full disk full)."""
    for leftover in snapshot_dir.glob(".partial-*"):
        leftover.unlink(missing_ok=True)


def resolve_current_snapshot(link: Path) -> Path:
    """The generation file `link` points at now; raise SnapshotUnavailableError before the first publish."""
    if not link.is_symlink() and not link.exists():
        raise SnapshotUnavailableError()
    target = link.resolve()
    if not target.exists():
        raise SnapshotUnavailableError(
            f"the published snapshot {target.name} is missing; the worker will publish a new one"
        )
    return target


def connect_snapshot(path: Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection to one generation file (never the worker's own file)."""
    return duckdb.connect(str(path), read_only=True)


def _fsync(path: Path) -> None:
    """Flush a file's data, or a directory's entries (a rename or new link), to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
