"""What the dashboard server does once while it starts, so that no visitor, not even the first after a
start, waits for imports or for work Streamlit does once per process.

`app.py` calls `start_warming_up()` when the server imports it (as the module `app`, outside any session).
"""

from __future__ import annotations

import threading
import time

THIRD_PARTY_MODULES = (
    "pandas",
    "numpy",
    "pyarrow",
    "duckdb",
    "plotly.graph_objects",
    "plotly.io",
    "bcrypt",
    "yaml",
    "xlsxwriter",
)
"""Imported while the server starts, before it answers (no st.cache_* in them)."""
DASHBOARD_MODULES = (
    "insights_core.dashboard.login",
    "insights_core.dashboard.widgets",
    "insights_core.dashboard.charts",
    "insights_core.dashboard.data",
    "insights_core.dashboard.alerts",
    "insights_core.dashboard.scoring",
    "insights_core.dashboard.sync_view",
    "insights_core.dashboard.entity_page",
)
"""Imported once the runtime exists (they decorate functions with st.cache_*)."""


def import_modules(names: tuple[str, ...]) -> None:
    import importlib

    for name in names:
        try:
            importlib.import_module(name)
        except ImportError:
            pass  # an optional module: the page that needs it reports it


def warm_up_third_party() -> None:
    """Import THIRD_PARTY_MODULES and draw one throwaway figure and query (about 1.5 s on a 2-core
    machine, mostly pandas and pyarrow), so no visitor waits for them."""
    import_modules(THIRD_PARTY_MODULES)
    import duckdb
    import plotly.graph_objects as go
    import plotly.io as pio

    figure = go.Figure(layout=dict(title="warm-up", yaxis2=dict(overlaying="y", side="right")))
    figure.add_bar(x=["2026-01-01"], y=[1.0])
    figure.add_scatter(x=["2026-01-01"], y=[1.0], yaxis="y2")
    pio.to_json(figure, validate=False)
    with duckdb.connect() as con:  # in memory: the first query's pandas and arrow conversions
        con.execute("SELECT 1::DOUBLE AS x, DATE '2026-01-01' AS d").df()
        con.execute("SELECT 1 AS x").arrow()


def warm_up_when_the_runtime_runs(timeout: float = 60.0) -> None:
    """Import DASHBOARD_MODULES once Streamlit's runtime exists, on a daemon thread.

    The server imports this file (as `app`) before it creates its runtime; the dashboard modules
    decorate functions with st.cache_*, which look for the runtime's cache storage when decorated
    (imported earlier, they warn "no runtime" and cache outside it). A session that needs a module
    still being imported waits for that import (Python's import lock), never imports it twice.
    Nothing here touches a session, a cache or the data directory.
    """
    from streamlit import runtime

    deadline = time.monotonic() + timeout
    while not runtime.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    if runtime.exists():
        import_modules(DASHBOARD_MODULES)
        settle_the_heap()


def settle_the_heap() -> None:
    """Make the first visitor's script run as short as the later ones, once every module is imported.

    Streamlit's first element in a process calls `inspect.stack()` (`env_util.is_repl`), which resolves
    the path of every loaded module (~1,800 here) to fill inspect's module-file cache: ~0.13 s in the
    first visitor's run on a 2-core machine unless filled here. And Streamlit collects all garbage after
    every script run (`runner.postScriptGC`), walking every object the imports made (~160,000): ~0.12 s
    with the GIL held, so the run's last messages wait. Frozen, those objects are skipped by every later
    collection (0.002 s); they live as long as the server anyway. Whatever sessions build afterwards
    stays collectable; only a run that happened to be alive at this moment (a browser reconnecting as
    the server came back) would keep its cyclic garbage, once.
    """
    import gc
    import inspect

    inspect.stack()
    gc.collect()  # garbage made so far is freed, not frozen
    gc.freeze()


def start_warming_up() -> None:
    """Import the heavy third-party modules now (the server answers a little later, its first page sooner),
    and the dashboard's own once the runtime exists, on a daemon thread."""
    warm_up_third_party()
    threading.Thread(target=warm_up_when_the_runtime_runs, name="mi-warm-up", daemon=True).start()
