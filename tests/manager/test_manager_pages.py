"""The Pacing, Forecast and Alerts pages, headless (AppTest) on a stub data dir with the planted shapes:
what each shows, who may acknowledge and mute, and that viewers only read."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from insights_core.manager.alert_store import EvaluationLog, SqliteAlertStore, open_alert_store
from insights_core.settings import Settings
from tests.dashboard.app_harness import assert_clean, open_page, texts, use_data_dir
from tests.dashboard_data import build_stub_data_dir
from tests.manager.stub_frames import ALL_SCENARIOS

pytestmark = pytest.mark.usefixtures("entrypoint_runs_every_time")
OVERPACING_NAME = "Video Views · Sales #3"
"""The first active campaign with a campaign daily budget (tests/manager/test_detectors.OVERPACING)."""


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return build_stub_data_dir(
        tmp_path_factory.mktemp("manager_pages") / "data", days_back=120, stub_scenarios=ALL_SCENARIOS
    )


@pytest.fixture(autouse=True)
def _app_on_planted(planted: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    use_data_dir(monkeypatch, planted.data_dir)


def test_pacing_lists_the_worst_deviation_first(planted: Settings) -> None:
    at = open_page("viewer", "pages/pacing.py")
    assert_clean(at)
    assert [t.value for t in at.title] == ["Pacing"]
    table = at.dataframe[0].value
    paced = table[table["Deviation"] != "—"]
    deviations = [abs(int(d.rstrip("%"))) for d in paced["Deviation"]]
    assert deviations == sorted(deviations, reverse=True)  # worst first, in either direction
    over = list(table.loc[table["Status"] == "over", "Name"])
    assert OVERPACING_NAME in over
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Over pace"] == str(len(over))
    # both kinds of budget are paced, each over its own period
    assert table["Budget"].str.endswith(" a day").any() and table["Budget"].str.endswith(" lifetime").any()
    lifetime = table[table["Budget"].str.endswith(" lifetime")].iloc[0]
    assert " – " in lifetime["Period"] and lifetime["Status"] in ("on pace", "under", "over")
    assert "A lifetime budget without a stop time cannot be paced" in texts(at)
    assert len(at.get("download_button")) == 0  # viewers do not export


def test_forecast_shows_the_chart_with_its_backtest(planted: Settings) -> None:
    at = open_page("analyst", "pages/forecast.py")
    assert_clean(at)
    assert len(at.get("plotly_chart")) == 1
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["MAPE"].endswith("%") and metrics["80% interval held"].endswith("%")
    assert "ETS(A,N,A)" in texts(at)
    at.slider(key="forecast_horizon").set_value(30).run()
    assert_clean(at)
    assert len(at.dataframe[0].value) == 30
    at.selectbox(key="forecast_scope").set_value("120210000000000002").run()
    at.radio(key="forecast_metric").set_value("revenue").run()
    assert_clean(at)
    assert len(at.get("plotly_chart")) == 1 and len(at.dataframe[0].value) == 30


def test_forecast_says_when_history_is_too_short(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    short = build_stub_data_dir(tmp_path / "short", days_back=20)
    use_data_dir(monkeypatch, short.data_dir)
    at = open_page("viewer", "pages/forecast.py")
    assert_clean(at)
    page = texts(at)
    assert "No forecast: 20 days of history; forecasts need at least 56." in page
    assert "No backtest: 20 days of history; a backtest needs at least 70." in page
    assert len(at.get("plotly_chart")) == 0


def test_alerts_list_and_a_manager_acknowledges_and_mutes(planted: Settings) -> None:
    at = open_page("manager", "pages/alerts.py")
    assert_clean(at)
    assert re.match(r"Rules last evaluated \d{4}-\d\d-\d\d \d\d:\d\d UTC after sync ", at.caption[0].value)
    table = at.dataframe[0].value
    assert {"pacing", "fatigue", "anomaly"} <= set(table["Rule"])
    store = open_alert_store(planted)
    first = store.fetch_alerts().iloc[0]["key"]
    at.selectbox(key="alerts_pick").set_value(first).run()
    at.button(key="alerts_ack").click().run()
    assert_clean(at)
    acknowledged = store.fetch_alerts().set_index("key").loc[first]
    assert acknowledged["acknowledged_by"] == "manager"
    at.button(key="alerts_mute").click().run()
    assert store.fetch_alerts().set_index("key").loc[first, "muted_by"] == "manager"
    assert "muted until" in " ".join(at.dataframe[0].value["Status"])
    at.button(key="alerts_unmute").click().run()
    assert store.fetch_alerts().set_index("key").loc[first, "muted_until"] is None


def test_viewers_read_alerts_but_cannot_change_them(planted: Settings) -> None:
    at = open_page("viewer", "pages/alerts.py")
    assert_clean(at)
    assert len(at.dataframe[0].value) > 0
    assert not [b for b in at.button if b.key in ("alerts_ack", "alerts_mute", "alerts_unmute")]
    assert "Delivery failures" in texts(at)


def test_the_sync_health_section_lists_failed_deliveries(tmp_path: Path) -> None:
    import datetime as dt

    from streamlit.testing.v1 import AppTest

    from insights_core.manager.rules import Finding

    path = tmp_path / "data" / "alerts.sqlite"
    store = SqliteAlertStore(path)
    now = dt.datetime(2026, 11, 20, tzinfo=dt.timezone.utc)
    store.save_findings([Finding("sync:x", "sync", "error", "x")], now, EvaluationLog("sync-1", 0.25, 1))
    store.save_delivery("webhook", "sync:x", False, 4, "the webhook could not be reached: refused", now)

    def section(data_dir: str) -> None:
        from pathlib import Path

        from insights_core.manager.views import render_alert_delivery_health
        from tests.helpers import make_settings

        render_alert_delivery_health(make_settings(Path(data_dir)))

    at = AppTest.from_function(section, args=(str(path.parent),)).run()
    assert not at.exception
    assert "1 recent alert deliveries failed" in at.warning[0].value
    assert at.caption[0].value == "Rules last evaluated 2026-11-20 00:00 UTC (0.25 s, 1 findings)."
    assert list(at.dataframe[0].value["error"]) == ["the webhook could not be reached: refused"]
