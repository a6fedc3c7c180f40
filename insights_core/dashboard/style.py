"""The dashboard's own CSS, added to every run by app.py: cards that never cut a value off, and a layout
that stays readable on a phone (390 px).

Streamlit gives no setting for these; the selectors are its `data-testid`s, which its own e2e tests
rely on. Pure: no Streamlit import, so it can be tested and read on its own.
"""

PHONE_MAX_WIDTH_PX = 640
"""Streamlit stacks columns below this width; the phone rules start at the same point."""

PAGE_CSS = f"""
<style>
/* a metric card shows its whole value: wrap long words instead of "Engagem…" */
[data-testid="stMetricValue"] {{ font-size: 1.55rem; line-height: 1.25; }}
[data-testid="stMetricValue"] > div {{
  white-space: normal !important; overflow: visible !important; text-overflow: clip !important;
  overflow-wrap: anywhere;
}}
[data-testid="stMetricLabel"] p {{ white-space: normal !important; }}
/* plotly's toolbar sits above the plot area, not over the chart's title */
.stPlotlyChart .modebar-container {{ top: -6px !important; }}
@media (max-width: {PHONE_MAX_WIDTH_PX}px) {{
  [data-testid="stMainBlockContainer"] {{ padding: 3rem 0.75rem 2rem 0.75rem; }}
  h1 {{ font-size: 1.75rem !important; }}
  [data-testid="stMetricValue"] {{ font-size: 1.25rem; }}
  /* two cards per row */
  [data-testid="stElementContainer"]:has(> [data-testid="stMetric"]) {{
    width: calc(50% - 0.5rem) !important; min-width: 0 !important; flex: 0 0 calc(50% - 0.5rem) !important;
  }}
}}
</style>
"""
