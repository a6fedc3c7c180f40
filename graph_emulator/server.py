"""A local Graph API speaking the endpoints the facebook-business SDK calls in live mode.

    GET  /vXX.X/act_<id>                       account fields
    GET  /vXX.X/act_<id>/campaigns|adsets|ads  entity edges (`limit`/`after`, `effective_status`)
    POST /vXX.X/act_<id>/insights              starts an async report run -> {"report_run_id"}
                                               (`breakdowns`: segment rows, see `breakdowns`)
    GET  /vXX.X/<report_run_id>                status; progresses one step per poll
    GET  /vXX.X/<report_run_id>/insights       result rows (`limit`/`after`)
    GET  /vXX.X/<entity_id>/insights           one entity's rows, synchronously (the per-entity approach)
    GET  /vXX.X/<campaign_id>/adsets, /<adset_id>/ads
    GET  /vXX.X/?ids=<creative ids>, /<creative_id>, /act_<id>/adcreatives; /creative_images/<id>.png (see `creatives`)

It serves one seeded account, or several (`accounts=N`: act ids and id blocks from `seeded_accounts`);
an act id it does not serve gets Graph's "does not exist" error. It counts requests per kind, can add
latency to each, and switches faults on (see `faults`: they apply to every account alike).
Tests start it on a loopback port with `GraphEmulator(...).start()`; people run `python -m graph_emulator`.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pandas as pd

from graph_emulator.account import ACCOUNT_ID, AccountShape, SeededAccount, seeded_accounts
from graph_emulator.breakdowns import (
    OPT_IN_BREAKDOWNS,
    VALID_COMBINATIONS,
    breakdown_rows,
    breakdown_truth,
    family_of,
    reach_omitted,
)
from graph_emulator.creatives import EmulatedCreatives, serve_creative_image
from graph_emulator.faults import FaultRule, Faults, RequestKind
from graph_emulator.payloads import (
    GraphError,
    entity_list,
    insight_rows,
    page,
    parse_list,
    parse_time_range,
    usage_headers,
    visible,
)
from insights_core.levels import LEVELS, Level
from insights_core.models import BreakdownFamily

_VERSION = re.compile(r"^v\d+\.\d+$")
_TOKEN_PARAM = re.compile(r"(access_token=)[^&\s]+")
_EDGES: dict[str, Level] = {"campaigns": "campaign", "adsets": "adset", "ads": "ad"}
DEFAULT_LIMIT = 25


@dataclass
class ReportRun:
    id: str
    level: Level
    since: dt.date
    until: dt.date
    filtering: list[dict]
    outcome: str
    rows: list[dict]
    polls: int = 0
    finished: bool = False
    """True once a poll has answered the final status."""
    params: dict = field(default_factory=dict)
    family: BreakdownFamily | None = None
    account_id: str = ACCOUNT_ID

    @property
    def days(self) -> int:
        return (self.until - self.since).days + 1


class GraphEmulator:
    """The emulated Graph API around one seeded ad account (`account`), or several (`accounts`)."""

    def __init__(
        self,
        shape: AccountShape = AccountShape(),
        *,
        accounts: int = 1,
        latency_ms: float = 0,
        faults: Faults | None = None,
        polls_to_complete: int = 3,
        host: str = "127.0.0.1",
        port: int = 0,
        account: SeededAccount | None = None,
        quiet: bool = True,
    ) -> None:
        """`accounts` > 1 serves that many accounts of one shape (`seeded_accounts`); a given `account`
        is the first of them and gives the others its shape and names."""
        first = account or SeededAccount(shape)
        if first.index != 0 and accounts > 1:
            raise ValueError("the first account of several must have index 0 (its siblings take the next id blocks)")
        served = [first, *seeded_accounts(accounts, first.shape, first.hostile_names)[1:]]
        self.account = first
        """The first account (ACCOUNT_ID unless `account` says otherwise): what single-account callers use."""
        self.accounts: dict[str, SeededAccount] = {a.account_id: a for a in served}
        self._owner: dict[str, SeededAccount] = {i: a for a in served for i in a.by_id}
        """Each entity id's account (ids never repeat across accounts)."""
        self.latency = latency_ms / 1000
        self.faults = faults or Faults()
        self.polls_to_complete = max(1, polls_to_complete)
        self.quiet = quiet
        self.requests: Counter[str] = Counter()
        self.tokens_seen: set[str] = set()
        self.report_runs: list[ReportRun] = []
        self.creatives = EmulatedCreatives(served)
        self._runs: dict[str, ReportRun] = {}
        self._run_ids = itertools.count(6_000_000_000_001)
        self._started = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((host, port), _Handler)
        self._server.daemon_threads = True
        self._server.emulator = self  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None
        self.today: dt.date | None = None
        """The day the 13-month reach rule counts from (None: the real today)."""

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())

    def start(self) -> GraphEmulator:
        self._thread = threading.Thread(target=self._server.serve_forever, name="graph-emulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> GraphEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def reset_counts(self) -> None:
        """Forget request counts and the list of report runs; fault rules and run numbers keep counting."""
        with self._lock:
            self.requests.clear()
            self.report_runs.clear()

    def ground_truth(self, level: Level, since: dt.date, until: dt.date, account_id: str | None = None) -> pd.DataFrame:
        """Per entity and day: spend, impressions, clicks, conversions, revenue, reach, unique clicks
        (of the first account unless `account_id` names another)."""
        return self._served(account_id).ground_truth(level, since, until)

    def breakdown_truth(
        self, level: Level, family: BreakdownFamily, since: dt.date, until: dt.date, account_id: str | None = None
    ) -> pd.DataFrame:
        """Per entity, day and segment: the additive metrics and the segment's own reach."""
        return breakdown_truth(self._served(account_id), level, family, since, until)

    def _served(self, account_id: str | None) -> SeededAccount:
        if account_id is None:
            return self.account
        if account_id not in self.accounts:
            raise KeyError(f"{account_id} is not served here (accounts: {', '.join(self.accounts)})")
        return self.accounts[account_id]

    def handle(self, method: str, path: str, params: dict[str, str], host: str) -> tuple[int, dict | str, dict]:
        """Answer one request: (HTTP status, JSON body or text, headers)."""
        if self.latency:
            time.sleep(self.latency)
        parts = [p for p in path.split("/") if p]
        if parts and _VERSION.match(parts[0]):
            parts = parts[1:]
        kind = self._kind(method, parts)
        insights = kind in ("report_start", "report_status", "report_page", "entity_insights")
        number = self._account_of(parts).account_id.removeprefix("act_")
        with self._lock:
            self.requests[kind] += 1
            fired = next((rule for rule in self.faults.rules if rule.fires(kind)), None)
        token = params.get("access_token", "")
        try:
            self._check_token(token)
            if fired is not None:
                raise self._fault_error(fired, number)
            body = self._route(method, parts, params, host)
        except GraphError as exc:
            headers = usage_headers(number, self.faults.usage_pct, insights=insights)
            headers.update(exc.headers)
            if exc.http_status == 503 and exc.body.get("code") == 2:
                return 503, "Service Unavailable", headers
            return exc.http_status, {"error": exc.body}, headers
        return 200, body, usage_headers(number, self.faults.usage_pct, insights=insights)

    def _kind(self, method: str, parts: list[str]) -> RequestKind:
        if not parts:
            return "unknown"
        node, edge = parts[0], (parts[1] if len(parts) > 1 else None)
        if node.startswith("act_"):
            if edge is None:
                return "account"
            if edge == "insights":
                return "report_start" if method == "POST" else "unknown"
            return "entities"
        if node in self._runs:
            return "report_page" if edge == "insights" else "report_status"
        if edge == "insights":
            return "entity_insights"
        return "entity_edge" if edge else "node"

    def _account_of(self, parts: list[str]) -> SeededAccount:
        """The account a request is about (its usage headers name it); the first one when none is named."""
        node = parts[0] if parts else ""
        if node in self._runs:
            node = self._runs[node].account_id
        return self.accounts.get(node) or self._owner.get(node) or self.account

    def _check_token(self, token: str) -> None:
        with self._lock:
            if token:
                self.tokens_seen.add(token)
        if not token:
            raise GraphError(
                400, 2500, "An active access token must be used to query information about the current user."
            )
        if self.faults.bad_token:
            raise GraphError(
                400,
                190,
                f"Error validating access token: Session has expired. The token {token} is no longer valid.",
                subcode=463,
            )
        if self.faults.missing_permission:
            raise GraphError(403, 200, "(#200) Requires ads_read permission to manage the object")

    def _fault_error(self, rule: FaultRule, number: str) -> GraphError:
        if rule.kind == "throttle":
            return GraphError(
                rule.http_status,
                rule.code,
                f"(#{rule.code}) There have been too many calls from this ad-account. Wait a bit and try again.",
                subcode=rule.subcode,
                is_transient=True,
                headers=usage_headers(number, 100.0, rule.regain_minutes, insights=True),
            )
        return GraphError(
            rule.http_status if rule.http_status >= 500 else 500,
            2,
            "An unexpected error has occurred. Please retry your request later.",
            is_transient=True,
        )

    def _route(self, method: str, parts: list[str], params: dict[str, str], host: str) -> dict:
        if (creatives := self.creatives.answer(parts, params, host)) is not None:
            return creatives
        if not parts:
            raise GraphError(400, 100, "(#100) Unsupported request")
        node, edge = parts[0], (parts[1] if len(parts) > 1 else None)
        fields = parse_list(params.get("fields"))
        limit = int(params.get("limit") or DEFAULT_LIMIT)
        next_base = f"http://{host}/{'/'.join(parts)}?limit={limit}&access_token={params.get('access_token', '')}"
        if node.startswith("act_"):
            account = self.accounts.get(node)
            if account is None:
                raise GraphError(
                    400,
                    100,
                    f"Unsupported get request. Object with ID '{node}' does not exist, cannot "
                    "be loaded due to missing permissions, or does not support this operation.",
                    subcode=33,
                )
            if edge is None:
                return account.account_json()
            if edge == "insights" and method == "POST":
                return self._start_run(account, params)
            if edge in _EDGES:
                statuses = parse_list(params.get("effective_status"))
                items = entity_list(account.entities[_EDGES[edge]], statuses, fields)
                return page(items, limit, params.get("after"), next_base)
        elif node in self._runs:
            run = self._runs[node]
            if edge == "insights":
                if not run.finished or run.outcome != "completed":
                    raise GraphError(400, 100, "(#100) The report run has not completed yet")
                return page(run.rows, limit, params.get("after"), next_base)
            return self._poll(run)
        elif node in self._owner:
            account = self._owner[node]
            level, entity = account.by_id[node]
            if edge == "insights":
                return self._entity_insights(account, level, node, params, fields, limit, next_base)
            if edge is None:
                return entity_list([entity], [entity["effective_status"]], fields)[0]
            children = {"campaign": ("adsets", "adset", "campaign_id"), "adset": ("ads", "ad", "adset_id")}.get(level)
            if children and edge == children[0]:
                mine = [e for e in account.entities[children[1]] if e[children[2]] == node]
                items = entity_list(mine, parse_list(params.get("effective_status")), fields)
                return page(items, limit, params.get("after"), next_base)
        raise GraphError(
            400,
            100,
            f"Unsupported {method.lower()} request. Object with ID '{node}' does not exist, "
            "cannot be loaded due to missing permissions, or does not support this operation.",
            subcode=33,
        )

    def _start_run(self, account: SeededAccount, params: dict[str, str]) -> dict:
        level = params.get("level", "ad")
        if level not in LEVELS:
            raise GraphError(400, 100, f"(#100) level must be one of campaign, adset, ad (got {level!r})")
        since, until = parse_time_range(params.get("time_range"))
        if params.get("time_increment") != "1":
            raise GraphError(400, 100, "(#100) this emulator serves daily rows only: pass time_increment=1")
        filtering = parse_list(params.get("filtering")) or []
        mask = visible(account, level, filtering, None)
        days = (until - since).days + 1
        f = self.faults
        if f.too_large_over_days and days > f.too_large_over_days:
            raise GraphError(
                400, 100, "Please reduce the amount of data you're asking for, then retry your request", subcode=1487534
            )
        family = self._breakdown_family(parse_list(params.get("breakdowns")))
        covered = {account.ids["campaign"][i] for i in account.campaign_index(level)[mask]}
        with self._lock:
            self._started += 1
            number, run_id = self._started, str(next(self._run_ids))
        if (
            number <= f.job_failed_first
            or (f.fail_over_days and days > f.fail_over_days)
            or covered & f.failing_campaigns
        ):
            outcome = "failed"
        elif number <= f.job_failed_first + f.job_skipped_first:
            outcome = "skipped"
        else:
            outcome = "completed"
        fields = parse_list(params.get("fields"))
        if outcome != "completed":
            rows: list[dict] = []
        elif family is not None:
            omit = reach_omitted(since, self.today or dt.date.today())
            rows = breakdown_rows(account, level, family, since, until, mask, fields, f.malformed, omit)
        else:
            rows = insight_rows(account, level, since, until, mask, fields, f.malformed)
        run = ReportRun(
            run_id,
            level,
            since,
            until,
            filtering,
            outcome,
            rows,
            params=dict(params),
            family=family,
            account_id=account.account_id,
        )
        with self._lock:
            self._runs[run_id] = run
            self.report_runs.append(run)
        return {"report_run_id": run_id}

    def _breakdown_family(self, breakdowns: list | None) -> BreakdownFamily | None:
        """The family a report's `breakdowns` ask for; invalid combinations answer code 100 / 1504041."""
        if not breakdowns:
            return None
        names = [str(b) for b in breakdowns]
        refused = (
            frozenset(names) not in VALID_COMBINATIONS
            or set(names) & OPT_IN_BREAKDOWNS
            or set(names) & self.faults.refused_breakdowns
        )
        if refused:
            raise GraphError(
                400,
                100,
                f"(#100) Current combination of data breakdown columns ({', '.join(names)}) is invalid",
                subcode=1504041,
            )
        family = family_of(names)
        if family is None:
            raise GraphError(400, 100, f"(#100) this emulator keeps no truth for the breakdowns {names}")
        return family

    def _poll(self, run: ReportRun) -> dict:
        with self._lock:
            run.polls += 1
            polls = run.polls
        final = {"completed": ("Job Completed", 100), "failed": ("Job Failed", 0), "skipped": ("Job Skipped", 0)}
        if polls >= self.polls_to_complete:
            status, percent = final[run.outcome]
            run.finished = True
        else:
            # the last running step already says 100 %: clients must wait for "Job Completed" too
            status, percent = "Job Running", round(100 * polls / max(1, self.polls_to_complete - 1))
        return {
            "id": run.id,
            "account_id": run.account_id.removeprefix("act_"),
            "async_status": status,
            "async_percent_completion": percent,
            "date_start": run.since.isoformat(),
            "date_stop": run.until.isoformat(),
        }

    def _entity_insights(
        self,
        account: SeededAccount,
        level: Level,
        entity_id: str,
        params: dict[str, str],
        fields: list | None,
        limit: int,
        next_base: str,
    ) -> dict:
        since, until = parse_time_range(params.get("time_range"))
        mask = np.array([i == entity_id for i in account.ids[level]])
        rows = insight_rows(account, level, since, until, mask, fields, self.faults.malformed)
        return page(rows, limit, params.get("after"), next_base)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as separate writes

    def do_GET(self) -> None:
        if serve_creative_image(self):  # PNG bytes, not the JSON the Graph routes answer
            return
        self._answer("GET", parse_qs(urlsplit(self.path).query))

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        params = parse_qs(urlsplit(self.path).query)
        params.update(parse_qs(body))
        self._answer("POST", params)

    def _answer(self, method: str, raw: dict[str, list[str]]) -> None:
        emulator: GraphEmulator = self.server.emulator  # type: ignore[attr-defined]
        params = {k: v[-1] for k, v in raw.items()}
        try:
            status, body, headers = emulator.handle(
                method, urlsplit(self.path).path, params, self.headers.get("Host", "127.0.0.1")
            )
        except Exception as exc:  # an emulator bug must answer, not hang the client
            status, body, headers = (
                500,
                {
                    "error": {
                        "message": f"emulator crashed: {type(exc).__name__}: {exc}",
                        "code": 1,
                        "type": "EmulatorError",
                    }
                },
                {},
            )
        data = (json.dumps(body) if isinstance(body, dict) else body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8" if isinstance(body, dict) else "text/plain")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        if not self.server.emulator.quiet:  # type: ignore[attr-defined]
            super().log_message(format, *(_TOKEN_PARAM.sub(r"\1[redacted]", str(a)) for a in args))
