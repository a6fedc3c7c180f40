"""Dashboard users, roles and the re-login cookie, without Streamlit.

- Users live in a YAML file (INSIGHTS_AUTH_CONFIG, default `<data dir>/auth.yaml`) in
  streamlit-authenticator's layout: `credentials.usernames.<name>.{first_name, last_name, email,
  password, roles}`. Passwords are bcrypt hashes; a plain-text password is refused, never hashed
  on the fly. Stub mode writes the four demo users (password `demo`) on first run; live mode
  refuses to start while any of them is left.
- The cookie key signs the re-login cookie: whoever knows it can log in as anyone. It comes from
  INSIGHTS_COOKIE_KEY (or `[auth] cookie_key` in Streamlit secrets); the library's default
  `some_key` and short keys are refused. Stub mode alone generates a random key on first run
  and keeps it in `<data dir>/cookie_key`.
- Cookies are minted here (the library's JWT plus an `iat` claim) so that logging out can revoke
  every cookie of that user issued before: `auth_logouts.json` in the data dir keeps the times.

`python -m insights_core.auth --help` manages users for live deployments.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import json
import os
import re
import secrets
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import bcrypt
import jwt
import yaml

from insights_core.errors import ConfigError, InputError
from insights_core.roles import ROLES, highest_role
from insights_core.settings import Settings, load_settings

DEMO_USERNAMES = ("admin", "manager", "analyst", "viewer")
DEMO_PASSWORD = "demo"
LIBRARY_DEFAULT_COOKIE_KEY = "some_key"
MIN_COOKIE_KEY_LENGTH = 32
MIN_PASSWORD_LENGTH = 8
LIVE_MIN_BCRYPT_COST = 10
"""Live users need a real bcrypt cost; the demo users' hashes use cost 4 (their password is public)."""
COOKIE_KEY_FILE = "cookie_key"
LOGOUTS_FILE = "auth_logouts.json"

_USERNAME = re.compile(r"^[a-z0-9][a-z0-9_.@-]{0,63}$")
_BCRYPT = re.compile(r"^\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}$")


@dataclass(frozen=True)
class User:
    username: str
    name: str
    email: str
    roles: tuple[str, ...]
    password_hash: str = field(repr=False)

    @property
    def role(self) -> str | None:
        return highest_role(self.roles)


@dataclass(frozen=True)
class AuthConfig:
    users: dict[str, User]

    def user(self, username: str | None) -> User | None:
        return self.users.get(username.lower()) if username else None


def hash_password(password: str, rounds: int = 12) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=rounds)).decode()


def bcrypt_cost(password_hash: str) -> int:
    match = _BCRYPT.match(password_hash)
    return int(match.group(1)) if match else 0


def check_password(password: str, password_hash: str) -> bool:
    try:
        return bcrypt.checkpw(password.encode(), password_hash.encode())
    except ValueError:
        return False


def parse_auth_config(data: object, source: str = "auth config") -> AuthConfig:
    """Validate the YAML document's users; raise ConfigError naming the first problem."""
    if not isinstance(data, dict) or not isinstance(data.get("credentials"), dict):
        raise ConfigError(f"{source}: expected a `credentials: usernames:` section")
    raw_users = data["credentials"].get("usernames") or {}
    if not isinstance(raw_users, dict):
        raise ConfigError(f"{source}: `credentials.usernames` must map user names to their details")
    users: dict[str, User] = {}
    for raw_name, details in raw_users.items():
        username = str(raw_name).strip().lower()
        if not _USERNAME.match(username):
            raise ConfigError(f"{source}: user name {raw_name!r} may use only letters, digits and _ . @ -")
        if not isinstance(details, dict):
            raise ConfigError(f"{source}: user {username} needs password and roles")
        password = str(details.get("password") or "")
        if not _BCRYPT.match(password):
            raise ConfigError(f"{source}: user {username}'s password is not a bcrypt hash; set it with "
                              f"`python -m insights_core.auth set-password {username}`")
        roles = details.get("roles") or []
        roles = [roles] if isinstance(roles, str) else roles
        if not isinstance(roles, list) or not roles or any(r not in ROLES for r in roles):
            raise ConfigError(f"{source}: user {username} needs roles from {', '.join(ROLES)}, got {roles!r}")
        name = f"{details.get('first_name') or ''} {details.get('last_name') or ''}".strip()
        users[username] = User(username, name or str(details.get("name") or username),
                               str(details.get("email") or ""), tuple(roles), password)
    return AuthConfig(users)


def load_auth_config(path: Path) -> AuthConfig:
    if not path.exists():
        raise ConfigError(f"no users file at {path}: add a user with "
                          "`python -m insights_core.auth add-user NAME --role admin`")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read users file {path}: {exc}") from None
    return parse_auth_config(data, str(path))


def auth_config_document(config: AuthConfig) -> dict:
    """The YAML document for `config` (the library's layout, read back by `parse_auth_config`)."""
    usernames = {}
    for user in config.users.values():
        first, _, last = user.name.partition(" ")
        usernames[user.username] = {"email": user.email, "first_name": first, "last_name": last,
                                    "password": user.password_hash, "roles": list(user.roles)}
    return {"credentials": {"usernames": usernames}}


def save_auth_config(config: AuthConfig, path: Path) -> None:
    """Write the users file atomically (readers see the old or the new file), readable by the owner only."""
    text = "# Meta Insights dashboard users: manage with `python -m insights_core.auth`\n"
    text += yaml.safe_dump(auth_config_document(config), sort_keys=True)
    _write_private(path, text)


def demo_auth_config() -> AuthConfig:
    """The stub mode's four demo users, one per role, all with password `demo`."""
    users = {}
    for username in DEMO_USERNAMES:
        users[username] = User(username, f"Demo {username.capitalize()}", f"{username}@example.com", (username,),
                               hash_password(DEMO_PASSWORD, rounds=4))
    return AuthConfig(users)


def ensure_demo_auth_config(path: Path) -> bool:
    """Create the users file with the demo users unless it exists; return True when created."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    save_auth_config(demo_auth_config(), path)
    return True


def find_demo_users(config: AuthConfig) -> list[str]:
    """Users whose password is still the public demo password, or whose hash is too cheap for live use."""
    found = []
    for user in config.users.values():
        weak = bcrypt_cost(user.password_hash) < LIVE_MIN_BCRYPT_COST
        if weak or (user.username in DEMO_USERNAMES and check_password(DEMO_PASSWORD, user.password_hash)):
            found.append(user.username)
    return found


def check_auth_config_for_mode(config: AuthConfig, mode: str) -> None:
    """Raise ConfigError when the users file is unfit for `mode` (live: no demo users, at least one admin)."""
    if not config.users:
        raise ConfigError("the users file has no users: add one with "
                          "`python -m insights_core.auth add-user NAME --role admin`")
    if mode != "live":
        return
    demo = find_demo_users(config)
    if demo:
        raise ConfigError(f"live mode refuses demo users or weak password hashes ({', '.join(demo)}): remove them "
                          "with `python -m insights_core.auth remove-user NAME` and add real users")


def validate_cookie_key(key: str) -> str:
    key = key.strip()
    if key == LIBRARY_DEFAULT_COOKIE_KEY:
        raise ConfigError("INSIGHTS_COOKIE_KEY is streamlit-authenticator's public default 'some_key': anyone could "
                          "forge a login cookie. Generate one with `python -m insights_core.auth new-cookie-key`")
    if len(key) < MIN_COOKIE_KEY_LENGTH:
        raise ConfigError(f"INSIGHTS_COOKIE_KEY must be at least {MIN_COOKIE_KEY_LENGTH} characters; generate one "
                          "with `python -m insights_core.auth new-cookie-key`")
    return key


def new_cookie_key() -> str:
    return secrets.token_urlsafe(48)


def ensure_stub_cookie_key(data_dir: Path) -> str:
    """The stub mode's generated key, created on first use (by exactly one process) and kept in the data dir."""
    path = data_dir / COOKIE_KEY_FILE
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # another process may be writing it right now
            key = path.read_text(encoding="utf-8").strip()
            if key:
                return validate_cookie_key(key)
            time.sleep(0.02)
        raise ConfigError(f"{path} is empty: delete it and restart to generate a new key") from None
    key = new_cookie_key()
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(key + "\n")
    return key


def resolve_cookie_key(settings: Settings, secrets_key: str | None = None) -> str:
    """INSIGHTS_COOKIE_KEY, else the Streamlit secret, else (stub mode only) the generated key."""
    configured = settings.cookie_key.get_secret_value() if settings.cookie_key else (secrets_key or "")
    if configured.strip():
        return validate_cookie_key(configured)
    if settings.mode == "stub":
        return ensure_stub_cookie_key(settings.data_dir)
    raise ConfigError("live mode needs INSIGHTS_COOKIE_KEY (the secret that signs login cookies); generate one "
                      "with `python -m insights_core.auth new-cookie-key`")


def credentials_for_authenticator(config: AuthConfig) -> dict:
    """A fresh credentials dict for one streamlit-authenticator instance (it mutates what it is given)."""
    return {"usernames": {u.username: {"email": u.email, "first_name": u.name, "last_name": "",
                                        "password": u.password_hash, "roles": list(u.roles)}
                          for u in config.users.values()}}


def mint_login_cookie(username: str, key: str, expiry_days: float, now: float) -> tuple[str, dt.datetime]:
    """The re-login cookie value (streamlit-authenticator's JWT plus `iat`) and when it expires."""
    expires = now + expiry_days * 86400
    token = jwt.encode({"username": username, "exp_date": expires, "iat": now}, key, algorithm="HS256")
    return token, dt.datetime.fromtimestamp(expires)


def read_login_cookie(token: str, key: str, config: AuthConfig, logouts: Mapping[str, float],
                      now: float) -> str | None:
    """The user a re-login cookie vouches for, or None when it must be ignored.

    Refused: a bad signature (e.g. forged with the library's default key), another algorithm,
    an expired cookie, one without `iat` (not minted here), an unknown user, or one issued
    before that user last logged out.
    """
    try:
        payload = jwt.decode(token, key, algorithms=["HS256"], options={"require": ["iat"], "verify_iat": False})
    except jwt.InvalidTokenError:
        return None
    username, expires, issued = payload.get("username"), payload.get("exp_date"), payload.get("iat")
    if not isinstance(username, str) or not isinstance(expires, (int, float)) or not isinstance(issued, (int, float)):
        return None
    if expires <= now or issued > now + 60 or config.user(username) is None:
        return None
    if issued <= logouts.get(username.lower(), float("-inf")):
        return None
    return username.lower()


def fetch_logouts(data_dir: Path) -> dict[str, float]:
    try:
        data = json.loads((data_dir / LOGOUTS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): float(v) for k, v in data.items() if isinstance(v, (int, float))} if isinstance(data, dict) else {}


_logouts_lock = threading.Lock()


def save_logout(data_dir: Path, username: str, now: float) -> None:
    """Remember that `username` logged out at `now`: cookies issued before are refused from then on."""
    with _logouts_lock:
        logouts = fetch_logouts(data_dir)
        logouts[username.lower()] = now
        _write_private(data_dir / LOGOUTS_FILE, json.dumps(logouts, sort_keys=True))


class LoginThrottle:
    """Failed logins per user name, shared by every session of the process (thread-safe).

    After `max_attempts` failures a user is locked out until `lockout_seconds` have passed since
    the last failure; a success clears the count.
    """

    def __init__(self, max_attempts: int, lockout_seconds: float) -> None:
        self.max_attempts = max_attempts
        self.lockout_seconds = lockout_seconds
        self._failures: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()

    def failures(self, username: str, now: float) -> int:
        with self._lock:
            count, last = self._failures.get(username.lower(), (0, 0.0))
            return count if now - last < self.lockout_seconds else 0

    def locked_for(self, username: str, now: float) -> float:
        """Seconds until `username` may try again (0 when not locked)."""
        with self._lock:
            count, last = self._failures.get(username.lower(), (0, 0.0))
            remaining = self.lockout_seconds - (now - last)
            return remaining if count >= self.max_attempts and remaining > 0 else 0.0

    def record_failure(self, username: str, now: float) -> None:
        with self._lock:
            count, last = self._failures.get(username.lower(), (0, 0.0))
            count = count if now - last < self.lockout_seconds else 0
            self._failures[username.lower()] = (count + 1, now)

    def record_success(self, username: str) -> None:
        with self._lock:
            self._failures.pop(username.lower(), None)

    def locked_users(self, now: float) -> dict[str, float]:
        with self._lock:
            names = list(self._failures)
        return {name: left for name in names if (left := self.locked_for(name, now)) > 0}


def check_new_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InputError(f"the password needs at least {MIN_PASSWORD_LENGTH} characters")
    if password.strip().lower() == DEMO_PASSWORD:
        raise InputError("the demo password is public: choose another")
    if password != password.strip():
        raise InputError("the password must not start or end with spaces (the login form strips them)")
    return password


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, staging = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(staging, 0o600)
        os.replace(staging, path)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise


# command line: user management for live deployments


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return check_new_password(sys.stdin.readline().rstrip("\n"))
    first = getpass.getpass("Password: ")
    if getpass.getpass("Repeat password: ") != first:
        raise InputError("the passwords differ")
    return check_new_password(first)


def _load_or_empty(path: Path) -> AuthConfig:
    return load_auth_config(path) if path.exists() else AuthConfig({})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m insights_core.auth",
                                     description="Manage Meta Insights dashboard users (bcrypt-hashed passwords).")
    parser.add_argument("--config", type=Path, help="users file (default: INSIGHTS_AUTH_CONFIG or <data dir>/auth.yaml)")
    commands = parser.add_subparsers(dest="command", required=True)
    add = commands.add_parser("add-user", help="add a user (asks for the password)")
    add.add_argument("username")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--name", default="")
    add.add_argument("--email", default="")
    add.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    add.add_argument("--replace", action="store_true", help="overwrite an existing user of that name")
    setpw = commands.add_parser("set-password", help="change a user's password")
    setpw.add_argument("username")
    setpw.add_argument("--password-stdin", action="store_true")
    remove = commands.add_parser("remove-user", help="remove a user")
    remove.add_argument("username")
    commands.add_parser("list-users", help="list users and roles (never passwords)")
    commands.add_parser("new-cookie-key", help="print a random key for INSIGHTS_COOKIE_KEY")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "new-cookie-key":
        print(new_cookie_key())
        return 0
    try:
        path = args.config or load_settings().auth_config_path
        config = _load_or_empty(path)
        username = getattr(args, "username", "").strip().lower()
        if args.command == "list-users":
            for user in sorted(config.users.values(), key=lambda u: u.username):
                print(f"{user.username}\t{','.join(user.roles)}\t{user.name}\t{user.email}")
            return 0
        if args.command != "list-users" and not _USERNAME.match(username):
            raise InputError("user names may use only letters, digits and _ . @ - (up to 64)")
        users = dict(config.users)
        if args.command == "add-user":
            if username in users and not args.replace:
                raise InputError(f"user {username} exists (use --replace to overwrite, set-password to change it)")
            users[username] = User(username, args.name or username, args.email, (args.role,),
                                   hash_password(_read_password(args.password_stdin)))
        elif args.command == "set-password":
            user = users.get(username)
            if user is None:
                raise InputError(f"no user {username}")
            users[username] = User(user.username, user.name, user.email, user.roles,
                                   hash_password(_read_password(args.password_stdin)))
        elif args.command == "remove-user":
            if users.pop(username, None) is None:
                raise InputError(f"no user {username}")
        save_auth_config(AuthConfig(users), path)
        print(f"{args.command}: {username} ({path})")
        return 0
    except (ConfigError, InputError) as exc:
        print(f"auth: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
