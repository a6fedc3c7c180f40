"""Sessions end when they must, lockouts slow guessing without locking the real user out, logout always works.

Each test has its own data dir (demo users, no insights: a logged-in page shows its title and an
"no data yet" note). A `Browser` is a cookie jar: AppTest sessions run "in" a browser read its
cookies through `st.context.cookies`, and after each run the browser fetches the cookie ticket the
page drew, from the server's own route (`cookie_handoff`), and keeps what its Set-Cookie headers
say, so two AppTests in one browser are two tabs, and two browsers are two people sharing one server.
"""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import bcrypt
import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient
from streamlit.runtime.context import ContextProxy
from streamlit.testing.v1 import AppTest

from insights_core import auth
from insights_core.auth_state import auth_state
from insights_core.auth_store import login_name_key
from insights_core.dashboard.cookie_handoff import cookie_routes, ticket_url
from insights_core.dashboard.login import PENDING_COOKIES_KEY
from insights_core.settings import load_settings
from tests.dashboard.app_harness import new_app, texts, use_data_dir

KEY = "test-cookie-key-" + "y" * 32
COOKIE = "meta_insights_auth"

pytestmark = pytest.mark.usefixtures("entrypoint_runs_every_time")


class Jars:
    """The browsers' cookie jars and which one the session running now belongs to."""

    def __init__(self) -> None:
        self.jars: dict[str, dict[str, str]] = {}
        self.active: dict[str, str] = {}
        self.server = TestClient(Starlette(routes=cookie_routes()))
        """The route the dashboard's server answers cookie tickets on."""


class Browser:
    def __init__(self, jars: Jars, name: str) -> None:
        self.jars = jars
        self.cookies = jars.jars.setdefault(name, {})
        self.at: AppTest | None = None

    def open(self, role: str | None = None, page: str | None = None) -> AppTest:
        """A new tab (a new session of the server), optionally already logged in as demo user `role`."""
        self.at = new_app(role)
        self.run()
        if page:
            self.at.switch_page(page)
            self.run()
        return self.at

    def run(self) -> AppTest:
        assert self.at is not None
        self.jars.active = self.cookies
        return self._settle(self.at.run())

    def log_in(self, username: str, password: str) -> AppTest:
        assert self.at is not None
        self.at.text_input[0].input(username)
        self.at.text_input[1].input(password)
        self.jars.active = self.cookies
        return self._settle(self.at.button[0].click().run())

    def log_out(self) -> AppTest:
        assert self.at is not None
        self.jars.active = self.cookies
        return self._settle(self.at.button(key="mi_logout").click().run())

    def _settle(self, at: AppTest) -> AppTest:
        """Fetch the cookie ticket the run drew, as the browser's image does (no rerun follows)."""
        ticket = at.session_state[PENDING_COOKIES_KEY] if PENDING_COOKIES_KEY in at.session_state else None  # noqa: SIM401  # AppTest state has no .get
        if ticket:
            answer = self.jars.server.get(ticket_url(ticket))
            assert answer.status_code == 200, answer.text
            for header in answer.headers.get_list("set-cookie"):
                name, value = header.split(";")[0].split("=", 1)
                assert "httponly" in header.lower() and "samesite=strict" in header.lower(), header
                if "max-age=0" in header.lower() or not value.strip('"'):
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = value
        return at

    @property
    def title(self) -> list[str]:
        assert self.at is not None
        return [t.value for t in self.at.title]


@pytest.fixture(params=["files", "postgres"])
def data_dir(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The data dir of a dashboard whose login state is in its files, or in PostgreSQL (INSIGHTS_STORE=ducklake)."""
    path = tmp_path / "data"
    env = {"INSIGHTS_COOKIE_KEY": KEY}
    if request.param == "postgres":
        env.update(
            INSIGHTS_STORE="ducklake",
            INSIGHTS_CATALOG_URL=request.getfixturevalue("catalog_url"),
            INSIGHTS_LAKE_DATA_PATH=str(tmp_path / "lake"),
        )
    use_data_dir(monkeypatch, path, **env)
    return path


def in_postgres() -> bool:
    return os.environ.get("INSIGHTS_STORE") == "ducklake"


@pytest.fixture
def jars(monkeypatch: pytest.MonkeyPatch) -> Jars:
    jars = Jars()
    monkeypatch.setattr(ContextProxy, "cookies", property(lambda self: dict(jars.active)))
    return jars


def cli(monkeypatch: pytest.MonkeyPatch, data_dir: Path, *args: str, stdin: str = "") -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    users_file = [] if in_postgres() else ["--config", str(data_dir / "auth.yaml")]
    return auth.main([*users_file, *args])


LOGIN_FORM = ["Meta Insights"]


# 3. logging out, changing a password and removing a user end sessions


def test_logging_out_ends_every_open_session_of_that_user(jars: Jars, data_dir: Path) -> None:
    laptop, phone, desk = Browser(jars, "laptop"), Browser(jars, "phone"), Browser(jars, "desk")
    laptop.open()
    laptop.log_in("manager", "demo")
    phone.open()
    phone.log_in("manager", "demo")
    phone.at.switch_page("pages/sync.py")
    phone.run()
    assert phone.title == ["Sync"]
    desk.open()
    desk.log_in("viewer", "demo")

    laptop.log_out()
    assert laptop.title == LOGIN_FORM
    phone.run()  # the open Sync page, at its next rerun
    assert phone.title == LOGIN_FORM
    assert "mi_user" not in phone.at.session_state
    phone.open()  # a new tab of the phone, with the phone's cookie
    assert phone.title == LOGIN_FORM
    desk.run()  # another user is not affected
    assert desk.title == ["Overview"]


def test_changing_a_password_ends_sessions_and_refuses_cookies_issued_before(
    jars: Jars, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    laptop, old_cookie = _analyst_logged_in_on_a_laptop(jars)
    assert cli(monkeypatch, data_dir, "set-password", "analyst", "--password-stdin", stdin="new password 42\n") == 0
    laptop.run()
    assert laptop.title == LOGIN_FORM
    _assert_cookies_refused(jars, old_cookie)
    laptop.log_in("analyst", "new password 42")
    assert laptop.title == ["Overview"]


def test_a_removed_user_added_back_gets_no_old_session_or_cookie_back(
    jars: Jars, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    laptop, old_cookie = _analyst_logged_in_on_a_laptop(jars)
    assert cli(monkeypatch, data_dir, "remove-user", "analyst") == 0
    assert (
        cli(
            monkeypatch,
            data_dir,
            "add-user",
            "analyst",
            "--role",
            "analyst",
            "--password-stdin",
            stdin="a brand new one\n",
        )
        == 0
    )
    laptop.run()  # the session never saw the removal: it ran again only once the name was back
    assert laptop.title == LOGIN_FORM
    _assert_cookies_refused(jars, old_cookie)


def _analyst_logged_in_on_a_laptop(jars: Jars) -> tuple[Browser, dict[str, str]]:
    """A logged-in tab and a copy of its browser's cookies (what a thief would take)."""
    laptop = Browser(jars, "laptop")
    laptop.open()
    laptop.log_in("analyst", "demo")
    assert laptop.title == ["Overview"] and laptop.cookies.get(COOKIE)
    return laptop, dict(laptop.cookies)


def _assert_cookies_refused(jars: Jars, cookies: dict[str, str]) -> None:
    thief = Browser(jars, "thief")
    thief.cookies.update(cookies)
    thief.open()
    assert thief.title == LOGIN_FORM


# 4. lockout: no denial of service, no user enumeration


def _fail(browser: Browser, username: str, times: int) -> list[str]:
    """`times` wrong passwords for `username`, each from a new tab; the error each one showed."""
    shown = []
    for _ in range(times):
        browser.open()
        browser.log_in(username, "wrong guess")
        shown.append(" | ".join(e.value for e in browser.at.error))
    return shown


def test_failures_from_other_browsers_do_not_lock_out_a_browser_that_logged_in_before(
    jars: Jars, data_dir: Path
) -> None:
    laptop, attacker = Browser(jars, "laptop"), Browser(jars, "attacker")
    laptop.open()
    laptop.log_in("admin", "demo")
    laptop.log_out()
    assert not laptop.cookies.get(COOKIE)  # logged out: only what marks the browser as known may remain

    _fail(attacker, "admin", 5)
    attacker.open()
    attacker.log_in("admin", "demo")  # guessing is still slowed down: right password, still refused
    assert attacker.title == LOGIN_FORM
    assert "Too many failed logins" in texts(attacker.at)

    laptop.open()
    laptop.log_in("admin", "demo")
    assert laptop.title == ["Overview"]


def test_unknown_and_known_names_get_the_same_messages_and_the_same_work(
    jars: Jars, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checks: list[str] = []
    real_checkpw = bcrypt.checkpw

    def counting_checkpw(password: bytes, hashed: bytes) -> bool:
        checks.append("checkpw")
        return real_checkpw(password, hashed)

    monkeypatch.setattr(bcrypt, "checkpw", counting_checkpw)
    attacker = Browser(jars, "attacker")
    answers = {}
    for name in ("viewer", "nobody"):
        checks.clear()
        answers[name] = _fail(attacker, name, 5)
        assert len(checks) == 5, f"{name}: one bcrypt check per attempt"
        checks.clear()
        answers[name] += _fail(attacker, name, 1)
        assert not checks, f"{name}: a locked-out name costs no bcrypt check"
    assert answers["viewer"] == answers["nobody"]
    assert "Too many failed logins" in answers["nobody"][-1]


def test_cli_unlock_lets_a_locked_out_user_in(
    jars: Jars, data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    attacker, owner = Browser(jars, "attacker"), Browser(jars, "new laptop")
    _fail(attacker, "analyst", 5)
    owner.open()
    owner.log_in("analyst", "demo")
    assert owner.title == LOGIN_FORM
    assert cli(monkeypatch, data_dir, "unlock", "analyst") == 0
    assert "analyst" in capsys.readouterr().out
    owner.open()
    owner.log_in("analyst", "demo")
    assert owner.title == ["Overview"]


def test_users_page_shows_lockouts_and_unlocks(jars: Jars, data_dir: Path) -> None:
    attacker, admin, owner = Browser(jars, "attacker"), Browser(jars, "admin"), Browser(jars, "owner")
    _fail(attacker, "manager", 5)
    admin.open("admin", page="pages/users.py")
    assert "manager" in " ".join(w.value for w in admin.at.warning)
    admin.at.selectbox(key="users_unlock_name").select("manager")
    admin.at.button(key="users_unlock").click()
    admin.run()
    assert not admin.at.exception
    assert not any("manager" in w.value for w in admin.at.warning)
    owner.open()
    owner.log_in("manager", "demo")
    assert owner.title == ["Overview"]


# 5. log out always works


def test_log_out_works_when_the_revocation_cannot_be_saved(jars: Jars, data_dir: Path) -> None:
    if in_postgres():
        pytest.skip("a file that cannot be written (PostgreSQL down: test_auth_replicas)")
    laptop = Browser(jars, "laptop")
    laptop.open()
    laptop.log_in("analyst", "demo")
    (data_dir / auth.LOGOUTS_FILE).mkdir()  # unwritable as a file, even for root
    laptop.log_out()
    assert not laptop.at.exception, [e.value for e in laptop.at.exception]
    assert laptop.title == LOGIN_FORM
    assert "mi_user" not in laptop.at.session_state
    warning = " ".join(w.value for w in laptop.at.warning)
    assert "Logged out here" in warning and "could not" in warning
    laptop.run()
    assert laptop.title == LOGIN_FORM  # and it stays logged out


def test_an_unwritable_lockouts_file_still_lets_the_password_decide(jars: Jars, data_dir: Path) -> None:
    if in_postgres():
        pytest.skip("a file that cannot be written")
    browser = Browser(jars, "laptop")
    browser.open()
    (data_dir / auth.LOCKOUTS_FILE).mkdir()
    browser.log_in("viewer", "wrong guess")
    assert not browser.at.exception and [e.value for e in browser.at.error] == ["Username or password is incorrect."]
    browser.log_in("viewer", "demo")
    assert browser.title == ["Overview"]


@pytest.mark.parametrize("entered", [" ADMIN ", "admin\t", "x" * 500, "名前", "admin' OR '1'='1"])
def test_odd_names_at_the_form_are_counted_like_any_other(jars: Jars, data_dir: Path, entered: str) -> None:
    attacker = Browser(jars, "attacker")
    shown = _fail(attacker, entered, 6)
    assert shown[:5] == ["Username or password is incorrect."] * 5
    assert "Too many failed logins" in shown[5]
    locked = auth_state(load_settings()).throttle.locked_users(time.time())
    assert list(locked) == [login_name_key(entered)] and len(next(iter(locked))) <= 64


def _fragment_check_script() -> None:
    """What a timed fragment does first: each run counts itself, and only the first one checks."""
    import streamlit as st

    from insights_core.dashboard import login
    from insights_core.settings import load_settings

    st.session_state["runs"] = st.session_state.get("runs", 0) + 1
    if st.session_state["runs"] == 1:
        login.rerun_app_if_session_ended(load_settings())


@pytest.mark.parametrize("ended", [False, True])
def test_a_timed_fragment_reruns_the_app_once_the_session_was_ended_elsewhere(
    jars: Jars, data_dir: Path, monkeypatch: pytest.MonkeyPatch, ended: bool
) -> None:
    """The Sync page's timed fragments skip app.py: the check makes them rerun it (which shows the login form)."""
    laptop, phone = Browser(jars, "laptop"), Browser(jars, "phone")
    laptop.open()
    laptop.log_in("manager", "demo")
    phone.open()
    phone.log_in("manager", "demo")
    assert phone.title == ["Overview"]
    if ended:
        laptop.log_out()
    fragment = AppTest.from_function(_fragment_check_script)
    fragment.session_state["mi_login_binding"] = phone.at.session_state["mi_login_binding"]
    fragment.run()
    assert not fragment.exception, [e.stack_trace for e in fragment.exception]
    assert fragment.session_state["runs"] == (2 if ended else 1)
