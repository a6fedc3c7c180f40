"""Dashboard users, roles and the cookie key, without Streamlit; the user CLI.

- Users live in a YAML file (INSIGHTS_AUTH_CONFIG, default `<data dir>/auth.yaml`) in
  streamlit-authenticator's layout: `credentials.usernames.<name>.{first_name, last_name, email,
  password, roles}`. Passwords are bcrypt hashes; a plain-text password is refused, never hashed
  on the fly. Stub mode writes the four demo users (password `demo`) on first run; live mode
  refuses to start while any of them is left.
- The cookie key signs the re-login and device cookies: whoever knows it can log in as anyone. It
  comes from INSIGHTS_COOKIE_KEY (or `[auth] cookie_key` in Streamlit secrets); the library's
  default `some_key` and short keys are refused. Stub mode alone generates a random key on first
  run and keeps it in `<data dir>/cookie_key`.
- Cookies live in `auth_tokens`; logouts and failed-login lockouts in `auth_store` (files in the
  data dir). Their public names are re-exported here. With INSIGHTS_STORE=ducklake, users, logouts,
  lockouts, API tokens and the generated key live in PostgreSQL instead (`auth_state`), shared by
  every replica; the file layout and the rules above stay the same.

`python -m insights_core.auth --help` manages users, lockouts and API tokens for live deployments.
"""

from __future__ import annotations

import argparse
import functools
import getpass
import os
import re
import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import bcrypt
import yaml

from insights_core.api_tokens import TOKENS_FILE, user_fingerprint
from insights_core.auth_store import (  # noqa: F401  (re-exported)
    LOCKOUTS_FILE,
    LOGOUTS_FILE,
    LoginThrottle,
    fetch_logouts,
    save_logout,
    write_private_file,
)
from insights_core.auth_tokens import (  # noqa: F401  (re-exported)
    mint_device_cookie,
    mint_login_cookie,
    password_fingerprint,
    read_device_cookie,
    read_login_cookie,
)
from insights_core.errors import ConfigError, InputError, StoreError
from insights_core.roles import ROLES, highest_role
from insights_core.settings import Settings, load_settings

if TYPE_CHECKING:
    from insights_core.auth_state import AuthState, UserStore

DEMO_USERNAMES = ("admin", "manager", "analyst", "viewer")
DEMO_PASSWORD = "demo"
LIBRARY_DEFAULT_COOKIE_KEY = "some_key"
MIN_COOKIE_KEY_LENGTH = 32
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_BYTES = 72
"""bcrypt reads at most 72 bytes of a password (bcrypt 5 refuses longer ones)."""
LIVE_MIN_BCRYPT_COST = 10
"""Live users need a real bcrypt cost; the demo users' hashes use cost 4 (their password is public)."""
COOKIE_KEY_FILE = "cookie_key"

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


@functools.lru_cache(maxsize=8)
def _dummy_hash(rounds: int) -> str:
    return hash_password(secrets.token_urlsafe(16), rounds=rounds)


def dummy_hash_for(config: AuthConfig) -> str:
    """A hash nobody knows the password of, as costly as the dearest real one (see `verify_login`)."""
    return _dummy_hash(max((bcrypt_cost(u.password_hash) for u in config.users.values()), default=12) or 12)


def verify_login(config: AuthConfig, username: str, password: str) -> User | None:
    """The user these credentials belong to, or None.

    An unknown name costs one bcrypt check against `dummy_hash_for(config)`, so the answer's timing
    does not tell which names exist.
    """
    user = config.user(username)
    if user is None:
        check_password(password, dummy_hash_for(config))
        return None
    return user if check_password(password, user.password_hash) else None


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
            raise ConfigError(
                f"{source}: user {username}'s password is not a bcrypt hash; set it with "
                f"`python -m insights_core.auth set-password {username}`"
            )
        roles = details.get("roles") or []
        roles = [roles] if isinstance(roles, str) else roles
        if not isinstance(roles, list) or not roles or any(r not in ROLES for r in roles):
            raise ConfigError(f"{source}: user {username} needs roles from {', '.join(ROLES)}, got {roles!r}")
        name = f"{details.get('first_name') or ''} {details.get('last_name') or ''}".strip()
        users[username] = User(
            username,
            name or str(details.get("name") or username),
            str(details.get("email") or ""),
            tuple(roles),
            password,
        )
    return AuthConfig(users)


def load_auth_config(path: Path) -> AuthConfig:
    if not path.exists():
        raise ConfigError(
            f"no users file at {path}: add a user with `python -m insights_core.auth add-user NAME --role admin`"
        )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read users file {path}: {exc}") from None
    return parse_auth_config(data, str(path))


def auth_config_document(config: AuthConfig) -> dict[str, Any]:
    """The YAML document for `config` (the library's layout, read back by `parse_auth_config`)."""
    usernames = {}
    for user in config.users.values():
        first, _, last = user.name.partition(" ")
        usernames[user.username] = {
            "email": user.email,
            "first_name": first,
            "last_name": last,
            "password": user.password_hash,
            "roles": list(user.roles),
        }
    return {"credentials": {"usernames": usernames}}


def save_auth_config(config: AuthConfig, path: Path) -> None:
    """Write the users file atomically (readers see the old or the new file), readable by the owner only."""
    text = "# Meta Insights dashboard users: manage with `python -m insights_core.auth`\n"
    text += yaml.safe_dump(auth_config_document(config), sort_keys=True)
    write_private_file(path, text)


def demo_auth_config() -> AuthConfig:
    """The stub mode's four demo users, one per role, all with password `demo`."""
    users = {}
    for username in DEMO_USERNAMES:
        users[username] = User(
            username,
            f"Demo {username.capitalize()}",
            f"{username}@example.com",
            (username,),
            hash_password(DEMO_PASSWORD, rounds=4),
        )
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
        raise ConfigError(
            "the users file has no users: add one with `python -m insights_core.auth add-user NAME --role admin`"
        )
    if mode != "live":
        return
    demo = find_demo_users(config)
    if demo:
        raise ConfigError(
            f"live mode refuses demo users or weak password hashes ({', '.join(demo)}): remove them "
            "with `python -m insights_core.auth remove-user NAME` and add real users"
        )


def check_users_for_mode(config: AuthConfig, mode: str) -> None:
    """`check_auth_config_for_mode`, remembered per content of the users: a store read on every page run or
    request would otherwise pay the live check's bcrypt work each time."""
    key = tuple(sorted((u.username, u.password_hash, u.roles) for u in config.users.values()))
    problem = _problem_for_mode(key, mode)
    if problem is not None:
        raise ConfigError(problem)


@functools.lru_cache(maxsize=16)
def _problem_for_mode(users: tuple[tuple[str, str, tuple[str, ...]], ...], mode: str) -> str | None:
    config = AuthConfig({name: User(name, name, "", roles, password_hash) for name, password_hash, roles in users})
    try:
        check_auth_config_for_mode(config, mode)
    except ConfigError as exc:
        return str(exc)
    dummy_hash_for(config)  # made once here, not during the first login attempt with an unknown name
    return None


def validate_cookie_key(key: str) -> str:
    key = key.strip()
    if key == LIBRARY_DEFAULT_COOKIE_KEY:
        raise ConfigError(
            "INSIGHTS_COOKIE_KEY is streamlit-authenticator's public default 'some_key': anyone could "
            "forge a login cookie. Generate one with `python -m insights_core.auth new-cookie-key`"
        )
    if len(key) < MIN_COOKIE_KEY_LENGTH:
        raise ConfigError(
            f"INSIGHTS_COOKIE_KEY must be at least {MIN_COOKIE_KEY_LENGTH} characters; generate one "
            "with `python -m insights_core.auth new-cookie-key`"
        )
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


def resolve_cookie_key(
    settings: Settings, secrets_key: str | None = None, ensure_generated: Callable[[], str] | None = None
) -> str:
    """INSIGHTS_COOKIE_KEY, else the Streamlit secret, else (stub mode only) the generated key.

    `ensure_generated` makes or fetches that key (`AuthState.ensure_generated_cookie_key`: shared by
    every replica when the lake is used); the default keeps it in the data dir.
    """
    configured = settings.cookie_key.get_secret_value() if settings.cookie_key else (secrets_key or "")
    if configured.strip():
        return validate_cookie_key(configured)
    if settings.mode == "stub":
        return ensure_generated() if ensure_generated else ensure_stub_cookie_key(settings.data_dir)
    raise ConfigError(
        "live mode needs INSIGHTS_COOKIE_KEY (the secret that signs login cookies); generate one "
        "with `python -m insights_core.auth new-cookie-key`"
    )


def check_new_password(password: str) -> str:
    if len(password.encode()) > MAX_PASSWORD_BYTES:
        raise InputError(
            f"the password is longer than {MAX_PASSWORD_BYTES} bytes (UTF-8), more than bcrypt "
            "uses: choose a shorter one"
        )
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InputError(f"the password needs at least {MIN_PASSWORD_LENGTH} characters")
    if password.strip().lower() == DEMO_PASSWORD:
        raise InputError("the demo password is public: choose another")
    if password != password.strip():
        raise InputError("the password must not start or end with spaces (the login form strips them)")
    return password


# command line: user management for live deployments


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return check_new_password(sys.stdin.readline().rstrip("\n"))
    first = getpass.getpass("Password: ")
    if getpass.getpass("Repeat password: ") != first:
        raise InputError("the passwords differ")
    return check_new_password(first)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m insights_core.auth",
        description="Manage Meta Insights dashboard users (bcrypt-hashed passwords).",
    )
    parser.add_argument(
        "--config", type=Path, help="users file (default: INSIGHTS_AUTH_CONFIG or <data dir>/auth.yaml)"
    )
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
    set_role = commands.add_parser(
        "set-role", help="change a user's role (their sessions keep going, with the new role)"
    )
    set_role.add_argument("username")
    set_role.add_argument("--role", required=True, choices=ROLES)
    imported = commands.add_parser(
        "import-users", help="copy the users of a users file into the configured store (e.g. PostgreSQL with the lake)"
    )
    imported.add_argument("file", type=Path)
    imported.add_argument("--replace", action="store_true", help="overwrite users that exist already")
    remove = commands.add_parser("remove-user", help="remove a user")
    remove.add_argument("username")
    commands.add_parser("list-users", help="list users and roles (never passwords)")
    commands.add_parser("new-cookie-key", help="print a random key for INSIGHTS_COOKIE_KEY")
    unlock = commands.add_parser("unlock", help="end a lockout after failed logins (every browser, now)")
    unlock.add_argument("username", help="the name as typed in the login form (it need not exist)")
    new_token = commands.add_parser("new-token", help="create an API token for a user (printed once, on the last line)")
    new_token.add_argument("username")
    commands.add_parser("list-tokens", help="list API tokens (id, user, hint, created; never the token)")
    revoke = commands.add_parser("revoke-token", help="revoke an API token by its id (refused from the next request)")
    revoke.add_argument("token_id", help="the id list-tokens shows (tok_...)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; a bad input or an unwritable file is one line on stderr and exit code 2."""
    args = build_parser().parse_args(argv)
    if args.command == "new-cookie-key":
        print(new_cookie_key())
        return 0
    from insights_core.auth_state import auth_state  # it builds on this module

    target: Path | None = args.config
    try:
        settings = load_settings()
        if args.config is not None:
            if settings.store == "ducklake":
                raise InputError("--config names a users file: with INSIGHTS_STORE=ducklake users live in PostgreSQL")
            settings = settings.model_copy(update={"auth_config": args.config})
        state = auth_state(settings)
        if args.command == "unlock":
            target = settings.data_dir / LOCKOUTS_FILE
            return _unlock(state, args.username)
        if args.command in ("new-token", "list-tokens", "revoke-token"):
            target = settings.data_dir / TOKENS_FILE
            return _manage_tokens(args, state)
        target = settings.auth_config_path
        return _change_users(args, state.users)
    except (ConfigError, InputError, StoreError) as exc:
        print(f"auth: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(
            f"auth: error: cannot write {target}: {exc.strerror or exc}"
            f"{f' ({exc.filename})' if exc.filename and str(exc.filename) != str(target) else ''}",
            file=sys.stderr,
        )
        return 2


def _unlock(state: AuthState, username: str) -> int:
    throttle = state.throttle
    locked = throttle.locked_users(time.time())
    name = username.strip().lower()
    cleared = throttle.unlock(name)
    was = "was locked out" if name in locked else "was not locked out"
    print(f"unlock: {name} {was}; {cleared} failed-login count{'s' if cleared != 1 else ''} cleared")
    return 0


def _manage_tokens(args: argparse.Namespace, state: AuthState) -> int:
    """API tokens: the new token is printed alone on the last line, so scripts can take `tail -n 1`."""
    store = state.tokens
    config = state.users.fetch_users(missing_ok=True)
    if args.command == "list-tokens":
        for record in store.fetch_tokens():
            user = config.user(record.username)
            standing = (
                "void: user removed"
                if user is None
                else "void: new password or re-created user"
                if user_fingerprint(user.password_hash) != record.user_fingerprint
                else user.role or "no role"
            )
            print(f"{record.id}\t{record.username}\t{record.hint}\t{record.created_at}\t{standing}")
        return 0
    if args.command == "revoke-token":
        revoked = store.revoke_token(args.token_id.strip())
        if revoked is None:
            raise InputError(f"no API token {args.token_id.strip()} (see list-tokens)")
        print(f"revoke-token: {revoked.id} of {revoked.username} revoked")
        return 0
    username = args.username.strip().lower()
    user = config.user(username)
    if user is None:
        raise InputError(f"no user {username} in {state.users.where}: add it with add-user first")
    record, token = store.create_token(user.username, user.password_hash)
    print(
        f"new-token: {record.id} for {user.username} (acts with the user's current role, now {user.role}); "
        "it is shown only now:"
    )
    print(token)
    return 0


def _change_users(args: argparse.Namespace, users: UserStore) -> int:
    if args.command == "list-users":
        config = users.fetch_users(missing_ok=True)
        for user in sorted(config.users.values(), key=lambda u: u.username):
            print(f"{user.username}\t{','.join(user.roles)}\t{user.name}\t{user.email}")
        return 0
    if args.command == "import-users":
        return _import_users(load_auth_config(args.file), users, replace=args.replace)
    username = args.username.strip().lower()
    if not _USERNAME.match(username):
        raise InputError("user names may use only letters, digits and _ . @ - (up to 64)")
    if args.command == "add-user":
        new = User(
            username,
            args.name or username,
            args.email,
            (args.role,),
            hash_password(_read_password(args.password_stdin)),
        )
        if not users.add_user(new, replace=args.replace):
            raise InputError(f"user {username} exists (use --replace to overwrite, set-password to change it)")
    elif args.command in ("set-password", "set-role"):
        existing = users.fetch_users(missing_ok=True).user(username)
        if existing is None:
            raise InputError(f"no user {username}")
        roles = (args.role,) if args.command == "set-role" else existing.roles
        password_hash = (
            hash_password(_read_password(args.password_stdin))
            if args.command == "set-password"
            else existing.password_hash
        )
        if not users.update_user(User(existing.username, existing.name, existing.email, roles, password_hash)):
            raise InputError(f"no user {username}")  # removed meanwhile
    elif args.command == "remove-user" and not users.remove_user(username):
        raise InputError(f"no user {username}")
    print(f"{args.command}: {username} ({users.where})")
    return 0


def _import_users(source: AuthConfig, users: UserStore, *, replace: bool) -> int:
    added = [u.username for u in source.users.values() if users.add_user(u, replace=replace)]
    skipped = sorted(set(source.users) - set(added))
    print(
        f"import-users: {len(added)} added to {users.where}"
        + (f"; kept existing {', '.join(skipped)}" if skipped else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
