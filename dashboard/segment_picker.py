"""The sidebar's segment picker: learned segments (clusters of the model's user vectors) and rule segments."""

from __future__ import annotations

import streamlit as st

from dashboard import messages as M

from dashboard import resources as R
from dashboard import state as S
from engine.page.url_params import one_of, segment_count

METHODS = {"kmeans": "k-means (k by silhouette)", "gmm": "Gaussian mixture (k by BIC)"}


def clustering() -> tuple[str, int | None]:
    """The clustering the Segments page chose (kept in the session and the URL)."""
    method = st.session_state.get("_keep_seg_method") or S.url_value("seg_method", "kmeans", one_of(list(METHODS)))
    k = st.session_state.get("_keep_seg_k")
    if k is None:
        k = S.url_value("seg_k", 0, segment_count)
    method = method if method in METHODS else "kmeans"
    return method, (int(k) if k and 2 <= int(k) <= 40 else None)


def segment_picker(ctx: S.Context) -> None:
    """Pick a segment; sets ``ctx.segment`` (an id) or ``ctx.segment_error``."""
    method, k = clustering()
    try:
        segments = R.segment_catalogue(ctx.data_dir, ctx.model, method, k).visible
    except (ValueError, MemoryError) as exc:  # too few users for the clustering asked for
        ctx.segment_error = f"No segments: {exc}"
        M.warning(ctx.segment_error)
        return
    if not segments:
        ctx.segment_error = "No segment reaches the minimum size."
        M.warning(ctx.segment_error)
        return
    ids = [s.id for s in segments]
    by_id = {s.id: s for s in segments}

    def label(sid: str) -> str:
        seg = by_id[sid]
        kind = "learned" if seg.kind == "learned" else "rule"
        return f"{seg.name} · {seg.size:,} users ({kind})"

    S.choice("side_segment", "segment", ids)
    st.selectbox("Segment", ids, key="side_segment", format_func=label,
                 help="Learned segments cluster the model's user vectors; rule segments come from users.csv and behaviour")
    ctx.segment = S.remember("side_segment", "segment")
