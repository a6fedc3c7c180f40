"""Classification of Marketing API failures, usage headers, pacing and the retry loop."""

from __future__ import annotations

import json
import random

import pytest
import requests
from facebook_business.exceptions import FacebookRequestError

from insights_core.errors import (
    AuthenticationError,
    EntityError,
    FatalSyncError,
    PermissionDeniedError,
    RateLimitError,
    TransientApiError,
)
from insights_core.models import SourceStats
from insights_core.sources.live.throttle import (
    ApiFailure,
    Pacer,
    ReportTooLargeError,
    RetryPolicy,
    Usage,
    classify_error,
    pace_delay,
    parse_usage,
    retry_wait,
)
from tests.live.helpers import FakeClock

TOKEN = "test-token-Zq81"


def graph_error(
    code: int | None,
    subcode: int | None = None,
    status: int = 400,
    transient: bool = False,
    headers: dict | None = None,
    message: str = "boom",
    body: str | None = None,
) -> FacebookRequestError:
    error = {"message": message, "type": "OAuthException", "code": code, "is_transient": transient}
    if subcode is not None:
        error["error_subcode"] = subcode
    text = body if body is not None else json.dumps({"error": error})
    return FacebookRequestError(
        "Call was not successful", {"method": "GET", "path": "https://graph/v26.0/act_1"}, status, headers or {}, text
    )


@pytest.mark.parametrize(
    ("exc", "error_class", "retry"),
    [
        (graph_error(190, 463), AuthenticationError, None),
        (graph_error(190, transient=True), AuthenticationError, None),
        (graph_error(10), PermissionDeniedError, None),
        (graph_error(200, status=403), PermissionDeniedError, None),
        (graph_error(294), PermissionDeniedError, None),
        (graph_error(4), RateLimitError, "throttle"),
        (graph_error(17, 2446079), RateLimitError, "throttle"),
        (graph_error(32), RateLimitError, "throttle"),
        (graph_error(613, 1487742), RateLimitError, "throttle"),
        (graph_error(80000, transient=True), RateLimitError, "throttle"),
        (graph_error(80004), RateLimitError, "throttle"),
        (graph_error(80014), RateLimitError, "throttle"),
        (graph_error(100, 1487534), ReportTooLargeError, None),
        (
            graph_error(1, 99, status=500, message="Please reduce the amount of data you're asking for, then retry"),
            ReportTooLargeError,
            None,
        ),
        (graph_error(1, status=500), TransientApiError, "transient"),
        (graph_error(2, status=500, transient=True), TransientApiError, "transient"),
        (graph_error(None, status=503, body="Service Unavailable"), TransientApiError, "transient"),
        (graph_error(None, status=500, body="<html>oops</html>"), TransientApiError, "transient"),
        (graph_error(100, 33), EntityError, None),
        (graph_error(100), EntityError, None),
        (graph_error(80015), EntityError, None),
        (graph_error(3), EntityError, None),
        (requests.ConnectionError("refused"), TransientApiError, "transient"),
        (requests.ReadTimeout("slow"), TransientApiError, "transient"),
        (requests.exceptions.ChunkedEncodingError("cut"), TransientApiError, "transient"),
        (requests.exceptions.InvalidURL("bad"), EntityError, None),
    ],
)
def test_classify_error(exc: BaseException, error_class: type, retry: str | None) -> None:
    failure = classify_error(exc)
    assert type(failure.error) is error_class
    assert failure.retry == retry
    assert isinstance(failure.error, FatalSyncError) == (error_class in (AuthenticationError, PermissionDeniedError))


def test_fatal_messages_say_what_to_fix_and_never_carry_the_token() -> None:
    auth = classify_error(graph_error(190, 463, message=f"Error validating access token {TOKEN}"), [TOKEN]).error
    assert "META_ACCESS_TOKEN" in str(auth) and "code 190" in str(auth) and "subcode 463" in str(auth)
    assert TOKEN not in str(auth) and "[redacted]" in str(auth)
    permission = classify_error(graph_error(200, message="(#200) Requires ads_read permission"), [TOKEN]).error
    assert "ads_read" in str(permission) and "META_AD_ACCOUNT_IDS" in str(permission)
    request = requests.Request("GET", f"http://127.0.0.1:9/v26.0/act_1?access_token={TOKEN}").prepare()
    unreachable = classify_error(requests.ConnectionError(f"cannot reach {request.url}", request=request)).error
    assert "127.0.0.1:9" in str(unreachable) and TOKEN not in str(unreachable)


BUC = {
    "x-business-use-case-usage": json.dumps(
        {
            "5550001": [
                {
                    "type": "ads_insights",
                    "call_count": 97,
                    "total_cputime": 20,
                    "total_time": 30,
                    "estimated_time_to_regain_access": 3,
                },
                {
                    "type": "ads_management",
                    "call_count": 5,
                    "total_cputime": 1,
                    "total_time": 1,
                    "estimated_time_to_regain_access": 0,
                },
            ]
        }
    )
}


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (None, Usage()),
        ({}, Usage()),
        ({"x-app-usage": json.dumps({"call_count": 28, "total_time": 25, "total_cputime": 41})}, Usage(41, 0)),
        ({"X-App-Usage": json.dumps({"call_count": 88})}, Usage(88, 0)),
        ({"x-ad-account-usage": json.dumps({"acc_id_util_pct": 9.67, "reset_time_duration": 0})}, Usage(9.67, 0)),
        ({"x-ad-account-usage": json.dumps({"acc_id_util_pct": 100, "reset_time_duration": 120})}, Usage(100, 120)),
        ({"x-fb-ads-insights-throttle": json.dumps({"app_id_util_pct": 12, "acc_id_util_pct": 86})}, Usage(86, 0)),
        (BUC, Usage(97, 180)),
        ({**BUC, "x-app-usage": json.dumps({"call_count": 99})}, Usage(99, 180)),
        ({"x-app-usage": "not json", "x-ad-account-usage": json.dumps({"acc_id_util_pct": "n/a"})}, Usage(0, 0)),
    ],
)
def test_parse_usage(headers: dict | None, expected: Usage) -> None:
    assert parse_usage(headers) == expected


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        (Usage(0, 0), 0.0),
        (Usage(80, 0), 0.0),
        (Usage(87.5, 0), 30.0),
        (Usage(95, 0), 60.0),
        (Usage(100, 0), 60.0),
        (Usage(10, 300), 300.0),
        (Usage(99, 30), 60.0),
    ],
)
def test_pace_delay_rises_with_usage_and_respects_regain_time(usage: Usage, expected: float) -> None:
    assert pace_delay(usage, base_delay=60) == pytest.approx(expected)


def test_retry_waits() -> None:
    rng = random.Random(1)
    throttled = ApiFailure(RateLimitError(), "throttle", Usage(100, 600))
    assert all(600 <= retry_wait(throttled, attempt, 60, rng) <= 660 for attempt in range(3))
    plain_throttle = ApiFailure(RateLimitError(), "throttle", Usage())
    assert 120 <= retry_wait(plain_throttle, 1, 60, rng) <= 132
    transient = ApiFailure(TransientApiError(), "transient")
    waits = [retry_wait(transient, attempt, 60, rng) for attempt in range(6)]
    assert 1 <= waits[0] <= 2 and 8 <= waits[3] <= 16 and all(w <= 60 for w in waits)
    assert all(retry_wait(transient, attempt, 0.05, rng) <= 0.05 for attempt in range(6))


class FakeResponse:
    def __init__(self, headers: dict | None = None) -> None:
        self._headers = headers or {}

    def headers(self) -> dict:
        return self._headers


def make_policy(max_retries: int = 3, base_delay: float = 10) -> tuple[RetryPolicy, FakeClock, SourceStats]:
    clock, stats = FakeClock(), SourceStats()
    pacer = Pacer(base_delay, stats, clock.sleep, clock.now)
    return RetryPolicy(pacer, stats, max_retries, base_delay, [TOKEN], random.Random(3)), clock, stats


def scripted(*outcomes: object):
    calls = iter(outcomes)

    def send() -> object:
        outcome = next(calls)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    return send


def test_throttling_waits_at_least_the_announced_time_then_succeeds() -> None:
    policy, clock, stats = make_policy()
    regain = {
        "x-business-use-case-usage": json.dumps({"1": [{"call_count": 100, "estimated_time_to_regain_access": 2}]})
    }
    ok = FakeResponse()
    assert policy.run(scripted(graph_error(80000, headers=regain), graph_error(17), ok)) is ok
    assert stats.api_requests == 3 and stats.rate_limit_hits == 2 and stats.retries == 2
    assert clock.sleeps[0] >= 120  # estimated_time_to_regain_access: 2 minutes
    assert clock.sleeps[1] >= 20  # second throttle without a header: base delay x 2
    assert stats.throttle_wait_seconds == pytest.approx(sum(clock.sleeps))


def test_retries_are_bounded_and_the_last_error_is_raised() -> None:
    policy, clock, stats = make_policy(max_retries=2)
    with pytest.raises(TransientApiError, match="retries ran out"):
        policy.run(scripted(*[graph_error(2, status=500, transient=True)] * 5))
    assert stats.api_requests == 3 and stats.retries == 2 and stats.rate_limit_hits == 0
    assert len(clock.sleeps) == 2 and all(s <= 10 for s in clock.sleeps)


@pytest.mark.parametrize("exc", [graph_error(190), graph_error(200), graph_error(100, 1487534), graph_error(100)])
def test_fatal_and_non_retriable_errors_are_raised_at_once(exc: FacebookRequestError) -> None:
    policy, clock, stats = make_policy()
    with pytest.raises(type(classify_error(exc).error)):
        policy.run(scripted(exc, FakeResponse()))
    assert stats.api_requests == 1 and clock.sleeps == []


def test_usage_headers_slow_the_next_request_even_on_errors() -> None:
    policy, clock, stats = make_policy(base_delay=10)
    busy = {"x-app-usage": json.dumps({"call_count": 91})}
    policy.run(scripted(graph_error(1, status=500, headers=busy), FakeResponse(busy), FakeResponse()))
    # the failed answer already said 91 %: the retry waits for the usage pace (7.3 s), not only the backoff
    assert clock.sleeps[0] >= 10 * (91 - 80) / 15 - 1e-9
    policy.run(scripted(FakeResponse()))
    assert len(clock.sleeps) == 2  # the 91 % success answer held the following request too
    quiet, _, quiet_stats = make_policy()
    for _ in range(5):
        quiet.run(scripted(FakeResponse({"x-app-usage": json.dumps({"call_count": 40})})))
    assert quiet_stats.throttle_wait_seconds == 0
