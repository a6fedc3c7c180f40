"""The dashboard's building blocks: pure helpers (formatting, alerts, scores, exports, charts) and the
thin Streamlit glue (login, cached data access, shared widgets) the pages in `pages/` call."""
