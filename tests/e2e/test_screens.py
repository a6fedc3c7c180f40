"""Every page as the admin sees it, at 1440 px (desktop) and 390 px (phone) wide, in Chromium.

Screenshots go to `test-artifacts/screenshots/<page>-1440.png` and `<page>-390.png` (the README's
pictures in docs/screenshots/ are copied from them). Besides the pictures, each page is checked for
what a person would notice: an exception box, a card value cut off ("Engagem…"), and at 390 px a
main column wider than the screen (sideways scrolling).

Reuses the worker, server, browser and login of `test_browser.py` (its fixtures are imported here, so
this module starts its own worker and server).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.test_browser import (
    SCREENSHOTS,
    TIMEOUT_MS,
    Dashboard,
    _assert_no_exception,
    _busiest_ids,
    _log_in,
    _settled,
    _wait_for_login_cookie,
    browser,
    dashboard,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]
__all__ = ["browser", "dashboard"]  # fixtures used by name

from playwright.sync_api import Browser, Page  # noqa: E402

WIDTHS = {1440: 900, 390: 844}
"""Viewport width -> height: a laptop, and a phone (iPhone 12-15 in CSS pixels)."""
CHART_PAGES = ("overview", "campaign", "adset", "ad", "timeline")

TRUNCATED_VALUES = """
() => [...document.querySelectorAll("[data-testid='stMetricValue'], [data-testid='stMetricValue'] *")]
  .filter(e => e.scrollWidth > e.clientWidth + 1 || e.scrollHeight > e.clientHeight + 1)
  .map(e => e.innerText)
"""
"""Card values whose text needs more room than they have (what CSS ellipsis would hide)."""
OVERFLOW = """
() => { const main = document.querySelector("[data-testid='stMain']");
        return [main.scrollWidth, main.clientWidth]; }
"""


@pytest.fixture(scope="module")
def admin_page(browser: Browser, dashboard: Dashboard) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.goto(dashboard.url)
    _log_in(page, "admin")
    _wait_for_login_cookie(context)
    yield page
    context.close()


def page_links(dashboard: Dashboard) -> dict[str, str]:
    ids = _busiest_ids(dashboard)
    return {
        "overview": "",
        "campaign": f"campaign?campaign_id={ids['campaign']}",
        "adset": f"adset?adset_id={ids['adset']}",
        "ad": f"ad?ad_id={ids['ad']}",
        "timeline": f"timeline?entity_type=campaign&entity_id={ids['campaign']}&days=30",
        "sync": "sync",
        "users": "users",
    }


def shoot(page: Page, name: str, width: int) -> None:
    """The whole page: Streamlit scrolls inside stMain, so the window grows to the content first."""
    page.set_viewport_size({"width": width, "height": WIDTHS[width]})
    page.wait_for_timeout(400)
    main = page.get_by_test_id("stMain")
    for _ in range(4):
        height = main.evaluate("element => element.scrollHeight")
        if height <= page.viewport_size["height"]:
            break
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_timeout(300)
    _settled(page)
    page.wait_for_timeout(500)  # charts finish their transitions
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}-{width}.png"), full_page=True)
    page.set_viewport_size({"width": width, "height": WIDTHS[width]})


@pytest.mark.parametrize("name", list(CHART_PAGES) + ["sync", "users"])
def test_every_page_at_desktop_and_phone_width(admin_page: Page, dashboard: Dashboard, name: str) -> None:
    page = admin_page
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(f"{dashboard.url}/{page_links(dashboard)[name]}")
    page.locator("h1").first.wait_for(timeout=TIMEOUT_MS)
    _settled(page)
    if name in CHART_PAGES:
        page.locator(".js-plotly-plot").first.wait_for(timeout=TIMEOUT_MS)
    for width in WIDTHS:
        shoot(page, name, width)
        _assert_no_exception(page)
        assert page.get_by_text("Page not found").count() == 0
        assert page.evaluate(TRUNCATED_VALUES) == [], f"{name} at {width} px cuts card values off"
        if name in CHART_PAGES:
            assert page.locator("[data-testid='stMetricValue']").count() >= 8, name  # the cards are there
        scroll_width, client_width = page.evaluate(OVERFLOW)
        assert scroll_width <= client_width + 1, f"{name} at {width} px scrolls sideways ({scroll_width} px)"
