"""The data directory: checked before anything is written, and kept private.

The warehouse holds spend and revenue, so every file the worker writes there is 0600 and every
directory 0700. The worker also sets umask 077 at start (files DuckDB and SQLite create on their own,
such as WAL files and spill files, follow it); the explicit modes here cover callers without it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from insights_core.errors import DataDirError

PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700
WORKER_ENTRIES = (
    "insights.duckdb",
    "insights.duckdb.wal",
    "snapshots",
    "control.sqlite",
    "control.sqlite-wal",
    "control.sqlite-shm",
    "logs",
    "worker.lock",
    "tmp",
)
"""What the worker writes in the data dir (auth files belong to the dashboard and keep their own modes)."""


def check_data_dir(data_dir: Path) -> None:
    """Raise DataDirError (one line) unless `data_dir` is, or can be created as, a writable directory.

    Reads only: a bad data dir must stop start-up before anything is created.
    """
    path = Path(data_dir)
    if path.exists() and not path.is_dir():
        raise DataDirError(f"INSIGHTS_DATA_DIR {path} is a file, not a directory")
    existing = path
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        raise DataDirError(f"INSIGHTS_DATA_DIR {path} cannot be created: {existing} is a file, not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        where = "" if existing == path else f" ({existing} does not let it create {path.name})"
        raise DataDirError(f"INSIGHTS_DATA_DIR {path} is not writable by this user{where}")


def ensure_private_dir(path: Path) -> Path:
    """Create `path` (and parents) if needed and make it 0700."""
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
    make_private(path)
    return path


def make_private(path: Path) -> None:
    """Take group and other permissions off `path` (0600 file, 0700 directory); a missing path is skipped."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return
    wanted = PRIVATE_DIR_MODE if stat.S_ISDIR(mode) else PRIVATE_FILE_MODE
    if stat.S_IMODE(mode) != wanted:
        try:
            os.chmod(path, wanted)
        except FileNotFoundError:
            return  # removed in between (SQLite drops its -wal when the last connection closes)


def ensure_private_data_dir(data_dir: Path) -> None:
    """Tighten a data dir written by an older version: the dir and every worker file and directory in it."""
    ensure_private_dir(data_dir)
    for name in WORKER_ENTRIES:
        entry = data_dir / name
        if entry.is_symlink():
            continue
        make_private(entry)
        if entry.is_dir():
            for child in entry.iterdir():
                if not child.is_symlink():
                    make_private(child)
