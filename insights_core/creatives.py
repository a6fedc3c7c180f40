"""Each ad's creative, kept at sync time: text in `meta_ad_creatives`, the image where every reader finds it.

Meta's image URLs expire within days, so the worker keeps the image itself, named `<sha256>.<ext>`
(the row's `image_file`). Where it is kept depends on the store, behind `ImageKeeper`:

- embedded (`FileImages`): a file under `<data dir>/creatives/`, written atomically (temp file +
  rename, 0600). The same image is one file however many creatives or syncs show it, and an
  unchanged image is never rewritten. Rows are written inside the sync's transaction; a rolled-back
  sync can leave a file no row refers to, which is harmless (the name is its content, so a later
  sync reuses it) and is deleted by the next sync once it is an hour old
  (`delete_unreferenced_images`; the hour spares files an older published snapshot may still show).
- lake (`LakeImages`): each worker and dashboard replica has its own data dir, possibly on another
  machine, so the bytes go into the lake's `creative_images` table, in the sync's commit (through the
  warehouse, so a replayed commit writes them again). A rolled-back sync leaves nothing; a page reads
  an image at the snapshot it pins, where the rows naming it are. An image already stored is not
  written again. Unreferenced rows are deleted by the next sync with no wait: older snapshots still
  show them until the lake's maintenance expires those snapshots and rewrites the files. Two workers
  keeping one new image at once store it twice (appends never conflict); the next sync deletes the copy.

Which creatives a sync reads: those of the scope's ads not stored yet, or whose image is not kept
(never downloaded, or its file is gone); a forced sync reads them all. An ad edited in Ads Manager
gets a new creative id, so a stored creative does not need reading again on every sync. An image
is downloaded when its URL is new or changed, or none is kept; when that fails the row keeps its
earlier image and the report carries a warning — a creative never fails the sync.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import logging
import os
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import pandas as pd
import requests
from PIL import Image

from insights_core.datadir import PRIVATE_FILE_MODE, ensure_private_dir
from insights_core.errors import EntityError
from insights_core.logs import redact
from insights_core.models import Creative, EntityTree, Scope, SyncReport
from insights_core.settings import Settings
from insights_core.sources import InsightsSource
from insights_core.store import creatives as store
from insights_core.store.creatives import StoredCreative, fetch_image_files, fetch_stored_creatives
from insights_core.store.warehouse import Warehouse

log = logging.getLogger("meta_insights.creatives")

CREATIVES_DIR = "creatives"
MAX_IMAGE_BYTES = 5 * 1024 * 1024
MAX_IMAGE_PIXELS = 40_000_000
"""Refused above this many pixels: a small file can decode into gigabytes (a decompression bomb)."""
IMAGE_FORMATS = {"PNG": "png", "JPEG": "jpg", "GIF": "gif", "WEBP": "webp"}
"""Formats kept (what Pillow detects -> file extension): the ones every browser shows."""
MAX_DOWNLOADS_PER_SYNC = 300
DOWNLOAD_BUDGET_SECONDS = 120.0
"""Downloads stop when a sync has spent this long on them; the rest are tried by the next sync."""
DOWNLOAD_TIMEOUT = (5.0, 15.0)
"""(connect, read) seconds per image request."""
UNREFERENCED_MIN_AGE_SECONDS = 3600
LAKE_IMAGE_BYTES_PER_SYNC = 128 * 1024 * 1024
"""New image bytes one lake sync stores at most (the rest wait for the next sync): the lake holds them
in memory until the commit, twice over (the write journal and the open transaction)."""
MAX_WARNINGS_LISTED = 50
"""The report lists this many creative warnings one by one and sums up the rest in one line."""
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class KeptImage:
    file_name: str
    sha256: str
    written: bool
    """False when the file was already there (same content): nothing was rewritten."""


class ImagesPostponed(Exception):
    """This sync has stored all the image bytes it may; the image is kept by a later sync."""


def creatives_dir(data_dir: Path) -> Path:
    return Path(data_dir) / CREATIVES_DIR


class ImageKeeper(Protocol):
    """Where a sync keeps images: the one place that differs between the embedded store and the lake."""

    @property
    def limit_note(self) -> str:
        """What the postponed-images warning adds about this keeper's own limit ("" when it has none)."""
        ...

    def fetch_kept(self, image_files: Iterable[str]) -> set[str]:
        """Which of these images are kept (a creative whose image is not gets read again)."""
        ...

    def keep_image(self, data: bytes) -> KeptImage:
        """Check `data` and keep it (EntityError says why not; ImagesPostponed: a later sync keeps it)."""
        ...

    def save_kept_images(self, now: dt.datetime) -> int:
        """Write what `keep_image` has not written yet (before the rows naming it); return how many."""
        ...

    def delete_surplus(self) -> int:
        """Delete the images no stored creative refers to (those safe to delete now); return how many."""
        ...


@dataclass
class FileImages:
    """The embedded store's images: files in the data dir, written as they are kept."""

    directory: Path
    warehouse: Warehouse
    limit_note: str = ""

    def fetch_kept(self, image_files: Iterable[str]) -> set[str]:
        return {name for name in image_files if (self.directory / name).is_file()}

    def keep_image(self, data: bytes) -> KeptImage:
        return save_image(self.directory, data)

    def save_kept_images(self, now: dt.datetime) -> int:
        return 0  # every file was written by keep_image

    def delete_surplus(self) -> int:
        return delete_unreferenced_images(self.directory, fetch_image_files(self.warehouse.con))


@dataclass
class LakeImages:
    """The lake's images: rows of `creative_images`, written in the sync's transaction."""

    warehouse: Warehouse
    max_bytes: int = LAKE_IMAGE_BYTES_PER_SYNC
    _stored: set[str] = field(default_factory=set)
    _staged: dict[str, bytes] = field(default_factory=dict)
    _staged_bytes: int = 0

    @property
    def limit_note(self) -> str:
        return f", {self.max_bytes // (1024 * 1024)} MB of new images per sync on the lake"

    def fetch_kept(self, image_files: Iterable[str]) -> set[str]:
        kept = store.fetch_stored_image_files(self.warehouse.con, image_files)
        self._stored |= kept
        return kept

    def keep_image(self, data: bytes) -> KeptImage:
        extension = check_image(data)
        digest = hashlib.sha256(data).hexdigest()
        name = f"{digest}.{extension}"
        if name in self._stored or name in self._staged:
            return KeptImage(name, digest, written=False)
        if self._staged_bytes + len(data) > self.max_bytes:
            raise ImagesPostponed(name)
        self._staged[name] = data
        self._staged_bytes += len(data)
        return KeptImage(name, digest, written=True)

    def save_kept_images(self, now: dt.datetime) -> int:
        if not self._staged:
            return 0
        images = pd.DataFrame({"image_file": list(self._staged), "content": list(self._staged.values())})
        saved = self.warehouse.save_creative_images(images, now)  # through the warehouse: the lake replays it
        self._stored |= set(self._staged)
        self._staged.clear()
        self._staged_bytes = 0
        return saved

    def delete_surplus(self) -> int:
        """Also deletes the extra copy two workers store when they keep one new image at the same time."""
        # a delete is a change other workers' commits may conflict with: only write one when it deletes rows
        if not store.count_surplus_images(self.warehouse.con):
            return 0
        return self.warehouse.delete_surplus_creative_images()


def image_keeper_for(warehouse: Warehouse, settings: Settings) -> ImageKeeper:
    """Where this store's syncs keep images: the lake's table, or the embedded store's data dir."""
    if settings.store == "ducklake":
        return LakeImages(warehouse, LAKE_IMAGE_BYTES_PER_SYNC)
    return FileImages(creatives_dir(settings.data_dir), warehouse)


def check_image(data: bytes) -> str:
    """The file extension for `data` if it is an image the pages can show; EntityError saying why not."""
    if len(data) > MAX_IMAGE_BYTES:
        raise EntityError(f"image larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MB ({len(data):,} bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                kind, (width, height) = image.format, image.size
                image.verify()
    except Exception as exc:  # Pillow raises many types for bytes that are not an image
        raise EntityError(f"not an image Pillow can read ({type(exc).__name__})") from None
    if kind not in IMAGE_FORMATS:
        raise EntityError(f"image format {kind} is not one of {', '.join(IMAGE_FORMATS)}")
    if width * height > MAX_IMAGE_PIXELS:
        raise EntityError(f"image of {width} x {height} pixels is too large")
    return IMAGE_FORMATS[kind]


def save_image(directory: Path, data: bytes) -> KeptImage:
    """Check `data` and keep it as `<sha256>.<ext>` in `directory` (atomic, 0600); never rewrites a kept file."""
    extension = check_image(data)
    digest = hashlib.sha256(data).hexdigest()
    name = f"{digest}.{extension}"
    target = directory / name
    if target.is_file() and target.stat().st_size == len(data):
        return KeptImage(name, digest, written=False)
    ensure_private_dir(directory)
    temp = directory / f".{name}.{os.getpid()}.tmp"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temp, PRIVATE_FILE_MODE)
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return KeptImage(name, digest, written=True)


def fetch_image(session: requests.Session, url: str, deadline: float) -> bytes:
    """Download an image URL (no token is sent: Meta's image URLs are signed on their own).

    EntityError with one line when the URL does not answer, the answer is not an image, or it is
    larger than MAX_IMAGE_BYTES (checked while reading, so a huge answer is never held whole).
    """
    if not url.startswith(("https://", "http://")):
        raise EntityError("image URL is not http(s)")
    try:
        with session.get(url, stream=True, timeout=DOWNLOAD_TIMEOUT, headers={"Accept": "image/*"}) as response:
            if response.status_code != 200:
                raise EntityError(f"image URL answered HTTP {response.status_code}")
            content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if not content_type.startswith("image/"):
                raise EntityError(f"image URL answered {content_type or 'no content type'}, not an image")
            length = response.headers.get("Content-Length", "")
            if length.isdigit() and int(length) > MAX_IMAGE_BYTES:
                raise EntityError(f"image larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MB ({int(length):,} bytes)")
            data = bytearray()
            for chunk in response.iter_content(_CHUNK):
                data += chunk
                if len(data) > MAX_IMAGE_BYTES:
                    raise EntityError(f"image larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MB")
                if time.monotonic() > deadline:
                    raise EntityError("image download ran out of this sync's time for images")
            return bytes(data)
    except requests.RequestException as exc:
        # never str(exc): it holds the URL
        raise EntityError(f"image URL did not answer ({type(exc).__name__})") from None


def delete_unreferenced_images(directory: Path, referenced: set[str], now: float | None = None) -> int:
    """Delete image files (and leftover temp files) no stored creative refers to, once an hour old."""
    if not directory.is_dir():
        return 0
    now = time.time() if now is None else now
    deleted = 0
    for entry in directory.iterdir():
        if entry.name in referenced or not entry.is_file():
            continue
        try:
            if now - entry.stat().st_mtime >= UNREFERENCED_MIN_AGE_SECONDS:
                entry.unlink()
                deleted += 1
        except FileNotFoundError:
            continue
    return deleted


def creative_ids_in_scope(tree: EntityTree, scope: Scope) -> list[str]:
    """The creative ids of the scope's ads, each once, in ad order."""
    ads = tree.ads
    if not scope.is_full:
        ads = ads[ads["ad_id"].isin(scope.ids("ad"))]
    return list(dict.fromkeys(str(c) for c in ads["creative_id"].dropna()))


def sync_creatives(
    tree: EntityTree,
    scope: Scope,
    source: InsightsSource,
    warehouse: Warehouse,
    settings: Settings,
    now: dt.datetime,
    report: SyncReport,
    check_stop: Callable[[], None] | None = None,
) -> None:
    """Read the scope's creatives that need it, keep their images, and upsert their rows.

    Runs inside the sync's transaction. Problems with one creative become `report.warnings`;
    a fatal source error (bad token) propagates like any other.
    """
    keeper = image_keeper_for(warehouse, settings)
    keeper.delete_surplus()
    wanted = creative_ids_in_scope(tree, scope)
    stored = fetch_stored_creatives(warehouse.con, wanted)
    kept = keeper.fetch_kept(row.image_file for row in stored.values() if row.image_file)
    if not report.force:
        wanted = [c for c in wanted if not _image_kept(stored.get(c), kept)]
    if not wanted:
        return
    account_id = tree.account.account_id
    try:
        creatives = source.fetch_creatives(tree.account, wanted)
    except EntityError as exc:
        report.warnings.append(f"Creatives of {account_id} not read: {exc}")
        return
    notes: list[str] = []
    missing = set(wanted) - {c.creative_id for c in creatives}
    notes += [f"Creative {c}: not returned by the source" for c in sorted(missing)]
    rows = _keep_images(creatives, stored, keeper, kept, now, notes, check_stop)
    keeper.save_kept_images(now)
    warehouse.upsert_creatives(rows, now)  # through the warehouse: the lake replays its writes
    if len(notes) > MAX_WARNINGS_LISTED:
        notes = notes[:MAX_WARNINGS_LISTED] + [f"... and {len(notes) - MAX_WARNINGS_LISTED} more creative warnings"]
    secrets = settings.secret_values()
    report.warnings.extend(redact(note, secrets) for note in notes)


def _keep_images(
    creatives: Iterable[Creative],
    stored: dict[str, StoredCreative],
    keeper: ImageKeeper,
    kept: set[str],
    now: dt.datetime,
    notes: list[str],
    check_stop: Callable[[], None] | None,
) -> list[StoredCreative]:
    """The rows to store, with each creative's image kept where possible (warnings into `notes`)."""
    rows: list[StoredCreative] = []
    deadline = time.monotonic() + DOWNLOAD_BUDGET_SECONDS
    downloads, postponed = 0, 0
    with requests.Session() as session:
        for creative in creatives:
            old = stored.get(creative.creative_id)
            kept_before = _image_kept(old, kept)
            # a row whose image is gone keeps none: it shows none until one is kept again
            image_file, sha256, fetched_at = (
                (old.image_file, old.image_sha256, old.image_fetched_at) if old and kept_before else (None, None, None)
            )
            old_url = old.image_url if old else None
            data: bytes | None = creative.image_bytes
            try:
                if data is None and creative.image_url and (not kept_before or creative.image_url != old_url):
                    if check_stop is not None:
                        check_stop()
                    if downloads >= MAX_DOWNLOADS_PER_SYNC or time.monotonic() > deadline:
                        postponed += 1
                    else:
                        downloads += 1
                        data = fetch_image(session, creative.image_url, deadline)
                if data is not None:
                    image = keeper.keep_image(data)
                    if image.file_name != image_file or not kept_before:
                        image_file, sha256, fetched_at = image.file_name, image.sha256, now
            except ImagesPostponed:
                postponed += 1
            except EntityError as exc:
                earlier = "the earlier image is kept" if kept_before else "no image kept yet"
                notes.append(f"Creative {creative.creative_id}: image not kept: {exc}; {earlier}")
                log.warning("creative %s: image not kept: %s", creative.creative_id, exc)
            rows.append(
                StoredCreative(
                    creative_id=creative.creative_id,
                    account_id=creative.account_id,
                    title=creative.title,
                    body=creative.body,
                    call_to_action=creative.call_to_action,
                    link_url=creative.link_url,
                    image_url=creative.image_url,
                    image_file=image_file,
                    image_sha256=sha256,
                    image_fetched_at=fetched_at,
                )
            )
    if postponed:
        notes.append(
            f"{postponed} creative images left for the next sync (at most {MAX_DOWNLOADS_PER_SYNC} downloads "
            f"and {DOWNLOAD_BUDGET_SECONDS:.0f} s per sync{keeper.limit_note})"
        )
    return rows


def _image_kept(row: StoredCreative | None, kept: set[str]) -> bool:
    return row is not None and row.image_file is not None and row.image_file in kept
