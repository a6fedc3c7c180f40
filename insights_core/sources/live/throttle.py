"""Meta's errors and usage headers: what to retry, how long to wait, and what stops the sync.

`classify_error` is the one place a Marketing API failure is sorted: throttled (wait, at least
as long as Meta says, then retry), transient (jittered backoff), fatal (bad token, missing
permission: stop at once with what to fix), too much data (split the report), an invalid
breakdown combination (that family fails), or anything else (the entities of that request
fail). `Pacer` reads the usage headers of every response, failed ones included, and slows the
sync down before Meta blocks it — collectors that read them only on success end up in retry
loops once they are throttled.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal, Protocol, TypeVar
from urllib.parse import urlsplit

import requests
from facebook_business.exceptions import FacebookRequestError

from insights_core.errors import (
    AuthenticationError,
    EntityError,
    InsightsError,
    PermissionDeniedError,
    RateLimitError,
    TransientApiError,
)
from insights_core.logs import redact
from insights_core.models import SourceStats

log = logging.getLogger("meta_insights.live")

THROTTLE_CODES = frozenset({4, 17, 32, 613, *range(80000, 80015)})
"""App (4), user (17), page (32), custom (613) and business use case (80000-80014) rate limits."""
PERMISSION_CODES = frozenset({10, *range(200, 300)})
TRANSIENT_CODES = frozenset({1, 2})
TRANSIENT_HTTP = frozenset({500, 502, 503, 504})
AUTH_CODE = 190
TOO_MUCH_DATA = (100, 1487534)
INVALID_BREAKDOWN = (100, 1504041)
_NETWORK_ERRORS = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)
USAGE_HEADERS = ("x-app-usage", "x-ad-account-usage", "x-business-use-case-usage", "x-fb-ads-insights-throttle")
_PCT_KEYS = ("call_count", "total_time", "total_cputime", "acc_id_util_pct", "app_id_util_pct")
PACE_FROM_PCT = 80.0
"""Below this usage requests go out unhindered; above it each one waits longer, up to the base delay."""
PAUSE_AT_PCT = 95.0
TRANSIENT_FIRST_WAIT = 2.0
"""Seconds before the first retry of a transient error; doubles per retry, capped by the base delay."""

Sleep = Callable[[float], object]
Clock = Callable[[], float]


class _Response(Protocol):
    """What `RetryPolicy.run` reads from an answer (the SDK's FacebookResponse)."""

    def headers(self) -> Mapping[str, str] | None: ...


_R = TypeVar("_R", bound=_Response)


class ReportTooLargeError(EntityError):
    """Meta asked for less data per request (code 100, subcode 1487534): the report must be split."""


class InvalidBreakdownError(EntityError):
    """Meta does not accept this combination of breakdowns (code 100, subcode 1504041): no retry or split helps."""


@dataclass(frozen=True)
class Usage:
    """What Meta's usage headers say, reduced to what pacing needs."""

    pct: float = 0.0
    """The highest utilisation (percent of a limit) any header reports."""
    regain_seconds: float = 0.0
    """The longest wait Meta announced before access comes back (0: none announced)."""


@dataclass(frozen=True)
class ApiFailure:
    """A failed request, sorted: the error to raise, and whether and how it may be retried."""

    error: InsightsError
    retry: Literal["throttle", "transient"] | None
    usage: Usage = Usage()
    detail: str = ""
    """What Meta said, e.g. `HTTP 400, code 80000: (#80000) There have been too many calls...`."""


def parse_usage(headers: Mapping[str, str] | None) -> Usage:
    """Usage from x-app-usage, x-ad-account-usage, x-business-use-case-usage, x-fb-ads-insights-throttle.

    Unreadable headers count as absent: they must never stop a sync.
    """
    if not headers:
        return Usage()
    lowered = {str(k).lower(): v for k, v in headers.items()}
    pct, regain = 0.0, 0.0
    for name in USAGE_HEADERS:
        try:
            payload = json.loads(lowered[name])
        except (KeyError, TypeError, ValueError):
            continue
        for entry in _usage_entries(payload):
            pct = max(pct, *(_number(entry.get(key)) for key in _PCT_KEYS))
            regain = max(regain, 60 * _number(entry.get("estimated_time_to_regain_access")))
            if name == "x-ad-account-usage" and _number(entry.get("acc_id_util_pct")) >= 100:
                regain = max(regain, _number(entry.get("reset_time_duration")))
    return Usage(pct, regain)


def pace_delay(usage: Usage, base_delay: float) -> float:
    """Seconds to hold the next request: none below 80 %, rising to the base delay at 95 %,
    and at least the announced time to regain access."""
    if usage.pct >= PAUSE_AT_PCT:
        ramp = base_delay
    elif usage.pct > PACE_FROM_PCT:
        ramp = base_delay * (usage.pct - PACE_FROM_PCT) / (PAUSE_AT_PCT - PACE_FROM_PCT)
    else:
        ramp = 0.0
    return max(ramp, usage.regain_seconds)


def classify_error(exc: BaseException, secrets: Iterable[str] = ()) -> ApiFailure:
    """Sort a failed Graph API request onto the error hierarchy, with its retry rule."""
    secrets = list(secrets)
    if isinstance(exc, requests.RequestException):
        # never str(exc): requests puts the full URL, access token included, in its messages
        url = exc.request.url if exc.request is not None else None
        host = urlsplit(url).netloc if isinstance(url, str) and url else "the Graph API"
        said = f"no answer from {host} ({type(exc).__name__})"
        if isinstance(exc, _NETWORK_ERRORS):
            return ApiFailure(TransientApiError(f"{said} and retries ran out"), "transient", detail=said)
        return ApiFailure(
            EntityError(f"the request to {host} could not be made ({type(exc).__name__})"), None, detail=said
        )
    if not isinstance(exc, FacebookRequestError):
        return ApiFailure(EntityError(f"unexpected {type(exc).__name__} from the SDK"), None)
    code, subcode, status = exc.api_error_code(), exc.api_error_subcode(), exc.http_status()
    message = redact(str(exc.api_error_message() or _body_text(exc.body())), secrets)[:300]
    where = ", ".join(
        part
        for part in (
            f"HTTP {status}" if status else "",
            f"code {code}" if code is not None else "",
            f"subcode {subcode}" if subcode else "",
        )
        if part
    )
    said = f"{where}: {message}" if message else where
    detail = f"({said})"
    usage = parse_usage(exc.http_headers())
    if code == AUTH_CODE:
        return ApiFailure(
            AuthenticationError(
                f"Meta rejected the access token {detail}: create a new token (a system user token does not "
                "expire) with ads_read, and set META_ACCESS_TOKEN"
            ),
            None,
            usage,
            said,
        )
    if code in PERMISSION_CODES:
        return ApiFailure(
            PermissionDeniedError(
                f"the access token lacks a permission this sync needs {detail}: grant ads_read to the token and give "
                "its user access to every ad account in META_AD_ACCOUNT_IDS"
            ),
            None,
            usage,
            said,
        )
    if code in THROTTLE_CODES:
        return ApiFailure(
            RateLimitError(f"Meta throttled the request and retries ran out {detail}"), "throttle", usage, said
        )
    if (code, subcode) == INVALID_BREAKDOWN:
        return ApiFailure(
            InvalidBreakdownError(f"Meta does not accept this combination of breakdowns {detail}"), None, usage, said
        )
    if (code, subcode) == TOO_MUCH_DATA or "reduce the amount of data" in message.lower():
        return ApiFailure(ReportTooLargeError(f"Meta asked for less data per report {detail}"), None, usage, said)
    if exc.api_transient_error() or code in TRANSIENT_CODES or status in TRANSIENT_HTTP:
        return ApiFailure(
            TransientApiError(f"Meta answered with a temporary error and retries ran out {detail}"),
            "transient",
            usage,
            said,
        )
    return ApiFailure(EntityError(f"Meta refused the request {detail}"), None, usage, said)


def retry_wait(failure: ApiFailure, attempt: int, base_delay: float, rng: random.Random) -> float:
    """Seconds before retry number `attempt + 1`.

    Throttling waits the base delay times the attempt number, and never less than Meta's
    `estimated_time_to_regain_access`; transient errors back off exponentially from two seconds,
    capped by the base delay. Both add jitter so parallel workers do not retry in step.
    """
    if failure.retry == "throttle":
        return max(failure.usage.regain_seconds, base_delay * (attempt + 1)) * (1 + 0.1 * rng.random())
    return min(base_delay, TRANSIENT_FIRST_WAIT * 2.0**attempt) * rng.uniform(0.5, 1.0)


class Pacer:
    """Holds every request until the account may be called again. One per source, shared by all calls."""

    def __init__(self, base_delay: float, stats: SourceStats, sleep: Sleep, clock: Clock) -> None:
        self.base_delay = base_delay
        self.stats = stats
        self.sleep = sleep
        self.clock = clock
        self.last_usage = Usage()
        self._not_before = 0.0
        self._logged_level = 0

    def wait_turn(self) -> None:
        delay = self._not_before - self.clock()
        if delay > 0:
            self.stats.throttle_wait_seconds += delay
            self.sleep(delay)

    def observe(self, headers: Mapping[str, str] | None) -> None:
        usage = parse_usage(headers)
        self.last_usage = usage
        delay = pace_delay(usage, self.base_delay)
        level = int(min(usage.pct, 100) // 5) if delay > 0 else 0
        if level != self._logged_level:  # one line per 5 % step, not one per request
            self._logged_level = level
            if delay > 0:
                log.info("Meta usage at %.0f%%: spacing requests %.1fs apart", usage.pct, delay)
            else:
                log.info("Meta usage back to %.0f%%: requests no longer held", usage.pct)
        self.hold(delay)

    def hold(self, seconds: float) -> None:
        if seconds > 0:
            self._not_before = max(self._not_before, self.clock() + seconds)


class RetryPolicy:
    """Runs one Graph API request: paced, counted, retried by `classify_error`'s rule."""

    def __init__(
        self,
        pacer: Pacer,
        stats: SourceStats,
        max_retries: int,
        base_delay: float,
        secrets: Iterable[str] = (),
        rng: random.Random | None = None,
    ) -> None:
        self.pacer = pacer
        self.stats = stats
        self.max_retries = max_retries
        self.base_delay = base_delay
        self.secrets = list(secrets)
        self.rng = rng or random.Random()

    def run(self, send: Callable[[], _R]) -> _R:
        attempt = 0
        while True:
            self.pacer.wait_turn()
            self.stats.api_requests += 1
            try:
                response = send()
            except (FacebookRequestError, requests.RequestException) as exc:
                failure = classify_error(exc, self.secrets)
                if isinstance(exc, FacebookRequestError):
                    self.pacer.observe(exc.http_headers())
            else:
                self.pacer.observe(response.headers())
                return response
            if failure.retry == "throttle":
                self.stats.rate_limit_hits += 1
            if failure.retry is None or attempt >= self.max_retries:
                raise failure.error from None
            wait = retry_wait(failure, attempt, self.base_delay, self.rng)
            log.warning(
                "%s error (%s): retry %d of %d in %.1fs",
                failure.retry,
                failure.detail,
                attempt + 1,
                self.max_retries,
                wait,
            )
            self.stats.retries += 1
            self.pacer.hold(wait)
            attempt += 1


def _usage_entries(payload: object) -> list[Mapping[str, object]]:
    """x-business-use-case-usage nests lists of entries under business ids; the others are flat."""
    if isinstance(payload, Mapping):
        if any(isinstance(v, list) for v in payload.values()):
            return [e for v in payload.values() if isinstance(v, list) for e in v if isinstance(e, Mapping)]
        return [payload]
    return []


def _number(value: object) -> float:
    if not isinstance(value, (str, int, float)):  # decoded JSON: null, a list or an object
        return 0.0
    try:
        number = float(value)
    except ValueError:
        return 0.0
    return number if number == number and number != float("inf") else 0.0


def _body_text(body: object) -> str:
    return body if isinstance(body, str) else ""
