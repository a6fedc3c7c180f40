"""The Ad page on the lake: a replica whose data dir holds no image (another machine than the worker's)
shows the creative's image from the lake's pinned snapshot."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from insights_core.cluster.postgres_server import PostgresServer
from insights_core.creatives import creatives_dir
from insights_core.settings import Settings
from tests.dashboard.app_harness import AD, assert_clean, open_page, texts, use_lake_data_dir
from tests.dashboard_data import build_stub_data_dir
from tests.postgres import clone_lake

pytestmark = pytest.mark.usefixtures("entrypoint_runs_every_time", "app_on_data_dir")


@pytest.fixture(scope="module")
def lake_data(
    postgres_server: PostgresServer, lake_template: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    root = tmp_path_factory.mktemp("creatives_lake")
    (root / "lake").mkdir()
    url = clone_lake(postgres_server, lake_template, root / "lake")
    yield build_stub_data_dir(
        root / "worker", days_back=5, store="ducklake", catalog_url=url, lake_data_path=str(root / "lake")
    )


@pytest.fixture
def app_on_data_dir(monkeypatch: pytest.MonkeyPatch, lake_data: Settings, tmp_path: Path) -> Path:
    replica = tmp_path / "replica"
    use_lake_data_dir(monkeypatch, lake_data, replica)
    return replica


def test_a_replica_shows_the_image_a_worker_kept_in_the_lake(app_on_data_dir: Path, lake_data: Settings) -> None:
    at = open_page("viewer", "pages/ad.py", {"ad_id": AD})
    assert_clean(at)
    assert "Creative" in [h.value for h in at.subheader]
    urls = [url for element in at.get("image") for url in element.value]
    assert len(urls) == 1 and "/media/" in urls[0], urls
    assert "No image kept for this creative" not in texts(at)
    assert not creatives_dir(app_on_data_dir).exists() and not creatives_dir(lake_data.data_dir).exists()


def test_the_replicas_ads_list_shows_every_ads_thumbnail_from_the_lake() -> None:
    at = open_page("analyst", "pages/ad.py")
    assert_clean(at)
    table = at.dataframe(key="ad_list").value
    assert len(table) == 36 and all(uri.startswith("data:image/png;base64,") for uri in table["Creative"])
