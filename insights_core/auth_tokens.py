"""The dashboard's signed cookies, without Streamlit: the re-login cookie and the device cookie.

Both are HS256 JWTs signed with the cookie key; a claim tells them apart, so one can never be
replayed as the other.

- The re-login cookie is streamlit-authenticator's `{username, exp_date}` plus `iat` (so a logout
  can refuse every cookie issued before it) and `pwd`, a fingerprint of the user's password hash:
  setting a password or re-creating a user draws a new bcrypt salt, so every cookie issued before
  stops matching, without any list of revoked cookies.
- The device cookie (OWASP, "Slow Down Online Guessing Attacks with Device Cookies") marks a browser
  that once logged in as a user. Failed logins from browsers without one lock out only those
  browsers, so an attacker guessing a password cannot lock the real user out of their own browser.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from typing import TYPE_CHECKING

import jwt

if TYPE_CHECKING:
    from insights_core.auth import AuthConfig

DEVICE_COOKIE_DAYS = 180.0
_DEVICE = "device"


def password_fingerprint(password_hash: str, key: str) -> str:
    """A short keyed digest of a bcrypt hash: it changes with every new password or re-created user,
    and without the cookie key it tells nothing about the hash."""
    return hmac.new(key.encode(), password_hash.encode(), hashlib.sha256).hexdigest()[:32]


def mint_login_cookie(
    username: str, password_hash: str, key: str, expiry_days: float, now: float
) -> tuple[str, dt.datetime]:
    """The re-login cookie value and when it expires."""
    expires = now + expiry_days * 86400
    claims = {"username": username, "exp_date": expires, "iat": now, "pwd": password_fingerprint(password_hash, key)}
    return jwt.encode(claims, key, algorithm="HS256"), dt.datetime.fromtimestamp(expires)


def read_login_cookie(token: str, key: str, config: AuthConfig, logouts: Mapping[str, float], now: float) -> str | None:
    """The user a re-login cookie vouches for, or None when it must be ignored.

    Refused: a bad signature (e.g. forged with the library's default key), another algorithm,
    an expired cookie, one without `iat` or `pwd` (not minted here, or before password
    fingerprints), an unknown user, a user whose password changed or who was re-created since,
    or one issued before that user last logged out.
    """
    try:
        payload = jwt.decode(token, key, algorithms=["HS256"], options={"require": ["iat", "pwd"], "verify_iat": False})
    except jwt.InvalidTokenError:
        return None
    username, expires, issued = payload.get("username"), payload.get("exp_date"), payload.get("iat")
    if not isinstance(username, str) or not isinstance(expires, (int, float)) or not isinstance(issued, (int, float)):
        return None
    user = config.user(username)
    if expires <= now or issued > now + 60 or user is None:
        return None
    if not hmac.compare_digest(str(payload["pwd"]), password_fingerprint(user.password_hash, key)):
        return None
    if issued <= logouts.get(user.username, float("-inf")):
        return None
    return user.username


def mint_device_cookie(username: str, key: str, now: float) -> tuple[str, dt.datetime]:
    """A device cookie for a browser that just logged in as `username`, and when it expires."""
    expires = now + DEVICE_COOKIE_DAYS * 86400
    claims = {"typ": _DEVICE, "username": username, "device": secrets.token_hex(8), "iat": now, "exp_date": expires}
    return jwt.encode(claims, key, algorithm="HS256"), dt.datetime.fromtimestamp(expires)


def read_device_cookie(token: str | None, key: str, username: str, now: float) -> str | None:
    """The device id when `token` is a genuine, current device cookie for `username`; else None."""
    if not token:
        return None
    try:
        payload = jwt.decode(token, key, algorithms=["HS256"], options={"verify_iat": False})
    except jwt.InvalidTokenError:
        return None
    device, expires = payload.get("device"), payload.get("exp_date")
    if payload.get("typ") != _DEVICE or payload.get("username") != username or not isinstance(device, str):
        return None
    if not isinstance(expires, (int, float)) or expires <= now:
        return None
    return device
