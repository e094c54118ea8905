"""Segments: a map of users coloured by segment, sizes, keywords, top categories and the value of segmentation."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import messages as M

from dashboard import charts, guards
from dashboard import resources as R
from dashboard import state as S
from engine.page.url_params import segment_count
from dashboard import views as V
from dashboard.segment_picker import METHODS

VALUE_METRICS = ("ndcg@10", "recall@10", "recall@40", "tail_share@40", "ild@10", "coverage@40")

ctx = guards.ready("seg")
st.markdown("## Segments")

c1, c2, _ = st.columns([2, 2, 3])
S.choice("seg_method", "seg_method", list(METHODS), "kmeans")
c1.selectbox("Learned segments by", list(METHODS), key="seg_method", format_func=METHODS.get)
S.init("seg_k", "seg_k", 0, segment_count, valid=lambda v: isinstance(v, int) and (v == 0 or 2 <= v <= 20))
c2.select_slider("Number of learned segments", options=[0, *range(2, 21)], key="seg_k", format_func=lambda v: "chosen by the data" if v == 0 else str(v))
method = S.remember("seg_method", "seg_method")
k = S.remember("seg_k", "seg_k") or None

try:
    catalogue = R.segment_catalogue(ctx.data_dir, ctx.model, method, k)
except ValueError as exc:
    M.error(f"No segments: {exc}")
    st.stop()
learned, visible = catalogue.learned, catalogue.visible
criterion = {"silhouette": "highest silhouette", "bic": "lowest BIC", "given": "set by hand"}.get(learned.criterion, learned.criterion)
st.caption(f"{learned.k} learned segments ({METHODS[method]}, k {criterion}) of the model's user vectors; "
           f"{sum(s.kind == 'rule' for s in visible)} rule segments from users.csv and behaviour. "
           f"Segments under the minimum size are never shown.")
studio = R.studio(ctx.data_dir, ctx.model)
if studio.sampled_from:
    st.caption(f"A shop-sized store: segments are learned from a seeded random sample of {len(studio.users):,} of its "
               f"{studio.sampled_from:,} users with history, and their sizes are the sample's.")

selected = next((s for s in visible if s.id == ctx.segment), None)
left, right = st.columns([3, 2], gap="large")
with left:
    rule_id = selected.id if selected is not None and selected.kind == "rule" else None
    points = R.user_map(ctx.data_dir, ctx.model, method, k, rule_id)
    title = f"Users on the model's two main axes, {'members of ' + selected.name if rule_id else 'coloured by learned segment'}"
    st.plotly_chart(charts.segment_map(points, "x", "y", "group", "group", highlight=selected.name if selected else None, title=title), key="seg_map")
with right:
    table = pd.DataFrame([s.to_dict() for s in visible])
    table["keywords"] = table["keywords"].map(lambda ks: ", ".join(ks[:5]))
    table["top_categories"] = table["top_categories"].map(lambda cs: ", ".join(cs))
    st.markdown("#### Learned segments by size")
    sizes = table[table["kind"] == "learned"][["name", "size"]]
    st.plotly_chart(charts.size_bars(sizes, "name", "size", highlight=selected.name if selected else None), key="seg_sizes")

st.markdown("#### All segments")
st.dataframe(table[["name", "kind", "size", "keywords", "top_categories"]], hide_index=True, width="stretch", key="seg_table",
             column_config={"size": st.column_config.ProgressColumn("size", format="%d", min_value=0, max_value=int(table["size"].max()))})

if selected is not None:
    st.markdown(f"#### Is a segment page worth it? · {selected.name}")
    value = R.segment_value(ctx.data_dir, ctx.model, selected.id, method, k)
    tidy = V.models_frame({row["page"]: row for row in value.to_dict("records")}, VALUE_METRICS)
    st.plotly_chart(charts.metric_facets(tidy, "metric", "value", "model"), key="seg_value")
    st.caption(
        f"The segment's page (one page for its {selected.size:,} users) against each member's personalised top-k from the same model "
        "and one globally popular page, all with the same slots and judged on the members' held-out interactions. "
        "Each metric has its own y axis: compare bars within a chart, not heights across charts."
    )
