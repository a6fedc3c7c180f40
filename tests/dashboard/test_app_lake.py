"""The pages on the lake (INSIGHTS_STORE=ducklake): the same stub sync, committed to DuckLake by the
worker, read pinned at the newest lake snapshot."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from insights_core.cluster.postgres_server import PostgresServer
from insights_core.settings import Settings
from tests.dashboard.app_harness import PAGE_QUERIES, assert_clean, open_page, use_lake_data_dir
from tests.dashboard_data import build_stub_data_dir
from tests.postgres import clone_lake

pytestmark = pytest.mark.usefixtures("entrypoint_runs_every_time", "app_on_data_dir")
PAGES = [
    ("overview", "pages/overview.py", "Overview"),
    ("campaign", "pages/campaign.py", None),
    ("timeline", "pages/timeline.py", None),
    ("sync", "pages/sync.py", None),
]


@pytest.fixture(scope="module")
def lake_data(
    postgres_server: PostgresServer, lake_template: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    root = tmp_path_factory.mktemp("lake_app")
    (root / "lake").mkdir()
    url = clone_lake(postgres_server, lake_template, root / "lake")
    yield build_stub_data_dir(
        root / "data", days_back=30, store="ducklake", catalog_url=url, lake_data_path=str(root / "lake")
    )


@pytest.fixture
def app_on_data_dir(monkeypatch: pytest.MonkeyPatch, lake_data: Settings) -> Path:
    use_lake_data_dir(monkeypatch, lake_data)
    return lake_data.data_dir


@pytest.mark.parametrize(("key", "path", "title"), PAGES)
def test_pages_render_from_the_lake(key: str, path: str, title: str | None) -> None:
    at = open_page("admin", path, PAGE_QUERIES.get(key))
    assert_clean(at)
    if title:
        assert [t.value for t in at.title] == [title]
        assert any(m.label == "Spend" for m in at.metric)
