"""Streamlit pieces of the Sync page: worker heartbeat, a request's live progress, the sync report, and
lake maintenance (INSIGHTS_STORE=ducklake)."""

from __future__ import annotations

import datetime as dt

import streamlit as st

from insights_core.control import Control, RequestRecord, WorkerStatus
from insights_core.dashboard import data, widgets
from insights_core.dashboard.formatting import format_age, format_duration, format_int, format_timestamp, literal
from insights_core.dashboard.login import CurrentUser
from insights_core.dashboard.sync_health import (
    describe_maintenance_run,
    describe_next_maintenance,
    maintenance_table,
    report_counts,
    report_window,
)
from insights_core.errors import ControlChannelError
from insights_core.levels import LEVEL_PLURAL, LEVELS
from insights_core.models import SyncRequest
from insights_core.settings import Settings

START_HINT = "Start it with `python sync_worker.py` (or `scripts/run.sh`, which starts the worker and the dashboard)."


@st.cache_resource(show_spinner=False)
def shared_control_channel(catalog_url: str) -> Control:
    """The control channel of many workers (INSIGHTS_STORE=ducklake): per-call connections, so one
    object serves every thread, as `data.control_channel` does for the SQLite one."""
    from insights_core.cluster.control_pg import PostgresControlChannel

    return PostgresControlChannel(catalog_url)


def _cached_control_channel(settings: Settings) -> Control:
    if settings.store == "ducklake" and settings.catalog_url is not None:
        return shared_control_channel(settings.catalog_url.get_secret_value())
    return data.control_channel(str(settings.control_db_path))


def open_control_channel(settings: Settings) -> Control | None:
    """The control channel, read once to prove it works; None when it cannot be read.

    A failure is shown as one error line. The cached channel is then dropped and built once more:
    the control channel recreates a deleted file and moves a damaged one aside, so the page usually
    goes on with a new, empty channel in the same run (the line says what was lost).
    """
    failure: ControlChannelError | None = None
    control: Control | None = None
    for _ in range(2):
        try:
            control = _cached_control_channel(settings)
            control.fetch_worker_status()
            break
        except ControlChannelError as exc:
            data.control_channel.clear()
            shared_control_channel.clear()
            failure, control = exc, None
    if failure is not None:
        widgets.show_error(widgets.control_channel_error(failure))
    return control


def worker_state(status: WorkerStatus, running: RequestRecord | None = None) -> str:
    """What the worker is doing, in one word. "syncing" as soon as any sign of a sync shows: the state in
    its last heartbeat, a sync id in it, or a Sync now request marked running in the control channel
    (heartbeats come every few seconds, so a short sync may start and end between two of them)."""
    if status.state == "syncing" or status.current_sync_id or running is not None:
        return "syncing"
    return status.state


def render_worker_status(status: WorkerStatus | None, now: dt.datetime, running: RequestRecord | None = None) -> bool:
    """Show the worker's heartbeat in plain words (with `running`, the request it is serving); return
    whether the worker is running."""
    if status is None:
        st.warning(f"The sync worker has never run on this data directory. {START_HINT}", icon=":material/power_off:")
        return False
    age = (now - status.heartbeat_at).total_seconds()
    if not status.is_alive(now):
        st.error(
            f"The sync worker is not running (last heartbeat {format_age(age)}, state {literal(status.state)}). "
            f"Sync now requests wait until it runs again. {START_HINT}",
            icon=":material/power_off:",
        )
        return False
    schedule = (
        f"next scheduled sync {format_timestamp(status.next_run_at)}"
        if status.next_run_at
        else "scheduled syncs are off (INSIGHTS_SYNC_ENABLED=false)"
        if not status.sync_enabled
        else "no scheduled sync pending"
    )
    state = worker_state(status, running)
    doing = f" request #{running.id}" if running is not None else ""
    show = st.info if state == "syncing" else st.success
    show(
        f"Sync worker running: {literal(state)}{doing}, {literal(status.mode)} mode, pid {status.pid} on "
        f"{literal(status.hostname)}; "
        f"heartbeat {format_age(age)}; every {status.interval_minutes} min, {schedule}.",
        icon=":material/sync:" if state == "syncing" else ":material/monitor_heart:",
    )
    if status.workers:
        st.caption(describe_workers(status, now))
    return True


def describe_workers(status: WorkerStatus, now: dt.datetime) -> str:
    """Many workers (INSIGHTS_STORE=ducklake): how many are alive and which accounts each holds now."""
    alive = status.alive_workers(now)
    parts = []
    for worker in alive:
        holds = f"syncing {', '.join(worker.accounts)}" if worker.accounts else worker.state
        parts.append(f"{literal(worker.worker_id or worker.hostname)} ({literal(holds)})")
    listed = "; ".join(parts) if parts else "none"
    return (
        f"{len(alive)} of {len(status.workers)} workers seen in the last day are alive: {listed}. "
        "Each account's scheduled sync is taken by one of them per interval."
    )


def render_progress(record: RequestRecord, worker_alive: bool) -> None:
    """A pending or running request: who asked, what, and per-level progress while the worker runs it."""
    st.markdown(
        f"**Request #{record.id}** by {literal(record.requested_by or 'unknown')} · "
        f"{literal(describe_request(record.request))}"
    )
    if record.status == "pending":
        st.info(
            "Waiting for the worker to pick it up…"
            if worker_alive
            else "Queued, but the worker is not running: it starts when the worker does."
        )
        return
    progress = record.progress or {}
    st.caption(literal(progress.get("message") or "starting…"))
    for level in LEVELS:
        counts = (progress.get("levels") or {}).get(level) or {}
        done, total = int(counts.get("done", 0)), int(counts.get("total", 0))
        st.progress(min(1.0, done / total) if total else 0.0, text=f"{LEVEL_PLURAL[level]}: {done:,} of {total:,}")
    rows_read = progress.get("rows_read", progress.get("rows_written", 0))  # rows_written: a worker before the rename
    st.caption(f"{format_int(rows_read)} rows read so far")


def render_report(record: RequestRecord, user: CurrentUser) -> None:
    """The finished request: its sync report (counts per level, duration, success, errors)."""
    report = record.report
    if report is None:
        st.error(f"Request #{record.id} {literal(record.status)}: {literal(record.error or 'no report')}")
        return
    show = st.success if report.get("success") else st.error
    show(
        f"Sync {literal(report.get('status'))} in {format_duration(report.get('total_duration_seconds'))}: "
        f"{format_int(report.get('rows_read'))} rows read ({format_int(report.get('rows_inserted'))} new, "
        f"{format_int(report.get('rows_updated'))} changed, {format_int(report.get('rows_deleted'))} removed), "
        f"{literal(report_window(report))}."
    )
    left, right = st.columns([2, 3])
    with left:
        widgets.table(
            report_counts(report),
            "sync_report_counts",
            f"sync_report_{record.id}",
            user,
            labels={"level": "Level", "processed": "Processed", "success": "Succeeded", "errors": "Errors"},
        )
    with right:
        st.markdown(
            f"Sync id {literal(report.get('sync_id'))} · {literal(report.get('sync_type'))} · "
            f"{literal(report.get('mode'))} mode · "
            f"started {format_timestamp(report.get('sync_timestamp'))} · "
            f"{format_int(report.get('api_requests'))} API requests · "
            f"{format_int(report.get('rate_limit_hits'))} rate-limit hits"
        )
        errors = report.get("errors") or []
        if errors:
            with st.expander(f"{len(errors)} error lines", expanded=not report.get("success")):
                st.code("\n".join(errors), language=None)
        warnings = report.get("warnings") or []  # e.g. a creative image not downloaded: the sync still succeeded
        if warnings:
            with st.expander(f"{len(warnings)} warning lines"):
                st.code("\n".join(warnings), language=None)
    with st.expander("Report as JSON"):
        st.json(report, expanded=False)


def describe_request(request: SyncRequest | None) -> str:
    """What a request syncs, in words: "7 days back, campaign 1, 2, force"."""
    if request is None:
        return "a request this version cannot read"
    scope = f"{request.entity_type} {', '.join(request.entity_ids)}" if request.entity_type else "all entities"
    window = f"{request.days_back} days back" if request.days_back else "the scheduled window"
    return f"{window}, {scope}{', force' if request.force else ''}"


MAINTENANCE_RUNS_SHOWN = 10


def render_lake_maintenance(settings: Settings, user: CurrentUser, now: dt.datetime) -> None:
    """The lake's maintenance (compaction, snapshot expiry, file cleanup): the last run, when the next is
    due, and the recent runs, read from the shared state each page run (one small query)."""
    from insights_core.store.lake_maintenance import fetch_maintenance_history  # psycopg: lake mode only

    st.subheader("Lake maintenance")
    assert settings.catalog_url is not None  # the settings refuse ducklake without it
    try:
        history = fetch_maintenance_history(settings.catalog_url.get_secret_value(), MAINTENANCE_RUNS_SHOWN)
    except ControlChannelError as exc:
        widgets.show_error(f"The lake maintenance runs cannot be read: {exc}")
        return
    every = dt.timedelta(hours=settings.lake_maintenance_hours)
    schedule = (
        f"Every {settings.lake_maintenance_hours:g} h (INSIGHTS_LAKE_MAINTENANCE_HOURS), one worker at a time; "
        f"next {describe_next_maintenance(history.next_due_at(every), now)}."
    )
    if not history.runs:
        st.info(f"Lake maintenance has not run yet on this lake. {schedule}", icon=":material/cleaning_services:")
        return
    last = history.runs[0]
    when = (
        f"Last run {format_timestamp(last.started_at)} ({format_age((now - last.started_at).total_seconds())}) "
        f"by worker {literal(last.worker)}"
    )
    if last.error:
        st.error(f"{when} failed after {format_duration(last.seconds)}: {literal(last.error)}")
    else:
        st.success(f"{when}, {format_duration(last.seconds)}: {describe_maintenance_run(last)}.")
    st.caption(schedule)
    widgets.table(
        maintenance_table(history.runs),
        "lake_maintenance_history",
        "lake_maintenance_runs",
        user,
        kinds={"seconds": "ratio"},
        labels=MAINTENANCE_LABELS,
    )


MAINTENANCE_LABELS = {
    "started_at": "Started (UTC)",
    "worker": "Worker",
    "seconds": "Duration (s)",
    "files_before": "Data files before",
    "files_after": "Data files after",
    "delete_files_before": "Delete files before",
    "files_merged": "Files merged",
    "files_rewritten": "Files rewritten",
    "snapshots_expired": "Snapshots expired",
    "files_deleted": "Files deleted",
    "error": "Error",
}
