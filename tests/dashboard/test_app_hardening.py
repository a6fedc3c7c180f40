"""The dashboard under hostile input and broken files: forbidden pages, bad deep links, non-ASCII digits,
damaged snapshots and control databases. Each fault gets one clear line, never a traceback box."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from streamlit.util import calc_hash

from insights_core.control import ControlChannel
from insights_core.models import SyncRequest
from insights_core.roles import PAGES, ROLES, forbidden_pages_for, pages_for
from insights_core.settings import Settings
from insights_core.worker import SyncWorker
from tests.dashboard.app_harness import AD, CAMPAIGN, new_app, open_page, use_data_dir
from tests.dashboard.markdown_text import unescape
from tests.dashboard_data import build_stub_data_dir

pytestmark = pytest.mark.usefixtures("entrypoint_runs_every_time")

NO_ACCESS = "You do not have access to this page."


@pytest.fixture(scope="module")
def shared_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("app_hardening") / "data"
    build_stub_data_dir(path, days_back=20)
    return path


@pytest.fixture
def shared(monkeypatch: pytest.MonkeyPatch, shared_dir: Path) -> Path:
    use_data_dir(monkeypatch, shared_dir)
    return shared_dir


def open_url_path(role: str, url_path: str) -> AppTest:
    """Log in as `role`, then ask for `/<url_path>` as a browser does (by the page's hash, not its file)."""
    at = new_app(role)
    at.run()
    at._page_hash = calc_hash(url_path)  # what the frontend sends for a typed URL; AppTest has no public way
    return at.run()


def errors(at: AppTest) -> list[str]:
    return [unescape(e.value) for e in at.error]


# point 9: a forbidden page says so


@pytest.mark.parametrize(
    ("role", "url_path"), [("viewer", "sync"), ("analyst", "sync"), ("manager", "users"), ("viewer", "users")]
)
def test_a_forbidden_url_says_no_access(shared: Path, role: str, url_path: str) -> None:
    at = open_url_path(role, url_path)
    assert not at.exception
    assert errors(at) == [NO_ACCESS]
    assert not at.get("form") and not at.dataframe and not at.metric  # nothing of the page ran


@pytest.mark.parametrize("role", [*ROLES, "intruder", None])
def test_every_page_is_either_allowed_or_forbidden_for_a_role(role: str | None) -> None:
    allowed, forbidden = pages_for(role), forbidden_pages_for(role)
    assert sorted(p.key for p in allowed + forbidden) == sorted(p.key for p in PAGES)
    assert not set(allowed) & set(forbidden)


def test_an_allowed_url_still_opens_its_page(shared: Path) -> None:
    at = open_url_path("manager", "sync")
    assert not at.exception and not at.error
    assert [t.value for t in at.title] == ["Sync"]


# point 10: a bad entity type in a timeline link keeps being refused


def test_an_unknown_entity_type_in_the_link_is_refused_on_every_rerun(shared: Path) -> None:
    at = open_page("viewer", "pages/timeline.py", {"entity_type": "bogus", "entity_id": CAMPAIGN, "days": "7"})
    for _ in range(3):
        assert not at.exception
        assert any("entity type must be one of" in e for e in errors(at)), errors(at)
        assert not at.header and not at.get("plotly_chart")  # not silently shown as a campaign
        assert at.query_params.get("entity_type") == "bogus"
        at.run()


def test_picking_a_type_after_a_bad_link_opens_the_entity(shared: Path) -> None:
    at = open_page("viewer", "pages/timeline.py", {"entity_type": "bogus", "entity_id": AD, "days": "7"})
    at.selectbox(key="timeline_level").set_value("ad").run()
    assert not at.exception and not at.error, errors(at)
    assert at.query_params["entity_type"] == "ad" and at.header


# point 7 (dashboard): ids and days are ASCII digits only

UNICODE_DIGITS = ["١٢٣", "１２３", "१२३", "12٣"]


@pytest.mark.parametrize("digits", UNICODE_DIGITS)
@pytest.mark.parametrize(("page", "param"), [("campaign", "campaign_id"), ("adset", "adset_id"), ("ad", "ad_id")])
def test_unicode_digits_in_an_id_link_are_refused(shared: Path, page: str, param: str, digits: str) -> None:
    at = open_page("viewer", f"pages/{page}.py", {param: digits})
    assert not at.exception
    assert any("digits 0-9" in e for e in errors(at)), errors(at)
    assert not at.header


@pytest.mark.parametrize("digits", UNICODE_DIGITS)
def test_unicode_digits_typed_in_the_timeline_are_refused(shared: Path, digits: str) -> None:
    at = open_page("viewer", "pages/timeline.py", {"entity_type": "ad", "entity_id": AD, "days": "7"})
    at.text_input(key="timeline_id").input(digits).run()
    assert any("digits 0-9" in e for e in errors(at)), errors(at)
    at.text_input(key="timeline_id").input(AD).run()
    at.text_input(key="timeline_days").input(digits).run()  # 123 days, had they been ASCII
    assert not at.exception
    assert any("digits 0-9" in e for e in errors(at)), errors(at)
    assert not at.header


@pytest.mark.parametrize(
    ("days", "ids"),
    [("７", ""), ("٣", ""), ("3", "１２０２１００００００００００００００１"), ("3", f"{CAMPAIGN},١٢٣")],
)
def test_unicode_digits_in_sync_now_are_refused_and_nothing_is_queued(settings: Settings, days: str, ids: str) -> None:
    at = open_page("manager", "pages/sync.py")
    at.text_input(key="sync_days_back").input(days)
    at.selectbox(key="sync_entity_type").set_value("campaign" if ids else "")
    at.text_area(key="sync_entity_ids").input(ids)
    next(b for b in at.button if b.label == "Sync now").click().run()
    assert not at.exception
    assert any("digits 0-9" in e for e in errors(at)), errors(at)
    assert ControlChannel(settings.control_db_path).fetch_recent_requests() == []


# point 6: a broken snapshot or control database


def _generation(settings: Settings) -> Path:
    return settings.current_snapshot_link.resolve()


def _garbage(settings: Settings) -> None:
    _generation(settings).write_bytes(b"not a database at all " * 500)


def _truncated(settings: Settings) -> None:
    target = _generation(settings)
    size = target.stat().st_size
    with target.open("r+b") as handle:
        handle.truncate(size // 3)


def _empty_file(settings: Settings) -> None:
    _generation(settings).write_bytes(b"")


def _missing_target(settings: Settings) -> None:
    _generation(settings).unlink()


def _link_to_a_directory(settings: Settings) -> None:
    target = _generation(settings)
    target.unlink()
    target.mkdir()


SNAPSHOT_FAULTS = {
    "garbage": _garbage,
    "truncated": _truncated,
    "empty": _empty_file,
    "missing": _missing_target,
    "directory": _link_to_a_directory,
}


def _publish_again(settings: Settings) -> None:
    worker = SyncWorker(settings)
    try:
        worker.run_once(SyncRequest(days_back=2))
    finally:
        worker.close()


@pytest.mark.parametrize("fault", list(SNAPSHOT_FAULTS))
@pytest.mark.parametrize("page", ["overview", "campaign", "timeline", "sync"])
def test_a_broken_snapshot_gives_one_clear_line_and_the_next_publish_heals(
    settings: Settings, fault: str, page: str
) -> None:
    query = {
        "campaign": {"campaign_id": CAMPAIGN},
        "timeline": {"entity_type": "campaign", "entity_id": CAMPAIGN, "days": "7"},
    }.get(page)
    SNAPSHOT_FAULTS[fault](settings)  # before the first open: this process's DuckDB would keep an open file's data
    at = open_page("admin", f"pages/{page}.py", query)
    assert not at.exception, [e.value for e in at.exception]
    shown = errors(at) + [unescape(w.value) for w in (*at.warning, *at.info)]
    assert any("snapshot" in line for line in shown), shown
    assert len(at.error) <= 1
    _publish_again(settings)
    at.run()
    assert not at.exception and not at.error, (at.exception, errors(at))
    assert [t.value for t in at.title] == [page.title()]


def _control_garbage(settings: Settings) -> None:
    settings.control_db_path.write_bytes(b"this is not sqlite " * 500)
    for suffix in ("-wal", "-shm"):
        Path(f"{settings.control_db_path}{suffix}").unlink(missing_ok=True)


def _control_directory(settings: Settings) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{settings.control_db_path}{suffix}").unlink(missing_ok=True)
    settings.control_db_path.mkdir()


def _control_unreadable(settings: Settings) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads any file")
    settings.control_db_path.chmod(0)


def _control_missing(settings: Settings) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{settings.control_db_path}{suffix}").unlink(missing_ok=True)


CONTROL_FAULTS = {"garbage": _control_garbage, "directory": _control_directory, "unreadable": _control_unreadable}


@pytest.mark.parametrize("fault", list(CONTROL_FAULTS))
@pytest.mark.parametrize("when", ["before_open", "after_open"])
def test_a_broken_control_database_gives_one_clear_line(settings: Settings, fault: str, when: str) -> None:
    at = new_app("manager")
    if when == "before_open":
        ControlChannel(settings.control_db_path)
        CONTROL_FAULTS[fault](settings)
    at.run()
    at.switch_page("pages/sync.py")
    at.run()
    if when == "after_open":
        assert not at.exception and not at.error
        CONTROL_FAULTS[fault](settings)
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("control database" in e for e in errors(at)), errors(at)
    assert len(at.error) == 1
    assert any("Sync id" in d.value.columns for d in at.dataframe)  # the run history is still there
    # the rest of the dashboard does not need it
    at.switch_page("pages/overview.py").run()
    assert not at.exception and not at.error


def test_a_control_database_deleted_under_a_running_app_is_recreated(settings: Settings) -> None:
    at = open_page("manager", "pages/sync.py")
    assert not at.exception and not at.error
    _control_missing(settings)
    at.run()
    assert not at.exception and not at.error, errors(at)
    assert any("never run" in unescape(w.value) for w in at.warning)  # a new, empty channel: no heartbeat yet


def test_the_sync_page_heals_once_the_control_database_is_repaired(settings: Settings) -> None:
    _control_garbage(settings)
    at = open_page("manager", "pages/sync.py")
    assert any("control database" in e for e in errors(at))
    settings.control_db_path.unlink()
    at.run()
    assert not at.exception and not at.error, errors(at)
    assert any(b.label == "Sync now" for b in at.button)
