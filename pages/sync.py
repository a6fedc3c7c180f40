"""Sync (admin, manager): Sync now (days back, force, entity type and ids), live progress, the report, run
history and the worker's heartbeat; admins also see sync health (and, on the lake, its maintenance).

Sync now checks the request's format only and queues it: whether the ids exist is for the worker to say,
against the entities it fetches from the source (as `sync_worker.py --once --entity-ids` does), since the
published snapshot does not know an entity created since the last sync."""

import datetime as dt

import pandas as pd
import streamlit as st

from insights_core.dashboard import charts, data, login, sync_view, widgets
from insights_core.dashboard.alerts import MAX_RATE_LIMIT_HITS_PER_HOUR, sync_alerts
from insights_core.dashboard.inputs import LEVEL_LABELS
from insights_core.dashboard.sync_health import day_coverage, entity_coverage, error_rates, history_table
from insights_core.errors import InputError, StoreError
from insights_core.levels import LEVELS
from insights_core.manager.views import render_alert_delivery_health
from insights_core.roles import can
from insights_core.sync_requests import parse_sync_request

REQUEST_KEY = "sync_request_id"
COVERAGE_DAYS = 30

user = widgets.require("sync:run")
widgets.page_title("sync")
settings = widgets.app_settings()
control = sync_view.open_control_channel(settings)  # None (and one error line) when broken
try:
    snapshot = data.current_snapshot(settings)
    data.load_bounds(snapshot)  # a damaged file is found here, not halfway down the page
except StoreError as exc:
    snapshot = None
    widgets.show_notice(exc)

if control is not None:  # without it, the page still shows the run history

    @st.fragment(run_every="5s")
    def worker_panel() -> None:
        login.rerun_app_if_session_ended(settings)  # a timed fragment skips app.py's session check
        with widgets.reporting_broken_files():
            running = next((r for r in control.fetch_recent_requests(limit=5) if r.status == "running"), None)
            sync_view.render_worker_status(control.fetch_worker_status(), dt.datetime.now(dt.timezone.utc), running)

    worker_panel()

    st.subheader("Sync now")
    with st.form("sync_now_form"):
        days_column, type_column = st.columns(2)
        days_back = days_column.text_input(
            "Days back",
            value="7",
            key="sync_days_back",
            help=f"1 to {settings.max_days_back}; empty: the scheduled window "
            f"(the last {settings.lookback_days} days, or a first backfill)",
        )
        entity_type = type_column.selectbox(
            "Entity type",
            ["", *LEVELS],
            key="sync_entity_type",
            format_func=lambda level: "All entities" if not level else LEVEL_LABELS[level],
        )
        entity_ids = st.text_area(
            "Entity ids",
            key="sync_entity_ids",
            height=80,
            help="Ids of the chosen type, separated by commas or lines (a campaign brings its ad sets and ads).",
        )
        force = st.checkbox("Force: re-read settled days already stored", key="sync_force")
        submitted = st.form_submit_button("Sync now", type="primary", icon=":material/sync:")
    if submitted:
        try:
            request = parse_sync_request(
                max_days_back=settings.max_days_back,
                sync_type="manual",
                days_back=days_back,
                entity_type=entity_type or None,
                entity_ids=entity_ids,
                force=force,
                requested_by=user.username,
            )
        except InputError as exc:
            widgets.show_error(exc)
        else:
            request_id, created = control.save_request(request)
            st.session_state[REQUEST_KEY] = request_id
            if not created:
                st.info(f"An identical request (#{request_id}) is already queued or running: following that one.")

    request_id = st.session_state.get(REQUEST_KEY)
    record = control.fetch_request(request_id) if request_id else None
    if record is not None and record.is_open:

        @st.fragment(run_every="1s")
        def live_progress() -> None:
            login.rerun_app_if_session_ended(settings)
            current = control.fetch_request(record.id)
            if current is None or not current.is_open:
                st.rerun(scope="app")
            status = control.fetch_worker_status()
            sync_view.render_progress(current, status is not None and status.is_alive())

        live_progress()
    elif record is not None:
        sync_view.render_report(record, user)

st.subheader("Run history")
runs = pd.DataFrame()  # no snapshot: the notice above says why, and the lake's maintenance still shows
if snapshot is not None:
    runs = data.load_sync_runs(snapshot)
    if runs.empty:
        st.info("No sync has run yet.")
    else:
        accounts = data.load_bounds(snapshot).accounts
        widgets.table(
            history_table(runs, dict(zip(accounts["account_id"], accounts["name"]))),
            "sync_history",
            "sync_runs",
            user,
            kinds={"total_duration_seconds": "ratio"},
            labels={"accounts": "Accounts", "worker": "Worker"},
            height=320,
        )

requests = control.fetch_recent_requests(limit=20) if control is not None else []
if requests:
    with st.expander(f"Recent Sync now requests ({len(requests)})"):
        widgets.table(
            pd.DataFrame(
                [
                    {
                        "id": r.id,
                        "created_at": r.created_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
                        "requested_by": r.requested_by,
                        "request": sync_view.describe_request(r.request),
                        "status": r.status,
                        "error": r.error or "",
                    }
                    for r in requests
                ]
            ),
            "sync_requests",
            "sync_requests",
            user,
        )

if can(user.role, "sync:health") and not runs.empty:
    st.subheader("Sync health")
    now = dt.datetime.now(dt.timezone.utc)
    widgets.render_alerts(sync_alerts(runs, now), all_clear="No sync alerts.")
    left, right = st.columns(2)
    left.plotly_chart(charts.duration_figure(runs), key="sync_duration_chart")
    right.plotly_chart(charts.error_rate_figure(error_rates(runs)), key="sync_error_chart")
    last_day = data.load_bounds(snapshot).last_day or now.date()
    hourly, days = data.load_sync_health(
        snapshot,
        (now - dt.timedelta(days=7)).replace(tzinfo=None, minute=0, second=0, microsecond=0),
        last_day - dt.timedelta(days=COVERAGE_DAYS - 1),
        last_day,
    )
    left, right = st.columns(2)
    left.plotly_chart(charts.rate_limit_figure(hourly, MAX_RATE_LIMIT_HITS_PER_HOUR), key="sync_rate_limit_chart")
    right.plotly_chart(charts.coverage_figure(entity_coverage(runs)), key="sync_coverage_chart")
    st.caption(f"Days stored by full syncs in the last {COVERAGE_DAYS} days, per account and level:")
    widgets.table(
        day_coverage(days, COVERAGE_DAYS),
        "sync_day_coverage",
        "sync_day_coverage",
        user,
        kinds={"coverage_pct": "percent"},
        labels={"entity_type": "Level"},
    )
    render_alert_delivery_health(settings)

if can(user.role, "sync:health") and settings.store == "ducklake":
    sync_view.render_lake_maintenance(settings, user, dt.datetime.now(dt.timezone.utc))
