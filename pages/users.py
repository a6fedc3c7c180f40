"""Users (admin): who can log in, with which role, and their API tokens; users are managed with
`python -m insights_core.auth`."""

import time

import pandas as pd
import streamlit as st

from insights_core.api_tokens import user_fingerprint
from insights_core.auth_state import auth_state
from insights_core.dashboard import login, widgets
from insights_core.dashboard.formatting import format_duration, role_text
from insights_core.errors import ConfigError, StoreError
from insights_core.roles import ROLE_PERMISSIONS

user = widgets.require("users:list")
widgets.page_title("users", "Passwords are stored as bcrypt hashes and never shown.")
settings = widgets.app_settings()
state = auth_state(settings)  # files in the data dir, or PostgreSQL shared by every replica with the lake
try:
    config, _ = login.load_auth(settings)
except (ConfigError, StoreError) as exc:
    widgets.show_error(exc)
    st.stop()

users = pd.DataFrame(
    [
        {"username": u.username, "name": u.name, "email": u.email, "role": role_text(u.role, u.roles)}
        for u in sorted(config.users.values(), key=lambda u: u.username)
    ]
)
st.metric("Users", len(users))
widgets.table(users, "users_table", "users", user)

throttle = state.throttle
locked = throttle.locked_users(time.time())
if locked:
    st.warning(
        "Locked out after too many failed logins (from browsers they never logged in with): "
        + ", ".join(f"{name} ({format_duration(seconds)} left)" for name, seconds in sorted(locked.items()))
    )
    unlock_column, button_column = st.columns([3, 1], vertical_alignment="bottom")
    name = unlock_column.selectbox("User name to unlock", sorted(locked), key="users_unlock_name")
    if button_column.button("Unlock", key="users_unlock", icon=":material/lock_open:"):
        throttle.unlock(name)
        st.rerun()

st.subheader("API tokens")
st.caption(
    "A token acts with its user's current role (a removed user, a new password or a changed role applies at "
    "once). Only a hash is stored: the token is shown once, when it is created."
)
tokens = state.tokens
token_list = st.container()  # filled after a create below, so a new token is listed at once


def _token_state(username: str, fingerprint: str) -> str:
    owner = config.user(username)
    if owner is None:
        return "void: user removed"
    return "void: new password" if user_fingerprint(owner.password_hash) != fingerprint else owner.role or "no role"


create_column, create_button = st.columns([3, 1], vertical_alignment="bottom")
owner_name = create_column.selectbox("New token for", sorted(config.users), key="users_token_owner")
if create_button.button("Create token", key="users_token_create", icon=":material/key:") and owner_name:
    owner = config.user(owner_name)
    if owner is not None:
        record, token = tokens.create_token(owner.username, owner.password_hash)
        st.success(f"Token {record.id} for {owner.username}: copy it now, it is not shown again.")
        st.code(token, language=None)
records = tokens.fetch_tokens()
with token_list:
    if records:
        widgets.table(
            pd.DataFrame(
                [
                    {
                        "id": r.id,
                        "user": r.username,
                        "token": r.hint,
                        "created": r.created_at,
                        "acts as": _token_state(r.username, r.user_fingerprint),
                    }
                    for r in records
                ]
            ),
            "users_tokens",
            "api_tokens",
            user,
        )
    else:
        st.info("No API tokens yet.")
if records:
    revoke_column, revoke_button = st.columns([3, 1], vertical_alignment="bottom")
    token_id = revoke_column.selectbox(
        "Token to revoke",
        [r.id for r in records],
        key="users_token_revoke_id",
        format_func=lambda i: next(f"{r.id} · {r.username} · {r.hint}" for r in records if r.id == i),
    )
    if revoke_button.button("Revoke", key="users_token_revoke", icon=":material/key_off:"):
        revoked = tokens.revoke_token(token_id)
        st.toast(f"Token {token_id} revoked." if revoked else f"Token {token_id} was already gone.")
        st.rerun()

st.subheader("Roles")
st.dataframe(
    pd.DataFrame([{"role": role, "permissions": ", ".join(sorted(perms))} for role, perms in ROLE_PERMISSIONS.items()]),
    hide_index=True,
    key="users_roles",
)

st.subheader("Managing users")
st.markdown(f"Users live in `{state.users.where}`. On the server:")
st.code(
    "python -m insights_core.auth add-user alice --role analyst --name 'Alice Smith' --email alice@example.com\n"
    "python -m insights_core.auth set-password alice\n"
    "python -m insights_core.auth set-role alice --role manager\n"
    "python -m insights_core.auth remove-user alice\n"
    "python -m insights_core.auth list-users\n"
    "python -m insights_core.auth unlock alice\n"
    "python -m insights_core.auth new-token alice      # API token, printed once on the last line\n"
    "python -m insights_core.auth list-tokens\n"
    "python -m insights_core.auth revoke-token tok_...",
    language="bash",
)
st.caption(
    "Changes apply on the users' next click: a removed user, or one whose password was set, is logged out "
    "of every session."
)
