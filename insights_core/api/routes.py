"""The REST API's Starlette routes, served by the dashboard's own server (`st.App(..., routes=api_routes())`).

Every route goes through `_endpoint`: it reads the body on the event loop (bounded), then runs
the handler in the thread pool (DuckDB and SQLite work never blocks the loop), turns the error
hierarchy into JSON answers (`{"error": "..."}`: 400 bad input, 401 no or bad token, 403 role,
404 unknown id, 503 no data or unreadable files, 500 a bug, logged) and records the latency under
the route's template. Handlers authenticate first, then validate, then read.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import duckdb
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from insights_core.api import views
from insights_core.api.auth import CurrentUsers, Principal, authenticate, require
from insights_core.api.metrics import ApiMetrics
from insights_core.api.openapi import openapi_document
from insights_core.api.params import (
    parse_account_id,
    parse_choice,
    parse_count,
    parse_date,
    parse_days_param,
    parse_family,
    parse_level_param,
    parse_request_id,
    parse_sync_body,
)
from insights_core.api.reads import Row, SnapshotCache, SnapshotKey, SnapshotReader
from insights_core.api.serializers import JsonObject, json_value
from insights_core.auth_state import auth_state
from insights_core.control import open_control_channel
from insights_core.dashboard.inputs import parse_entity_id
from insights_core.errors import ApiAuthError, ApiForbiddenError, ConfigError, InputError, NotFoundError, StoreError
from insights_core.levels import Level
from insights_core.models import BREAKDOWN_FAMILIES
from insights_core.roles import Permission
from insights_core.settings import Settings, load_settings
from insights_core.store import queries
from insights_core.store.lake_reader import LakeReader
from insights_core.sync_requests import parse_entity_type, parse_sync_request, request_params

log = logging.getLogger("meta_insights.api")

Cursor = duckdb.DuckDBPyConnection
API_PREFIX = "/meta/insights"
MAX_BODY_BYTES = 64 * 1024
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


class ApiContext:
    """What handlers share in one server process: settings, tokens, users, snapshot reader, control channel."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        state = auth_state(settings)  # the data dir's files, or PostgreSQL shared by every replica
        self.tokens = state.tokens
        self.users = CurrentUsers(state.users, settings.mode)
        lake = LakeReader(settings) if settings.store == "ducklake" else None
        self.reader = SnapshotReader(settings.current_snapshot_link, lake)
        # answers and the pieces many answers share, per immutable snapshot (as the pages' st.cache_data)
        self.payloads: SnapshotCache[bytes] = SnapshotCache(256)
        self.bounds: SnapshotCache[queries.DataBounds] = SnapshotCache(4)
        self.sync_status: SnapshotCache[views.SyncStatus] = SnapshotCache(4)
        self.counts: SnapshotCache[tuple[int, int]] = SnapshotCache(16)
        self.ads_per_campaign: SnapshotCache[dict[str, int]] = SnapshotCache(4)
        self.campaign_rows: SnapshotCache[dict[str, Row] | None] = SnapshotCache(2)
        # a period's ratios of every campaign (~130 KB at 1,000 campaigns); periods are clamped to the stored days
        self.populations: SnapshotCache[views.CampaignPopulation] = SnapshotCache(128)
        self.control = open_control_channel(settings)
        self.metrics = ApiMetrics(self.reader, self.control)

    def snapshot_bounds(self, snapshot: SnapshotKey, cur: Cursor) -> queries.DataBounds:
        return self.bounds.fetch(snapshot, lambda: views.fetch_bounds(cur))

    def days_period(self, snapshot: SnapshotKey, cur: Cursor, days: int) -> views.Period:
        return views.days_period(self.snapshot_bounds(snapshot, cur), days)

    def population(self, snapshot: SnapshotKey, cur: Cursor, period: views.Period) -> views.CampaignPopulation:
        # days before the first stored day add nothing: 90 days on a 30-day store rank the same campaigns as 30
        stored = views.stored_period(self.snapshot_bounds(snapshot, cur), period)
        return self.populations.fetch((snapshot, stored), lambda: views.fetch_campaign_population(cur, stored))

    def campaigns(self, snapshot: SnapshotKey, cur: Cursor) -> dict[str, Row] | None:
        return self.campaign_rows.fetch(snapshot, lambda: views.fetch_campaign_rows(cur))

    def campaign_ads(self, snapshot: SnapshotKey, cur: Cursor) -> dict[str, int]:
        return self.ads_per_campaign.fetch(snapshot, lambda: views.fetch_ads_per_campaign(cur))

    def campaign_counts(self, snapshot: SnapshotKey, cur: Cursor, account_id: str | None) -> tuple[int, int]:
        return self.counts.fetch((snapshot, account_id), lambda: views.fetch_campaign_counts(cur, account_id))

    def overview_sync_status(self, snapshot: SnapshotKey, cur: Cursor, now: dt.datetime) -> views.SyncStatus:
        # the sync alerts look at the last 24 hours: kept for the minute at most
        minute = int(now.timestamp() // 60)
        return self.sync_status.fetch((snapshot, minute), lambda: views.fetch_sync_status(cur, now))

    def caller(self, request: Request, permission: Permission = "analytics:read") -> Principal:
        principal = authenticate(request.headers.get("authorization"), self.tokens, self.users)
        require(principal, permission)
        return principal


@dataclass
class _ContextHolder:
    """Builds the context on first use (settings come from the environment the server was started in)."""

    settings: Settings | None
    context: ApiContext | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self) -> ApiContext:
        with self.lock:
            if self.context is None:
                self.context = ApiContext(self.settings or load_settings())
            return self.context


Handler = Callable[[Request, bytes, ApiContext], Response]


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _answer(handler: Handler, request: Request, body: bytes, holder: _ContextHolder) -> Response:
    try:
        return handler(request, body, holder.get())
    except ApiAuthError as exc:
        return _error(401, str(exc), {"WWW-Authenticate": 'Bearer realm="meta-insights"'})
    except ApiForbiddenError as exc:
        return _error(403, str(exc))
    except NotFoundError as exc:
        return _error(404, str(exc))
    except InputError as exc:
        return _error(400, str(exc))
    except (StoreError, ConfigError) as exc:  # no snapshot yet, a damaged file, an unreadable users file
        return _error(503, str(exc))
    except Exception:
        log.exception("API: unexpected error on %s %s", request.method, request.scope.get("route_template", "?"))
        return _error(500, "internal error (logged on the server)")


def _endpoint(template: str, methods: tuple[str, ...], handler: Handler, holder: _ContextHolder) -> Route:
    allowed = {*methods, "HEAD"} if "GET" in methods else set(methods)

    async def run(request: Request) -> Response:
        started = time.perf_counter()
        request.scope["route_template"] = template
        if request.method not in allowed:
            response: Response = _error(
                405,
                f"{request.method} is not allowed here; use {', '.join(methods)}",
                {"Allow": ", ".join(sorted(allowed))},
            )
        else:
            body = b""
            if request.method == "POST":
                body, too_big = await _read_body(request)
                if too_big:
                    response = _error(413, f"the body is larger than {MAX_BODY_BYTES} bytes")
                    _observe(holder, template, request.method, response.status_code, started)
                    return response
            response = await run_in_threadpool(_answer, handler, request, body, holder)
        _observe(holder, template, request.method, response.status_code, started)
        return response

    return Route(template, run, methods=ALL_METHODS)


async def _read_body(request: Request) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return b"", True
        chunks.append(chunk)
    return b"".join(chunks), False


def _observe(holder: _ContextHolder, template: str, method: str, status: int, started: float) -> None:
    if holder.context is not None:
        holder.context.metrics.observe(template, method, status, time.perf_counter() - started)


def _json(payload: JsonObject, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(payload, status_code=status, headers=headers)


def encode_json(payload: JsonObject) -> bytes:
    """What JSONResponse would send; cached answers are kept encoded, so a repeat costs no encoding."""
    return json.dumps(payload, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def _cached_json(body: bytes) -> Response:
    return Response(body, media_type="application/json")


def get_overview(request: Request, _body: bytes, ctx: ApiContext) -> Response:
    ctx.caller(request)
    query = request.query_params
    since, until = parse_date(query.get("since"), "since"), parse_date(query.get("until"), "until")
    account_id = parse_account_id(query.get("account_id"))
    top = parse_count(query.get("top"), "top", 1, 500, 10)
    sort_by = parse_choice(query.get("sort_by"), "sort_by", ("spend", "roas"), "spend")
    if since and until and since > until:
        raise InputError(f"since ({since}) is after until ({until})")
    snapshot = ctx.reader.current_key()
    now = dt.datetime.now(dt.timezone.utc)
    order: views.SortBy = "roas" if sort_by == "roas" else "spend"

    def compute() -> bytes:
        with ctx.reader.cursor(snapshot) as cur:
            bounds = ctx.snapshot_bounds(snapshot, cur)
            views.check_account(bounds, account_id)
            period = views.overview_period(bounds, since, until)
            if period.since > period.until:
                raise InputError(f"since ({period.since}) is after until ({period.until}, the last stored day)")
            counts = ctx.campaign_counts(snapshot, cur, account_id)
            status = ctx.overview_sync_status(snapshot, cur, now)
            return encode_json(views.overview_view(cur, period, account_id, counts, status, top, order))

    # the sync alerts look at the last 24 hours, so a cached overview is kept for the minute at most
    key = (snapshot, "overview", since, until, account_id, top, sort_by, int(now.timestamp() // 60))
    body = ctx.payloads.fetch(key, compute)
    stamp = encode_json({"timestamp": now.isoformat(timespec="seconds")})
    # the timestamp of this request first, as the original README shows
    return _cached_json(stamp[:-1] + b"," + body[1:])


def _entity_handler(level: Level) -> Handler:
    def handle(request: Request, _body: bytes, ctx: ApiContext) -> Response:
        ctx.caller(request)
        entity_id = parse_entity_id(request.path_params[f"{level}_id"], level)
        days = parse_days_param(request.query_params.get("days"), ctx.settings.max_days_back)
        snapshot = ctx.reader.current_key()

        def compute() -> bytes:
            with ctx.reader.cursor(snapshot) as cur:
                period = ctx.days_period(snapshot, cur, days)
                if level == "campaign":
                    population = ctx.population(snapshot, cur, period)
                    ads = ctx.campaign_ads(snapshot, cur)
                    campaigns = ctx.campaigns(snapshot, cur)
                    return encode_json(views.campaign_view(cur, entity_id, period, population, ads, campaigns))
                return encode_json((views.adset_view if level == "adset" else views.ad_view)(cur, entity_id, period))

        return _cached_json(ctx.payloads.fetch((snapshot, level, entity_id, days), compute))

    return handle


def get_recent_insights(request: Request, _body: bytes, ctx: ApiContext) -> Response:
    ctx.caller(request)
    level = parse_level_param(request.query_params.get("entity_type"))
    entity_id = parse_entity_id(request.path_params["entity_id"], level or "campaign")
    days = parse_days_param(request.query_params.get("days"), ctx.settings.max_days_back)
    snapshot = ctx.reader.current_key()

    def compute() -> bytes:
        with ctx.reader.cursor(snapshot) as cur:
            period = ctx.days_period(snapshot, cur, days)
            return encode_json(views.recent_view(cur, entity_id, level, period, ctx.campaigns(snapshot, cur)))

    return _cached_json(ctx.payloads.fetch((snapshot, "recent", entity_id, level, days), compute))


def get_breakdowns(request: Request, _body: bytes, ctx: ApiContext) -> Response:
    ctx.caller(request)
    level = parse_entity_type(request.path_params["entity_type"])
    entity_id = parse_entity_id(request.path_params["entity_id"], level)
    query = request.query_params
    family = query.get("family")
    families = BREAKDOWN_FAMILIES if not family else (parse_family(family),)
    since, until = parse_date(query.get("since"), "since"), parse_date(query.get("until"), "until")
    if since and until and since > until:
        raise InputError(f"since ({since}) is after until ({until})")
    snapshot = ctx.reader.current_key()

    def compute() -> bytes:
        with ctx.reader.cursor(snapshot) as cur:
            period = views.overview_period(ctx.snapshot_bounds(snapshot, cur), since, until)
            if period.since > period.until:
                raise InputError(f"since ({period.since}) is after until ({period.until}, the last stored day)")
            return encode_json(views.breakdowns_view(cur, level, entity_id, period, families))

    return _cached_json(ctx.payloads.fetch((snapshot, "breakdowns", level, entity_id, families, since, until), compute))


def post_sync_now(request: Request, body: bytes, ctx: ApiContext) -> Response:
    """Queue a Sync now request for the worker; 202 with where to follow it."""
    principal = ctx.caller(request, "sync:run")
    fields = parse_sync_body(body)
    sync_request = parse_sync_request(
        max_days_back=ctx.settings.max_days_back, sync_type="manual", requested_by=principal.username, **fields
    )
    # ids are checked by the worker against the entities it fetches (as for the Sync page and the CLI)
    request_id, created = ctx.control.save_request(sync_request)
    status = ctx.control.fetch_worker_status()
    running = status is not None and status.is_alive()
    log.info("API: sync request %d %s by %s", request_id, "queued" if created else "already open", principal.username)
    status_url = f"{API_PREFIX}/sync-now/{request_id}"
    return _json(
        {
            "request_id": request_id,
            "status_url": status_url,
            "created": created,
            "worker_running": running,
            "message": ("queued" if created else "an identical request is already queued or running")
            + ("" if running else "; the sync worker is not running: it runs when the worker starts"),
        },
        status=202,
        headers={"Location": status_url},
    )


def get_sync_request(request: Request, _body: bytes, ctx: ApiContext) -> Response:
    ctx.caller(request, "sync:run")
    request_id = parse_request_id(request.path_params["request_id"])
    record = ctx.control.fetch_request(request_id)
    if record is None:
        raise NotFoundError(f"no sync request {request_id}")
    return _json(
        {
            "request_id": record.id,
            "status": record.status,
            "requested_by": record.requested_by,
            "params": request_params(record.request) if record.request else None,
            "created_at": json_value(record.created_at),
            "claimed_at": json_value(record.claimed_at),
            "finished_at": json_value(record.finished_at),
            "sync_id": record.sync_id,
            "progress": record.progress,
            "report": record.report,
            "error": record.error,
        }
    )


def get_openapi(request: Request, _body: bytes, _ctx: ApiContext) -> Response:
    return _json(openapi_document())


def get_metrics(_request: Request, _body: bytes, ctx: ApiContext) -> Response:
    return Response(generate_latest(ctx.metrics.registry), media_type=CONTENT_TYPE_LATEST)


def get_healthz(_request: Request, _body: bytes, ctx: ApiContext) -> Response:
    """For load balancers: 200 while this server answers; the body says what the dashboard can show."""
    try:
        ctx.reader.current_key()  # the current generation, or the lake's newest snapshot
        snapshot = "available"
    except StoreError:
        snapshot = "unavailable"
    try:
        status = ctx.control.fetch_worker_status()
        worker = "running" if status is not None and status.is_alive() else "stopped"
    except StoreError:
        worker = "unknown"
    return _json({"status": "ok", "snapshot": snapshot, "worker": worker})


def not_found(request: Request, _body: bytes, _ctx: ApiContext) -> Response:
    return _error(404, f"no such endpoint: {request.method} {request.url.path}; see {API_PREFIX}/openapi.json")


def api_routes(settings: Settings | None = None) -> list[BaseRoute]:
    """Routes for `st.App(routes=...)`; `settings` default to the environment's, loaded on the first request."""
    holder = _ContextHolder(settings)
    p = API_PREFIX
    table: list[tuple[str, tuple[str, ...], Handler]] = [
        (f"{p}/openapi.json", ("GET",), get_openapi),
        (f"{p}/overview", ("GET",), get_overview),
        (f"{p}/campaign/{{campaign_id}}", ("GET",), _entity_handler("campaign")),
        (f"{p}/adset/{{adset_id}}", ("GET",), _entity_handler("adset")),
        (f"{p}/ad/{{ad_id}}", ("GET",), _entity_handler("ad")),
        (f"{p}/recent-insights/{{entity_id}}", ("GET",), get_recent_insights),
        (f"{p}/breakdowns/{{entity_type}}/{{entity_id}}", ("GET",), get_breakdowns),
        (f"{p}/sync-now", ("POST",), post_sync_now),
        (f"{p}/sync-now/{{request_id}}", ("GET",), get_sync_request),
        ("/metrics", ("GET",), get_metrics),
        ("/healthz", ("GET",), get_healthz),
        (p, tuple(ALL_METHODS), not_found),
        (f"{p}/{{rest:path}}", tuple(ALL_METHODS), not_found),
    ]
    return [_endpoint(template, methods, handler, holder) for template, methods, handler in table]
