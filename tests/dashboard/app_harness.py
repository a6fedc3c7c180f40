"""Driving app.py headless with streamlit's AppTest (no browser, no network)."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from insights_core.settings import Settings
from tests.helpers import ROOT

APP = str(ROOT / "app.py")
CAMPAIGN, ADSET, AD = "120210000000000001", "120220000000000001", "120230000000000001"
"""Ids in the small stub account (6 x 3 x 2): ad set 1 is in campaign 1, ad 1 in ad set 1."""
PAGE_QUERIES: dict[str, dict[str, str]] = {
    "campaign": {"campaign_id": CAMPAIGN},
    "adset": {"adset_id": ADSET},
    "ad": {"ad_id": AD},
    "timeline": {"entity_type": "ad", "entity_id": AD, "days": "30"},
}


def use_data_dir(monkeypatch: pytest.MonkeyPatch, data_dir: Path, **env: str) -> None:
    monkeypatch.setenv("INSIGHTS_DATA_DIR", str(data_dir))
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def use_lake_data_dir(
    monkeypatch: pytest.MonkeyPatch, lake: Settings, data_dir: Path | None = None, **env: str
) -> None:
    """The app on `lake`'s lake (INSIGHTS_STORE=ducklake), with `data_dir` as its own (a replica's) or lake's."""
    assert lake.catalog_url is not None
    use_data_dir(
        monkeypatch,
        data_dir or lake.data_dir,
        INSIGHTS_STORE="ducklake",
        INSIGHTS_CATALOG_URL=lake.catalog_url.get_secret_value(),
        INSIGHTS_LAKE_DATA_PATH=str(lake.lake_data_path),
        **env,
    )


def new_app(role: str | None = None, timeout: float = 30) -> AppTest:
    """The app, already logged in as the demo user `role` (None: logged out)."""
    at = AppTest.from_file(APP, default_timeout=timeout)
    if role is not None:
        at.session_state["authentication_status"] = True
        at.session_state["username"] = role
    return at


def open_page(role: str, page: str, query: dict[str, str] | None = None) -> AppTest:
    """Log in as `role`, land on the default page, then go to `page` (a file under pages/) with `query`."""
    at = new_app(role)
    at.run()
    at.switch_page(page)
    at.query_params.update(query or {})
    return at.run()


def texts(at: AppTest) -> str:
    """Every markdown, caption, alert and title text of the last run, joined (for `in` checks)."""
    parts = []
    for kind in ("title", "header", "subheader", "markdown", "caption", "info", "warning", "error", "success"):
        parts.extend(str(element.value) for element in getattr(at, kind))
    return "\n".join(parts)


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
