"""Cookies set by the server's own HTTP answer: a page hands the browser a one-time ticket, the browser
fetches it from this server, and the answer's `Set-Cookie` headers set or delete the cookies.

Why not a cookie component (extra-streamlit-components, as streamlit-authenticator uses): each of its
renders is an iframe that loads its own script, and each cookie it sets reruns the app; measured in
Chromium on a 2-core machine, the two cookies of a login cost about 4 s of the Overview redrawn three
times. Here the page draws an invisible 1x1 image whose URL is the ticket: no iframe, no rerun, and the
cookies can be HttpOnly (no script on the page can read them), which a JavaScript writer cannot do.
The server reads them back from the request headers (`st.context.cookies`) on the next page load.

Tickets are random (256 bits), single-use, expire after `TICKET_SECONDS`, and live in this process's
memory: the pages and this route are served by one Streamlit server process (`app.py`).
"""

from __future__ import annotations

import datetime as dt
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

COOKIE_ROUTE = "/_mi/cookies"
TICKET_SECONDS = 120.0
MAX_TICKETS = 10_000
"""Unredeemed tickets kept at most (the oldest go first): a bound on memory, far above real use."""
PIXEL = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x01D\x00;"
)
"""A transparent 1x1 GIF: the answer's body, so the image the page drew loads cleanly."""


@dataclass(frozen=True)
class CookieSpec:
    """One cookie to set (`expires` in the future) or delete (`expires` None)."""

    name: str
    value: str = ""
    expires: dt.datetime | None = None


class CookieTickets:
    """Tickets to cookie lists, redeemable once each before they expire. Thread-safe: the pages' script
    threads issue them and the server's event loop redeems them."""

    def __init__(self, ttl_seconds: float = TICKET_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._tickets: dict[str, tuple[float, tuple[CookieSpec, ...]]] = {}

    def issue(self, cookies: tuple[CookieSpec, ...]) -> str:
        ticket = secrets.token_urlsafe(32)
        now = self._clock()
        with self._lock:
            for old in [t for t, (deadline, _) in self._tickets.items() if deadline <= now]:
                del self._tickets[old]
            while len(self._tickets) >= MAX_TICKETS:
                del self._tickets[next(iter(self._tickets))]
            self._tickets[ticket] = (now + self._ttl, cookies)
        return ticket

    def is_pending(self, ticket: str) -> bool:
        """Issued, not redeemed yet and not expired (the page keeps drawing its image until then)."""
        with self._lock:
            entry = self._tickets.get(ticket)
        return entry is not None and entry[0] > self._clock()

    def redeem(self, ticket: str) -> tuple[CookieSpec, ...] | None:
        with self._lock:
            entry = self._tickets.pop(ticket, None)
        if entry is None or entry[0] <= self._clock():
            return None
        return entry[1]


TICKETS = CookieTickets()
"""The process's tickets, shared by the pages (`issue`) and the route (`redeem`)."""


def ticket_url(ticket: str) -> str:
    return f"{COOKIE_ROUTE}/{ticket}"


def _is_https(request: Request) -> bool:
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return request.url.scheme == "https" or forwarded == "https"


def cookie_response(cookies: tuple[CookieSpec, ...], secure: bool) -> Response:
    """The pixel, with one `Set-Cookie` per cookie: HttpOnly, SameSite=Strict, for the whole site."""
    response = Response(PIXEL, media_type="image/gif", headers={"Cache-Control": "no-store"})
    for cookie in cookies:
        if cookie.expires is None:
            response.delete_cookie(cookie.name, path="/", secure=secure, httponly=True, samesite="strict")
        else:
            response.set_cookie(
                cookie.name,
                cookie.value,
                expires=cookie.expires.astimezone(dt.timezone.utc),
                path="/",
                secure=secure,
                httponly=True,
                samesite="strict",
            )
    return response


async def redeem_cookie_ticket(request: Request) -> Response:
    """GET /_mi/cookies/{ticket}: the ticket's cookies, once; 404 (and nothing set) for any other ticket."""
    cookies = TICKETS.redeem(str(request.path_params["ticket"]))
    if cookies is None:
        return JSONResponse({"error": "unknown or expired cookie ticket"}, 404, headers={"Cache-Control": "no-store"})
    return cookie_response(cookies, _is_https(request))


def cookie_routes() -> list[BaseRoute]:
    """The route `app.py` adds to the server beside the API's."""
    return [Route(f"{COOKIE_ROUTE}/{{ticket}}", redeem_cookie_ticket, methods=["GET"])]
