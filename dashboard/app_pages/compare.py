"""Compare: two settings of the segment's homepage side by side, their held-out difference and the frontier."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import messages as M

from dashboard import charts, guards
from dashboard import knobs as K
from dashboard import resources as R
from dashboard import state as S
from dashboard import storefront
from dashboard import views as V
from dashboard.segment_picker import clustering
from engine.page.rerank import Settings
from engine.page.url_params import flag

TABLE = ("ndcg@10", "recall@10", "hr@10", "ndcg@40", "recall@40", "tail_share@10", "tail_share@40", "ild@10", "novelty@10", "coverage@40", "avg_price@10")
AXES = {"ild@10": "Diversity (ILD@10)", "tail_share@40": "Long-tail share of the page", "novelty@10": "Novelty@10", "coverage@40": "Coverage of the page",
        "ndcg@10": "NDCG@10", "recall@40": "Recall of the page", "hr@10": "HR@10"}


@st.fragment
def frontier_panel(data_dir: str, model: str, segment_id: str, settings_b: Settings, marks: dict[str, dict], method_k: tuple) -> None:
    """The frontier and its axis pickers: picking an axis redraws this panel only, not the two pages."""
    st.markdown("#### Accuracy–diversity frontier")
    ax1, ax2 = st.columns(2)
    S.choice("cmp_x", "x", list(AXES), "ild@10")
    S.choice("cmp_y", "y", list(AXES), "ndcg@10")
    x = ax1.selectbox("x axis", list(AXES), key="cmp_x", format_func=AXES.get)
    y = ax2.selectbox("y axis", list(AXES), key="cmp_y", format_func=AXES.get)
    S.remember("cmp_x", "x")
    S.remember("cmp_y", "y")
    sweep = R.frontier(data_dir, model, segment_id, settings_b, *method_k)
    sweep = sweep.assign(label=[f"diversity {d:.2f}, long tail {t:.2f}" for d, t in zip(sweep["diversity"], sweep["long_tail"])])
    points = pd.DataFrame([{"name": side.upper(), x: metrics.get(x), y: metrics.get(y)} for side, metrics in marks.items()])
    fig = charts.frontier(sweep, x, y, "label", points, "name")
    fig.update_xaxes(title=AXES[x])
    fig.update_yaxes(title=AXES[y])
    st.plotly_chart(fig, key="cmp_frontier")
    st.caption("Grey: the diversity × long-tail grid with B's method, visual weight and rules.")


ctx = guards.ready("cmp")
method_k = clustering()
seg = R.segment(ctx.data_dir, ctx.model, ctx.segment, *method_k)

st.markdown(f"## Compare two pages · {seg.name}")
st.caption(f"{seg.size:,} users. B is judged against A on the same held-out users; intervals are 95% paired bootstraps over users.")

# B starts from the homepage's knobs when they were moved there, else from a more diverse page.
home = {n: st.session_state.get(f"_keep_home_{n}") for n in ("diversity", "long_tail", "visual", "method")}
b_defaults = {k: v for k, v in home.items() if v is not None}
if not any(b_defaults.get(n) for n in ("diversity", "long_tail", "visual")):
    b_defaults.update(diversity=0.3, long_tail=0.2)
col_a, col_b = st.columns(2, gap="large")
sides = {}
for side, col, defaults in (("a", col_a, {}), ("b", col_b, b_defaults)):
    with col:
        st.markdown(f"#### Page {side.upper()}")
        with st.container(border=True):
            knobs = K.knob_sliders(f"cmp_{side}", f"{side}_", defaults=defaults)
            S.init(f"cmp_{side}_rules", f"{side}_rules", False, flag)
            st.checkbox("With the homepage's merchandising rules", key=f"cmp_{side}_rules")
            with_rules = S.remember(f"cmp_{side}_rules", f"{side}_rules", lambda v: "1" if v else "0")
        rules = st.session_state.get("_keep_home_rules") if with_rules else None
        sides[side] = Settings(diversity=knobs["diversity"], long_tail=knobs["long_tail"], visual=knobs["visual"], method=knobs["method"], rules=rules or None)

try:
    result = R.compare(ctx.data_dir, ctx.model, ctx.segment, sides["a"], sides["b"], *method_k)
    layouts = {s: R.layout(ctx.data_dir, ctx.model, ctx.segment, sides[s], *method_k) for s in "ab"}
except ValueError as exc:
    M.error(f"These settings cannot be applied: {exc}")
    st.stop()

# The verdict: metrics with differences and intervals, and where A and B sit on the frontier.
left, right = st.columns([3, 2], gap="medium")
with left:
    st.markdown("#### Held-out metrics")
    rows = []
    for key in TABLE:
        m = result["metrics"].get(key)
        if not m:
            continue
        ci = m.get("ci95")
        significant = ci is not None and (ci[0] > 0 or ci[1] < 0)
        rows.append({"metric": V.label(key), "A": m["a"], "B": m["b"], "B − A": m["diff"],
                     "95% CI of B − A": (f"[{ci[0]:+.4f}, {ci[1]:+.4f}]" + (" ✓" if significant else "")) if ci else "–"})
    table = pd.DataFrame(rows)
    config = {c: st.column_config.NumberColumn(c, format="%.4f", width="small") for c in ("A", "B", "B − A")}
    config["metric"] = st.column_config.TextColumn("metric", width="medium")
    config["95% CI of B − A"] = st.column_config.TextColumn("95% CI of B − A", width="medium")
    st.dataframe(table, hide_index=True, width="stretch", height=35 * len(table) + 40, key="cmp_table", column_config=config)
    st.caption(f"{result['n_users']:,} held-out segment users. ✓: the interval leaves out zero. "
               "Page metrics (tail share, diversity, novelty, coverage, price) are the same for every member, so they have no interval.")
with right:
    frontier_panel(ctx.data_dir, ctx.model, ctx.segment, sides["b"], {s: layouts[s].metrics for s in "ab"}, method_k)

# The two pages, with B's rank changes against A.
changes = {c["item_id"]: c for c in result["items"]}
page_a, page_b = st.columns(2, gap="medium")
with page_a:
    st.markdown("#### Page A")
    storefront.draw(ctx.data_dir, layouts["a"], f"side=a {R.settings_json(sides['a'])}", changes, side="a", compact=True)
with page_b:
    st.markdown("#### Page B")
    storefront.draw(ctx.data_dir, layouts["b"], f"side=b {R.settings_json(sides['b'])}", changes, side="b", compact=True)
