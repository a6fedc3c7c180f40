"""The facebook-business SDK, pointed at META_GRAPH_URL, with every request paced and retried.

Every SDK request — node reads, edges, cursor pages, report runs — goes through
`FacebookAdsApi.call`, so `GraphApi` overrides that one method to run it under the retry policy.
Functions here are the only ones that talk HTTP (`fetch_*`, `start_*`); they return plain JSON
dicts so the transforms stay pure and testable on recorded payloads.

The access token travels as a query parameter on every URL: nothing here logs a URL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from facebook_business.adobjects.ad import Ad
from facebook_business.adobjects.adaccount import AdAccount
from facebook_business.adobjects.adreportrun import AdReportRun
from facebook_business.adobjects.adset import AdSet
from facebook_business.adobjects.adsinsights import AdsInsights
from facebook_business.adobjects.campaign import Campaign
from facebook_business.adobjects.objectparser import ObjectParser
from facebook_business.api import Cursor, FacebookAdsApi, FacebookResponse

from insights_core.errors import EntityError
from insights_core.levels import LEVEL_SPECS, Level
from insights_core.settings import Settings
from insights_core.sources.live.throttle import RetryPolicy

REQUEST_TIMEOUT_SECONDS = 120
ACCOUNT_FIELDS = ("id", "account_id", "name", "currency", "timezone_name", "account_status")
_SDK_NODES: dict[Level, tuple[type[Any], Callable[..., Cursor]]] = {
    "campaign": (Campaign, AdAccount.get_campaigns),
    "adset": (AdSet, AdAccount.get_ad_sets),
    "ad": (Ad, AdAccount.get_ads),
}
"""The SDK's class of each level (its EffectiveStatus enum) and the AdAccount edge that lists them."""


def effective_statuses(level: Level) -> list[str]:
    """Every effective status the SDK knows for the level. Graph leaves ARCHIVED and DELETED
    objects out of edges and account-level insights unless a filter names them."""
    statuses = _SDK_NODES[level][0].EffectiveStatus
    return sorted(v for k, v in vars(statuses).items() if not k.startswith("_") and isinstance(v, str))


class GraphApi(FacebookAdsApi):  # type: ignore[misc]  # facebook_business ships no types: its base class is Any
    """FacebookAdsApi whose every call runs under a RetryPolicy (pacing, counting, retries)."""

    policy: RetryPolicy | None = None

    def call(
        self,
        method: str,
        path: str | Sequence[str],
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        files: dict[str, Any] | None = None,
        url_override: str | None = None,
        api_version: str | None = None,
    ) -> FacebookResponse:
        def send() -> FacebookResponse:
            return super(GraphApi, self).call(
                method,
                path,
                params=params,
                headers=headers,
                files=files,
                url_override=url_override,
                api_version=api_version,
            )

        return self.policy.run(send) if self.policy is not None else send()


def connect_api(settings: Settings, policy: RetryPolicy) -> GraphApi:
    """An SDK session on META_GRAPH_URL. `crash_log=False`: the SDK's default excepthook would post
    crash reports (with request details) to Meta."""
    api: GraphApi = GraphApi.init(
        app_id=settings.app_id,
        app_secret=settings.app_secret.get_secret_value() if settings.app_secret else None,
        access_token=settings.access_token.get_secret_value() if settings.access_token else None,
        api_version=settings.api_version,
        timeout=REQUEST_TIMEOUT_SECONDS,
        crash_log=False,
    )
    api._session.GRAPH = settings.graph_url  # every URL, pages included, is built from this
    api.policy = policy
    return api


def fetch_account_json(api: GraphApi, account_id: str) -> dict[str, Any]:
    account = AdAccount(account_id, api=api).api_get(fields=list(ACCOUNT_FIELDS))
    data: dict[str, Any] = account.export_all_data()
    return data


def fetch_entities_json(api: GraphApi, account_id: str, level: Level, page_size: int) -> list[dict[str, Any]]:
    """Every object of the level in the account, paused, archived and deleted ones included."""
    edge = _SDK_NODES[level][1]
    cursor = edge(
        AdAccount(account_id, api=api),
        fields=list(LEVEL_SPECS[level].graph_fields),
        params={"limit": page_size, "effective_status": effective_statuses(level)},
    )
    return [item.export_all_data() for item in cursor]


def start_report_run(api: GraphApi, account_id: str, params: dict[str, Any]) -> str:
    """POST act_<id>/insights: Meta queues the report and answers with its run id."""
    run = AdAccount(account_id, api=api).get_insights(params=params, is_async=True)
    run_id = run.get("report_run_id") or run.get("id")
    if not run_id:
        raise EntityError("Meta queued no report run (its answer has no report_run_id)")
    return str(run_id)


def fetch_report_status(api: GraphApi, report_run_id: str) -> tuple[str, int]:
    """(async_status, async_percent_completion) of a report run."""
    run = AdReportRun(report_run_id, api=api).api_get(
        fields=[AdReportRun.Field.async_status, AdReportRun.Field.async_percent_completion]
    )
    status = str(run.get(AdReportRun.Field.async_status) or "")
    try:
        percent = int(run.get(AdReportRun.Field.async_percent_completion) or 0)
    except (TypeError, ValueError):
        percent = 0
    return status, percent


def fetch_report_rows(api: GraphApi, report_run_id: str, page_size: int) -> Iterator[dict[str, Any]]:
    """The result rows of a finished report run, page by page (`after` cursors), as raw JSON."""
    yield from fetch_raw_insights(api, report_run_id, {"limit": page_size}, [])


def fetch_raw_insights(
    api: GraphApi, node_id: str, params: Mapping[str, Any], fields: Sequence[str]
) -> Iterator[dict[str, Any]]:
    """GET /<node>/insights page by page (`after` cursors), as raw JSON.

    Raw dicts rather than AdsInsights objects: the SDK's objects drop null values, and a null
    spend must be told apart from a missing one.
    """
    cursor = Cursor(
        target_objects_class=AdsInsights,
        params=dict(params),
        fields=list(fields),
        include_summary=False,
        api=api,
        node_id=node_id,
        endpoint="insights",
        object_parser=ObjectParser(custom_parse_method=lambda data, _api: data),
    )
    yield from cursor
