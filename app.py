"""Meta Insights dashboard (placeholder until the dashboard lands): shows the published snapshot's size."""

import streamlit as st

from insights_core.errors import SnapshotUnavailableError
from insights_core.settings import load_settings
from insights_core.store.snapshots import connect_snapshot, resolve_current_snapshot

st.set_page_config(page_title="Meta Insights", layout="wide")
st.title("Meta Insights")
settings = load_settings()
try:
    path = resolve_current_snapshot(settings.current_snapshot_link)
except SnapshotUnavailableError as exc:
    st.info(str(exc))
else:
    with connect_snapshot(path) as con:
        rows = con.execute("SELECT count(*) FROM meta_ad_insights").fetchone()[0]
    st.metric("Insight rows", f"{rows:,}")
