"""Graph API JSON the emulator answers with: insights rows, entity lists, pages, errors, usage headers.

Rows look like Meta's: every number a string, `actions` left out when nothing happened, and the
purchase family reported three times over (`omni_purchase`, `purchase`, the pixel purchase) with
slightly different counts, so a client that sums them, or prefers the wrong one, is caught.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Iterable, Sequence

import numpy as np

from graph_emulator.account import SeededAccount
from graph_emulator.faults import Malformation, malform
from insights_core.levels import Level
from insights_core.sources.stub import hash_ids, uniforms

HIDDEN_STATUSES = frozenset({"ARCHIVED", "DELETED"})
"""Left out of edges and account-level insights unless a status filter names them (as Graph does)."""
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_EPOCH = dt.date(1970, 1, 1)


class GraphError(Exception):
    """An error answer: HTTP status and Graph's error object."""

    def __init__(
        self,
        http_status: int,
        code: int,
        message: str,
        subcode: int | None = None,
        is_transient: bool = False,
        headers: dict | None = None,
    ) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.headers = headers or {}
        self.body: dict = {
            "message": message,
            "type": "OAuthException",
            "code": code,
            "is_transient": is_transient,
            "fbtrace_id": "AemulatorTrace",
        }
        if subcode is not None:
            self.body["error_subcode"] = subcode


def parse_list(value: str | None) -> list | None:
    """A list parameter: JSON (`["a","b"]`, as the SDK sends POST params) or comma-separated."""
    if value is None:
        return None
    try:
        parsed = json.loads(value)
    except ValueError:
        return [part for part in value.split(",") if part]
    return parsed if isinstance(parsed, list) else [parsed]


def parse_time_range(value: str | None) -> tuple[dt.date, dt.date]:
    try:
        spec = json.loads(value or "")
        since, until = dt.date.fromisoformat(spec["since"]), dt.date.fromisoformat(spec["until"])
    except (ValueError, KeyError, TypeError):
        raise GraphError(400, 100, "(#100) time_range must be {'since':'YYYY-MM-DD','until':'YYYY-MM-DD'}") from None
    if since > until:
        raise GraphError(400, 100, "(#100) time_range since must not be after until")
    return since, until


def visible(
    account: SeededAccount, level: Level, filtering: Sequence[dict], statuses: Iterable[str] | None
) -> np.ndarray:
    """Which entities of `level` a request sees, after id filters and the status rule."""
    ids = np.array(account.ids[level], dtype=object)
    effective = np.array([e["effective_status"] for e in account.entities[level]], dtype=object)
    campaign_ids = np.array(account.ids["campaign"], dtype=object)[account.campaign_index(level)]
    adset_ids = (
        ids
        if level == "adset"
        else np.array(account.ids["adset"], dtype=object)[account.ad_parent]
        if level == "ad"
        else None
    )
    allowed = set(statuses) if statuses is not None else None
    mask = np.ones(len(ids), dtype=bool)
    for spec in filtering:
        name, values = spec.get("field"), spec.get("value")
        values = set(values) if isinstance(values, list) else {values}
        if name == f"{level}.effective_status":
            allowed = values
        elif name == "campaign.id":
            mask &= np.isin(campaign_ids, list(values))
        elif name == "adset.id" and adset_ids is not None:
            mask &= np.isin(adset_ids, list(values))
        elif name == "ad.id" and level == "ad":
            mask &= np.isin(ids, list(values))
        else:
            raise GraphError(400, 100, f"(#100) Filtering field {name!r} is not supported at level {level}")
    if allowed is None:
        mask &= ~np.isin(effective, list(HIDDEN_STATUSES))
    else:
        mask &= np.isin(effective, list(allowed))
    return mask


def insight_rows(
    account: SeededAccount,
    level: Level,
    since: dt.date,
    until: dt.date,
    mask: np.ndarray,
    fields: Sequence[str] | None,
    malformed: Sequence[Malformation] = (),
) -> list[dict]:
    """Daily rows with delivery of the masked entities, Meta-shaped, sorted by day then entity."""
    values = account.daily(level, since, until)
    day_numbers = np.arange((since - _EPOCH).days, (until - _EPOCH).days + 1, dtype=np.int64)
    delivered = (values["impressions"] > 0) & mask[:, None]
    day_index, entity_index = np.nonzero(delivered.T)
    hashes = hash_ids(account.ids[level])
    with np.errstate(over="ignore"):
        seeds = hashes[entity_index] ^ (day_numbers[day_index].astype(np.uint64) * _GOLDEN)
    omit_omni = uniforms(seeds, 50) < 0.3
    pixel_short = uniforms(seeds, 51) < 0.4
    wanted = set(fields) | {"date_start", "date_stop"} if fields else None
    broken = {(m.entity_id, m.date): m.kind for m in malformed if m.level == level}
    campaign_pos = account.campaign_index(level)
    account_number = account.account_id.removeprefix("act_")
    rows = []
    for k in range(len(entity_index)):
        e, d = int(entity_index[k]), int(day_index[k])
        day = since + dt.timedelta(days=d)
        v = {name: int(array[e, d]) for name, array in values.items()}
        row = row_ids(account, level, e, campaign_pos[e], account_number, day)
        row.update(_metrics(v))
        actions, action_values = action_lists(v, bool(omit_omni[k]), bool(pixel_short[k]))
        if actions:
            row["actions"], row["action_values"] = actions, action_values
        if wanted is not None:
            row = {key: value for key, value in row.items() if key in wanted}
        kind = broken.get((account.ids[level][e], day))
        if kind:
            malform(row, kind)
        rows.append(row)
    return rows


def row_ids(
    account: SeededAccount, level: Level, entity: int, campaign_pos: int, account_number: str, day: dt.date
) -> dict:
    """An insights row's account, campaign (and ad set, ad) ids and its one day, as Meta sends them."""
    row: dict = {
        "account_id": account_number,
        "campaign_id": account.ids["campaign"][campaign_pos],
        "date_start": day.isoformat(),
        "date_stop": day.isoformat(),
    }
    if level in ("adset", "ad"):
        row["adset_id"] = account.ids["adset"][entity if level == "adset" else account.ad_parent[entity]]
    if level == "ad":
        row["ad_id"] = account.ids["ad"][entity]
    return row


def entity_list(items: Sequence[dict], statuses: Iterable[str] | None, fields: Sequence[str] | None) -> list[dict]:
    """An edge's objects: ARCHIVED and DELETED ones only when `effective_status` names them."""
    allowed = set(statuses) if statuses is not None else None
    chosen = [
        e
        for e in items
        if (e["effective_status"] in allowed if allowed is not None else e["effective_status"] not in HIDDEN_STATUSES)
    ]
    if not fields:
        return [{"id": e["id"]} for e in chosen]
    keep = set(fields) | {"id"}
    return [{k: v for k, v in e.items() if k in keep} for e in chosen]


def page(items: Sequence[dict], limit: int, after: str | None, next_base: str) -> dict:
    """One page with Graph's paging block; `next` is present only when more follow (the SDK relies on it)."""
    try:
        start = int(base64.urlsafe_b64decode((after or "").encode()).decode() or 0) if after else 0
    except ValueError:
        raise GraphError(400, 100, "(#100) Invalid cursor") from None
    end = min(len(items), start + limit)
    body: dict = {"data": list(items[start:end])}
    if items:
        body["paging"] = {"cursors": {"before": _cursor(start), "after": _cursor(end)}}
        if end < len(items):
            body["paging"]["next"] = f"{next_base}&after={_cursor(end)}"
    return body


def usage_headers(account_number: str, pct: float, regain_minutes: float = 0, insights: bool = False) -> dict:
    headers = {
        "x-app-usage": json.dumps({"call_count": pct, "total_cputime": pct / 2, "total_time": pct / 2}),
        "x-ad-account-usage": json.dumps(
            {"acc_id_util_pct": pct, "reset_time_duration": 0, "ads_api_access_tier": "standard_access"}
        ),
        "x-business-use-case-usage": json.dumps(
            {
                account_number: [
                    {
                        "type": "ads_insights" if insights else "ads_management",
                        "call_count": pct,
                        "total_cputime": pct / 2,
                        "total_time": pct / 2,
                        "estimated_time_to_regain_access": regain_minutes,
                        "ads_api_access_tier": "standard_access",
                    }
                ]
            }
        ),
    }
    if insights:
        headers["x-fb-ads-insights-throttle"] = json.dumps(
            {"app_id_util_pct": pct, "acc_id_util_pct": pct, "ads_api_access_tier": "standard_access"}
        )
    return headers


def _metrics(v: dict[str, int]) -> dict[str, str]:
    impressions, clicks, spend = v["impressions"], v["clicks"], v["spend"] / 100
    return {
        "spend": f"{spend:.2f}",
        "impressions": str(impressions),
        "clicks": str(clicks),
        "reach": str(v["reach"]),
        "frequency": f"{impressions / max(v['reach'], 1):.6f}",
        "unique_clicks": str(v["unique_clicks"]),
        "ctr": f"{clicks / impressions * 100:.6f}",
        "cpm": f"{spend / impressions * 1000:.6f}",
        **({"cpc": f"{spend / clicks:.6f}"} if clicks else {}),
    }


def action_lists(v: dict[str, int], omit_omni: bool, pixel_short: bool) -> tuple[list[dict], list[dict]]:
    conversions, revenue, clicks = v["conversions"], v["revenue"], v["clicks"]
    counts: list[tuple[str, int, int]] = [
        ("link_click", clicks, 0),
        ("landing_page_view", clicks * 4 // 5, 0),
        ("add_to_cart", conversions * 2, 0),
    ]
    if conversions:
        pixel = conversions - 1 if pixel_short and conversions > 1 else conversions
        if not omit_omni:
            counts.append(("omni_purchase", conversions, revenue))
        counts += [
            ("purchase", conversions, revenue),
            ("offsite_conversion.fb_pixel_purchase", pixel, revenue * pixel // conversions),
        ]
    actions = [{"action_type": t, "value": str(n)} for t, n, _ in counts if n]
    values = [{"action_type": t, "value": f"{cents / 100:.2f}"} for t, n, cents in counts if n and cents]
    return actions, values


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(str(offset).encode()).decode()
