"""The Ad page shows the ad's creative from the kept file; the ads list's thumbnails come from the same files."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest
from PIL import Image

from insights_core.dashboard.creatives import call_to_action_words, image_path, thumbnails_for_ads
from insights_core.dashboard.data import current_snapshot
from insights_core.sources.stub_creatives import stub_creatives
from insights_core.store.snapshots import connect_snapshot, resolve_current_snapshot
from tests.dashboard.app_harness import AD, assert_clean, open_page, texts
from tests.helpers import make_settings

pytestmark = pytest.mark.usefixtures("entrypoint_runs_every_time", "app_on_data_dir")
STUB_DAYS_BACK = 10
CREATIVE = "120240000000000001"  # ad 1's creative in the stub account


def image_urls(at) -> list[str]:  # type: ignore[no-untyped-def]
    return [url for element in at.get("image") for url in element.value]


def test_the_ad_page_shows_its_creative(data_dir: Path) -> None:
    at = open_page("viewer", "pages/ad.py", {"ad_id": AD})
    assert_clean(at)
    expected = stub_creatives("act_1000000000001", [CREATIVE])[0]
    page_text = texts(at)
    assert "Creative" in [h.value for h in at.subheader]
    assert expected.title and expected.title in page_text.replace("\\", "")
    assert expected.body and expected.body.replace(".", "\\.") in page_text
    assert f"Call to action: {call_to_action_words(expected.call_to_action)}" in page_text
    assert "Link: https" in page_text
    # one image, served by Streamlit from the kept bytes (a media URL), never a remote URL
    urls = image_urls(at)
    assert len(urls) == 1 and urls[0].startswith("/") and "/media/" in urls[0], urls  # AppTest: /mock/media/


def test_the_ad_page_without_a_kept_image_says_so(data_dir: Path) -> None:
    with connect_snapshot(resolve_current_snapshot(data_dir / "current.duckdb")) as con:
        image_file = con.execute(
            "SELECT image_file FROM meta_ad_creatives WHERE creative_id = ?", [CREATIVE]
        ).fetchone()[0]
    kept = data_dir / "creatives" / image_file
    moved = kept.with_name("elsewhere")
    kept.rename(moved)
    try:
        at = open_page("viewer", "pages/ad.py", {"ad_id": AD})
        assert_clean(at)
        assert image_urls(at) == []
        assert "No image kept for this creative" in texts(at)
    finally:
        moved.rename(kept)


def test_thumbnails_are_small_data_uris_for_every_ad_asked(data_dir: Path) -> None:
    snapshot = current_snapshot(make_settings(data_dir))
    thumbs = thumbnails_for_ads(snapshot, [AD, "120230000000000002", "999"])
    assert set(thumbs) == {AD, "120230000000000002", "999"} and thumbs["999"] == ""
    prefix = "data:image/png;base64,"
    assert thumbs[AD].startswith(prefix) and thumbs[AD] != thumbs["120230000000000002"]
    with Image.open(io.BytesIO(base64.b64decode(thumbs[AD][len(prefix) :]))) as image:
        assert image.size[0] <= 96 and image.size[1] <= 50


def test_only_names_the_worker_writes_are_opened(data_dir: Path) -> None:
    snapshot = current_snapshot(make_settings(data_dir))
    assert image_path(snapshot, "../current.duckdb") is None
    assert image_path(snapshot, "/etc/passwd") is None
    assert image_path(snapshot, "0" * 64 + ".png") is None  # a well-formed name, but no such file


def test_call_to_action_words() -> None:
    assert call_to_action_words("SHOP_NOW") == "Shop now"
    assert call_to_action_words("LEARN_MORE") == "Learn more"
    assert call_to_action_words(None) is None and call_to_action_words("") is None
