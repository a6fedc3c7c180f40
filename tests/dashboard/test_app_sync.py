"""The Sync page: Sync now requests in the control channel, their progress and report, the worker's
heartbeat, run history and (for admins) sync health."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

import pytest

from insights_core.control import ControlChannel
from insights_core.engine import new_failed_report
from insights_core.models import SyncRequest
from insights_core.settings import Settings
from insights_core.sources.stub_accounts import stub_account
from insights_core.worker import SyncWorker
from tests.dashboard.app_harness import CAMPAIGN, assert_clean, open_page, texts, use_data_dir
from tests.dashboard.markdown_text import shown_texts, unescape
from tests.dashboard_data import build_stub_data_dir
from tests.helpers import PYTHON, ROOT, SMALL_SHAPE, make_settings, subprocess_env

pytestmark = pytest.mark.usefixtures("entrypoint_runs_every_time")


def fill_sync_form(at, days: str = "3", entity_type: str = "", ids: str = "", force: bool = False):  # type: ignore[no-untyped-def]
    at.text_input(key="sync_days_back").input(days)
    at.selectbox(key="sync_entity_type").set_value(entity_type)
    at.text_area(key="sync_entity_ids").input(ids)
    at.checkbox(key="sync_force").set_value(force)
    return next(b for b in at.button if b.label == "Sync now").click().run()


def test_manager_sync_now_creates_a_request(settings: Settings) -> None:
    at = open_page("manager", "pages/sync.py")
    assert_clean(at)
    fill_sync_form(at, days="3", entity_type="campaign", ids=CAMPAIGN, force=True)
    assert_clean(at)
    requests = ControlChannel(settings.control_db_path).fetch_recent_requests()
    assert len(requests) == 1
    record = requests[0]
    assert record.status == "pending" and record.requested_by == "manager"
    assert record.request == SyncRequest(
        sync_type="manual",
        days_back=3,
        entity_type="campaign",
        entity_ids=(CAMPAIGN,),
        force=True,
        request_id=record.id,
        requested_by="manager",
    )
    page = texts(at)
    assert f"Request #{record.id}" in page and "the worker is not running" in page


def test_the_same_request_twice_follows_the_first(settings: Settings) -> None:
    at = open_page("admin", "pages/sync.py")
    fill_sync_form(at, days="5")
    fill_sync_form(at, days="5")
    assert len(ControlChannel(settings.control_db_path).fetch_recent_requests()) == 1
    assert any("already queued or running" in i.value for i in at.info)


@pytest.mark.parametrize(
    ("days", "entity_type", "ids", "message"),
    [
        ("999", "", "", "days back must be from 1 to 365"),
        ("0", "", "", "days back must be from 1 to 365"),
        ("a week", "", "", "days back must be a whole number"),
        ("3", "campaign", "1; DROP TABLE campaigns", "is not a Meta object id"),
        ("3", "", CAMPAIGN, "entity ids need an entity type"),
        ("3", "adset", "", "needs at least one entity id"),
    ],
)
def test_bad_sync_now_input_gets_a_message_and_no_request(
    settings: Settings, days: str, entity_type: str, ids: str, message: str
) -> None:
    at = open_page("manager", "pages/sync.py")
    fill_sync_form(at, days=days, entity_type=entity_type, ids=ids)
    assert not at.exception
    assert len(at.error) == 1 and message in unescape(at.error[0].value)
    assert ControlChannel(settings.control_db_path).fetch_recent_requests() == []


def test_progress_while_the_worker_runs_the_request(settings: Settings) -> None:
    at = open_page("manager", "pages/sync.py")
    fill_sync_form(at, days="2")
    control = ControlChannel(settings.control_db_path)
    request_id = control.claim_next_request(settings.max_days_back).request_id  # the worker picked it up
    control.save_request_progress(
        request_id,
        "sync-1",
        {
            "sync_id": "sync-1",
            "message": "ads of act_1000000000001",
            "rows_read": 1234,
            "levels": {
                "campaign": {"done": 6, "total": 6},
                "adset": {"done": 9, "total": 18},
                "ad": {"done": 0, "total": 36},
            },
        },
    )
    at.run()
    assert_clean(at)
    bars = [p.proto.text for p in at.get("progress")]
    assert bars == ["campaigns: 6 of 6", "adsets: 9 of 18", "ads: 0 of 36"]
    assert "ads of act_1000000000001" in shown_texts(at) and "1,234 rows read so far" in texts(at)


def test_report_after_the_worker_finished(settings: Settings) -> None:
    at = open_page("admin", "pages/sync.py")
    fill_sync_form(at, days="2", entity_type="campaign", ids=CAMPAIGN)
    control = ControlChannel(settings.control_db_path)
    request = control.claim_next_request(settings.max_days_back)
    worker = SyncWorker(settings)  # what the worker loop does with a claimed request
    try:
        report = worker.run_once(request)
    finally:
        worker.close()
    assert report.request_id == request.request_id and report.requested_by == "admin"  # the report echoes it
    control.finish_request(request.request_id, report)
    at.run()
    assert_clean(at)
    assert any("Sync succeeded" in s.value for s in at.success)
    counts = next(
        d.value for d in at.dataframe if list(d.value.columns) == ["Level", "Processed", "Succeeded", "Errors"]
    )
    assert counts.to_dict("records") == [
        {"Level": "campaigns", "Processed": 1, "Succeeded": 1, "Errors": 0},
        {"Level": "adsets", "Processed": 3, "Succeeded": 3, "Errors": 0},
        {"Level": "ads", "Processed": 6, "Succeeded": 6, "Errors": 0},
    ]
    assert {"sync_report_counts_download_csv", "sync_report_counts_download_xlsx"} <= {
        b.key for b in at.get("download_button")
    }
    assert report.sync_id in shown_texts(at)
    # the history comes from the new snapshot the worker published
    history = next(d.value for d in at.dataframe if "Sync id" in d.value.columns)
    assert report.sync_id in set(history["Sync id"]) and len(history) == 2


def test_a_request_the_worker_refused_shows_its_error(settings: Settings) -> None:
    at = open_page("manager", "pages/sync.py")
    fill_sync_form(at, days="2")
    control = ControlChannel(settings.control_db_path)
    request_id = control.claim_next_request(settings.max_days_back).request_id
    control.finish_request(request_id, None, error="unknown campaign id: 42")
    at.run()
    assert any("unknown campaign id: 42" in unescape(e.value) for e in at.error)


def test_a_sync_that_failed_before_reading_days_never_says_none(settings: Settings) -> None:
    at = open_page("manager", "pages/sync.py")
    fill_sync_form(at, days="2")
    control = ControlChannel(settings.control_db_path)
    request = control.claim_next_request(settings.max_days_back)
    control.finish_request(
        request.request_id, new_failed_report(request, "stub", "the warehouse cannot be opened: disk")
    )
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    failed = [unescape(e.value) for e in at.error if "Sync failed" in unescape(e.value)]
    assert failed and "None" not in failed[0] and "no days read" in failed[0], failed


NEW_CAMPAIGN = "120210000000000007"
"""The source's 7th campaign: created after the last publish, so the snapshot (6 campaigns) lacks it."""
UNKNOWN = "424242"


def run_cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = subprocess_env(
        settings.data_dir,
        INSIGHTS_STUB_CAMPAIGNS="7",
        INSIGHTS_STUB_ADSETS_PER_CAMPAIGN="3",
        INSIGHTS_STUB_ADS_PER_ADSET="2",
    )
    return subprocess.run(
        [PYTHON, str(ROOT / "sync_worker.py"), "--once", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=settings.data_dir.parent,
    )


def test_sync_now_and_the_cli_accept_and_refuse_the_same_ids(settings: Settings) -> None:
    at = open_page("manager", "pages/sync.py")
    fill_sync_form(at, days="2", entity_type="campaign", ids=NEW_CAMPAIGN)
    fill_sync_form(at, days="2", entity_type="campaign", ids=f"{CAMPAIGN},{UNKNOWN}")
    assert not at.error, [e.value for e in at.error]  # well-formed: both are queued
    control = ControlChannel(settings.control_db_path)
    worker = SyncWorker(make_settings(settings.data_dir, **{**SMALL_SHAPE, "stub_campaigns": 7}))
    try:
        assert worker._serve_one_request() and worker._serve_one_request()  # what the worker loop does
    finally:
        worker.close()
    new, mixed = sorted(control.fetch_recent_requests(), key=lambda r: r.id)
    assert new.status == "succeeded" and new.report["campaigns"] == {"processed": 1, "success": 1, "errors": 0}
    assert mixed.status == "failed" and mixed.report["errors"] == [f"unknown campaign id: {UNKNOWN}"]
    assert mixed.report["entity_ids"] == [CAMPAIGN, UNKNOWN] and mixed.report["requested_by"] == "manager"
    at.run()
    assert not at.exception
    assert any(f"unknown campaign id: {UNKNOWN}" in c.value for c in at.code), "the report's error lines"
    # the CLI, on the same source, decides the same
    accepted = run_cli(settings, "--days-back", "2", "--entity-type", "campaign", "--entity-ids", NEW_CAMPAIGN)
    assert accepted.returncode == 0, accepted.stderr
    refused = run_cli(
        settings, "--days-back", "2", "--entity-type", "campaign", "--entity-ids", f"{CAMPAIGN},{UNKNOWN}"
    )
    assert refused.returncode == 2 and f"unknown campaign id: {UNKNOWN}" in refused.stderr


def test_worker_heartbeat_in_plain_words(settings: Settings) -> None:
    control = ControlChannel(settings.control_db_path)
    at = open_page("manager", "pages/sync.py")
    assert "never run on this data directory" in texts(at)
    started = dt.datetime.now(dt.timezone.utc)
    control.save_heartbeat(
        mode="stub",
        state="idle",
        started_at=started,
        interval_minutes=30,
        sync_enabled=True,
        next_run_at=started + dt.timedelta(minutes=30),
    )
    at.run()
    assert "Sync worker running: idle, stub mode" in texts(at) and "every 30 min" in texts(at)
    control.save_heartbeat(mode="stub", state="stopped", started_at=started, interval_minutes=30, sync_enabled=True)
    at.run()
    assert "The sync worker is not running" in texts(at)


def test_sync_health_is_for_admins_only(settings: Settings) -> None:
    admin = open_page("admin", "pages/sync.py")
    assert_clean(admin)
    assert "Sync health" in [h.value for h in admin.subheader]
    assert len(admin.get("plotly_chart")) == 4  # duration, error rate, rate-limit hits per hour, coverage
    manager = open_page("manager", "pages/sync.py")
    assert "Sync health" not in [h.value for h in manager.subheader]
    assert not manager.get("plotly_chart")


def test_sync_alerts_show_on_the_sync_page_and_the_overview(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = build_stub_data_dir(
        tmp_path / "errors", days_back=3, syncs=2, require_success=False, stub_error_rate=0.25
    )
    use_data_dir(monkeypatch, settings.data_dir)
    for path in ("pages/sync.py", "pages/overview.py"):
        at = open_page("admin", path)
        assert_clean(at)
        assert any("could not read" in w.value for w in at.warning), path


def test_run_history_names_each_runs_accounts_and_embedded_mode_has_no_lake_maintenance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = stub_account(0), stub_account(1)
    build_stub_data_dir(tmp_path / "data", days_back=2)  # one account, then a second one is added
    build_stub_data_dir(tmp_path / "data", days_back=2, stub_accounts=2)
    use_data_dir(monkeypatch, tmp_path / "data", INSIGHTS_STUB_ACCOUNTS="2")
    at = open_page("admin", "pages/sync.py")
    assert_clean(at)
    history = next(d.value for d in at.dataframe if "Sync id" in d.value.columns)
    assert history["Accounts"].tolist() == [
        f"{first.account_id} ({first.name}), {second.account_id} ({second.name})",  # newest first
        f"{first.account_id} ({first.name})",
    ]
    headings = [h.value for h in at.subheader]
    assert "Sync health" in headings and "Lake maintenance" not in headings
