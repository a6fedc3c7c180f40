"""Login, logout and the current user: the Streamlit side of `insights_core.auth`.

The users file keeps streamlit-authenticator's format and its session keys (`authentication_status`,
`username`, `name`, `email`, `roles`), but no part of the library runs here any more: the login form is
our own, because the library's cannot throttle before checking a password, answers an unknown name
faster than a known one, and counts failures in the session (all in `auth.verify_login` and
`LoginThrottle`); and the cookies are set by this server's own HTTP answer (`cookie_handoff`), because
the library's cookie component reran the app once per cookie and once per page load (about 4 s of a
login in Chromium on a 2-core machine). The re-login cookie is read from the request headers
(`st.context.cookies`) and checked by `auth_tokens.read_login_cookie`.

A session is bound at login to the user's password fingerprint and login time; every rerun
checks the user still exists with that fingerprint and has not logged out since (anywhere), and
shows the login form otherwise. So logging out, setting a password or removing a user ends every
open session of that user at its next rerun, and `auth.read_login_cookie` refuses their cookies.
Users, logouts and failed-login counts come from `auth_state`: the data dir's files, or PostgreSQL
with the lake, read afresh on every run so a change made on another replica applies here too.

Cookies are handed over on the run after a login, never in the run of the form, which a rerun could
replace. The device cookie (see `auth_tokens`) marks the browser as one the user logged in from, so
failures from other browsers do not lock it out.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TypedDict

import streamlit as st

from insights_core.auth import AuthConfig, User, check_users_for_mode, resolve_cookie_key, verify_login
from insights_core.auth_state import AuthState, LogoutStore, auth_state
from insights_core.auth_tokens import (
    mint_device_cookie,
    mint_login_cookie,
    password_fingerprint,
    read_device_cookie,
    read_login_cookie,
)
from insights_core.dashboard.cookie_handoff import TICKETS, CookieSpec, ticket_url
from insights_core.errors import ConfigError, StoreError
from insights_core.settings import Settings

USER_KEY = "mi_user"
"""Session key holding the logged-in user's {username, name, role} for pages (set by app.py each run)."""
_BINDING_KEY = "mi_login_binding"
_MINT_KEY = "mi_mint_cookie"
"""True on the run after a password login: this run hands the browser its cookies."""
_FORGET_KEY = "mi_forget_cookie"
"""True after a logout: the next logged-out run deletes the browser's re-login cookie."""
_LOGGED_OUT_KEY = "logout"
"""True once this session logged out (streamlit-authenticator's key): the re-login cookie the browser
sent when the session opened is not used again, even if recording the logout failed."""
PENDING_COOKIES_KEY = "mi_cookie_ticket"
"""The ticket of cookies handed to this browser and not fetched yet (its image is drawn until then)."""
SESSION_KEYS = ("authentication_status", "username", "name", "email", "roles")
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
    user: CurrentUser | None
    state: AuthState


def device_cookie_name(settings: Settings) -> str:
    return f"{settings.cookie_name}_device"


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
    """The users and cookie key, checked for the mode; raises ConfigError with the fix (StoreError when the
    shared state database cannot be read). Read afresh on every run: a file costs a `stat`, PostgreSQL a query."""
    state = auth_state(settings)
    if settings.mode == "stub":
        state.users.ensure_demo_users()
    cookie_key = resolve_cookie_key(settings, _secret_cookie_key(), state.ensure_generated_cookie_key)
    config = state.users.fetch_users()
    check_users_for_mode(config, settings.mode)
    return config, cookie_key


def start_session(settings: Settings, config: AuthConfig, cookie_key: str) -> LoginSession:
    """Resolve this run's user: the session's own login, else this browser's valid re-login cookie."""
    session = LoginSession(settings, config, cookie_key, None, auth_state(settings))
    for key in SESSION_KEYS:  # None until a login, as streamlit-authenticator keeps them
        st.session_state.setdefault(key, None)
    if not st.session_state.get("authentication_status") and not st.session_state.get(_LOGGED_OUT_KEY):
        _log_in_by_cookie(session, time.time())
    session.user = _resolve_user(session)
    if session.user is None:
        if st.session_state.pop(_FORGET_KEY, False):  # logged out: the browser drops its re-login cookie
            _hand_over_cookies((CookieSpec(settings.cookie_name),))
        else:
            draw_pending_cookies()
    return session


def _incoming_cookie(name: str) -> str | None:
    return st.context.cookies.get(name) if st.context.cookies else None


def _log_in_by_cookie(session: LoginSession, now: float) -> None:
    """Log in as the user a re-login cookie vouches for (`read_login_cookie` says which are refused)."""
    token = _incoming_cookie(session.settings.cookie_name)
    if not token:
        return
    logouts = session.state.logouts.fetch_logouts()
    username = read_login_cookie(token, session.cookie_key, session.config, logouts, now)
    user = session.config.user(username) if username else None
    if user is not None:
        _start_login(user)


def _start_login(user: User) -> None:
    st.session_state.update(
        {
            "authentication_status": True,
            "username": user.username,
            "name": user.name,
            "email": user.email,
            "roles": list(user.roles),
        }
    )


def _hand_over_cookies(cookies: tuple[CookieSpec, ...]) -> None:
    """Give this browser `cookies` through a one-time ticket (see `cookie_handoff`)."""
    st.session_state[PENDING_COOKIES_KEY] = TICKETS.issue(cookies)
    draw_pending_cookies()


def draw_pending_cookies() -> None:
    """Draw the invisible image that fetches this session's pending cookie ticket, in every run until the
    browser has fetched it (a run replaced before the image loaded would otherwise lose the cookies)."""
    ticket = st.session_state.get(PENDING_COOKIES_KEY)
    if not ticket:
        return
    if not TICKETS.is_pending(ticket):
        st.session_state.pop(PENDING_COOKIES_KEY, None)
        return
    st.html(f'<img src="{ticket_url(ticket)}" alt="" width="1" height="1" style="position:absolute;opacity:0">')


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
        or not _binding_holds(binding, user, session.cookie_key, session.state.logouts)
    ):
        _end_session(session)
        return None
    current = CurrentUser(user.username, user.name, user.role)
    st.session_state[USER_KEY] = {"username": current.username, "name": current.name, "role": current.role}
    return current


def _binding_holds(binding: _Binding, user: User, cookie_key: str, logouts: LogoutStore) -> bool:
    """The user still has a role, the password the session logged in with, and no logout since (anywhere:
    with the lake, the logouts are read from PostgreSQL on every check, never cached)."""
    return (
        user.role is not None
        and binding["fingerprint"] == password_fingerprint(user.password_hash, cookie_key)
        and logouts.fetch_logouts().get(user.username, float("-inf")) < binding["at"]
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
    except (ConfigError, StoreError):
        st.rerun(scope="app")  # the app's run says what is wrong with the users, the key or the database
    user = config.user(binding["username"])
    if user is None or not _binding_holds(binding, user, cookie_key, auth_state(settings).logouts):
        st.rerun(scope="app")


def _end_session(session: LoginSession) -> None:
    st.session_state.update(dict.fromkeys(SESSION_KEYS))
    st.session_state[_LOGGED_OUT_KEY] = True
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
    throttle = session.state.throttle
    if throttle.locked_for(name, device, now) > 0:
        st.error(LOCKED_OUT.format(minutes=settings.login_lockout_minutes))
        return
    user = verify_login(session.config, name, password)
    try:
        if user is None:
            throttle.record_failure(name, device, now)
        else:
            throttle.record_success(name, device)
    except (OSError, StoreError) as exc:  # a read-only data dir: the login itself is still decided by the password
        logger.warning("cannot record a login attempt: %s", exc)
    if user is None:
        st.error(WRONG_CREDENTIALS)
        return
    _start_login(user)
    _bind_session(user, session.cookie_key, now)
    st.session_state[_MINT_KEY] = True
    st.rerun()


def hand_over_cookies_if_due(session: LoginSession) -> None:
    """On the run after a password login, hand this browser its device cookie and (unless cookies are
    off, expiry 0 days) its re-login cookie; in later runs, keep drawing them until they are fetched."""
    if st.session_state.pop(_MINT_KEY, False) and session.user is not None:
        user = session.config.user(session.user.username)
        if user is not None:
            now = time.time()
            cookies = []
            if session.settings.cookie_expiry_days > 0:
                token, expires = mint_login_cookie(
                    user.username, user.password_hash, session.cookie_key, session.settings.cookie_expiry_days, now
                )
                cookies.append(CookieSpec(session.settings.cookie_name, token, expires))
            device, device_expires = mint_device_cookie(user.username, session.cookie_key, now)
            cookies.append(CookieSpec(device_cookie_name(session.settings), device, device_expires))
            _hand_over_cookies(tuple(cookies))
            return
    draw_pending_cookies()


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
        session.state.logouts.save_logout(username, time.time())
    except (OSError, StoreError) as exc:
        logger.warning("logout of %s not recorded: %s", username, exc)
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        st.session_state[_NOTICE_KEY] = (
            f"Logged out here, but your other sessions and saved logins could not be ended: cannot write "
            f"{session.state.logouts_where} ({reason}). Log out again once it is writable, "
            "or ask an admin to set a new password for you (that ends them too)."
        )
