"""Meta Insights dashboard: log in, then the pages the user's role allows (`roles.pages_for`).

Run with `scripts/run.sh` (worker and dashboard together) or `streamlit run app.py`.
"""

import streamlit as st

from insights_core.dashboard import login
from insights_core.dashboard.formatting import literal
from insights_core.dashboard.widgets import app_settings, reporting_broken_files, show_no_access
from insights_core.errors import ConfigError
from insights_core.roles import PAGES, forbidden_pages_for, pages_for

st.set_page_config(page_title="Meta Insights", page_icon=":material/insights:", layout="wide")

settings = app_settings()
try:
    config, cookie_key = login.load_auth(settings)
except ConfigError as exc:
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
    st.navigation(login_pages, position="hidden").run()
    st.stop()

specs = pages_for(session.user.role)
pages = [st.Page(spec.path, title=spec.title, url_path=spec.url_path, icon=spec.icon, default=index == 0)
         for index, spec in enumerate(specs)]
# a forbidden page's URL answers "no access" (hidden from the menu), not Streamlit's "Page not found"
pages += [st.Page(show_no_access, title=spec.title, url_path=spec.url_path, visibility="hidden")
          for spec in forbidden_pages_for(session.user.role)]
navigation = st.navigation(pages)
with st.sidebar:
    st.markdown(f"**{literal(session.user.name)}** · {literal(session.user.role)}")
    st.caption(f"{settings.mode} mode")
    if st.button("Log out", key="mi_logout", icon=":material/logout:"):
        login.log_out(session)
        st.rerun()
login.issue_cookie_if_due(session)
with reporting_broken_files():
    navigation.run()
