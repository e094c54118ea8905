"""Homepage Studio's dashboard: page config, the login gate, the shared sidebar and the page navigation."""

from __future__ import annotations

import sys
from pathlib import Path

try:
    import dashboard  # noqa: F401  (installed with the project)
except ImportError:  # run from a plain checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import streamlit as st

from dashboard.login import require_login
from dashboard import state as S
from dashboard.sidebar import sidebar

st.set_page_config(page_title="Homepage Studio", page_icon="🛍️", layout="wide", initial_sidebar_state="expanded")

PAGES = [
    st.Page("app_pages/homepage.py", title="Homepage preview", icon=":material/storefront:", default=True),
    st.Page("app_pages/compare.py", title="Compare", icon=":material/compare_arrows:", url_path="compare"),
    st.Page("app_pages/segments.py", title="Segments", icon=":material/groups:", url_path="segments"),
    st.Page("app_pages/feedback.py", title="Feedback", icon=":material/ads_click:", url_path="feedback"),
    st.Page("app_pages/model_data.py", title="Model and data", icon=":material/model_training:", url_path="model"),
]

require_login()
page = st.navigation(PAGES)
sidebar()
notice = st.container()  # at the top of the page: what the link asked for that could not be used
try:
    page.run()
finally:
    with notice:
        S.show_ignored()
