"""The OpenAPI 3.1 description of the REST API (`GET /meta/insights/openapi.json`).

Written by hand next to the routes (no framework generates it): `tests/test_api_openapi.py`
checks that every route is described and that answers carry the documented fields.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

from insights_core.models import BREAKDOWN_FAMILIES

Doc = dict[str, Any]

_METRICS = {
    "type": "object",
    "description": "Sums of the period and ratios from those sums (null: zero denominator)",
    "properties": {
        name: {"type": ["number", "null"]}
        for name in (
            "spend",
            "impressions",
            "clicks",
            "conversions",
            "revenue",
            "ctr",
            "cpc",
            "cpm",
            "roas",
            "cost_per_conversion",
            "conversion_rate",
        )
    },
}
_DATE_RANGE = {
    "type": "object",
    "properties": {"start": {"type": "string", "format": "date"}, "end": {"type": "string", "format": "date"}},
}
_INSIGHTS = {
    "type": "object",
    "properties": {
        "entity_id": {"type": "string"},
        "entity_type": {"type": "string", "enum": ["campaign", "adset", "ad"]},
        "insights": {
            "type": "array",
            "description": "one row per stored day: sums, reach, unique_clicks, frequency "
            "as Meta reported them, and the day's ratios",
            "items": {"type": "object"},
        },
        "total_spend": {"type": "number"},
        "avg_roas": {"type": ["number", "null"], "description": "revenue / spend over the period"},
        "totals": {"$ref": "#/components/schemas/Metrics"},
    },
}
_ERROR = {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}


def _errors(*codes: int) -> Doc:
    words = {
        400: "malformed id, parameter or body",
        401: "missing, invalid or revoked token",
        403: "the token's role may not do this",
        404: "unknown id",
        503: "no data published yet, or a damaged snapshot or users file",
    }
    return {
        str(code): {
            "description": words[code],
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        for code in codes
    }


def _ok(description: str, schema: Doc, code: str = "200") -> Doc:
    return {code: {"description": description, "content": {"application/json": {"schema": schema}}}}


def _param(name: str, where: str, schema: Doc, description: str, required: bool = False) -> Doc:
    return {
        "name": name,
        "in": where,
        "required": required or where == "path",
        "schema": schema,
        "description": description,
    }


def _period_params() -> list[Doc]:
    """`since` and `until` of the overview and breakdowns endpoints (both read `views.overview_period`)."""
    return [
        _param(
            "since",
            "query",
            {"type": "string", "format": "date"},
            "first day (default: the dashboard's default period, the last 30 complete days ending yesterday"
            " in the account's time zone, or the last 30 stored days when the store ends earlier)",
        ),
        _param(
            "until",
            "query",
            {"type": "string", "format": "date"},
            "last day, inclusive (default: the end of that period; the last stored day when only since is given)",
        ),
    ]


_DAYS = _param(
    "days",
    "query",
    {"type": "integer", "minimum": 1, "maximum": 365, "default": 30},
    "days through the last stored day",
)
_READ_ERRORS = _errors(400, 401, 403, 404, 503)


def _entity(level: str, description: str, extra: Doc) -> Doc:
    properties = {
        f"{level}_id": {"type": "string"},
        f"{level}_name": {"type": "string"},
        "status": {"type": ["string", "null"]},
        "date_range": _DATE_RANGE,
        f"{level}_insights": {"$ref": "#/components/schemas/Insights"},
        **extra,
    }
    return {
        "get": {
            "summary": description,
            "tags": ["insights"],
            "parameters": [
                _param(f"{level}_id", "path", {"type": "string", "pattern": "^[0-9]{1,32}$"}, f"the {level} id"),
                _DAYS,
            ],
            "responses": {**_ok(description, {"type": "object", "properties": properties}), **_READ_ERRORS},
        }
    }


@functools.lru_cache(maxsize=1)
def _document() -> Doc:
    p = "/meta/insights"
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Meta Insights API",
            "version": "1.0.0",
            "description": (
                "Read the synced Meta Ads insights and start a sync. Every request needs `Authorization: Bearer "
                "<token>` (`python -m insights_core.auth new-token USERNAME`); the token acts with its user's "
                'current role. Errors are `{"error": "..."}`. Figures are computed as on the dashboard\'s pages.'
            ),
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": _ERROR, "Metrics": _METRICS, "Insights": _INSIGHTS, "DateRange": _DATE_RANGE},
        },
        "security": [{"bearer": []}],
        "paths": {
            f"{p}/overview": {
                "get": {
                    "summary": "Totals, top campaigns, last sync and alerts for a period (any role)",
                    "tags": ["insights"],
                    "parameters": [
                        *_period_params(),
                        _param(
                            "account_id",
                            "query",
                            {"type": "string", "pattern": "^(act_)?[0-9]+$"},
                            "one ad account (default: all)",
                        ),
                        _param(
                            "top",
                            "query",
                            {"type": "integer", "minimum": 1, "maximum": 500, "default": 10},
                            "how many top campaigns",
                        ),
                        _param(
                            "sort_by",
                            "query",
                            {"type": "string", "enum": ["spend", "roas"], "default": "spend"},
                            "order of the top campaigns",
                        ),
                    ],
                    "responses": {
                        **_ok(
                            "the overview",
                            {
                                "type": "object",
                                "properties": {
                                    "timestamp": {"type": "string", "format": "date-time"},
                                    "date_range": _DATE_RANGE,
                                    "total_campaigns": {"type": "integer"},
                                    "active_campaigns": {"type": "integer"},
                                    "global_metrics": {"$ref": "#/components/schemas/Metrics"},
                                    "previous_period": {"type": "object"},
                                    "top_campaigns": {"type": "array", "items": {"type": "object"}},
                                    "last_sync": {"type": ["object", "null"]},
                                    "alerts": {"type": "array", "items": {"type": "object"}},
                                },
                            },
                        ),
                        **_READ_ERRORS,
                    },
                }
            },
            f"{p}/campaign/{{campaign_id}}": _entity(
                "campaign",
                "One campaign's insights (any role)",
                {
                    "adsets_count": {"type": "integer"},
                    "ads_count": {"type": "integer"},
                    "adsets": {"type": "array", "items": {"type": "object"}},
                    "performance_summary": {
                        "type": "object",
                        "properties": {"efficiency_score": {"type": ["number", "null"], "minimum": 0, "maximum": 100}},
                    },
                },
            ),
            f"{p}/adset/{{adset_id}}": _entity(
                "adset",
                "One ad set's insights and targeting (any role)",
                {
                    "targeting": {"type": "object"},
                    "ads_count": {"type": "integer"},
                    "ads": {"type": "array", "items": {"type": "object"}},
                },
            ),
            f"{p}/ad/{{ad_id}}": _entity(
                "ad",
                "One ad's insights and its comparison with peer ads (any role)",
                {
                    "peer_comparison": {
                        "type": "object",
                        "description": "per scope (adset, campaign): percentile and "
                        "difference from the peers' median for CTR, CPC, ROAS",
                    }
                },
            ),
            f"{p}/recent-insights/{{entity_id}}": {
                "get": {
                    "summary": "The last days of any campaign, ad set or ad (any role)",
                    "tags": ["insights"],
                    "parameters": [
                        _param("entity_id", "path", {"type": "string", "pattern": "^[0-9]{1,32}$"}, "the id"),
                        _param(
                            "entity_type",
                            "query",
                            {"type": "string", "enum": ["campaign", "adset", "ad"]},
                            "default: whichever level has the id",
                        ),
                        _DAYS,
                    ],
                    "responses": {
                        **_ok("the entity's days", {"allOf": [{"$ref": "#/components/schemas/Insights"}]}),
                        **_READ_ERRORS,
                    },
                }
            },
            f"{p}/breakdowns/{{entity_type}}/{{entity_id}}": {
                "get": {
                    "summary": "Segments of a campaign, ad set or ad: age and gender, country, placement, device "
                    "(any role)",
                    "tags": ["insights"],
                    "parameters": [
                        _param("entity_type", "path", {"type": "string", "enum": ["campaign", "adset", "ad"]}, "level"),
                        _param("entity_id", "path", {"type": "string", "pattern": "^[0-9]{1,32}$"}, "the id"),
                        _param(
                            "family",
                            "query",
                            {"type": "string", "enum": list(BREAKDOWN_FAMILIES)},
                            "one family (default: all four)",
                        ),
                        *_period_params(),
                    ],
                    "responses": {
                        **_ok(
                            "per family, each segment's sums over the period with ratios from them (key_1, key_2 as "
                            "stored: age and gender, country and '', platform and position, device and ''); and "
                            "reach per segment and day where reported (never summed)",
                            {
                                "type": "object",
                                "required": ["entity_id", "entity_type", "date_range", "breakdowns", "daily_reach"],
                                "properties": {
                                    "entity_id": {"type": "string"},
                                    "entity_type": {"type": "string"},
                                    "entity_name": {"type": ["string", "null"]},
                                    "date_range": {"$ref": "#/components/schemas/DateRange"},
                                    "breakdowns": {"type": "object", "additionalProperties": {"type": "array"}},
                                    "daily_reach": {"type": "object", "additionalProperties": {"type": "array"}},
                                },
                            },
                        ),
                        **_READ_ERRORS,
                    },
                }
            },
            f"{p}/sync-now": {
                "post": {
                    "summary": "Queue a sync for the worker (admin, manager)",
                    "tags": ["sync"],
                    "requestBody": {
                        "required": False,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "additionalProperties": False,
                                    "properties": {
                                        "days_back": {
                                            "type": ["integer", "null"],
                                            "minimum": 1,
                                            "description": "default: the scheduled window",
                                        },
                                        "force": {"type": "boolean", "default": False},
                                        "entity_ids": {"type": "array", "items": {"type": "string"}},
                                        "entity_type": {
                                            "type": ["string", "null"],
                                            "enum": ["campaign", "adset", "ad", None],
                                        },
                                    },
                                }
                            }
                        },
                    },
                    "responses": {
                        **_ok(
                            "queued (or the identical open request)",
                            {
                                "type": "object",
                                "properties": {
                                    "request_id": {"type": "integer"},
                                    "status_url": {"type": "string"},
                                    "created": {"type": "boolean"},
                                    "worker_running": {"type": "boolean"},
                                },
                            },
                            "202",
                        ),
                        **_errors(400, 401, 403, 503),
                    },
                }
            },
            f"{p}/sync-now/{{request_id}}": {
                "get": {
                    "summary": "A sync request's status, progress and, when done, its report (admin, manager)",
                    "tags": ["sync"],
                    "parameters": [_param("request_id", "path", {"type": "integer"}, "from POST")],
                    "responses": {
                        **_ok(
                            "the request",
                            {
                                "type": "object",
                                "properties": {
                                    "status": {
                                        "type": "string",
                                        "enum": ["pending", "running", "succeeded", "failed", "cancelled"],
                                    },
                                    "report": {"type": ["object", "null"], "description": "the sync report"},
                                },
                            },
                        ),
                        **_errors(400, 401, 403, 404, 503),
                    },
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics (no token; no spend, names or ids)",
                    "tags": ["monitoring"],
                    "security": [],
                    "responses": {"200": {"description": "text format 0.0.4"}},
                }
            },
            "/healthz": {
                "get": {
                    "summary": "Liveness for load balancers (no token)",
                    "tags": ["monitoring"],
                    "security": [],
                    "responses": _ok("this server answers", {"type": "object"}),
                }
            },
            f"{p}/openapi.json": {
                "get": {
                    "summary": "This document",
                    "security": [],
                    "tags": ["monitoring"],
                    "responses": {"200": {"description": "OpenAPI 3.1"}},
                }
            },
        },
    }


def openapi_document() -> Doc:
    """A copy of the document (callers may not change the cached one)."""
    return copy.deepcopy(_document())
