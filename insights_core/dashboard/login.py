"""Login, logout and the current user: the Streamlit side of `insights_core.auth`.

A new `Authenticate` with a fresh credentials dict is built on every rerun of every session: the
library mutates what it is given, so sharing one across sessions leaks state between users. It
reads the re-login cookie and clears the session on logout; the login form is our own, because
the library's cannot throttle before checking a password, answers an unknown name faster than a
known one, and counts failures in the session (all in `auth.verify_login` and `LoginThrottle`).

A session is bound at login to the user's password fingerprint and login time; every rerun
checks the user still exists with that fingerprint and has not logged out since (anywhere), and
shows the login form otherwise. So logging out, setting a password or removing a user ends every
open session of that user at its next rerun, and `auth.read_login_cookie` refuses their cookies.

Cookies are written on the run after a login (the library's own writer is off: expiry 0), never in
the run of the form, which a rerun could replace. The device cookie (see `auth_tokens`) marks
the browser as one the user logged in from, so failures from other browsers do not lock it out.
"""

from __future__ import annotations

import importlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

import streamlit as st
import streamlit_authenticator as stauth
from streamlit_authenticator.utilities import LoginError

from insights_core.auth import (
    AuthConfig,
    User,
    check_auth_config_for_mode,
    credentials_for_authenticator,
    dummy_hash_for,
    ensure_demo_auth_config,
    load_auth_config,
    resolve_cookie_key,
    verify_login,
)
from insights_core.auth_store import LOGOUTS_FILE, LoginThrottle, fetch_logouts, save_logout
from insights_core.auth_tokens import (
    mint_device_cookie,
    mint_login_cookie,
    password_fingerprint,
    read_device_cookie,
    read_login_cookie,
)
from insights_core.errors import ConfigError
from insights_core.settings import Settings

USER_KEY = "mi_user"
"""Session key holding the logged-in user's {username, name, role} for pages (set by app.py each run)."""
_BINDING_KEY = "mi_login_binding"
_MINT_KEY = "mi_mint_cookie"
_FORGET_KEY = "mi_forget_cookie"
_NOTICE_KEY = "mi_login_notice"
WRONG_CREDENTIALS = "Username or password is incorrect."
LOCKED_OUT = (
    "Too many failed logins for this user name from this browser: try again in {minutes:g} minutes, "
    "from a browser you logged in with before, or ask an admin to unlock it."
)

logger = logging.getLogger(__name__)


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
    credentials: dict[str, Any]
    user: CurrentUser | None


def login_throttle(settings: Settings) -> LoginThrottle:
    """The failed-login counts, kept in the data dir (shared by every session, process and the CLI)."""
    return LoginThrottle(settings.data_dir, settings.login_max_attempts, settings.login_lockout_minutes * 60)


def device_cookie_name(settings: Settings) -> str:
    return f"{settings.cookie_name}_device"


@st.cache_data(show_spinner=False, max_entries=8)
def _checked_config(path: str, stamp: tuple[int, int], mode: str) -> AuthConfig:
    config = load_auth_config(Path(path))
    check_auth_config_for_mode(config, mode)
    dummy_hash_for(config)  # made once here, not during the first login attempt with an unknown name
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


def ensure_cookie_component_registered() -> None:
    """Register the cookie manager's browser component with this server, if its import did not.

    `declare_component` registers a component only when its module is imported inside a session; app.py
    imports streamlit-authenticator (and with it the cookie manager) on a server thread before the first
    session, to save that session the time, and an unregistered component answers 404 in the browser
    (no cookie is ever set). Cheap: one dictionary look-up per run once registered.
    """
    from streamlit.runtime import get_instance

    # the module, not the class the package re-exports under the same name; extra-streamlit-components
    # 0.1.81 (pinned with streamlit-authenticator) keeps the component in `_component_func`
    cookie_module = importlib.import_module("extra_streamlit_components.CookieManager")
    component = cookie_module._component_func
    registry = get_instance().component_registry
    if registry.get_component(component.name) is None:
        registry.register_component(component)


def start_session(settings: Settings, config: AuthConfig, cookie_key: str) -> LoginSession:
    """Build this run's authenticator, accept a valid re-login cookie, and resolve the current user."""
    ensure_cookie_component_registered()
    now = time.time()
    credentials = credentials_for_authenticator(config)
    authenticator = stauth.Authenticate(
        credentials, settings.cookie_name, cookie_key, 0, auto_hash=False, login_sleep_time=0
    )
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


def _cookie_manager(session: LoginSession) -> Any:
    """streamlit-authenticator 0.4.2 keeps its cookie component here (the version is pinned); its
    CookieManager (extra-streamlit-components) ships no types."""
    manager = session.authenticator.cookie_controller.cookie_model.cookie_manager
    manager.cookies = dict(manager.cookies or {})
    manager.cookies.setdefault(session.settings.cookie_name, "")  # its delete() drops the key from this dict
    return manager


def _incoming_cookie(name: str) -> str | None:
    return st.context.cookies.get(name) if st.context.cookies else None


def _screen_cookie(settings: Settings, config: AuthConfig, cookie_key: str, now: float) -> None:
    """Make the library ignore, for this session, a cookie that `read_login_cookie` refuses."""
    token = _incoming_cookie(settings.cookie_name)
    if not token or st.session_state.get("logout"):
        return
    if read_login_cookie(token, cookie_key, config, fetch_logouts(settings.data_dir), now) is None:
        st.session_state["logout"] = True


class _Binding(TypedDict):
    """What ties a browser session to the password it logged in with, and when."""

    username: str
    fingerprint: str
    at: float


def _bind_session(user: User, cookie_key: str, now: float) -> _Binding:
    binding: _Binding = {
        "username": user.username,
        "fingerprint": password_fingerprint(user.password_hash, cookie_key),
        "at": now,
    }
    st.session_state[_BINDING_KEY] = binding
    return binding


def _resolve_user(session: LoginSession) -> CurrentUser | None:
    """The logged-in user with the role the users file gives now, or None after ending a session that
    lost its user, its password (changed or re-created) or a logout of that user anywhere."""
    if not st.session_state.get("authentication_status"):
        st.session_state.pop(USER_KEY, None)
        return None
    user = session.config.user(st.session_state.get("username"))
    binding = st.session_state.get(_BINDING_KEY)
    if user is not None and (binding is None or binding.get("username") != user.username):
        # logged in by cookie in this very run (the cookie was just checked against the current
        # fingerprint and logouts), or by a path that sets the library's keys directly
        binding = _bind_session(user, session.cookie_key, time.time())
    if (
        user is None
        or user.role is None
        or binding is None
        or not _binding_holds(binding, user, session.cookie_key, session.settings.data_dir)
    ):
        _end_session(session)
        return None
    current = CurrentUser(user.username, user.name, user.role)
    st.session_state[USER_KEY] = {"username": current.username, "name": current.name, "role": current.role}
    return current


def _binding_holds(binding: _Binding, user: User, cookie_key: str, data_dir: Path) -> bool:
    """The user still has a role, the password the session logged in with, and no logout since."""
    return (
        user.role is not None
        and binding["fingerprint"] == password_fingerprint(user.password_hash, cookie_key)
        and fetch_logouts(data_dir).get(user.username, float("-inf")) < binding["at"]
    )


def rerun_app_if_session_ended(settings: Settings) -> None:
    """For `st.fragment`s that rerun on a timer: they skip app.py, where a session is checked, so a
    session ended elsewhere (logout, new password, removed user) reruns the whole app, which shows
    the login form, instead of refreshing the fragment."""
    binding = st.session_state.get(_BINDING_KEY)
    if binding is None:
        return  # not bound yet: the app's own run binds it or shows the login form
    try:
        config, cookie_key = load_auth(settings)
    except ConfigError:
        st.rerun(scope="app")  # the app's run says what is wrong with the users file or key
    user = config.user(binding["username"])
    if user is None or not _binding_holds(binding, user, cookie_key, settings.data_dir):
        st.rerun(scope="app")


def _end_session(session: LoginSession) -> None:
    session.authenticator.logout(location="unrendered")
    st.session_state.pop(USER_KEY, None)
    st.session_state.pop(_BINDING_KEY, None)
    st.session_state[_FORGET_KEY] = True  # the browser drops the login cookie on the next logged-out run
    session.user = None


def render_login_form(session: LoginSession) -> None:
    """The login page: our form, the lockout, and a rerun into the role's pages on success.

    Every failure looks the same whether the name exists or not: same message, one bcrypt check
    (`verify_login`), and after too many the same lockout message.
    """
    settings = session.settings
    st.title("Meta Insights")
    if settings.mode == "stub":
        st.info("Demo mode: log in as **admin**, **manager**, **analyst** or **viewer** with password **demo**.")
    notice = st.session_state.pop(_NOTICE_KEY, None)
    if notice:
        st.warning(notice)
    with st.form("login"):
        st.subheader("Log in")
        entered_name = st.text_input("Username", autocomplete="off")
        entered_password = st.text_input("Password", type="password", autocomplete="off")
        submitted = st.form_submit_button("Log in")
    if not submitted:
        return
    # as streamlit-authenticator does: names are lower case, and the CLI refuses passwords with edge spaces
    name, password = entered_name.strip().lower(), entered_password.strip()
    if not name or not password:
        st.error("Enter a username and a password.")
        return
    now = time.time()
    device = read_device_cookie(_incoming_cookie(device_cookie_name(settings)), session.cookie_key, name, now)
    throttle = login_throttle(settings)
    if throttle.locked_for(name, device, now) > 0:
        st.error(LOCKED_OUT.format(minutes=settings.login_lockout_minutes))
        return
    user = verify_login(session.config, name, password)
    try:
        if user is None:
            throttle.record_failure(name, device, now)
        else:
            throttle.record_success(name, device)
    except OSError as exc:  # a read-only data dir: the login itself is still decided by the password
        logger.warning("cannot record a login attempt in %s: %s", throttle.path, exc)
    if user is None:
        st.error(WRONG_CREDENTIALS)
        return
    st.session_state.update(
        {
            "authentication_status": True,
            "username": user.username,
            "name": user.name,
            "email": user.email,
            "roles": list(user.roles),
        }
    )
    _bind_session(user, session.cookie_key, now)
    # the re-login cookie first: it is what the user notices missing; none when expiry is 0 days
    st.session_state[_MINT_KEY] = (["login"] if settings.cookie_expiry_days > 0 else []) + ["device"]
    st.rerun()


def issue_cookie_if_due(session: LoginSession) -> None:
    """After a password login, send the re-login cookie, then (on the next run) the device cookie.

    One cookie per run: each cookie component reruns the app once it has set its cookie, and that
    rerun would remove a second component of the same run before its browser side had set anything.
    """
    pending = st.session_state.get(_MINT_KEY)
    if not pending or session.user is None:
        st.session_state.pop(_MINT_KEY, None)
        return
    user = session.config.user(session.user.username)
    if user is None:
        st.session_state.pop(_MINT_KEY, None)
        return
    kind, st.session_state[_MINT_KEY] = pending[0], list(pending[1:])
    now = time.time()
    manager = _cookie_manager(session)
    if kind == "login":
        token, expires = mint_login_cookie(
            user.username, user.password_hash, session.cookie_key, session.settings.cookie_expiry_days, now
        )
        manager.set(session.settings.cookie_name, token, key="mi_set_cookie", expires_at=expires)
    else:
        device, device_expires = mint_device_cookie(user.username, session.cookie_key, now)
        manager.set(device_cookie_name(session.settings), device, key="mi_set_device", expires_at=device_expires)


def log_out(session: LoginSession) -> None:
    """End this session first, then end every other session and cookie of this user (in every browser).

    Ending them elsewhere needs a write to the data dir; if that fails this session is over anyway
    and the login form says what did not happen. Deleting the cookie from this browser is a courtesy
    that a copy of it (streamlit-authenticator issue #91) would survive; the recorded logout is not.
    """
    username = session.user.username if session.user is not None else None
    _end_session(session)
    if username is None:
        return
    try:
        save_logout(session.settings.data_dir, username, time.time())
    except OSError as exc:
        logger.warning("logout of %s not recorded: %s", username, exc)
        st.session_state[_NOTICE_KEY] = (
            f"Logged out here, but your other sessions and saved logins could not be ended: cannot write "
            f"{LOGOUTS_FILE} in the data directory ({exc.strerror or exc}). Log out again once it is writable, "
            "or ask an admin to set a new password for you (that ends them too)."
        )
