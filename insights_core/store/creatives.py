"""The `meta_ad_creatives` table (and, on the lake, `creative_images`, the kept images' bytes): writes
from the sync (the worker's connection) and reads for the pages (a snapshot cursor). The ad -> creative
link is `ads.creative_id`.

Callers pass a DuckDB connection or cursor: `Warehouse.con` inside the sync's transaction, or a
snapshot cursor. Values are always bound parameters or registered frames.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

Con = duckdb.DuckDBPyConnection

CREATIVE_COLUMNS = (
    "creative_id",
    "account_id",
    "title",
    "body",
    "call_to_action",
    "link_url",
    "image_url",
    "image_file",
    "image_sha256",
    "image_fetched_at",
)
"""What a sync writes per creative; `created_at` and `updated_at` are the store's own."""
_VALUE_COLUMNS = CREATIVE_COLUMNS[1:]
_TEXT_COLUMNS = CREATIVE_COLUMNS[:-1]
_MERGE = f"""
    MERGE INTO meta_ad_creatives AS m USING staged_creatives AS s ON (m.creative_id = s.creative_id)
    WHEN MATCHED AND ({" OR ".join(f"m.{c} IS DISTINCT FROM s.{c}" for c in _VALUE_COLUMNS)})
        THEN UPDATE SET {", ".join(f"{c} = s.{c}" for c in _VALUE_COLUMNS)}, updated_at = $now
    WHEN NOT MATCHED THEN INSERT ({", ".join(CREATIVE_COLUMNS)}, created_at, updated_at)
        VALUES ({", ".join(f"s.{c}" for c in CREATIVE_COLUMNS)}, $now, $now)
"""
_TYPED = ", ".join(
    [f"CAST({c} AS VARCHAR) AS {c}" for c in _TEXT_COLUMNS]
    + ["CAST(image_fetched_at AS TIMESTAMP) AS image_fetched_at"]
)


@dataclass(frozen=True)
class StoredCreative:
    """A stored row, as the sync needs it to decide what to read and download again."""

    creative_id: str
    account_id: str
    title: str | None
    body: str | None
    call_to_action: str | None
    link_url: str | None
    image_url: str | None
    image_file: str | None
    image_sha256: str | None
    image_fetched_at: dt.datetime | None


def fetch_stored_creatives(con: Con, creative_ids: Iterable[str]) -> dict[str, StoredCreative]:
    """The stored rows of these creatives (those not stored are left out)."""
    ids = pd.DataFrame({"creative_id": pd.Series(sorted(set(creative_ids)), dtype="object")})
    if ids.empty:
        return {}
    con.register("wanted_creatives", ids)
    try:
        rows = con.execute(
            f"SELECT {', '.join(CREATIVE_COLUMNS)} FROM meta_ad_creatives"
            " WHERE creative_id IN (SELECT creative_id FROM wanted_creatives)"
        ).fetchall()
    finally:
        con.unregister("wanted_creatives")
    return {row[0]: StoredCreative(*row) for row in rows}


def upsert_creatives(con: Con, rows: Sequence[StoredCreative], now: dt.datetime) -> tuple[int, int]:
    """Insert new creatives and update changed ones; return (inserted, updated).

    A row whose values all equal the stored ones is not rewritten (its `updated_at` stays), as
    with insights: most creatives are read again unchanged.
    """
    if not rows:
        return 0, 0
    frame = pd.DataFrame([[getattr(r, c) for c in CREATIVE_COLUMNS] for r in rows], columns=list(CREATIVE_COLUMNS))
    frame = frame.astype(dict.fromkeys(_TEXT_COLUMNS, "object"))
    frame["image_fetched_at"] = pd.to_datetime(frame["image_fetched_at"], utc=True).dt.tz_localize(None)
    con.register("creative_rows", frame)
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE staged_creatives AS SELECT {_TYPED} FROM creative_rows")
    finally:
        con.unregister("creative_rows")
    try:
        before = _count(con, "SELECT count(*) FROM meta_ad_creatives")
        affected = _count(con.execute(_MERGE, {"now": _naive(now)}))
        inserted = _count(con, "SELECT count(*) FROM meta_ad_creatives") - before
    finally:
        con.execute("DROP TABLE IF EXISTS staged_creatives")
    return inserted, affected - inserted


def fetch_image_files(con: Con) -> set[str]:
    """Every image file a stored creative refers to (what the data dir's creatives folder must keep)."""
    rows = con.execute("SELECT DISTINCT image_file FROM meta_ad_creatives WHERE image_file IS NOT NULL").fetchall()
    return {row[0] for row in rows}


def fetch_stored_image_files(con: Con, image_files: Iterable[str]) -> set[str]:
    """Which of these images `creative_images` holds (the lake's images; the embedded store's are files)."""
    names = pd.DataFrame({"image_file": pd.Series(sorted(set(image_files)), dtype="object")})
    if names.empty:
        return set()
    con.register("wanted_images", names)
    try:
        rows = con.execute(
            "SELECT DISTINCT image_file FROM creative_images WHERE image_file IN (SELECT image_file FROM wanted_images)"
        ).fetchall()
    finally:
        con.unregister("wanted_images")
    return {row[0] for row in rows}


def save_creative_images(con: Con, images: pd.DataFrame, now: dt.datetime) -> int:
    """Insert the images (`image_file`, `content`) not stored yet; return how many rows were inserted.

    A stored image is never rewritten: its name is the hash of its content, so the row is already right.
    """
    if images.empty:
        return 0
    staged = pa.table(
        {
            "image_file": pa.array(images["image_file"].tolist(), pa.string()),
            "content": pa.array(images["content"].tolist(), pa.binary()),
        }
    )
    con.register("staged_images", staged)
    try:
        return _count(
            con.execute(
                "INSERT INTO creative_images (image_file, content, kept_at)"
                " SELECT image_file, any_value(content), CAST($now AS TIMESTAMP) FROM staged_images"
                " WHERE image_file NOT IN (SELECT image_file FROM creative_images) GROUP BY image_file",
                {"now": _naive(now)},
            )
        )
    finally:
        con.unregister("staged_images")


_SURPLUS = """
    FROM creative_images
    WHERE image_file NOT IN (SELECT image_file FROM meta_ad_creatives WHERE image_file IS NOT NULL)
        OR rowid IN (SELECT rowid FROM (
            SELECT rowid, row_number() OVER (PARTITION BY image_file ORDER BY rowid) AS copy FROM creative_images
        ) WHERE copy > 1)
"""
"""Images no stored creative refers to, and every copy but the first of an image stored twice: two lake
workers keeping the same new image at once both insert it (DuckLake's appends never conflict)."""


def count_surplus_images(con: Con) -> int:
    """Rows of `creative_images` `delete_surplus_images` would delete (a read: whether a delete is due)."""
    return _count(con, "SELECT count(*)" + _SURPLUS)


def delete_surplus_images(con: Con) -> int:
    """Delete the rows of `creative_images` no stored creative refers to, and extra copies; return how many."""
    return _count(con.execute("DELETE" + _SURPLUS))


def fetch_creative_image(con: Con, image_file: str) -> bytes | None:
    """The stored bytes of one image (None when the snapshot holds no such image, or predates the table)."""
    if not _has_table(con, "creative_images"):
        return None
    row = con.execute("SELECT content FROM creative_images WHERE image_file = ? LIMIT 1", [image_file]).fetchone()
    return bytes(row[0]) if row else None


def has_creatives_table(con: Con) -> bool:
    """False for a snapshot published before migration 5 (the pages show no creative then)."""
    row = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'meta_ad_creatives'"
    ).fetchone()
    return bool(row and row[0])


def fetch_ad_creative(con: Con, ad_id: str) -> dict[str, Any] | None:
    """The creative of one ad (None when the ad has none stored, or the snapshot predates creatives)."""
    if not has_creatives_table(con):
        return None
    cursor = con.execute(
        f"SELECT {', '.join(f'c.{c}' for c in CREATIVE_COLUMNS)} FROM ads AS a"
        " JOIN meta_ad_creatives AS c ON c.creative_id = a.creative_id WHERE a.ad_id = ?",
        [ad_id],
    )
    row = cursor.fetchone()
    return dict(zip(CREATIVE_COLUMNS, row)) if row else None


def fetch_ad_image_files(con: Con, ad_ids: Iterable[str]) -> dict[str, str]:
    """ad id -> kept image file name, for the ads that have one."""
    ids = pd.DataFrame({"ad_id": pd.Series(sorted({str(i) for i in ad_ids}), dtype="object")})
    if ids.empty or not has_creatives_table(con):
        return {}
    con.register("wanted_ads", ids)
    try:
        rows = con.execute(
            "SELECT a.ad_id, c.image_file FROM ads AS a JOIN meta_ad_creatives AS c ON c.creative_id = a.creative_id"
            " WHERE c.image_file IS NOT NULL AND a.ad_id IN (SELECT ad_id FROM wanted_ads)"
        ).fetchall()
    finally:
        con.unregister("wanted_ads")
    return {row[0]: row[1] for row in rows}


def _has_table(con: Con, table: str) -> bool:
    """Whether the connection's current catalog has `table` (a lake reader attaches several catalogs)."""
    row = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = ? AND table_catalog = current_database()",
        [table],
    ).fetchone()
    return bool(row and row[0])


def _count(con: Con, sql: str | None = None) -> int:
    row = (con.execute(sql) if sql else con).fetchone()
    return int(row[0]) if row else 0


def _naive(moment: dt.datetime) -> dt.datetime:
    """DuckDB TIMESTAMP columns hold UTC without a zone."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(dt.timezone.utc).replace(tzinfo=None)
