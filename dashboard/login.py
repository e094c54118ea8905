"""The login gate in front of every page: none on loopback, a password form or Streamlit's
OpenID Connect login when configured, and a refusal when shared without one."""

from __future__ import annotations

import os
import time
from pathlib import Path

import streamlit as st

from dashboard import messages as M

from engine.core.access import PASSWORD_HASH_ENV, is_loopback, login_kind, verify_password

SECRETS = Path(__file__).resolve().parents[1] / ".streamlit" / "secrets.toml"
SESSION_KEY = "login_ok"


def require_login() -> None:
    """Stop the run (``st.stop``) until the visitor may see the app."""
    try:
        kind = login_kind(os.environ, SECRETS)
    except ValueError as exc:
        M.error(f"The login is misconfigured: {exc}.")
        st.stop()
    if kind is None:
        address = st.get_option("server.address") or "every interface"
        if not is_loopback(address):
            st.error(f"This app listens on {address} without a login, so it shows nothing. "
                     "Start it with `homepage app`, which sets a login up or keeps it on this machine.")
            st.stop()
        return
    if kind == "oidc":
        if not st.user.is_logged_in:
            st.title("Homepage Studio")
            st.button("Log in", on_click=st.login, type="primary", key="login_oidc")
            st.stop()
        st.sidebar.button("Log out", on_click=st.logout, key="login_logout")
        return
    if st.session_state.get(SESSION_KEY):
        return
    st.title("Homepage Studio")
    with st.form("login_form"):
        password = st.text_input("Password", type="password", key="login_password")
        submitted = st.form_submit_button("Log in", type="primary")
    if submitted:
        if verify_password(password, os.environ[PASSWORD_HASH_ENV]):
            st.session_state[SESSION_KEY] = True
            st.rerun()
        time.sleep(1.0)  # slows guessing
        st.error("Wrong password.")
    st.stop()
