"""Delivering alerts: a Slack-compatible webhook and e-mail over SMTP, each with retries and a timeout.

`fetch_*`-style side effects live here and nowhere else in the package. Failures are sorted once:
a refused connection, a timeout, HTTP 429 or 5xx, or an SMTP server that is down are retried with
a doubling backoff; any other HTTP 4xx, or an SMTP login refused, fails at once (retrying cannot
help). The webhook URL is a secret (it carries its own credential): it never appears in an error.
"""

from __future__ import annotations

import json
import smtplib
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage

RETRY_BASE_SECONDS = 1.0
Sleep = Callable[[float], None]


@dataclass(frozen=True)
class DeliveryResult:
    ok: bool
    attempts: int
    error: str | None = None


class _Fatal(Exception):
    """A failure that retrying cannot fix."""


def _with_retries(send: Callable[[], None], retries: int, sleep: Sleep) -> DeliveryResult:
    error = None
    for attempt in range(1, retries + 2):
        try:
            send()
            return DeliveryResult(True, attempt)
        except _Fatal as exc:
            return DeliveryResult(False, attempt, str(exc))
        except Exception as exc:  # anything else may pass: a server restarting, a network blip
            error = str(exc) or type(exc).__name__
        if attempt <= retries:
            sleep(RETRY_BASE_SECONDS * 2 ** (attempt - 1))
    return DeliveryResult(False, retries + 1, error)


def webhook_payload(text: str) -> dict[str, str]:
    """Slack's incoming-webhook JSON (`text`, with Slack's mrkdwn); Mattermost and Teams bridges read it too."""
    return {"text": text}


def send_webhook(url: str, text: str, timeout: float, retries: int, sleep: Sleep = time.sleep) -> DeliveryResult:
    """POST `text` as Slack-compatible JSON to `url`; retried on 429, 5xx and network errors."""
    body = json.dumps(webhook_payload(text)).encode()

    def send() -> None:
        request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # http(s) only, checked
                response.read()
        except urllib.error.HTTPError as exc:
            message = f"the webhook answered HTTP {exc.code}"
            if exc.code == 429 or exc.code >= 500:
                raise RuntimeError(message) from None
            raise _Fatal(message) from None
        except (TimeoutError, urllib.error.URLError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            raise RuntimeError(f"the webhook could not be reached: {reason}") from None

    if not url.startswith(("http://", "https://")):
        return DeliveryResult(False, 0, "the webhook URL must start with http:// or https://")
    return _with_retries(send, retries, sleep)


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    sender: str
    recipients: tuple[str, ...]
    starttls: bool = False
    user: str | None = None
    password: str | None = None
    timeout: float = 10.0


def email_message(config: SmtpConfig, subject: str, body: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = config.sender
    message["To"] = ", ".join(config.recipients)
    message["Subject"] = subject
    message.set_content(body)
    return message


def send_email(config: SmtpConfig, subject: str, body: str, retries: int, sleep: Sleep = time.sleep) -> DeliveryResult:
    """Send one e-mail over SMTP (STARTTLS and login when configured); retried while the server is unreachable."""
    message = email_message(config, subject, body)

    def send() -> None:
        try:
            with smtplib.SMTP(config.host, config.port, timeout=config.timeout) as smtp:
                if config.starttls:
                    smtp.starttls()
                if config.user:
                    smtp.login(config.user, config.password or "")
                smtp.send_message(message)
        except smtplib.SMTPAuthenticationError as exc:
            raise _Fatal(f"the SMTP server refused the login ({exc.smtp_code})") from None
        except smtplib.SMTPRecipientsRefused:
            raise _Fatal("the SMTP server refused every recipient") from None
        except (smtplib.SMTPException, OSError) as exc:
            raise RuntimeError(f"the SMTP server {config.host}:{config.port} failed: {exc}") from None

    return _with_retries(send, retries, sleep)
