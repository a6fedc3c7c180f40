"""Prometheus metrics of the dashboard server: `GET /metrics`.

The dashboard server does not run syncs, so sync facts are read when Prometheus scrapes: from
the published snapshot's `sync_runs` (the original README's "métricas clave": sync duration, entities
processed and failed per level, rate-limit hits per hour, coverage) and from the control
channel's heartbeat (worker heartbeat age). API latency (per route template, never a raw path
with ids) and page-run latency (per page) are observed in this process.

Labels hold only route templates, page keys, levels, statuses and sync types: never spend,
names or ids. Each API gets its own `CollectorRegistry` (tests stay isolated); page runs go to a
process-wide histogram, because every session's script run reports into the same process.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager

import duckdb
import pandas as pd
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from insights_core.api.reads import SnapshotReader
from insights_core.control import Control
from insights_core.dashboard.alerts import longest_failure_streak
from insights_core.dashboard.sync_health import entity_coverage
from insights_core.errors import InsightsError
from insights_core.levels import LEVEL_PLURAL, LEVELS
from insights_core.store import queries

log = logging.getLogger("meta_insights.api")

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
PAGE_RUN = Histogram(
    "meta_insights_page_run_duration_seconds",
    "Time of one full dashboard script run (a click), per page",
    ["page"],
    buckets=LATENCY_BUCKETS,
    registry=None,
)


@contextmanager
def observe_page_run(page: str) -> Iterator[None]:
    """Time a page's run, including runs that end in st.stop() or st.rerun() (they raise through here)."""
    started = time.perf_counter()
    try:
        yield
    finally:
        PAGE_RUN.labels(page=page).observe(time.perf_counter() - started)


class ApiMetrics:
    """The API's request histograms, in a registry of their own with the sync and page collectors."""

    def __init__(self, reader: SnapshotReader, control: Control) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.latency = Histogram(
            "meta_insights_api_request_duration_seconds",
            "API request latency per endpoint (route template)",
            ["endpoint", "method"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.requests = Counter(
            "meta_insights_api_requests",
            "API requests per endpoint and status code",
            ["endpoint", "method", "status"],
            registry=self.registry,
        )
        self.registry.register(_ProcessWide())
        self.registry.register(SyncCollector(reader, control))

    def observe(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        self.latency.labels(endpoint=endpoint, method=method).observe(seconds)
        self.requests.labels(endpoint=endpoint, method=method, status=str(status)).inc()


class _ProcessWide(Collector):
    def collect(self) -> Iterator[Metric]:
        yield from PAGE_RUN.collect()


class SyncCollector(Collector):
    """Sync facts at scrape time; a missing or damaged snapshot or control DB only drops its own metrics."""

    def __init__(self, reader: SnapshotReader, control: Control) -> None:
        self.reader = reader
        self.control = control

    def collect(self) -> Iterator[Metric]:
        now = dt.datetime.now(dt.timezone.utc)
        yield from self._worker(now)
        yield from self._syncs(now)

    def _worker(self, now: dt.datetime) -> Iterator[Metric]:
        up = GaugeMetricFamily("meta_insights_worker_up", "1 while the sync worker's heartbeat is fresh")
        age = GaugeMetricFamily("meta_insights_worker_heartbeat_age_seconds", "Seconds since the worker's heartbeat")
        try:
            status = self.control.fetch_worker_status()
        except InsightsError as exc:
            log.warning("metrics: control channel unreadable: %s", exc)
            status = None
        up.add_metric([], 1.0 if status is not None and status.is_alive(now) else 0.0)
        yield up
        if status is not None:
            age.add_metric([], max(0.0, (now - status.heartbeat_at).total_seconds()))
            yield age

    def _syncs(self, now: dt.datetime) -> Iterator[Metric]:
        available = GaugeMetricFamily("meta_insights_snapshot_available", "1 when a published snapshot can be read")
        try:
            with self.reader.cursor() as cur:
                runs = queries.fetch_sync_runs(cur)
        except (InsightsError, duckdb.Error) as exc:
            log.info("metrics: no sync facts (%s)", exc)
            available.add_metric([], 0.0)
            yield available
            return
        available.add_metric([], 1.0)
        yield available
        yield from sync_run_metrics(runs, now)


def sync_run_metrics(runs: pd.DataFrame, now: dt.datetime) -> Iterator[Metric]:
    """Gauges from stored sync runs (newest first), as the Sync health page computes them."""
    done = runs[runs["status"].isin(("succeeded", "failed"))] if not runs.empty else runs
    done = done.sort_values("sync_timestamp", ascending=False, kind="stable") if not done.empty else done
    duration = GaugeMetricFamily(
        "meta_insights_sync_last_duration_seconds",
        "Duration of the latest finished sync of each type",
        labels=["sync_type"],
    )
    for sync_type, group in done.groupby("sync_type", sort=True) if not done.empty else []:
        duration.add_metric([str(sync_type)], float(group["total_duration_seconds"].iloc[0]))
    yield duration
    processed = GaugeMetricFamily(
        "meta_insights_sync_last_entities_processed",
        "Entities the latest finished sync processed, per level",
        labels=["level"],
    )
    failed = GaugeMetricFamily(
        "meta_insights_sync_last_entities_failed",
        "Entities the latest finished sync failed to read, per level",
        labels=["level"],
    )
    success = GaugeMetricFamily("meta_insights_sync_last_success", "1 when the latest finished sync succeeded")
    stamp = GaugeMetricFamily("meta_insights_sync_last_timestamp_seconds", "Unix time of the latest finished sync")
    failures = GaugeMetricFamily(
        "meta_insights_sync_consecutive_failures",
        "Finished syncs that failed in a row (with many workers: the most for any one ad account)",
    )
    if not done.empty:
        latest = done.iloc[0]
        for level in LEVELS:
            plural = LEVEL_PLURAL[level]
            processed.add_metric([level], float(latest[f"{plural}_processed"]))
            failed.add_metric([level], float(latest[f"{plural}_errors"]))
        success.add_metric([], 1.0 if latest["status"] == "succeeded" else 0.0)
        stamp.add_metric([], _utc(latest["sync_timestamp"]).timestamp())
        failures.add_metric([], float(longest_failure_streak(done)))
    yield from (processed, failed, success, stamp, failures)
    hits = GaugeMetricFamily(
        "meta_insights_sync_rate_limit_hits_last_hour", "Rate-limit hits of the syncs that ran in the last hour"
    )
    if not runs.empty:
        recent = runs[[_utc(t) >= now - dt.timedelta(hours=1) for t in runs["sync_timestamp"]]]
        hits.add_metric([], float(recent["rate_limit_hits"].fillna(0).sum()))
    else:
        hits.add_metric([], 0.0)
    yield hits
    coverage = GaugeMetricFamily(
        "meta_insights_sync_coverage_ratio",
        "Share of entities the latest full sync read successfully, per level",
        labels=["level"],
    )
    if not runs.empty:
        shares = entity_coverage(runs)
        for level, percent in zip(shares["level"].tolist(), shares["coverage_pct"].tolist()):
            if not math.isnan(percent):  # NaN: the latest full sync processed no entity of that level
                coverage.add_metric([str(level)], float(percent) / 100.0)
    yield coverage


def _utc(value: object) -> dt.datetime:
    stamp = pd.Timestamp(value)  # type: ignore[arg-type]
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    return stamp.to_pydatetime().astimezone(dt.timezone.utc)
