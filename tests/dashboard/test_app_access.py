"""Login, logout, roles and the re-login cookie, driven headless through app.py."""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import jwt
import pytest
from streamlit.runtime.context import ContextProxy
from streamlit.testing.v1 import AppTest

from insights_core import auth
from insights_core.dashboard.login import USER_KEY
from insights_core.roles import PAGES
from tests.dashboard.app_harness import assert_clean, new_app, open_page, texts, use_data_dir
from tests.helpers import ROOT

KEY = "test-cookie-key-" + "x" * 32


pytestmark = pytest.mark.usefixtures("entrypoint_runs_every_time", "app_on_data_dir")
STUB_DAYS_BACK = 35
APP_ENV = {"INSIGHTS_COOKIE_KEY": KEY}


def log_in(at, username: str, password: str):  # type: ignore[no-untyped-def]
    at.text_input[0].input(username)
    at.text_input[1].input(password)
    return at.button[0].click().run()


def nav_titles(at) -> list[str]:  # type: ignore[no-untyped-def]
    """Titles of the pages this session's navigation registered (AppTest refuses to switch to any other)."""
    titles = []
    for page in PAGES:
        try:
            at.switch_page(page.path)
        except ValueError:
            continue
        titles.append(page.title)
    return titles


def test_logged_out_visitors_get_only_the_login_form(data_dir: Path) -> None:
    at = new_app()
    at.run()
    assert_clean(at)
    assert [t.value for t in at.title] == ["Meta Insights"]
    assert [t.label for t in at.text_input] == ["Username", "Password"]
    assert "password **demo**" in at.info[0].value
    with pytest.raises(ValueError, match="Could not find a navigation page for .*pages/overview.py"):
        at.switch_page("pages/overview.py")  # no page file is registered before login, only the login form


def test_demo_user_logs_in_with_the_form_and_gets_their_pages(data_dir: Path) -> None:
    at = new_app()
    at.run()
    log_in(at, "manager", "demo")
    assert_clean(at)
    assert [t.value for t in at.title] == ["Overview"]
    assert at.session_state[USER_KEY] == {"username": "manager", "name": "Demo Manager", "role": "manager"}
    assert any("Demo Manager" in m.value for m in at.sidebar.markdown)


def test_wrong_password_is_refused(data_dir: Path) -> None:
    at = new_app()
    at.run()
    log_in(at, "viewer", "not the password")
    assert "incorrect" in at.error[0].value
    assert [t.value for t in at.title] == ["Meta Insights"]


def test_failed_logins_lock_the_user_out_across_sessions(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> None:
    monkeypatch.setenv("INSIGHTS_LOGIN_MAX_ATTEMPTS", "3")
    for _ in range(3):
        at = new_app()  # a new session each time: the count is shared, not per session
        at.run()
        log_in(at, "analyst", "guess")
        assert "incorrect" in at.error[0].value
    at = new_app()
    at.run()
    log_in(at, "analyst", "demo")
    assert "Too many failed logins" in at.error[0].value
    assert [t.value for t in at.title] == ["Meta Insights"]
    log_in(at, "viewer", "demo")  # other users are not affected
    assert [t.value for t in at.title] == ["Overview"]


def test_logout_ends_the_session_and_revokes_cookies(data_dir: Path) -> None:
    at = new_app("analyst")
    at.run()
    assert [t.value for t in at.title] == ["Overview"]
    before = time.time()
    at.button(key="mi_logout").click().run()
    assert_clean(at)
    assert [t.value for t in at.title] == ["Meta Insights"]
    assert USER_KEY not in at.session_state
    assert auth.fetch_logouts(data_dir)["analyst"] >= before


@pytest.mark.parametrize(
    ("role", "pages"),
    [
        (
            "admin",
            ["Overview", "Campaign", "Ad set", "Ad", "Timeline", "Pacing", "Forecast", "Alerts", "Sync", "Users"],
        ),
        ("manager", ["Overview", "Campaign", "Ad set", "Ad", "Timeline", "Pacing", "Forecast", "Alerts", "Sync"]),
        ("analyst", ["Overview", "Campaign", "Ad set", "Ad", "Timeline", "Pacing", "Forecast", "Alerts"]),
        ("viewer", ["Overview", "Campaign", "Ad set", "Ad", "Timeline", "Pacing", "Forecast", "Alerts"]),
    ],
)
def test_navigation_follows_the_role(role: str, pages: list[str]) -> None:
    at = new_app(role)
    at.run()
    assert nav_titles(at) == pages


@pytest.mark.parametrize("role", ["viewer", "analyst"])
def test_sync_page_is_not_in_the_navigation_of_roles_without_sync(role: str) -> None:
    at = new_app(role)
    at.run()
    assert_clean(at)
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page("pages/sync.py")  # a URL to it falls back to the default page
    at.switch_page("pages/overview.py").run()
    assert not any(b.label == "Sync now" for b in at.button)


@pytest.mark.parametrize(
    ("role", "page"), [("viewer", "sync"), ("analyst", "sync"), ("manager", "users"), ("viewer", "users")]
)
def test_page_guard_stops_a_page_run_without_the_app(role: str, page: str) -> None:
    at = AppTest.from_file(str(ROOT / "pages" / f"{page}.py"), default_timeout=30)
    at.session_state[USER_KEY] = {"username": role, "name": role, "role": role}
    at.run()
    assert [e.value for e in at.error] == ["You do not have access to this page."]
    assert not at.title and not at.get("form") and not at.dataframe


@pytest.mark.parametrize("page", ["overview", "sync", "users"])
def test_a_page_run_without_login_asks_to_log_in(page: str) -> None:
    at = AppTest.from_file(str(ROOT / "pages" / f"{page}.py"), default_timeout=30)
    at.run()
    assert not at.exception
    assert [e.value for e in at.error] == ["Log in first."]
    assert not at.title and not at.metric and not at.dataframe


def test_analyst_sees_exports_and_no_sync() -> None:
    at = open_page("analyst", "pages/overview.py")
    assert_clean(at)
    keys = {b.key for b in at.get("download_button")}
    assert {"overview_campaigns_download_csv", "overview_campaigns_download_xlsx", "overview_export_csv"} <= keys
    assert "Sync" not in nav_titles(at)
    assert "Sync page" not in texts(at)


def test_viewer_sees_no_exports() -> None:
    at = open_page("viewer", "pages/overview.py")
    assert_clean(at)
    assert not at.get("download_button")
    assert not any(e.label.startswith("Export") for e in at.expander)


def test_a_user_removed_from_the_file_is_logged_out(data_dir: Path) -> None:
    at = new_app("ghost")
    at.run()
    assert_clean(at)
    assert [t.value for t in at.title] == ["Meta Insights"]
    assert at.session_state["authentication_status"] is None


def with_cookie(monkeypatch: pytest.MonkeyPatch, token: str) -> None:
    monkeypatch.setattr(ContextProxy, "cookies", property(lambda self: {"meta_insights_auth": token}))


def password_hash(data_dir: Path, username: str) -> str:
    """A demo user's hash; the demo users file is written here when no app run has written it yet."""
    auth.ensure_demo_auth_config(data_dir / "auth.yaml")
    return auth.load_auth_config(data_dir / "auth.yaml").users[username].password_hash


def test_a_genuine_cookie_logs_the_user_in(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> None:
    token, _ = auth.mint_login_cookie("manager", password_hash(data_dir, "manager"), KEY, 7, time.time() - 5)
    with_cookie(monkeypatch, token)
    at = new_app()
    at.run()
    assert_clean(at)
    assert [t.value for t in at.title] == ["Overview"]
    assert at.session_state[USER_KEY]["role"] == "manager"


@pytest.mark.parametrize("forger", ["default key", "no iat", "expired", "unknown user", "old password", "device"])
def test_forged_or_stale_cookies_are_ignored(monkeypatch: pytest.MonkeyPatch, data_dir: Path, forger: str) -> None:
    now = time.time()
    fingerprint = auth.password_fingerprint(password_hash(data_dir, "admin"), KEY)
    claims = {"username": "admin", "exp_date": now + 86400, "iat": now - 5, "pwd": fingerprint}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        token = {
            "default key": lambda: jwt.encode(claims, auth.LIBRARY_DEFAULT_COOKIE_KEY, algorithm="HS256"),
            "no iat": lambda: jwt.encode({"username": "admin", "exp_date": now + 86400}, KEY, algorithm="HS256"),
            "expired": lambda: jwt.encode({**claims, "exp_date": now - 1}, KEY, algorithm="HS256"),
            "unknown user": lambda: jwt.encode({**claims, "username": "mallory"}, KEY, algorithm="HS256"),
            "old password": lambda: auth.mint_login_cookie(
                "admin", auth.hash_password("demo", rounds=4), KEY, 7, now - 5
            )[0],
            "device": lambda: auth.mint_device_cookie("admin", KEY, now - 5)[0],
        }[forger]()
    with_cookie(monkeypatch, token)
    at = new_app()
    at.run()
    assert_clean(at)
    assert [t.value for t in at.title] == ["Meta Insights"]
    assert at.session_state["authentication_status"] is None


def test_a_cookie_issued_before_logout_is_refused(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> None:
    token, _ = auth.mint_login_cookie("viewer", password_hash(data_dir, "viewer"), KEY, 7, time.time() - 60)
    auth.save_logout(data_dir, "viewer", time.time() - 30)
    with_cookie(monkeypatch, token)
    at = new_app()
    at.run()
    assert [t.value for t in at.title] == ["Meta Insights"]


def test_stub_mode_generates_a_cookie_key_when_none_is_set(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("INSIGHTS_COOKIE_KEY")
    use_data_dir(monkeypatch, tmp_path / "fresh")
    at = new_app()
    at.run()
    assert_clean(at)
    key = (tmp_path / "fresh" / auth.COOKIE_KEY_FILE).read_text().strip()
    assert len(key) >= auth.MIN_COOKIE_KEY_LENGTH
    assert sorted(auth.load_auth_config(tmp_path / "fresh" / "auth.yaml").users) == [
        "admin",
        "analyst",
        "manager",
        "viewer",
    ]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"INSIGHTS_COOKIE_KEY": "some_key"}, "some_key"),
        ({"META_INSIGHTS_MODE": "live", "INSIGHTS_COOKIE_KEY": ""}, "live mode needs INSIGHTS_COOKIE_KEY"),
        ({"META_INSIGHTS_MODE": "live"}, "live mode refuses demo users"),
        ({"META_INSIGHTS_MODE": "live", "INSIGHTS_AUTH_CONFIG": "/nonexistent/auth.yaml"}, "no users file"),
    ],
)
def test_unsafe_configuration_stops_the_app_with_the_fix(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, env: dict[str, str], message: str
) -> None:
    data = tmp_path / "data"
    auth.ensure_demo_auth_config(data / "auth.yaml")  # as a stub run would have left it
    use_data_dir(monkeypatch, data, **env)
    at = new_app("admin")
    at.run()
    assert not at.exception
    assert len(at.error) == 1 and message in at.error[0].value
    assert "cannot start" in at.error[0].value
    assert not at.title


def test_live_mode_starts_with_real_users_and_a_secret_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    data = tmp_path / "data"
    auth.save_auth_config(
        auth.AuthConfig(
            {"ops": auth.User("ops", "Ops", "", ("admin",), auth.hash_password("long password", rounds=10))}
        ),
        data / "auth.yaml",
    )
    use_data_dir(monkeypatch, data, META_INSIGHTS_MODE="live", INSIGHTS_COOKIE_KEY="")
    at = new_app()
    at.secrets["auth"] = {"cookie_key": KEY}
    at.run()
    assert_clean(at)
    assert [t.value for t in at.title] == ["Meta Insights"]
    assert not at.info  # no demo hint in live mode
    log_in(at, "ops", "long password")
    assert [t.value for t in at.title] == ["Overview"]
