"""Login, logout and the current user: the Streamlit side of `insights_core.auth`.

A new `Authenticate` with a fresh credentials dict is built on every rerun of every session: the
library mutates what it is given (failed attempts, logged-in flags), so sharing one across
sessions leaks state between users. What must be shared is shared on purpose and thread-safe:
the validated users file (copied per call by `st.cache_data`) and the failed-login throttle.

The library's own cookie writer is switched off (expiry 0): it writes the cookie in the same
run as the login form and the cookie can be lost if the run is replaced. This module mints the
cookie on the first run after a login instead, adds an `iat` claim, and screens any incoming
cookie first (`auth.read_login_cookie`): forged, expired, revoked or unknown-user cookies are
ignored for the session. `login_sleep_time=0`: the library's 0.7 s sleep on every logged-out
rerun slows everyone and stops nobody; the throttle locks a user out after too many failures.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import streamlit as st
import streamlit_authenticator as stauth
from streamlit_authenticator.utilities import LoginError

from insights_core.auth import (
    AuthConfig,
    LoginThrottle,
    check_auth_config_for_mode,
    credentials_for_authenticator,
    ensure_demo_auth_config,
    fetch_logouts,
    load_auth_config,
    mint_login_cookie,
    read_login_cookie,
    resolve_cookie_key,
    save_logout,
)
from insights_core.settings import Settings

USER_KEY = "mi_user"
"""Session key holding the logged-in user's {username, name, role} for pages (set by app.py each run)."""
_MINT_KEY = "mi_mint_cookie"
_FORGET_KEY = "mi_forget_cookie"


@dataclass(frozen=True)
class CurrentUser:
    username: str
    name: str
    role: str


@dataclass
class LoginSession:
    settings: Settings
    config: AuthConfig
    cookie_key: str
    authenticator: stauth.Authenticate
    credentials: dict
    user: CurrentUser | None


@st.cache_resource(show_spinner=False)
def login_throttle(max_attempts: int, lockout_seconds: float) -> LoginThrottle:
    """One throttle per process and limits, shared by all sessions."""
    return LoginThrottle(max_attempts, lockout_seconds)


@st.cache_data(show_spinner=False, max_entries=8)
def _checked_config(path: str, stamp: tuple[int, int], mode: str) -> AuthConfig:
    config = load_auth_config(Path(path))
    check_auth_config_for_mode(config, mode)
    return config


def _secret_cookie_key() -> str | None:
    try:
        return str(st.secrets["auth"]["cookie_key"])
    except (KeyError, FileNotFoundError, TypeError):
        return None
    except Exception as exc:  # streamlit raises its own "no secrets file" error class
        if type(exc).__name__ == "StreamlitSecretNotFoundError":
            return None
        raise


def load_auth(settings: Settings) -> tuple[AuthConfig, str]:
    """The users file and cookie key, checked for the mode; raises ConfigError with the fix."""
    path = settings.auth_config_path
    if settings.mode == "stub":
        ensure_demo_auth_config(path)
    cookie_key = resolve_cookie_key(settings, _secret_cookie_key())
    stat = path.stat() if path.exists() else None
    config = _checked_config(str(path), (stat.st_mtime_ns, stat.st_size) if stat else (0, 0), settings.mode)
    return config, cookie_key


def start_session(settings: Settings, config: AuthConfig, cookie_key: str) -> LoginSession:
    """Build this run's authenticator, accept a valid re-login cookie, and resolve the current user."""
    throttle = login_throttle(settings.login_max_attempts, settings.login_lockout_minutes * 60)
    now = time.time()
    credentials = credentials_for_authenticator(config)
    for username, details in credentials["usernames"].items():
        details["failed_login_attempts"] = throttle.failures(username, now)
    authenticator = stauth.Authenticate(credentials, settings.cookie_name, cookie_key, 0, auto_hash=False,
                                        login_sleep_time=0)
    if not st.session_state.get("authentication_status"):
        _screen_cookie(settings, config, cookie_key, now)
        try:
            authenticator.login(location="unrendered")
        except LoginError:
            st.session_state["logout"] = True
    session = LoginSession(settings, config, cookie_key, authenticator, credentials, None)
    session.user = _resolve_user(session)
    if session.user is None and st.session_state.pop(_FORGET_KEY, False):
        _cookie_manager(session).delete(settings.cookie_name, key="mi_delete_cookie")
    return session


def _cookie_manager(session: LoginSession):  # type: ignore[no-untyped-def]
    """streamlit-authenticator 0.4.2 keeps its cookie component here (the version is pinned)."""
    manager = session.authenticator.cookie_controller.cookie_model.cookie_manager
    manager.cookies = dict(manager.cookies or {})
    manager.cookies.setdefault(session.settings.cookie_name, "")  # its delete() drops the key from this dict
    return manager


def _screen_cookie(settings: Settings, config: AuthConfig, cookie_key: str, now: float) -> None:
    """Make the library ignore, for this session, a cookie that `read_login_cookie` refuses."""
    token = st.context.cookies.get(settings.cookie_name) if st.context.cookies else None
    if not token or st.session_state.get("logout"):
        return
    if read_login_cookie(token, cookie_key, config, fetch_logouts(settings.data_dir), now) is None:
        st.session_state["logout"] = True


def _resolve_user(session: LoginSession) -> CurrentUser | None:
    """The logged-in user with the role the users file gives now (a removed user is logged out)."""
    if not st.session_state.get("authentication_status"):
        st.session_state.pop(USER_KEY, None)
        return None
    user = session.config.user(st.session_state.get("username"))
    if user is None or user.role is None:
        session.authenticator.logout(location="unrendered")
        st.session_state.pop(USER_KEY, None)
        return None
    current = CurrentUser(user.username, user.name, user.role)
    st.session_state[USER_KEY] = {"username": current.username, "name": current.name, "role": current.role}
    return current


def render_login_form(session: LoginSession) -> None:
    """The login page: the library's form, the lockout, and a rerun into the role's pages on success."""
    settings = session.settings
    throttle = login_throttle(settings.login_max_attempts, settings.login_lockout_minutes * 60)
    st.title("Meta Insights")
    if settings.mode == "stub":
        st.info("Demo mode: log in as **admin**, **manager**, **analyst** or **viewer** with password **demo**.")
    users = session.credentials["usernames"]
    before = {name: details.get("failed_login_attempts", 0) for name, details in users.items()}
    try:
        session.authenticator.login(location="main", max_login_attempts=settings.login_max_attempts, key="login",
                                    fields={"Form name": "Log in", "Username": "Username", "Password": "Password",
                                            "Login": "Log in"})
    except LoginError as exc:
        if "attempts" in str(exc):
            st.error(f"Too many failed logins for this user: try again in {settings.login_lockout_minutes:g} minutes.")
        else:
            st.error(str(exc))
        return
    now = time.time()
    for name, details in users.items():
        if details.get("failed_login_attempts", 0) > before.get(name, 0):
            throttle.record_failure(name, now)
    if st.session_state.get("authentication_status"):
        throttle.record_success(st.session_state.get("username") or "")
        st.session_state[_MINT_KEY] = True
        st.rerun()
    elif st.session_state.get("authentication_status") is False:
        st.error("Username or password is incorrect.")


def issue_cookie_if_due(session: LoginSession) -> None:
    """On the first run after a password login, send the re-login cookie to the browser."""
    if not st.session_state.pop(_MINT_KEY, False) or session.user is None:
        return
    days = session.settings.cookie_expiry_days
    if days <= 0:
        return
    token, expires = mint_login_cookie(session.user.username, session.cookie_key, days, time.time())
    _cookie_manager(session).set(session.settings.cookie_name, token, key="mi_set_cookie", expires_at=expires)


def log_out(session: LoginSession) -> None:
    """End this session and refuse every cookie of this user issued until now (in every browser).

    The refusal is what protects: deleting the cookie from this browser is a courtesy that a copy
    of it (streamlit-authenticator issue #91) would survive.
    """
    if session.user is not None:
        save_logout(session.settings.data_dir, session.user.username, time.time())
    session.authenticator.logout(location="unrendered")
    st.session_state.pop(USER_KEY, None)
    st.session_state[_FORGET_KEY] = True  # the browser drops the cookie on the next run (this one reruns)
    session.user = None
