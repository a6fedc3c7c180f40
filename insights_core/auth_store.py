"""Login state the dashboard keeps in the data dir: logouts (revocations) and failed-login lockouts.

Files, not process memory: every dashboard process and the `python -m insights_core.auth` CLI
(`unlock`) see the same state, and a restart does not wipe a lockout. They sit beside the users
file's other secrets rather than in the control channel, which belongs to the sync worker and
is not needed to log in. Writes are atomic and readable by the owner only; read-modify-write
runs under an exclusive `flock`, so two processes never lose each other's update.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

LOGOUTS_FILE = "auth_logouts.json"
LOCKOUTS_FILE = "auth_lockouts.json"
_LOCK_FILE = ".auth_state.lock"
MAX_TRACKED_NAMES = 10_000
"""Names tried within one lockout window that are remembered; the oldest go first (a flood of invented names)."""
UNTRUSTED = ""
"""The device key under which failures from browsers without a device cookie for that name are counted."""

_thread_lock = threading.Lock()


def write_private_file(path: Path, text: str) -> None:
    """Replace `path` atomically (readers see the old or the new file), readable by the owner only."""
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


@contextlib.contextmanager
def exclusive_in(data_dir: Path) -> Iterator[None]:
    """Hold the data dir's auth lock (threads and processes) for a read-modify-write of its files."""
    with _thread_lock:
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(data_dir / _LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


def _fetch_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def fetch_logouts(data_dir: Path) -> dict[str, float]:
    data = _fetch_json(data_dir / LOGOUTS_FILE)
    return {str(k): float(v) for k, v in data.items() if isinstance(v, (int, float))}


def save_logout(data_dir: Path, username: str, now: float) -> None:
    """Remember that `username` logged out at `now`: their sessions and cookies from before end.

    Raises OSError when the data dir cannot be written (the caller has ended its own session already).
    """
    with exclusive_in(data_dir):
        logouts = fetch_logouts(data_dir)
        logouts[username.lower()] = now
        write_private_file(data_dir / LOGOUTS_FILE, json.dumps(logouts, sort_keys=True))


def login_name_key(entered: str) -> str:
    """The name a failed login is counted under: what the form would log in as, bounded in length."""
    return entered.strip().lower()[:64]


def lockout_left(failures: int, last_failure: float, now: float, max_attempts: int, lockout_seconds: float) -> float:
    """Seconds a count of `failures`, the last at `last_failure`, still locks its browsers out (0: none)."""
    remaining = lockout_seconds - (now - last_failure)
    return remaining if failures >= max_attempts and remaining > 0 else 0.0


class LoginThrottle:
    """Failed logins per (name, device), in `<data dir>/auth_lockouts.json`.

    Per OWASP's device cookies: a browser holding a valid device cookie for the name has its own
    count; every other browser shares the name's "untrusted" count. `max_attempts` failures within
    `lockout_seconds` of each other lock that count's browsers out until `lockout_seconds` have
    passed since the last one. So guessing stays slow, and the attacker locks out only browsers
    that never logged in as the user, not the user's own. Names that do not exist are counted
    the same way as real ones, so a lockout tells nothing about who exists.
    """

    def __init__(self, data_dir: Path, max_attempts: int, lockout_seconds: float) -> None:
        self.path = data_dir / LOCKOUTS_FILE
        self.data_dir = data_dir
        self.max_attempts = max_attempts
        self.lockout_seconds = lockout_seconds

    def _fetch(self) -> dict[str, dict[str, list[float]]]:
        data = _fetch_json(self.path)
        return {
            name: {device: entry for device, entry in devices.items() if isinstance(entry, list) and len(entry) == 2}
            for name, devices in data.items()
            if isinstance(devices, dict)
        }

    def _left(self, entry: list[float] | None, now: float) -> float:
        if not entry:
            return 0.0
        count, last = entry
        return lockout_left(int(count), last, now, self.max_attempts, self.lockout_seconds)

    def locked_for(self, name: str, device: str | None, now: float) -> float:
        """Seconds until this browser may try `name` again (0: not locked)."""
        return self._left(self._fetch().get(login_name_key(name), {}).get(device or UNTRUSTED), now)

    def record_failure(self, name: str, device: str | None, now: float) -> None:
        """Count a failed login (raises OSError when the data dir cannot be written)."""
        key = login_name_key(name)
        with exclusive_in(self.data_dir):
            state = self._pruned(self._fetch(), now)
            devices = state.setdefault(key, {})
            count, last = devices.get(device or UNTRUSTED, [0, 0.0])
            count = count if now - last < self.lockout_seconds else 0
            devices[device or UNTRUSTED] = [count + 1, now]
            write_private_file(self.path, json.dumps(state, sort_keys=True))

    def record_success(self, name: str, device: str | None) -> None:
        """Clear a trusted browser's count; the untrusted count stays (it holds other people's guesses)."""
        if not device:
            return
        self._drop(login_name_key(name), device)

    def unlock(self, name: str) -> int:
        """Clear every count of `name` (an admin's unlock); returns how many browsers were locked out."""
        return self._drop(login_name_key(name), None)

    def locked_users(self, now: float) -> dict[str, float]:
        """Names with at least one locked-out count, and the longest time left."""
        locked: dict[str, float] = {}
        for name, devices in self._fetch().items():
            left = max((self._left(entry, now) for entry in devices.values()), default=0.0)
            if left > 0:
                locked[name] = left
        return locked

    def _drop(self, key: str, device: str | None) -> int:
        with exclusive_in(self.data_dir):
            state = self._fetch()
            devices = state.get(key, {})
            dropped = [d for d in devices if device is None or d == device]
            if not dropped:
                return 0
            for d in dropped:
                devices.pop(d)
            if not devices:
                state.pop(key, None)
            write_private_file(self.path, json.dumps(state, sort_keys=True))
        return len(dropped)

    def _pruned(self, state: dict[str, dict[str, list[float]]], now: float) -> dict[str, dict[str, list[float]]]:
        live = {
            name: kept
            for name, devices in state.items()
            if (kept := {d: e for d, e in devices.items() if now - e[1] < self.lockout_seconds})
        }
        if len(live) >= MAX_TRACKED_NAMES:
            newest = sorted(live, key=lambda n: max(e[1] for e in live[n].values()), reverse=True)
            live = {name: live[name] for name in newest[: MAX_TRACKED_NAMES - 1]}
        return live
