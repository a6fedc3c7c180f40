"""Logging: JSON lines to `<data dir>/logs/meta_insights.log`, readable lines on stderr.

Every record passes through `RedactingFilter` first, so an access token or app secret never
reaches a log file even when an exception message or a request URL carries it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import logging.handlers
import re
import sys
from collections.abc import Iterable
from pathlib import Path

from insights_core.datadir import ensure_private_dir, make_private

_TOKEN_PARAM = re.compile(r"((?:access_token|appsecret_proof|client_secret|app_secret)=)[^&\s\"']+", re.I)
_META_TOKEN = re.compile(r"\bEAA[A-Za-z0-9]{20,}")
_STANDARD_ATTRS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with known secret values, token query parameters and Meta-looking tokens masked."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    text = _TOKEN_PARAM.sub(r"\1[redacted]", text)
    return _META_TOKEN.sub("[redacted]", text)


class RedactingFilter(logging.Filter):
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        message = redact(record.getMessage(), self.secrets)
        record.msg, record.args = message, None
        if record.exc_info:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info), self.secrets)
            record.exc_info = None
        for key, value in list(vars(record).items()):
            if key not in _STANDARD_ATTRS and isinstance(value, str):
                setattr(record, key, redact(value, self.secrets))
        return True


class JsonLineFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and every `extra=` field."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS and not k.startswith("_")})
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, default=str)


class QuietFileHandler(logging.handlers.RotatingFileHandler):
    """A rotating file handler that a full or read-only disk cannot make print a traceback per record.

    The record still reaches stderr through the other handler; the file's failure is said once,
    in one line, until a record is written again.
    """

    _failing = False

    def emit(self, record: logging.LogRecord) -> None:
        self._failed_now = False
        super().emit(record)
        if not self._failed_now:
            self._failing = False

    def handleError(self, record: logging.LogRecord) -> None:
        self._failed_now = True
        if not self._failing:
            self._failing = True
            sys.stderr.write(f"meta_insights: cannot write the log file {self.baseFilename}: {sys.exc_info()[1]}\n")


def configure_logging(log_path: Path | None, secrets: Iterable[str] = (), level: int = logging.INFO) -> None:
    """Route every logger to a rotating JSON-lines file and to stderr, both through the redactor.

    Handlers sit on the root logger and filter at the handler, so records from any library
    (the SDK and urllib3 put request URLs, with the token, in theirs) are redacted too.
    With `log_path` None only stderr is set up (before the data dir may be written). The log
    directory is 0700 and its files 0600: records name accounts and carry counts.
    """
    root = logging.getLogger()
    root.setLevel(level)
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    redactor = RedactingFilter(secrets)
    handlers: list[logging.Handler] = []
    if log_path is not None:
        ensure_private_dir(log_path.parent)
        file_handler = QuietFileHandler(log_path, maxBytes=20_000_000, backupCount=5, encoding="utf-8")
        make_private(log_path)
        file_handler.setFormatter(JsonLineFormatter())
        handlers.append(file_handler)
    stderr_handler = logging.StreamHandler(sys.stderr)
    stderr_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handlers.append(stderr_handler)
    for handler in handlers:
        handler.addFilter(redactor)
        root.addHandler(handler)
    for noisy in ("facebook_business", "urllib3", "schedule"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
