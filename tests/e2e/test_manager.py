"""The manager pages in a real browser: Pacing, Forecast and Alerts on a stub account with the planted
shapes (INSIGHTS_STUB_SCENARIOS), served by the worker and the dashboard as scripts/run.sh starts them.
Screenshots go to test-artifacts/screenshots/ (pacing.png, forecast.png, alerts.png)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from insights_core.manager.alert_store import SqliteAlertStore
from tests.e2e.test_browser import (  # noqa: F401  # browser is a fixture this module uses
    SHAPE,
    TIMEOUT_MS,
    Dashboard,
    _assert_no_exception,
    _log_in,
    _new_page,
    _require_chromium,
    _screenshot,
    _settled,
    _wait_until,
    browser,
)
from tests.helpers import PYTHON, ROOT, subprocess_env, wait_for
from tests.servers import is_healthy, start_dashboard, stop

pytestmark = [pytest.mark.browser, pytest.mark.slow]

from playwright.sync_api import Browser, Page  # noqa: E402


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    """Worker and dashboard on a stub account with an over-pacing campaign, a tired ad and an unusual day."""
    _require_chromium()
    data_dir = tmp_path_factory.mktemp("e2e_manager") / "data"
    data_dir.mkdir()
    env = subprocess_env(
        data_dir,
        META_INSIGHTS_MODE="stub",
        INSIGHTS_BACKFILL_DAYS="120",
        INSIGHTS_STUB_SCENARIOS="overpacing,fatigue,anomaly",
        **SHAPE,
    )
    logs = [data_dir.parent / "worker.out", data_dir.parent / "app.out"]
    with logs[0].open("wb") as worker_out:
        worker = subprocess.Popen(
            [PYTHON, "sync_worker.py"], cwd=ROOT, env=env, stdout=worker_out, stderr=subprocess.STDOUT
        )
    app, url = start_dashboard(env, logs[1], PYTHON)
    try:
        alerts_db = data_dir / "alerts.sqlite"
        _wait_until(
            lambda: alerts_db.exists() and not SqliteAlertStore(alerts_db).fetch_evaluations().empty,
            "the first sync's alert evaluation",
            180,
            [worker, app],
            logs,
        )
        _wait_until(lambda: is_healthy(url), "the dashboard's health endpoint", 120, [worker, app], logs)
        yield Dashboard(url, data_dir)
    finally:
        stop(app)
        stop(worker)


@pytest.fixture(scope="module")
def manager(browser: Browser, dashboard: Dashboard) -> Iterator[Page]:  # noqa: F811  # the imported fixture
    page = _new_page(browser)
    page.goto(dashboard.url)
    _log_in(page, "manager")
    yield page
    page.context.close()


def _open(page: Page, dashboard: Dashboard, path: str, title: str) -> None:
    page.goto(f"{dashboard.url}/{path}")
    page.get_by_role("heading", name=title, level=1, exact=True).wait_for(timeout=TIMEOUT_MS)
    _settled(page)
    _assert_no_exception(page)


def test_pacing_page_shows_the_overpacing_campaign(manager: Page, dashboard: Dashboard) -> None:
    _open(manager, dashboard, "pacing", "Pacing")
    over = manager.get_by_test_id("stMetric").filter(has_text="Over pace")
    over.wait_for(timeout=TIMEOUT_MS)
    manager.get_by_test_id("stDataFrame").first.wait_for(timeout=TIMEOUT_MS)
    # the planted campaign is the first active one with a campaign daily budget (stub_scenarios); early
    # in a month the anomaly campaign's 3x day can put it over pace too, as the worker's rule says
    [(planted,)] = dashboard.query(
        "SELECT campaign_id FROM campaigns WHERE effective_status = 'ACTIVE' AND daily_budget > 0"
        " ORDER BY campaign_id LIMIT 1"
    )
    keys = SqliteAlertStore(dashboard.data_dir / "alerts.sqlite").fetch_alerts()["key"]
    over_ids = {k.split(":")[2] for k in keys if k.startswith("pacing:") and k.split(":")[3] == "over"}
    assert planted in over_ids and len(over_ids) <= 2, over_ids
    assert over.inner_text().split("\n")[-1].strip() == str(len(over_ids))
    _screenshot(manager, "pacing")


def test_forecast_page_draws_the_chart_with_its_backtest(manager: Page, dashboard: Dashboard) -> None:
    _open(manager, dashboard, "forecast", "Forecast")
    manager.locator(".js-plotly-plot").first.wait_for(timeout=TIMEOUT_MS)
    manager.get_by_text("80% interval held").first.wait_for(timeout=TIMEOUT_MS)
    assert manager.get_by_test_id("stMetric").filter(has_text="MAPE").count() == 1
    _screenshot(manager, "forecast")


def test_alerts_page_lists_the_findings_and_a_manager_acknowledges_one(manager: Page, dashboard: Dashboard) -> None:
    _open(manager, dashboard, "alerts", "Alerts")
    manager.get_by_text("Acknowledge or mute").first.wait_for(timeout=TIMEOUT_MS)
    _screenshot(manager, "alerts")
    store = SqliteAlertStore(dashboard.data_dir / "alerts.sqlite")
    rules = set(store.fetch_alerts()["rule"])
    assert {"pacing", "fatigue", "anomaly"} <= rules, rules
    first = store.fetch_alerts().iloc[0]["key"]  # the selectbox starts on the first listed alert
    manager.get_by_role("button", name="Acknowledge").click()
    wait_for(
        lambda: store.fetch_alerts().set_index("key").loc[first, "acknowledged_by"] == "manager",
        30,
        "the acknowledgement in alerts.sqlite",
    )
    _settled(manager)
    _assert_no_exception(manager)
