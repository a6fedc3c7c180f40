"""Alerts: what the worker's rules found after the latest syncs (sync health, performance, pacing, fatigue,
anomalies), since when, and where they were delivered. Managers and admins acknowledge or mute them."""

import datetime as dt

import pandas as pd
import streamlit as st

from insights_core.dashboard import widgets
from insights_core.dashboard.formatting import format_int, format_timestamp, literal
from insights_core.errors import InputError, StoreError
from insights_core.manager.alert_store import open_alert_store
from insights_core.roles import can

MUTE_DAYS = 7

user = widgets.require("analytics:read")
widgets.page_title("alerts")
settings = widgets.app_settings()
try:
    store = open_alert_store(settings)
    show_resolved = st.toggle("Show resolved alerts", key="alerts_show_resolved")
    alerts = store.fetch_alerts(include_resolved=show_resolved)
    failures = store.fetch_deliveries(limit=20, failed_only=True)
    evaluations = store.fetch_evaluations(limit=1)
except StoreError as exc:
    widgets.show_error(exc)
    st.stop()

if evaluations.empty:
    st.info("No rules evaluated yet: the worker evaluates them after each successful sync.")
else:
    last = evaluations.iloc[0]
    st.caption(
        f"Rules last evaluated {format_timestamp(last['at'])} after sync {literal(last['sync_id'])} "
        f"({last['seconds']:.2f} s, {format_int(last['findings'])} findings). Delivered to: "
        + (
            ", ".join(
                c for c, on in (("webhook", settings.alert_webhook_url), ("e-mail", settings.alert_smtp_host)) if on
            )
            or "no channel configured"
        )
        + f"; an alert still firing is sent again after {settings.alert_cooldown_hours:g} h."
    )
    if isinstance(last["errors"], str) and last["errors"]:
        widgets.show_error(f"Some rules could not be evaluated: {last['errors']}")


def status_of(row: pd.Series) -> str:
    parts = ["active" if row["active"] else f"resolved {row['resolved_at']}"]
    if isinstance(row["acknowledged_at"], str):
        parts.append(f"acknowledged by {row['acknowledged_by']}")
    if isinstance(row["muted_until"], str) and row["muted_until"] > dt.datetime.now(dt.timezone.utc).isoformat():
        parts.append(f"muted until {row['muted_until'][:16]} by {row['muted_by']}")
    return "; ".join(parts)


if alerts.empty:
    st.success("No alerts.", icon=":material/check_circle:")
else:
    display = pd.DataFrame(
        {
            "Severity": alerts["severity"],
            "Rule": alerts["rule"],
            "Alert": alerts["message"],
            "First seen": alerts["first_seen"].str[:16],
            "Last seen": alerts["last_seen"].str[:16],
            "Status": [status_of(row) for _, row in alerts.iterrows()],
            "Sent": alerts["notified"].fillna("—"),
        }
    )
    widgets.table(alerts, "alerts_table", "alerts", user, display=display)

    if can(user.role, "alerts:manage"):
        st.subheader("Acknowledge or mute")
        keys = list(alerts["key"])
        messages = dict(zip(alerts["key"], alerts["message"]))
        picked = st.selectbox(
            "Alert", keys, format_func=lambda k: messages[k][:120], key="alerts_pick", label_visibility="collapsed"
        )
        row = st.container(horizontal=True)
        now = dt.datetime.now(dt.timezone.utc)
        try:
            if row.button("Acknowledge", key="alerts_ack", icon=":material/done:"):
                store.acknowledge(picked, user.username, now)
                st.rerun()
            if row.button(f"Mute for {MUTE_DAYS} days", key="alerts_mute", icon=":material/notifications_off:"):
                store.mute(picked, user.username, now + dt.timedelta(days=MUTE_DAYS))
                st.rerun()
            if row.button("Unmute", key="alerts_unmute", icon=":material/notifications_active:"):
                store.unmute(picked)
                st.rerun()
        except (InputError, StoreError) as exc:
            widgets.show_error(exc)
        st.caption(
            "Acknowledging stops this occurrence from being sent again (if it resolves and comes back, it is "
            f"sent again); muting sends nothing about it for {MUTE_DAYS} days."
        )

st.subheader("Delivery failures")
if failures.empty:
    st.caption("None: every delivery attempt so far succeeded (or no channel is configured).")
else:
    st.dataframe(failures, key="alerts_failures", hide_index=True, width="stretch")
