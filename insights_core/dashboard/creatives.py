"""An ad's creative on the pages: the image the worker kept, and its text.

Images come only from where the worker kept them, by the name in the snapshot's `meta_ad_creatives`
row: the data dir (`<data dir>/creatives/<file>`) of the embedded store, or on the lake the
`creative_images` table at the page's pinned snapshot (a replica's data dir holds no images). The
dashboard never fetches a URL, so a creative's text or URL — written by whoever can edit the ad —
cannot make a viewer's browser or this server fetch anything. Texts are shown with `literal` (as
typed, never as markup); the link is shown as text, not made clickable.
"""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeGuard

import streamlit as st
from PIL import Image

from insights_core.creatives import CREATIVES_DIR
from insights_core.dashboard import data
from insights_core.dashboard.formatting import literal
from insights_core.store import creatives as store

THUMBNAIL_SIZE = (96, 50)
_IMAGE_FILE = re.compile(r"^[0-9a-f]{64}\.(png|jpg|gif|webp)$")
"""The only names the worker writes; anything else in a row is not opened (no path from a row escapes the folder)."""


def call_to_action_words(value: str | None) -> str | None:
    """Meta's `SHOP_NOW` as a person reads it: "Shop now"."""
    if not value:
        return None
    words = value.replace("_", " ").strip().lower()
    return words[:1].upper() + words[1:] if words else None


def image_path(snapshot: data.Snapshot, image_file: object) -> Path | None:
    """The kept file for a row's `image_file`, if the name is one the worker writes and the file exists.

    Generations live in `<data dir>/snapshots`, so the snapshot's own data dir holds its images.
    """
    if not _is_image_file(image_file):
        return None
    path = Path(snapshot.path).parent.parent / CREATIVES_DIR / image_file
    return path if path.is_file() else None


@st.cache_data(max_entries=data.CACHE_ENTRIES, show_spinner=False)
def load_ad_creative(snapshot: data.Snapshot, ad_id: str) -> dict[str, Any] | None:
    with data.snapshot_cursor(snapshot) as cur:
        return store.fetch_ad_creative(cur, ad_id)


@st.cache_data(max_entries=data.CACHE_ENTRIES, show_spinner=False)
def load_ad_image_files(snapshot: data.Snapshot, ad_ids: tuple[str, ...]) -> dict[str, str]:
    with data.snapshot_cursor(snapshot) as cur:
        return store.fetch_ad_image_files(cur, ad_ids)


def kept_image(snapshot: data.Snapshot, image_file: object) -> bytes | None:
    """The kept bytes of a row's `image_file` (None when the name is not one the worker writes, or no image
    is kept under it): the data dir's file, or on the lake the snapshot's `creative_images` row."""
    if not _is_image_file(image_file):
        return None
    if data.is_lake_snapshot(snapshot):
        try:
            return _read_lake_image(image_file, snapshot)
        except LookupError:
            return None
    path = image_path(snapshot, image_file)
    return _read_image(str(path)) if path is not None else None


def _is_image_file(image_file: object) -> TypeGuard[str]:
    return isinstance(image_file, str) and bool(_IMAGE_FILE.match(image_file))


@st.cache_data(max_entries=256, show_spinner=False)
def _read_image(path: str) -> bytes:
    return Path(path).read_bytes()  # content-addressed: a name never changes content, so caching by path is safe


@st.cache_data(max_entries=256, show_spinner=False)
def _read_lake_image(image_file: str, _snapshot: data.Snapshot) -> bytes:
    """Keyed on the name alone (its content's hash), so every snapshot shares one entry."""
    return _fetch_lake_image(_snapshot, image_file)


def _fetch_lake_image(snapshot: data.Snapshot, image_file: str) -> bytes:
    """The image's bytes at the snapshot; LookupError (which st.cache_data does not cache) when it has none."""
    with data.snapshot_cursor(snapshot) as cur:
        content = store.fetch_creative_image(cur, image_file)
    if content is None:
        raise LookupError(image_file)
    return content


@st.cache_data(max_entries=5000, show_spinner=False)
def _thumbnail_uri(path: str) -> str:
    """A small PNG of the kept image as a data URI (what st.column_config.ImageColumn shows inline)."""
    return _thumbnail_of(path)


@st.cache_data(max_entries=5000, show_spinner=False)
def _lake_thumbnail_uri(image_file: str, _snapshot: data.Snapshot) -> str:
    """As `_thumbnail_uri`, keyed on the name; the full image is not cached (a list shows thousands)."""
    return _thumbnail_of(io.BytesIO(_fetch_lake_image(_snapshot, image_file)))


def _thumbnail_of(source: str | io.BytesIO) -> str:
    try:
        with Image.open(source) as image:
            image.thumbnail(THUMBNAIL_SIZE)
            small = image if image.mode in ("RGB", "RGBA", "P", "L", "LA") else image.convert("RGB")
            out = io.BytesIO()
            small.save(out, "PNG")
    except (OSError, ValueError):
        return ""
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode("ascii")


def thumbnails_for_ads(snapshot: data.Snapshot, ad_ids: Iterable[str]) -> dict[str, str]:
    """ad id -> a thumbnail data URI of its creative's kept image, or "" when none is kept (every id is a key)."""
    ids = tuple(dict.fromkeys(str(i) for i in ad_ids))
    files = load_ad_image_files(snapshot, ids)
    lake = data.is_lake_snapshot(snapshot)
    out = {}
    for ad_id in ids:
        image_file = files.get(ad_id)
        if lake and _is_image_file(image_file):
            try:
                out[ad_id] = _lake_thumbnail_uri(image_file, snapshot)
            except LookupError:
                out[ad_id] = ""
            continue
        path = image_path(snapshot, image_file)
        out[ad_id] = _thumbnail_uri(str(path)) if path else ""
    return out


def show_ad_creative(snapshot: data.Snapshot, ad_id: str) -> None:
    """The Ad page's creative section: image, title, body, call to action and link."""
    st.subheader("Creative")
    creative = load_ad_creative(snapshot, ad_id)
    if creative is None:
        st.caption("No creative is stored for this ad yet: the worker keeps it at its next sync.")
        return
    picture, words = st.columns([2, 3])
    with picture:
        image = kept_image(snapshot, creative.get("image_file"))
        if image is not None:
            st.image(image, width="stretch")
        else:
            st.caption("No image kept for this creative (see the warnings of the last sync).")
    with words:
        if creative.get("title"):
            st.markdown(f"**{literal(creative['title'])}**")
        if creative.get("body"):
            st.markdown(literal(creative["body"]))
        cta = call_to_action_words(creative.get("call_to_action"))
        st.caption(f"Call to action: {literal(cta) if cta else '—'}")
        if creative.get("link_url"):
            st.caption(f"Link: {literal(creative['link_url'])}")
        st.caption(f"Creative id {literal(creative['creative_id'])}")
