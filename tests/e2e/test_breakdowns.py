"""End to end in a real browser: each page's Breakdowns section, with the worker and the dashboard as
`scripts/run.sh` starts them (the fixtures of test_browser.py, one worker and server for this module).

Screenshots of each section go to `test-artifacts/screenshots/breakdowns-<page>.png`.
"""

from __future__ import annotations

import pytest

from tests.e2e.test_browser import (  # noqa: F401  (fixtures are found by name)
    IDLE,
    SCREENSHOTS,
    TIMEOUT_MS,
    Dashboard,
    Page,
    _assert_no_exception,
    _busiest_ids,
    _settled,
    admin,
    browser,
    dashboard,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]
FAMILY_TABS = ("Age and gender", "Countries", "Placements", "Devices")


def _pages(dashboard: Dashboard) -> dict[str, tuple[str, str]]:  # noqa: F811
    ids = _busiest_ids(dashboard)
    return {
        "overview": ("", "Overview"),
        "campaign": (f"campaign?campaign_id={ids['campaign']}", "Campaign"),
        "adset": (f"adset?adset_id={ids['adset']}", "Ad set"),
        "ad": (f"ad?ad_id={ids['ad']}", "Ad"),
    }


@pytest.mark.parametrize("name", ["overview", "campaign", "adset", "ad"])
def test_each_page_opens_its_breakdowns_section(admin: Page, dashboard: Dashboard, name: str) -> None:  # noqa: F811
    link, title = _pages(dashboard)[name]
    admin.goto(f"{dashboard.url}/{link}")
    admin.get_by_role("heading", name=title, level=1, exact=True).wait_for(timeout=TIMEOUT_MS)
    _settled(admin)
    heading = admin.get_by_role("heading", name="Breakdowns", exact=True)
    heading.wait_for(timeout=TIMEOUT_MS)
    heading.scroll_into_view_if_needed()
    tabs = admin.get_by_role("tab")
    assert [t for t in tabs.all_inner_texts() if t in FAMILY_TABS] == list(FAMILY_TABS)
    for family in FAMILY_TABS:
        admin.get_by_role("tab", name=family, exact=True).click()
        panel = admin.get_by_role("tabpanel", name=family)
        panel.locator(".js-plotly-plot").first.wait_for(timeout=TIMEOUT_MS)
        panel.get_by_test_id("stDataFrame").first.wait_for(timeout=TIMEOUT_MS)
        # the button is sent after the table in the same run: wait for it rather than count at once
        panel.get_by_role("button", name="Download CSV").first.wait_for(timeout=TIMEOUT_MS)
    admin.get_by_role("tab", name="Age and gender", exact=True).click()
    metric = admin.get_by_test_id("stRadio").filter(has_text="Breakdown metric")
    metric.get_by_text("ROAS", exact=True).click()  # a ratio from the segments' sums
    admin.wait_for_selector(IDLE, timeout=TIMEOUT_MS)
    _assert_no_exception(admin)
    reach_note = {
        "overview": "Reach is not shown for all campaigns together",
        "ad": "Reach per segment and day, as reported (never summed)",
    }.get(name, "Reach per segment is not available")  # rolled up from children: reach is never summed
    admin.get_by_text(reach_note).first.wait_for(timeout=TIMEOUT_MS)
    metric.get_by_text("Spend", exact=True).click()  # the picture shows spend, the section's default
    admin.wait_for_selector(IDLE, timeout=TIMEOUT_MS)
    admin.set_viewport_size({"width": 1400, "height": 1300})
    heading.evaluate("element => element.scrollIntoView({block: 'start'})")
    admin.wait_for_timeout(800)  # let the charts finish their transitions before the picture
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    admin.screenshot(path=str(SCREENSHOTS / f"breakdowns-{name}.png"))
    admin.set_viewport_size({"width": 1400, "height": 900})
