"""What a page shows instead of itself when the data, the model or the segment is not ready."""

from __future__ import annotations

import streamlit as st

from dashboard import messages as M

from dashboard import state as S
from dashboard import training as T


def ready(prefix: str, need_segment: bool = True) -> S.Context:
    """The context when data, model (and segment) are loaded; otherwise explain, offer a fix and stop."""
    ctx = S.context()
    T.flash()
    if ctx.data_error or not ctx.data_dir:
        M.error(ctx.data_error or "No data set selected.")
        st.stop()
    if not ctx.model:
        st.markdown(f"## No trained model for **{ctx.data_name}** yet")
        T.train_panel(ctx.data_dir, prefix, "The homepage is built from a fine-tuned model of this data set. Train one now; "
                                             "progress shows below, and the page appears when it is done.")
        st.stop()
    if ctx.model_error:
        M.error(ctx.model_error)
        st.stop()
    if need_segment and (ctx.segment_error or not ctx.segment):
        M.warning(ctx.segment_error or "No segment selected.")
        st.stop()
    return ctx
