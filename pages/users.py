"""Users (admin): who can log in, with which role; users are managed with `python -m insights_core.auth`."""

import time

import pandas as pd
import streamlit as st

from insights_core.dashboard import login, widgets
from insights_core.dashboard.formatting import format_duration
from insights_core.errors import ConfigError
from insights_core.roles import ROLE_PERMISSIONS

user = widgets.require("users:list")
widgets.page_title("users", "Passwords are stored as bcrypt hashes and never shown.")
settings = widgets.app_settings()
try:
    config, _ = login.load_auth(settings)
except ConfigError as exc:
    widgets.show_error(exc)
    st.stop()

users = pd.DataFrame([{"username": u.username, "name": u.name, "email": u.email, "role": u.role,
                       "roles": ", ".join(u.roles)} for u in sorted(config.users.values(), key=lambda u: u.username)])
st.metric("Users", len(users))
widgets.table(users, "users_table", "users", user)

throttle = login.login_throttle(settings)
locked = throttle.locked_users(time.time())
if locked:
    st.warning("Locked out after too many failed logins (from browsers they never logged in with): " + ", ".join(
        f"{name} ({format_duration(seconds)} left)" for name, seconds in sorted(locked.items())))
    unlock_column, button_column = st.columns([3, 1], vertical_alignment="bottom")
    name = unlock_column.selectbox("User name to unlock", sorted(locked), key="users_unlock_name")
    if button_column.button("Unlock", key="users_unlock", icon=":material/lock_open:"):
        throttle.unlock(name)
        st.rerun()

st.subheader("Roles")
st.dataframe(pd.DataFrame([{"role": role, "permissions": ", ".join(sorted(perms))}
                           for role, perms in ROLE_PERMISSIONS.items()]), hide_index=True, key="users_roles")

st.subheader("Managing users")
st.markdown(f"Users live in `{settings.auth_config_path}`. On the server:")
st.code("python -m insights_core.auth add-user alice --role analyst --name 'Alice Smith' --email alice@example.com\n"
        "python -m insights_core.auth set-password alice\n"
        "python -m insights_core.auth remove-user alice\n"
        "python -m insights_core.auth list-users\n"
        "python -m insights_core.auth unlock alice", language="bash")
st.caption("Changes apply on the users' next click: a removed user, or one whose password was set, is logged out "
           "of every session.")
