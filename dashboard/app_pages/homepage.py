"""Homepage preview: the segment's homepage as a storefront, its knobs and rules, and its held-out metrics."""

from __future__ import annotations

import json

import streamlit as st

from dashboard import messages as M

from dashboard import guards
from dashboard import knobs as K
from dashboard import resources as R
from dashboard import state as S
from dashboard import storefront
from dashboard import views as V
from dashboard.cards import MetricView, metrics_html
from dashboard.segment_picker import clustering
from engine.page.advice import Goal, Guardrail, advise
from engine.page.rerank import Settings

HEADLINE = ("ndcg@10", "recall@10", "hr@10", "tail_share@10", "ild@10", "novelty@10", "avg_price@10")

ctx = guards.ready("home")
method_k = clustering()
seg = R.segment(ctx.data_dir, ctx.model, ctx.segment, *method_k)

st.markdown(f"## {seg.name}")
details = [f"{seg.size:,} users", "learned segment" if seg.kind == "learned" else f"rule segment ({seg.rule})" if seg.rule else "rule segment"]
if seg.keywords:
    details.append("keywords: " + ", ".join(seg.keywords[:6]))
if seg.top_categories:
    details.append("buys most: " + ", ".join(seg.top_categories))
st.caption(" · ".join(details))

with st.expander("Merchandising rules (pin, boost, bury, exclude)", expanded=False):
    rules = K.rules_editor("home", *R.category_and_brand_names(ctx.data_dir))


# A fragment: moving a knob redraws the knobs, the page and its verdict, not the sidebar, the rules
# table and the rest of the app (redrawing the whole app in the browser was most of a slider move).
@st.fragment
def page_with_knobs(ctx, rules: dict, method_k: tuple) -> None:
    # Drawn in this order on the page, filled in another: the storefront goes to the browser
    # first, then the knobs' widgets, then the page's verdict (each element is a message the
    # browser handles in turn before it draws the next).
    knob_row, metrics_box, page_box = st.container(), st.container(), st.container()
    knobs = K.knob_values("home")
    settings = Settings(diversity=knobs["diversity"], long_tail=knobs["long_tail"], visual=knobs["visual"], method=knobs["method"], rules=rules or None)
    plain = Settings(method=knobs["method"])
    with page_box:
        try:
            with st.spinner("Laying out the page: re-ranking the segment's items into rows…"):  # shows only when it takes a while
                layout = R.layout(ctx.data_dir, ctx.model, ctx.segment, settings, *method_k, evaluate=False)
        except ValueError as exc:
            M.error(f"These rules cannot be applied: {exc}. The page below leaves the rules out.")
            settings = Settings(diversity=knobs["diversity"], long_tail=knobs["long_tail"], visual=knobs["visual"], method=knobs["method"])
            layout = R.layout(ctx.data_dir, ctx.model, ctx.segment, settings, *method_k, evaluate=False)
        for note in layout.notes:
            M.warning(note)
        stamp = (f"segment={ctx.segment} diversity={settings.diversity:.2f} long_tail={settings.long_tail:.2f} "
                 f"visual={settings.visual:.2f} method={settings.method} rules={len(json.dumps(settings.rules or {}))}")
        storefront.draw(ctx.data_dir, layout, stamp, styled=False)
    K.knob_sliders("home", container=knob_row.columns(4))

    # Held-out metrics of this page, with their change from the model's plain ranking.
    with metrics_box, st.spinner("Judging the page on the segment's held-out interactions…"):
        metrics = R.metrics(ctx.data_dir, ctx.model, ctx.segment, settings, *method_k)
        before = R.metrics(ctx.data_dir, ctx.model, ctx.segment, plain, *method_k)
    same = R.settings_json(settings) == R.settings_json(plain)
    tiles = []
    for key in HEADLINE:
        value, ref = metrics.get(key), before.get(key)
        delta = None if value is None or ref is None or same else value - ref
        big = abs(value or 0) >= 10
        tiles.append(MetricView(V.label(key), "–" if value is None else f"{value:,.2f}" if big else f"{value:.4f}",
                                None if delta is None else f"{delta:+,.2f}" if big else f"{delta:+.4f}",
                                "off" if key.startswith(("avg_price", "novelty")) else "normal"))
    ci = metrics.get("ndcg@10_ci95")
    note = (f"Held-out interactions of {metrics.get('n_users', 0):,} segment members (the page is the same for all of them); "
            "changes are against the model's plain ranking (no diversity, no long-tail boost, no rules)"
            + (f" · NDCG@10 95% CI [{ci[0]:.4f}, {ci[1]:.4f}]" if ci else ""))
    metrics_box.html(metrics_html(tiles, note))  # one element, not a widget per number
    advice_panel(ctx, settings, method_k)
    downloads(ctx, layout, metrics)


def advice_panel(ctx, settings: Settings, method_k: tuple) -> None:
    box = st.expander("Layout advice: the most long-tail exposure within an NDCG@10 guardrail", expanded=bool(st.session_state.get("_keep_home_advice")),
                      key="home_advice_open", on_change="rerun")
    if not box.open:  # drawn when opened: a closed panel adds nothing to a slider move's redraw
        return
    with box:
        S.init("home_advice", None, False)
        S.init("home_advice_drop", None, 5.0, valid=lambda v: isinstance(v, (int, float)) and 0 <= v <= 50)
        c1, c2 = st.columns([1, 2])
        c1.number_input("Largest NDCG@10 drop from the plain ranking (%)", min_value=0.0, max_value=50.0, step=1.0, key="home_advice_drop")
        c2.toggle("Advise (sweeps the diversity × long-tail grid once per method, visual weight and rules)", key="home_advice")
        drop, advising = S.remember("home_advice_drop", None), S.remember("home_advice", None)
        if advising:
            base = Settings(method=settings.method, visual=settings.visual, rules=settings.rules)  # the knobs swept from 0
            try:
                advice = advise(R.frontier(ctx.data_dir, ctx.model, ctx.segment, base, *method_k), Goal("tail_share@40"),
                                Guardrail("ndcg@10", float(drop) / 100.0))
            except ValueError as exc:
                M.error(f"No advice: {exc}")
            else:
                st.caption(M.plain(advice.sentence))
                target = {"home_diversity": advice.settings["diversity"], "home_long_tail": advice.settings["long_tail"]}
                here = abs(settings.diversity - target["home_diversity"]) < 1e-9 and abs(settings.long_tail - target["home_long_tail"]) < 1e-9
                st.button("Apply" if not here else "Applied", key="home_advice_apply", on_click=S.apply, args=(target,), disabled=here,
                          help="Sets the diversity and long-tail sliders to the advised settings")


def downloads(ctx, layout, metrics: dict) -> None:
    layout.metrics = metrics  # the cached copy is this run's own
    left, mid, right = st.columns([1, 1, 4])
    name = f"layout-{ctx.data_name}-{ctx.segment.replace(':', '-')}"
    # Written when clicked, not on every redraw.
    left.download_button("Layout JSON", lambda: json.dumps(layout.to_dict(), indent=2), f"{name}.json", "application/json",
                         key="home_download_json", on_click="ignore")
    mid.download_button("Layout CSV", layout.to_csv_text, f"{name}.csv", "text/csv", key="home_download_csv", on_click="ignore")
    right.caption(f"re-ranked in {layout.timing_ms.get('total', 0):.0f} ms by the engine")


storefront.style()  # once per full run: the fragment's redraws keep it
page_with_knobs(ctx, rules, method_k)
