"""API tokens: bearer tokens for the REST API, stored hashed in `<data dir>/api_tokens.json`.

A token is shown once, when it is created; the file keeps only its SHA-256 (the token has 256 bits
of entropy, so a fast hash is enough: nobody guesses a preimage), an id to revoke it by, its user
and a hint (prefix and last four characters) to recognise it in a list. A token carries no role:
each request acts with its user's *current* role, read from the users file, so removing the user or
changing the role applies at once. It also remembers a digest of the user's password hash when it
was created: a new password or a re-created user voids it, as they void sessions and cookies.

Writes are atomic, 0600 and run under an exclusive `flock`, like `auth_store`'s files, so the CLI,
the Users page and every dashboard process can share the file.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import re
import secrets
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from insights_core.auth_store import write_private_file

TOKENS_FILE = "api_tokens.json"
_LOCK_FILE = ".api_tokens.lock"
TOKEN_PREFIX = "mi_"
_TOKEN_ID = re.compile(r"^tok_[0-9a-f]{12}$")
_TOKEN_SHAPE = re.compile(r"^mi_[A-Za-z0-9_-]{43}$")

_thread_lock = threading.Lock()


@dataclass(frozen=True)
class TokenRecord:
    """What the file keeps about one token (never the token itself)."""

    id: str
    username: str
    created_at: str
    hint: str
    token_sha256: str
    user_fingerprint: str


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def user_fingerprint(password_hash: str) -> str:
    """A short digest of the user's bcrypt hash (salted, so it changes with a new password or a re-created user)."""
    return hashlib.sha256(b"meta-insights-api-token:" + password_hash.encode()).hexdigest()[:32]


def looks_like_token(text: str) -> bool:
    return bool(_TOKEN_SHAPE.match(text))


def is_token_id(text: str) -> bool:
    return bool(_TOKEN_ID.match(text))


def new_token_record(username: str, password_hash: str, now: dt.datetime | None = None) -> tuple[TokenRecord, str]:
    """A random token for `username` and the record to keep of it (its hash, never the token)."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    moment = (now or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc)
    record = TokenRecord(
        id=f"tok_{secrets.token_hex(6)}",
        username=username,
        created_at=moment.isoformat(timespec="seconds"),
        hint=f"{token[:5]}…{token[-4:]}",
        token_sha256=hash_token(token),
        user_fingerprint=user_fingerprint(password_hash),
    )
    return record, token


class TokenStore:
    """The tokens of one data dir. Reads are cached on the file's identity, so a check costs a `stat`."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.path = self.data_dir / TOKENS_FILE
        self._cache_key: tuple[int, int, int] | None = None
        self._by_hash: dict[str, TokenRecord] = {}
        self._cache_lock = threading.Lock()

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        with _thread_lock:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.data_dir / _LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)

    def fetch_tokens(self) -> list[TokenRecord]:
        """Every token record, oldest first; a missing or unreadable file holds none."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return []
        rows = data.get("tokens") if isinstance(data, dict) else None
        records = []
        for row in rows if isinstance(rows, list) else []:
            try:
                records.append(TokenRecord(**{k: str(row[k]) for k in TokenRecord.__dataclass_fields__}))
            except (KeyError, TypeError):
                continue
        return records

    def _save(self, records: list[TokenRecord]) -> None:
        write_private_file(self.path, json.dumps({"tokens": [asdict(r) for r in records]}, indent=1))

    def create_token(
        self, username: str, password_hash: str, now: dt.datetime | None = None
    ) -> tuple[TokenRecord, str]:
        """A new token for `username`: (its record, the token). The token is not kept: show it once."""
        record, token = new_token_record(username, password_hash, now)
        with self._exclusive():
            self._save([*self.fetch_tokens(), record])
        return record, token

    def revoke_token(self, token_id: str) -> TokenRecord | None:
        """Delete one token by id; the revoked record, or None when no token has that id."""
        with self._exclusive():
            records = self.fetch_tokens()
            kept = [r for r in records if r.id != token_id]
            if len(kept) == len(records):
                return None
            self._save(kept)
        return next(r for r in records if r.id == token_id)

    def find_token(self, token: str) -> TokenRecord | None:
        """The record of a presented token, or None. Refreshed whenever the file is replaced."""
        if not looks_like_token(token):
            return None
        try:
            stat = self.path.stat()
            key: tuple[int, int, int] | None = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        except OSError:
            key = None
        with self._cache_lock:
            if key != self._cache_key or key is None:
                self._by_hash = {r.token_sha256: r for r in self.fetch_tokens()} if key else {}
                self._cache_key = key
            return self._by_hash.get(hash_token(token))
