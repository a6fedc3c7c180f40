"""Cookies handed to the browser by the server's own answer to a one-time ticket (`cookie_handoff`)."""

from __future__ import annotations

import datetime as dt

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from insights_core.dashboard import cookie_handoff
from insights_core.dashboard.cookie_handoff import TICKETS, CookieSpec, CookieTickets, cookie_routes, ticket_url

IN_A_WEEK = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=7)


@pytest.fixture
def server() -> TestClient:
    return TestClient(Starlette(routes=cookie_routes()))


def test_a_ticket_sets_its_cookies_httponly_and_strict_once(server: TestClient) -> None:
    ticket = TICKETS.issue((CookieSpec("login", "token-1", IN_A_WEEK), CookieSpec("device", "token-2", IN_A_WEEK)))
    assert TICKETS.is_pending(ticket)
    answer = server.get(ticket_url(ticket))
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/gif"
    assert answer.headers["cache-control"] == "no-store"
    headers = answer.headers.get_list("set-cookie")
    assert [h.split(";")[0] for h in headers] == ["login=token-1", "device=token-2"]
    for header in headers:
        lowered = header.lower()
        assert "httponly" in lowered and "samesite=strict" in lowered and "path=/" in lowered, header
        assert "secure" not in lowered, "plain HTTP: a Secure cookie would never come back"
        assert IN_A_WEEK.strftime("%d %b %Y") in header, header
    assert not TICKETS.is_pending(ticket)
    again = server.get(ticket_url(ticket))
    assert again.status_code == 404 and "set-cookie" not in again.headers
    assert again.json() == {"error": "unknown or expired cookie ticket"}


def test_an_unknown_ticket_sets_nothing(server: TestClient) -> None:
    answer = server.get(ticket_url("not-a-ticket"))
    assert answer.status_code == 404 and "set-cookie" not in answer.headers


def test_a_delete_expires_the_cookie(server: TestClient) -> None:
    answer = server.get(ticket_url(TICKETS.issue((CookieSpec("login"),))))
    header = answer.headers["set-cookie"].lower()
    assert header.startswith("login=") and "max-age=0" in header and "httponly" in header


def test_behind_an_https_proxy_the_cookies_are_secure(server: TestClient) -> None:
    ticket = TICKETS.issue((CookieSpec("login", "t", IN_A_WEEK),))
    answer = server.get(ticket_url(ticket), headers={"X-Forwarded-Proto": "https"})
    assert "secure" in answer.headers["set-cookie"].lower()


def test_tickets_expire_and_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    tickets = CookieTickets(ttl_seconds=120, clock=lambda: now[0])
    first = tickets.issue((CookieSpec("a", "1", IN_A_WEEK),))
    now[0] += 121
    assert not tickets.is_pending(first) and tickets.redeem(first) is None
    monkeypatch.setattr(cookie_handoff, "MAX_TICKETS", 3)
    issued = [tickets.issue((CookieSpec("a", str(i), IN_A_WEEK),)) for i in range(5)]
    assert [tickets.is_pending(t) for t in issued] == [False, False, True, True, True]
    assert tickets.redeem(issued[-1]) == (CookieSpec("a", "4", IN_A_WEEK),)
