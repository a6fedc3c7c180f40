"""The yardstick for `bench_login.py`: the smallest useful streamlit-authenticator app, a login form and
one plotly chart once logged in. Not part of the product.

    MINIMAL_APP_AUTH=path/to/auth.yaml streamlit run benchmarks/minimal_app.py

The users file is streamlit-authenticator's own format (`credentials.usernames.<name>.password` as a
bcrypt hash, plus `cookie.name/key/expiry_days`); `bench_login.py` writes one with user admin / demo.
"""

import os

import plotly.graph_objects as go
import streamlit as st
import streamlit_authenticator as stauth
import yaml

st.set_page_config(page_title="Minimal", layout="wide")
with open(os.environ["MINIMAL_APP_AUTH"], encoding="utf-8") as handle:
    config = yaml.safe_load(handle)
authenticator = stauth.Authenticate(
    config["credentials"], config["cookie"]["name"], config["cookie"]["key"], config["cookie"]["expiry_days"]
)
authenticator.login(location="main")
if st.session_state.get("authentication_status"):
    st.title("Overview")
    days = list(range(1, 31))
    figure = go.Figure(go.Bar(x=days, y=[100 + 10 * (d % 7) for d in days], name="Spend"))
    st.plotly_chart(figure, key="chart")
    authenticator.logout(location="sidebar")
elif st.session_state.get("authentication_status") is False:
    st.error("Username or password is incorrect.")
