"""Browsing like Ads Manager in a real browser (Chromium): lists at every level, one period for the session.

Reuses the worker, dashboard and browser of `test_browser.py` (its module-scoped fixtures, imported),
so this module starts its own pair of servers on a stub account of 8 x 3 x 2.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e import test_browser as base
from tests.e2e.test_browser import TIMEOUT_MS, Dashboard, _assert_no_exception, _log_in, _new_page, _settled

dashboard, browser = base.dashboard, base.browser
"""The module-scoped fixtures of test_browser.py, found by name here (this module gets its own instances)."""

pytestmark = [pytest.mark.browser, pytest.mark.slow]

from playwright.sync_api import Browser, Locator, Page  # noqa: E402

ROW_HEIGHT, HEADER_HEIGHT, MARKER_X = 35, 35, 14
"""Streamlit's data grid: default row and header heights, and the row-selection checkbox column."""


@pytest.fixture(scope="module")
def analyst(browser: Browser, dashboard: Dashboard) -> Iterator[Page]:
    page = _new_page(browser)
    page.goto(dashboard.url)
    _log_in(page, "analyst")
    yield page
    page.context.close()


def _params(page: Page) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(page.url).query))


def _grid(page: Page, key: str) -> Locator:
    return page.locator(f".st-key-{key} [data-testid='stDataFrame']")


def _select_row(page: Page, key: str, row: int = 0) -> None:
    """Tick a row's selection box in a data grid (a canvas: clicked by position)."""
    grid = _grid(page, key)
    grid.wait_for(timeout=TIMEOUT_MS)
    grid.scroll_into_view_if_needed()
    box = grid.bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + MARKER_X, box["y"] + HEADER_HEIGHT + ROW_HEIGHT * row + ROW_HEIGHT / 2)


def _choose(page: Page, label: str, option: str) -> None:
    page.get_by_test_id("stSelectbox").filter(has_text=label).first.click()
    page.get_by_role("option", name=option, exact=True).click()
    _settled(page)


def _shown_value(page: Page, label: str) -> str:
    """A select box's text as shown, its search input's value included."""
    box = page.get_by_test_id("stSelectbox").filter(has_text=label).first
    return str(
        box.evaluate("e => e.innerText + ' ' + Array.from(e.querySelectorAll('input')).map(i => i.value).join(' ')")
    )


def _heading(page: Page, level: int = 2) -> str:
    return page.locator(f"h{level}").first.inner_text().strip()


def _compare_with(page: Page, option: str, param: str) -> None:
    """Choose a comparison and wait for the run it starts to write it to the URL and finish
    (the run-state attribute can still say "not running" for a moment after the click)."""
    _choose(page, "Compare with", option)
    page.wait_for_function(
        "p => new URLSearchParams(location.search).get('compare') === p", arg=param, timeout=TIMEOUT_MS
    )
    _settled(page)


def _spend_delta(page: Page) -> str | None:
    card = page.get_by_test_id("stMetric").filter(has=page.get_by_text("Spend", exact=True)).first
    delta = card.get_by_test_id("stMetricDelta")
    return delta.inner_text() if delta.count() else None


def _open(page: Page, url: str, title: str) -> None:
    page.goto(url)
    page.get_by_role("heading", name=title, level=1, exact=True).wait_for(timeout=TIMEOUT_MS)
    _settled(page)


def test_drill_from_the_campaigns_list_to_an_ad_through_lists(analyst: Page, dashboard: Dashboard) -> None:
    _open(analyst, f"{dashboard.url}/campaign", "Campaign")
    [(campaign_id, campaign_name)] = dashboard.query(
        "SELECT c.campaign_id, c.name FROM campaigns c LEFT JOIN meta_ad_insights i ON i.entity_id = c.campaign_id"
        " AND i.entity_type = 'campaign' AND i.date_start BETWEEN ? AND ?"
        " GROUP BY c.campaign_id, c.name ORDER BY coalesce(sum(i.spend), 0) DESC, c.campaign_id LIMIT 1",
        [_params(analyst)["since"], _params(analyst)["until"]],
    )
    _select_row(analyst, "campaign_list")  # the list opens sorted by spend, highest first
    analyst.wait_for_url(re.compile(f"campaign_id={campaign_id}"), timeout=TIMEOUT_MS)
    _settled(analyst)
    assert _heading(analyst) == campaign_name

    _select_row(analyst, "campaign_adsets")
    analyst.wait_for_url(re.compile(r"/adset\?.*adset_id="), timeout=TIMEOUT_MS)
    _settled(analyst)
    adset_id = _params(analyst)["adset_id"]
    [(adset_name, parent)] = dashboard.query("SELECT name, campaign_id FROM adsets WHERE adset_id = ?", [adset_id])
    assert parent == campaign_id and _heading(analyst) == adset_name

    _select_row(analyst, "adset_ads")
    analyst.wait_for_url(re.compile(r"/ad\?.*ad_id="), timeout=TIMEOUT_MS)
    _settled(analyst)
    ad_id = _params(analyst)["ad_id"]
    [(ad_name, ad_parent)] = dashboard.query("SELECT name, adset_id FROM ads WHERE ad_id = ?", [ad_id])
    assert ad_parent == adset_id and _heading(analyst) == ad_name
    _assert_no_exception(analyst)
    # the breadcrumbs lead back up
    analyst.get_by_role("link", name=adset_name).first.click()
    analyst.wait_for_url(re.compile(f"adset_id={adset_id}"), timeout=TIMEOUT_MS)
    analyst.get_by_role("link", name="Campaigns").first.click()
    _settled(analyst)
    _grid(analyst, "campaign_list").wait_for(timeout=TIMEOUT_MS)


def test_a_period_chosen_on_the_overview_holds_on_the_ads_page_and_after_a_reload(
    analyst: Page, dashboard: Dashboard
) -> None:
    _open(analyst, dashboard.url, "Overview")
    _choose(analyst, "Period", "Last 7 days")
    params = _params(analyst)
    since, until = dt.date.fromisoformat(params["since"]), dt.date.fromisoformat(params["until"])
    assert (until - since).days == 6
    analyst.locator("[data-testid='stSidebarNav'] a").filter(has_text=re.compile(r"Ad$")).click()
    analyst.get_by_role("heading", name="Ad", level=1, exact=True).wait_for(timeout=TIMEOUT_MS)
    _settled(analyst)
    analyst.wait_for_url(re.compile(f"since={since}"), timeout=TIMEOUT_MS)
    assert (_params(analyst)["since"], _params(analyst)["until"]) == (str(since), str(until))
    analyst.get_by_text(f"{since} to {until}").first.wait_for(timeout=TIMEOUT_MS)
    analyst.reload()
    analyst.get_by_role("heading", name="Ad", level=1, exact=True).wait_for(timeout=TIMEOUT_MS)
    _settled(analyst)
    assert (_params(analyst)["since"], _params(analyst)["until"]) == (str(since), str(until))
    analyst.get_by_text(f"{since} to {until}").first.wait_for(timeout=TIMEOUT_MS)
    assert "Last 7 days" in _shown_value(analyst, "Period")  # the preset is recognised from the dates again
    _assert_no_exception(analyst)


def test_the_comparison_period_changes_the_cards_deltas(analyst: Page, dashboard: Dashboard) -> None:
    _open(analyst, dashboard.url, "Overview")
    until = dt.date.fromisoformat(_params(analyst)["until"])  # the default period ends yesterday, as 7 days do
    _choose(analyst, "Period", "Last 7 days")
    # the run the choice starts writes the new days to the URL; a read before it would see 30 days' change
    analyst.wait_for_url(re.compile(f"since={until - dt.timedelta(days=6)}"), timeout=TIMEOUT_MS)
    _settled(analyst)
    before = _spend_delta(analyst)
    assert before, "the previous 7 days are stored: the spend card shows a change"
    _compare_with(analyst, "No comparison", "none")
    assert _spend_delta(analyst) is None
    _compare_with(analyst, "Same period last year", "last_year")  # nothing stored a year back: no change to show
    assert _spend_delta(analyst) is None
    _compare_with(analyst, "Previous period", "previous")
    assert _spend_delta(analyst) == before
    _assert_no_exception(analyst)


def test_ads_sorted_worst_roas_first_match_the_store(analyst: Page, dashboard: Dashboard) -> None:
    _open(analyst, f"{dashboard.url}/ad", "Ad")
    analyst.get_by_label("Minimum spend (USD)").fill("1")
    analyst.get_by_label("Minimum spend (USD)").press("Enter")
    _settled(analyst)
    _choose(analyst, "Sort by", "ROAS")
    analyst.get_by_text("Worst first").click()
    _settled(analyst)
    analyst.get_by_text("lowest ROAS first").first.wait_for(timeout=TIMEOUT_MS)
    _settled(analyst)  # the caption comes before the download button in that run: a click before its end is lost
    params = _params(analyst)
    expected = dashboard.query(
        "SELECT i.entity_id FROM meta_ad_insights i WHERE i.entity_type = 'ad' AND i.date_start BETWEEN ? AND ?"
        " GROUP BY i.entity_id HAVING sum(i.spend) >= 1 ORDER BY sum(i.revenue) / sum(i.spend), i.entity_id",
        [params["since"], params["until"]],
    )
    button = analyst.locator(".st-key-ad_list_download_csv").get_by_role("button")
    with analyst.expect_download(timeout=TIMEOUT_MS) as download_info:
        button.click()
    text = Path(download_info.value.path()).read_text(encoding="utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    ids = [row.get("entity_id") or row.get("Ad id") for row in rows]
    assert ids == [e for (e,) in expected][: len(ids)] and len(ids) == min(50, len(expected))
    first = rows[0]
    assert {"name", "adset_name", "campaign_name"} <= set(first) or {"Ad", "Ad set", "Campaign"} <= set(first)
