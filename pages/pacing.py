"""Pacing: campaigns and ad sets against their daily (the month) or lifetime (the schedule) budget, worst first."""

import pandas as pd
import streamlit as st

from insights_core.dashboard import widgets
from insights_core.dashboard.formatting import DASH, format_money
from insights_core.levels import LEVEL_LABELS
from insights_core.manager.views import load_pacing

user = widgets.require("analytics:read")
widgets.page_title("pacing")
settings = widgets.app_settings()
snapshot, bounds = widgets.open_snapshot(settings)
currency = str(bounds.accounts["currency"].iloc[0]) if len(bounds.accounts) == 1 else ""

tolerance = settings.pacing_tolerance_percent
pacing, as_of = load_pacing(snapshot, tolerance)
st.caption(
    f"As of {as_of} (the last stored day, counted as complete). A daily budget's period is the calendar "
    "month; a lifetime budget's is its schedule, from the start day to the stop day. Expected spend by now "
    f"= the period's budget × the share of its days elapsed; over or under pace = more than ±{tolerance:g}% "
    "away from it. The projection adds the remaining days at the last 7 days' mean, with an 80% interval "
    "from their spread. A lifetime budget without a stop time cannot be paced; one whose schedule has not "
    "started or has ended is left out."
)
if pacing.empty:
    st.info("No active campaign or ad set has a budget to pace.")
    st.stop()

counts = pacing["status"].value_counts()
over_column, under_column, even_column, _ = st.columns([1, 1, 1, 3])
over_column.metric("Over pace", f"{counts.get('over', 0):,}")
under_column.metric("Under pace", f"{counts.get('under', 0):,}")
even_column.metric("On pace", f"{counts.get('on pace', 0):,}")


def money(value: object) -> str:
    return format_money(value, currency or None)


display = pd.DataFrame(
    {
        "Level": [LEVEL_LABELS[level] for level in pacing["level"]],
        "Name": pacing["name"],
        "Status": pacing["status"],
        "Budget": [
            f"{money(b)} {t}" if t == "lifetime" else f"{money(b)} a day"
            for b, t in zip(pacing["budget"], pacing["budget_type"])
        ],
        "Period": [
            f"{start} – {end}" if pd.notna(end) else f"from {start}" if pd.notna(start) else DASH
            for start, end in zip(pacing["period_start"], pacing["period_end"])
        ],
        "Deviation": [f"{d:+.0%}" if pd.notna(d) else DASH for d in pacing["deviation"]],
        "Spend to date": pacing["spend_to_date"].map(money),
        "Expected by now": pacing["expected_to_date"].map(money),
        "Period's budget": pacing["period_budget"].map(money),
        "Projected (80% interval)": [
            f"{money(m)} ({money(lo)}–{money(hi)})"
            for m, lo, hi in zip(pacing["projected_spend"], pacing["projected_low"], pacing["projected_high"])
        ],
        "Needed per day": pacing["needed_per_day"].map(money),
        "Id": pacing["entity_id"],
    }
)
widgets.table(pacing, "pacing_table", "pacing", user, currency=currency or "USD", display=display)
