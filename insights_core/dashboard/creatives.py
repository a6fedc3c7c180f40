"""An ad's creative on the pages: the image the worker kept, and its text.

Images come only from the data dir (`<data dir>/creatives/<file>`, the file named in the snapshot's
`meta_ad_creatives` row): the dashboard never fetches a URL, so a creative's text or URL — written
by whoever can edit the ad — cannot make a viewer's browser or this server fetch anything. Texts are
shown with `literal` (as typed, never as markup); the link is shown as text, not made clickable.
"""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

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
    if not isinstance(image_file, str) or not _IMAGE_FILE.match(image_file):
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


@st.cache_data(max_entries=256, show_spinner=False)
def _read_image(path: str) -> bytes:
    return Path(path).read_bytes()  # content-addressed: a name never changes content, so caching by path is safe


@st.cache_data(max_entries=5000, show_spinner=False)
def _thumbnail_uri(path: str) -> str:
    """A small PNG of the kept image as a data URI (what st.column_config.ImageColumn shows inline)."""
    try:
        with Image.open(path) as image:
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
    out = {}
    for ad_id in ids:
        path = image_path(snapshot, files.get(ad_id))
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
        path = image_path(snapshot, creative.get("image_file"))
        if path is not None:
            st.image(_read_image(str(path)), width="stretch")
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
