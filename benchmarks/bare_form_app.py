"""The floor for `bench_login.py`'s first page: the least a Streamlit app can draw as a login page, a form
with two text inputs and a button, no authentication, no data. Not part of the product.

    streamlit run benchmarks/bare_form_app.py

Its first page after a server start is what Streamlit's frontend and server cost on the machine; a
product page cannot be drawn sooner by anything done in Python.
"""

import streamlit as st

with st.form("login"):
    st.text_input("Username")
    st.text_input("Password", type="password")
    st.form_submit_button("Log in")
