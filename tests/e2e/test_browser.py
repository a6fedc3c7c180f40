"""End to end in a real browser: the worker and the dashboard as `scripts/run.sh` starts them, driven
by Playwright in Debian's Chromium (`/usr/bin/chromium`; `scripts/test.sh` installs it).

One worker and one Streamlit server on a loopback port and a temporary data dir serve the whole
module. Full-length screenshots of every page go to `test-artifacts/screenshots/` (the README's
picture, `docs/screenshots/overview.png`, is the first 1400x900 window of the Overview).
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import subprocess
import time
import urllib.parse
import urllib.request
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import jwt
import pytest

from graph_emulator import HOSTILE_HOST, HOSTILE_NAMES, GraphEmulator, SeededAccount
from insights_core.auth import load_auth_config
from insights_core.auth_tokens import password_fingerprint
from insights_core.dashboard.exports import export_headers
from insights_core.dashboard.formatting import WORD_JOINER
from insights_core.metrics import RATIO_FORMULAS
from tests.helpers import PYTHON, ROOT, subprocess_env
from tests.live.helpers import SHAPE as LIVE_SHAPE
from tests.live.helpers import run_worker
from tests.servers import is_healthy, start_dashboard, stop

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
"""Streamlit's own e2e suite waits for this before it looks at a page."""
COOKIE_NAME = "meta_insights_auth"
LIBRARY_DEFAULT_KEY = "some_key"
"""streamlit-authenticator's documented example key, the one a careless deployment keeps."""
SHAPE = {"INSIGHTS_STUB_CAMPAIGNS": "8", "INSIGHTS_STUB_ADSETS_PER_CAMPAIGN": "3", "INSIGHTS_STUB_ADS_PER_ADSET": "2"}
TIMEOUT_MS = 60_000
VIEWPORT = {"width": 1400, "height": 900}

if os.environ.get("INSIGHTS_SKIP_BROWSER") == "1":
    pytest.skip("INSIGHTS_SKIP_BROWSER=1", allow_module_level=True)

from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright  # noqa: E402


@dataclass
class Dashboard:
    url: str
    data_dir: Path

    def query(self, sql: str, params: list | None = None) -> list[tuple]:
        """Read the published snapshot, as the dashboard does."""
        with duckdb.connect(str(self.data_dir / "current.duckdb"), read_only=True) as con:
            return con.execute(sql, params or []).fetchall()


def _wait_until(
    ready,
    what: str,
    timeout: float,
    processes: list[subprocess.Popen],  # type: ignore[no-untyped-def]
    logs: Sequence[Path] = (),
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for process in processes:
            if process.poll() is not None:
                raise AssertionError(
                    f"{process.args[1:3]} exited with {process.returncode} while waiting for {what}{_tails(logs)}"
                )
        if ready():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}{_tails(logs)}")


def _tails(logs: Sequence[Path], lines: int = 20) -> str:
    """The end of each process's output, for a failure message."""
    return "".join(
        f"\n--- {log.name}:\n" + "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
        for log in logs
        if log.exists()
    )


def _require_chromium() -> None:
    if not CHROMIUM.exists():  # fail these tests, not the whole session's collection
        pytest.fail(
            f"{CHROMIUM} is missing: scripts/test.sh installs Debian's chromium "
            "(or set INSIGHTS_SKIP_BROWSER=1 to skip the browser tests)",
            pytrace=False,
        )


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    """The worker and the dashboard, started with the commands scripts/run.sh uses."""
    _require_chromium()
    data_dir = tmp_path_factory.mktemp("e2e") / "data"
    data_dir.mkdir()
    env = subprocess_env(data_dir, META_INSIGHTS_MODE="stub", **SHAPE)
    logs = [data_dir.parent / "worker.out", data_dir.parent / "app.out"]
    with logs[0].open("wb") as worker_out:
        worker = subprocess.Popen(
            [PYTHON, "sync_worker.py"], cwd=ROOT, env=env, stdout=worker_out, stderr=subprocess.STDOUT
        )
    app, url = start_dashboard(env, logs[1], PYTHON)
    try:
        _wait_until((data_dir / "current.duckdb").exists, "the first published snapshot", 120, [worker, app], logs)
        _wait_until(lambda: is_healthy(url), "the dashboard's health endpoint", 120, [worker, app], logs)
        yield Dashboard(url, data_dir)
    finally:
        stop(app)
        stop(worker)


@pytest.fixture(scope="module")
def browser(dashboard: Dashboard) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
        # A server starts in Streamlit's legacy pages/ mode until app.py first runs; visit it once
        # so every test sees the app as users do after the first visitor.
        warm = browser.new_page()
        warm.goto(dashboard.url)
        warm.wait_for_selector(IDLE, timeout=TIMEOUT_MS)
        warm.close()
        yield browser
        browser.close()


def _settled(page: Page) -> Page:
    page.wait_for_selector(IDLE, timeout=TIMEOUT_MS)
    return page


def _log_in(page: Page, username: str, password: str = "demo") -> None:
    _settled(page)
    page.get_by_role("textbox", name="Username").fill(username)
    page.get_by_role("textbox", name="Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("button", name="Log out").wait_for(timeout=TIMEOUT_MS)
    _settled(page)


def _wait_for_login_cookie(context: BrowserContext) -> str:
    for _ in range(150):
        for cookie in context.cookies():
            if cookie["name"] == COOKIE_NAME and cookie["value"]:
                return cookie["value"]
        time.sleep(0.1)
    raise AssertionError("the dashboard never set its re-login cookie")


def _title(page: Page) -> str:
    return " | ".join(page.locator("h1").all_inner_texts())


def _assert_no_exception(page: Page) -> None:
    errors = page.locator("[data-testid='stException']").all_inner_texts()
    assert not errors, errors


def _new_page(browser: Browser) -> Page:
    return browser.new_context(viewport=VIEWPORT, accept_downloads=True).new_page()


def _screenshot(page: Page, name: str, whole: bool = True) -> None:
    """The whole page (or with whole=False the first window): Streamlit scrolls inside stMain, so
    Playwright's full_page alone sees one window. Grow the window to the content, shoot, restore it."""
    main = page.get_by_test_id("stMain")
    for _ in range(4 if whole else 0):  # the content grows a little with the window (charts, bottom padding)
        height = main.evaluate("element => element.scrollHeight")
        if height <= page.viewport_size["height"]:
            break
        page.set_viewport_size({"width": VIEWPORT["width"], "height": height})
        page.wait_for_timeout(300)
    _settled(page)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(500)  # let charts finish their transitions before the picture
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
    page.set_viewport_size(VIEWPORT)


@pytest.fixture(scope="module")
def admin(browser: Browser, dashboard: Dashboard) -> Iterator[Page]:
    page = _new_page(browser)
    page.goto(dashboard.url)
    _log_in(page, "admin")
    _wait_for_login_cookie(page.context)
    yield page
    page.context.close()


def _busiest_ids(dashboard: Dashboard) -> dict[str, str]:
    """A campaign with delivery, its busiest ad set and that ad set's busiest ad."""
    [(campaign_id,)] = dashboard.query(
        "SELECT entity_id FROM meta_ad_insights WHERE entity_type = 'campaign' "
        "GROUP BY entity_id ORDER BY sum(spend) DESC, entity_id LIMIT 1"
    )
    [(adset_id,)] = dashboard.query(
        "SELECT i.entity_id FROM meta_ad_insights i JOIN adsets s ON s.adset_id = i.entity_id "
        "WHERE i.entity_type = 'adset' AND s.campaign_id = ? "
        "GROUP BY i.entity_id ORDER BY sum(i.spend) DESC, 1 LIMIT 1",
        [campaign_id],
    )
    [(ad_id,)] = dashboard.query(
        "SELECT i.entity_id FROM meta_ad_insights i JOIN ads a ON a.ad_id = i.entity_id "
        "WHERE i.entity_type = 'ad' AND a.adset_id = ? GROUP BY i.entity_id ORDER BY sum(i.spend) DESC, 1 LIMIT 1",
        [adset_id],
    )
    return {"campaign": campaign_id, "adset": adset_id, "ad": ad_id}


def test_admin_opens_every_page_by_its_link(admin: Page, dashboard: Dashboard) -> None:
    ids = _busiest_ids(dashboard)
    [(campaign_name,)] = dashboard.query("SELECT name FROM campaigns WHERE campaign_id = ?", [ids["campaign"]])
    [(ad_name,)] = dashboard.query("SELECT name FROM ads WHERE ad_id = ?", [ids["ad"]])
    pages = [  # (url path and query, page title, text the page must show)
        ("", "Overview", "Top campaigns"),  # the default page lives at the root URL
        (f"campaign?campaign_id={ids['campaign']}", "Campaign", campaign_name),
        (f"adset?adset_id={ids['adset']}", "Ad set", "Targeting"),
        (f"ad?ad_id={ids['ad']}", "Ad", ad_name),
        (f"timeline?entity_type=ad&entity_id={ids['ad']}&days=30", "Timeline", ad_name),
        ("pacing", "Pacing", "Over pace"),
        ("forecast", "Forecast", "How it did before"),
        ("alerts", "Alerts", "Delivery failures"),
        ("sync", "Sync", "Run history"),
        ("users", "Users", "Managing users"),
    ]
    for link, title, text in pages:
        admin.goto(f"{dashboard.url}/{link}")
        admin.get_by_role("heading", name=title, level=1, exact=True).wait_for(timeout=TIMEOUT_MS)
        _settled(admin)
        admin.get_by_text(text, exact=False).first.wait_for(timeout=TIMEOUT_MS)
        _assert_no_exception(admin)
        assert admin.get_by_text("Page not found").count() == 0, link
        if title not in ("Pacing", "Alerts", "Sync", "Users"):  # plotly draws after the script run ends
            admin.locator(".js-plotly-plot").first.wait_for(timeout=TIMEOUT_MS)
        _screenshot(admin, link.split("?")[0] or "overview")
    # the sidebar offers the admin every page
    navigation = admin.locator("[data-testid='stSidebarNav'] a").all_inner_texts()
    assert [entry.split("\n")[-1] for entry in navigation] == [title for _, title, _ in pages]


def test_admin_presses_sync_now_and_sees_the_report(admin: Page, dashboard: Dashboard) -> None:
    runs_before = dashboard.query("SELECT count(*) FROM sync_runs")[0][0]
    admin.goto(f"{dashboard.url}/sync")
    admin.get_by_role("heading", name="Sync", level=1, exact=True).wait_for(timeout=TIMEOUT_MS)
    _settled(admin)
    admin.get_by_role("textbox", name="Days back").fill("3")
    admin.get_by_role("button", name="Sync now").click()
    report = admin.get_by_text("Sync succeeded in", exact=False)
    report.wait_for(timeout=TIMEOUT_MS)
    _assert_no_exception(admin)
    # the report the page shows is the one the worker stored
    _wait_until(
        lambda: dashboard.query("SELECT count(*) FROM sync_runs")[0][0] > runs_before,
        "the sync run in the snapshot",
        60,
        [],
    )
    [(sync_id, since, until, rows)] = dashboard.query(
        "SELECT sync_id, since, until, rows_read FROM sync_runs ORDER BY sync_timestamp DESC LIMIT 1"
    )
    text = report.inner_text()
    assert f"{rows:,} rows read" in text and f"days {since} to {until}" in text, text
    assert admin.get_by_text(str(sync_id), exact=False).count() >= 1
    _screenshot(admin, "sync-report")


def _download(page: Page, name: str) -> tuple[str, bytes]:
    button = page.get_by_test_id("stExpanderDetails").get_by_role("button", name=name)
    button.wait_for(timeout=TIMEOUT_MS)
    with page.expect_download(timeout=TIMEOUT_MS) as download_info:
        button.click()
    download = download_info.value
    return download.suggested_filename, Path(download.path()).read_bytes()


def test_csv_download_matches_the_database(admin: Page, dashboard: Dashboard) -> None:
    admin.goto(dashboard.url)
    admin.get_by_role("heading", name="Overview", level=1, exact=True).wait_for(timeout=TIMEOUT_MS)
    _settled(admin)
    admin.get_by_text("Export every stored row of the period").click()
    file_name, data = _download(admin, "Download CSV")
    raw_name, raw_data = _download(admin, "CSV with field names")
    level, _, since, until = Path(file_name).stem.split("_")
    assert data.startswith(codecs.BOM_UTF8) and raw_data.startswith(codecs.BOM_UTF8)  # Excel reads UTF-8 by it
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    raw_rows = list(csv.reader(io.StringIO(raw_data.decode("utf-8-sig"))))
    header, body = rows[0], rows[1:]
    raw_header = raw_rows[0]
    assert raw_name == f"{level}_rows_{since}_{until}_raw.csv"
    assert raw_rows[1:] == body  # the same cells, only the headers differ

    stored = dashboard.query(
        "SELECT entity_id, CAST(date_start AS VARCHAR), spend, impressions, clicks FROM meta_ad_insights "
        "WHERE entity_type = ? AND date_start BETWEEN ? AND ?",
        [level, since, until],
    )
    table_columns = {
        name
        for (name,) in dashboard.query(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'meta_ad_insights'"
        )
    }
    # the page's labels head the file; each is the documented label of the field at its place
    assert header[:5] == ["Date", "Date end", "Account", "Level", "Id"]
    assert raw_header[:5] == ["date_start", "date_end", "account_id", "entity_type", "entity_id"]
    assert header == export_headers(raw_header, {"entity_type": "Level"})
    assert {"Spend", "Impressions", "Clicks", "Conversions", "Revenue", "CTR", "CPC", "ROAS"} <= set(header)
    # every other column is stored as it is, or an entity's name, or a ratio of the row's own values
    names = {"name", "campaign_name", "adset_name"}
    assert set(raw_header) - table_columns <= {*names, *RATIO_FORMULAS}, set(raw_header) - table_columns
    assert len(body) == len(stored) > 0
    index = {name: raw_header.index(name) for name in ("entity_id", "date_start", "spend", "impressions", "clicks")}
    downloaded = {
        (r[index["entity_id"]], r[index["date_start"]]): (
            float(r[index["spend"]]),
            int(r[index["impressions"]]),  # counts are written as integers ("12345", never "12345.0")
            int(r[index["clicks"]]),
        )
        for r in body
    }
    assert downloaded == {(e, d): (pytest.approx(float(s)), i, c) for e, d, s, i, c in stored}


def test_a_deep_link_survives_logging_in(browser: Browser, dashboard: Dashboard) -> None:
    [(campaign_id, name)] = dashboard.query("SELECT campaign_id, name FROM campaigns ORDER BY campaign_id LIMIT 1")
    page = _new_page(browser)
    page.goto(f"{dashboard.url}/campaign?campaign_id={campaign_id}")
    _log_in(page, "analyst")
    page.get_by_role("heading", name="Campaign", level=1, exact=True).wait_for(timeout=TIMEOUT_MS)
    page.get_by_text(name).first.wait_for(timeout=TIMEOUT_MS)
    page.context.close()


def test_a_viewer_cannot_open_sync_by_url(browser: Browser, dashboard: Dashboard) -> None:
    page = _new_page(browser)
    page.goto(dashboard.url)
    _log_in(page, "viewer")
    navigation = page.locator("[data-testid='stSidebarNav'] a").all_inner_texts()
    assert not any(entry.endswith(("Sync", "Users")) for entry in navigation), navigation
    _wait_for_login_cookie(page.context)
    page.goto(f"{dashboard.url}/sync")
    _settled(page)
    page.get_by_role("button", name="Log out").wait_for(timeout=TIMEOUT_MS)  # still logged in, by the cookie
    page.get_by_text("You do not have access to this page.").wait_for(timeout=TIMEOUT_MS)
    # the server sends "page not found" during the run, before the run's end, which _settled waited for
    _settled(page)
    assert page.get_by_text("Page not found").count() == 0
    assert page.get_by_role("button", name="Sync now").count() == 0
    assert page.get_by_text("Run history").count() == 0
    navigation = page.locator("[data-testid='stSidebarNav'] a").all_inner_texts()
    assert not any(entry.endswith("Sync") for entry in navigation), navigation  # still hidden from the menu
    _screenshot(page, "viewer-sync-url", whole=False)  # the top shows where the viewer landed
    page.context.close()


def _forged_cookie(dashboard: Dashboard, key: str, username: str = "admin") -> str:
    """The claims our cookies carry (with the password fingerprint keyed like the signature), signed with `key`."""
    now = time.time()
    user = load_auth_config(dashboard.data_dir / "auth.yaml").user(username)
    assert user is not None
    claims = {
        "username": username,
        "exp_date": now + 86_400,
        "iat": now,
        "pwd": password_fingerprint(user.password_hash, key),
    }
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The HMAC key is .* below the minimum")  # the point of the forgery
        return jwt.encode(claims, key, algorithm="HS256")


def _open_with_cookie(browser: Browser, dashboard: Dashboard, token: str) -> Page:
    context = browser.new_context(viewport=VIEWPORT)
    context.add_cookies([{"name": COOKIE_NAME, "value": token, "url": dashboard.url}])
    page = context.new_page()
    page.goto(dashboard.url)
    return _settled(page)


def test_a_cookie_forged_with_the_library_default_key_is_refused(browser: Browser, dashboard: Dashboard) -> None:
    page = _open_with_cookie(browser, dashboard, _forged_cookie(dashboard, LIBRARY_DEFAULT_KEY))
    page.get_by_role("button", name="Log in").wait_for(timeout=TIMEOUT_MS)
    assert _title(page) == "Meta Insights"
    assert page.get_by_role("button", name="Log out").count() == 0
    assert page.get_by_text("Top campaigns").count() == 0
    page.context.close()


def test_the_same_cookie_signed_with_the_real_key_is_accepted(browser: Browser, dashboard: Dashboard) -> None:
    """The control for the test above: only the key differs, so the refusal is the signature's doing."""
    real_key = (dashboard.data_dir / "cookie_key").read_text(encoding="utf-8").strip()
    page = _open_with_cookie(browser, dashboard, _forged_cookie(dashboard, real_key))
    page.get_by_role("button", name="Log out").wait_for(timeout=TIMEOUT_MS)
    assert _title(page) == "Overview"
    page.context.close()


@pytest.fixture(scope="module")
def hostile_dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    """A live sync of an emulated account whose every name is hostile markdown and HTML, and a dashboard on it.

    The dashboard runs in stub mode (demo logins) on the data dir the live worker filled: what it shows
    comes from the published snapshot only.
    """
    _require_chromium()
    data_dir = tmp_path_factory.mktemp("e2e_hostile") / "data"
    with GraphEmulator(account=SeededAccount(LIVE_SHAPE, hostile_names=True)) as emulator:
        result = run_worker(data_dir, emulator, "--once", "--days-back", "30")
    assert result.returncode == 0, result.stderr[-2000:]
    app, url = start_dashboard(subprocess_env(data_dir, META_INSIGHTS_MODE="stub"), data_dir.parent / "app.out", PYTHON)
    try:
        _wait_until(
            lambda: is_healthy(url), "the dashboard's health endpoint", 120, [app], [data_dir.parent / "app.out"]
        )
        yield Dashboard(url, data_dir)
    finally:
        stop(app)


_WHERE_JS = """nodes => nodes.map(node => {
    const testids = [];
    for (let e = node; e; e = e.parentElement) { if (e.dataset && e.dataset.testid) testids.push(e.dataset.testid); }
    return testids.join(" < ") + " :: " + node.outerHTML.slice(0, 200);
})"""
"""Where each element sits (Streamlit's test ids up the tree), for a failure message."""


def test_hostile_names_are_shown_as_text_and_fetch_nothing(browser: Browser, hostile_dashboard: Dashboard) -> None:
    dashboard = hostile_dashboard
    page = _new_page(browser)
    fetched: list[str] = []
    page.on(
        "request",
        lambda request: (
            fetched.append(request.url) if urllib.parse.urlsplit(request.url).netloc == HOSTILE_HOST else None
        ),
    )
    page.goto(dashboard.url)
    _log_in(page, "admin")
    _wait_for_login_cookie(page.context)  # each page below is a new load: it logs in by the cookie
    ids, names = {}, {}
    for level, table in (("campaign", "campaigns"), ("adset", "adsets"), ("ad", "ads")):
        # the first entity of each level carries the markdown image and link (HOSTILE_NAMES[0])
        [(ids[level], names[level])] = dashboard.query(
            f"SELECT {level}_id, name FROM {table} WHERE name LIKE ? ORDER BY {level}_id LIMIT 1",
            [f"% {HOSTILE_NAMES[0]}"],
        )
    pages = [
        ("", "Overview", None),
        (f"campaign?campaign_id={ids['campaign']}", "Campaign", names["campaign"]),
        (f"adset?adset_id={ids['adset']}", "Ad set", names["adset"]),
        (f"ad?ad_id={ids['ad']}", "Ad", names["ad"]),
        (f"timeline?entity_type=ad&entity_id={ids['ad']}&days=30", "Timeline", names["ad"]),
        ("sync", "Sync", None),
        ("timeline?entity_type=![x](http://127.0.0.2:9/t.png)&entity_id=1&days=7", "Timeline", None),
    ]
    # every other hostile name in a heading too: each campaign and ad set carries one of them
    pages += [
        (f"campaign?campaign_id={cid}", "Campaign", name)
        for cid, name in dashboard.query(
            "SELECT campaign_id, name FROM campaigns WHERE campaign_id <> ? ORDER BY campaign_id", [ids["campaign"]]
        )
    ]
    pages += [
        (f"adset?adset_id={aid}", "Ad set", name)
        for aid, name in dashboard.query(
            "SELECT adset_id, name FROM adsets WHERE name LIKE ? ORDER BY adset_id LIMIT 1", [f"% {HOSTILE_NAMES[4]}"]
        )
    ]
    assert {name.split(" ", 2)[2] for _, _, name in pages if name} == set(HOSTILE_NAMES)
    for link, title, name in pages:
        page.goto(f"{dashboard.url}/{link}")
        page.get_by_role("heading", name=title, level=1, exact=True).wait_for(timeout=TIMEOUT_MS)
        _settled(page)
        if title == "Overview":  # its top campaigns chart labels bars with the names
            page.locator(".js-plotly-plot").first.wait_for(timeout=TIMEOUT_MS)
        # every image the page holds has finished loading (or failing): whatever it would fetch was fetched
        page.wait_for_function("Array.from(document.images).every(image => image.complete)", timeout=TIMEOUT_MS)
        _assert_no_exception(page)
        assert not fetched, (link, fetched)  # no image or link target was requested
        planted = page.locator(f"[href*='{HOSTILE_HOST}'], [src*='{HOSTILE_HOST}']")
        assert planted.count() == 0, (link, planted.evaluate_all(_WHERE_JS))
        if name is not None:  # the heading reads the name character for character
            assert page.locator("h2").first.inner_text().replace(WORD_JOINER, "").strip() == name
        _screenshot(page, "hostile-" + (link.split("?")[0] or "overview"), whole=False)
    page.context.close()
