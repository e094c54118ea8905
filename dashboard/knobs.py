"""The page knobs (diversity, long tail, visual variety, method) and the rules editor, kept in the URL."""

from __future__ import annotations

import json

import streamlit as st

from dashboard import rules_form
from dashboard import state as S

METHODS = {"mmr": "MMR (maximal marginal relevance)", "dpp": "DPP (determinantal point process)"}


def knob_values(prefix: str, url_prefix: str = "", defaults: dict | None = None) -> dict:
    """The knobs' values as the next :func:`knob_sliders` will show them (the browser tab's, else
    the URL's, else the defaults), before their widgets are drawn: a page can draw what they
    change first."""
    d = {"diversity": 0.0, "long_tail": 0.0, "visual": 0.0, "method": "mmr", **(defaults or {})}
    for name in ("diversity", "long_tail", "visual"):
        S.init(f"{prefix}_{name}", f"{url_prefix}{name}", d[name], S.parse_unit, valid=lambda v: isinstance(v, float) and 0 <= v <= 1)
    S.choice(f"{prefix}_method", f"{url_prefix}method", list(METHODS), d["method"])
    return {name: st.session_state[f"{prefix}_{name}"] for name in ("diversity", "long_tail", "visual", "method")}


def knob_sliders(prefix: str, url_prefix: str = "", container=None, defaults: dict | None = None) -> dict:
    """Diversity, long-tail and visual sliders plus the method; returns their values.

    Args:
        prefix: widget-key prefix of the page (``home``, ``cmp_a``...).
        url_prefix: prefix of the URL parameters (``""`` on the homepage, ``a_``/``b_`` on Compare).
        container: where to draw (default: the current one), or four containers (columns), one per knob.
        defaults: starting values when neither the session nor the URL has one.
    """
    where = container if isinstance(container, (list, tuple)) else [container or st] * 4
    knob_values(prefix, url_prefix, defaults)
    where[0].slider("Diversity", 0.0, 1.0, step=0.05, key=f"{prefix}_diversity",
                    help="0 = pure relevance; 1 = each card as unlike the cards already placed as possible")
    where[1].slider("Long-tail exposure", 0.0, 1.0, step=0.05, key=f"{prefix}_long_tail",
                    help="xQuAD weight of showing less popular (long-tail) items; 0 = off")
    where[2].slider("Visual variety", 0.0, 1.0, step=0.05, key=f"{prefix}_visual",
                    help="Penalty on neighbouring cards with similar picture colours; 0 = off")
    where[3].selectbox("Diversity method", list(METHODS), key=f"{prefix}_method", format_func=METHODS.get)
    return {
        "diversity": S.remember(f"{prefix}_diversity", f"{url_prefix}diversity", S.fmt_float),
        "long_tail": S.remember(f"{prefix}_long_tail", f"{url_prefix}long_tail", S.fmt_float),
        "visual": S.remember(f"{prefix}_visual", f"{url_prefix}visual", S.fmt_float),
        "method": S.remember(f"{prefix}_method", f"{url_prefix}method"),
    }


def rules_editor(prefix: str, categories: list[str], brands: list[str]) -> dict:
    """The merchandising rules as an editable table; returns the rules object (file form).

    The table's starting rows come from the URL (``rules`` JSON) once per session; edits redraw the
    page at once and are written back to the URL.
    """
    base_key = f"{prefix}_rules_base"
    if base_key not in st.session_state:
        from engine.page.url_params import rules as read_rules

        start = S.url_value("rules", {}, read_rules)  # validated by the engine; a bad one is named and ignored
        st.session_state[base_key] = rules_form.rules_to_table(start)
    edited = st.data_editor(
        st.session_state[base_key], key=f"{prefix}_rules_editor", num_rows="dynamic", width="stretch", hide_index=True,
        column_config={
            "action": st.column_config.SelectboxColumn("Rule", options=list(rules_form.ACTIONS), required=True,
                                                       help="exclude removes first; boost and bury change scores; pin places an item after re-ranking"),
            "target": st.column_config.SelectboxColumn("By", options=list(rules_form.TARGETS), help="pins always name an item id"),
            "value": st.column_config.TextColumn("Item id, category or brand"),
            "weight": st.column_config.NumberColumn("Weight", min_value=0.0, max_value=10.0, step=0.1, help="boost/bury, in units of the page's relevance range"),
            "row": st.column_config.NumberColumn("Row", min_value=1, max_value=20, step=1, help="pin: row, from 1"),
            "slot": st.column_config.NumberColumn("Slot", min_value=1, max_value=40, step=1, help="pin: slot, from 1"),
        },
    )
    rules = rules_form.table_to_rules(edited)
    st.session_state[f"_keep_{prefix}_rules"] = rules  # for the Compare page's "with the homepage's rules"
    text = json.dumps(rules, separators=(",", ":"), sort_keys=True)
    if rules:
        if st.query_params.get("rules") != text:
            st.query_params["rules"] = text
    elif "rules" in st.query_params:
        del st.query_params["rules"]
    with st.popover("Categories and brands"):
        st.caption("Categories: " + ", ".join(categories[:60]))
        st.caption("Brands: " + ", ".join(brands[:80]))
    return rules
