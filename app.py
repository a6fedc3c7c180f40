"""Meta Insights: the dashboard (log in, then the pages the user's role allows, `roles.pages_for`) and,
on the same server and port, the REST API, `/metrics` and `/healthz` (`insights_core.api`).

Run with `scripts/run.sh` (worker and dashboard together) or `streamlit run app.py`. Streamlit finds
`app = st.App(...)` below by reading this file, and its server imports it once as the module `app`
(outside any session) to get the routes; every browser session then runs this same file as
`__main__`, which draws the dashboard. Hence the guard at the bottom.
"""

import streamlit as st

from insights_core.api.metrics import observe_page_run
from insights_core.errors import ConfigError, StoreError
from insights_core.roles import PAGES, forbidden_pages_for, pages_for


def run_dashboard() -> None:
    """One script run of a browser session: login, navigation, the page (timed for /metrics)."""
    # imported here: their st.cache_* functions would warn "no runtime" when the server imports this file
    from insights_core.dashboard import login
    from insights_core.dashboard.formatting import literal
    from insights_core.dashboard.style import PAGE_CSS
    from insights_core.dashboard.widgets import app_settings, reporting_broken_files, show_no_access

    st.set_page_config(page_title="Meta Insights", page_icon=":material/insights:", layout="wide")

    settings = app_settings()
    try:
        config, cookie_key = login.load_auth(settings)
    except (ConfigError, StoreError) as exc:  # StoreError: the shared users database (lake) is unreachable
        st.error(f"The dashboard cannot start: {exc}")  # our own words about the operator's files and settings
        st.stop()

    session = login.start_session(settings, config, cookie_key)

    if session.user is None:

        def show_login() -> None:
            login.render_login_form(session)

        # Every page's URL answers with the login form, so a deep link (/campaign?campaign_id=...) is
        # still the page shown after logging in; a page the role may not open falls back to the default.
        login_pages = [st.Page(show_login, title="Log in", url_path="login", icon=":material/login:", default=True)]
        login_pages += [st.Page(show_login, title="Log in", url_path=spec.url_path) for spec in PAGES]
        with observe_page_run("login"):
            st.navigation(login_pages, position="hidden").run()
        st.stop()

    specs = pages_for(session.user.role)
    pages = [
        st.Page(spec.path, title=spec.title, url_path=spec.url_path, icon=spec.icon, default=index == 0)
        for index, spec in enumerate(specs)
    ]
    page_keys = {id(page): spec.key for page, spec in zip(pages, specs)}
    # a forbidden page's URL answers "no access" (hidden from the menu), not Streamlit's "Page not found"
    forbidden = [
        st.Page(show_no_access, title=spec.title, url_path=spec.url_path, visibility="hidden")
        for spec in forbidden_pages_for(session.user.role)
    ]
    page_keys.update({id(page): "no_access" for page in forbidden})
    navigation = st.navigation(pages + forbidden)
    with st.sidebar:
        st.html(PAGE_CSS)
        st.markdown(f"**{literal(session.user.name)}** · {literal(session.user.role)}")
        st.caption(f"{settings.mode} mode")
        if st.button("Log out", key="mi_logout", icon=":material/logout:"):
            login.log_out(session)
            st.rerun()
        login.hand_over_cookies_if_due(session)  # in the sidebar: its pixel adds no gap to the page
    with reporting_broken_files(), observe_page_run(page_keys.get(id(navigation), "other")):
        navigation.run()


if __name__ == "__main__":
    run_dashboard()
else:
    from insights_core.api.routes import api_routes
    from insights_core.dashboard.cookie_handoff import cookie_routes
    from insights_core.dashboard.warm_up import start_warming_up

    app = st.App("app.py", routes=api_routes() + cookie_routes())
    start_warming_up()
