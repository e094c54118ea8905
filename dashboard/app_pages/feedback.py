"""Feedback: what a logged page's clicks say (by position, row theme, badge and segment), the current
settings' page estimated from the same traffic, and updating the model with the log."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard import charts, guards
from dashboard import messages as M
from dashboard import resources as R
from dashboard import state as S
from dashboard.segment_picker import clustering
from dashboard.updating import run_update
from engine.core.errors import DataError
from engine.page.rerank import Settings

RATE_CONFIG = {
    "impressions": st.column_config.NumberColumn("impressions", format="%d"),
    "users": st.column_config.NumberColumn("users", format="%d"),
    "clicks": st.column_config.NumberColumn("clicks", format="%d"),
    "click_rate": st.column_config.NumberColumn("click rate", format="%.4f"),
    "interval": st.column_config.TextColumn("95% interval"),
}
KNOBS = {"diversity": (0.0, S.parse_unit), "long_tail": (0.0, S.parse_unit), "visual": (0.0, S.parse_unit), "method": ("mmr", str)}


def rate_table(frame: pd.DataFrame, keys: list[str], key: str) -> None:
    """A table of click rates with their intervals as text (all values shown as plain text, never Markdown)."""
    shown = frame[[*keys, "impressions", "users", "clicks", "click_rate"]].copy()
    shown["interval"] = [f"[{lo:.4f}, {hi:.4f}]" if pd.notna(lo) else "–" for lo, hi in zip(frame["low"], frame["high"])]
    config = {**RATE_CONFIG, **{k: st.column_config.TextColumn(k) for k in keys}}
    st.dataframe(shown, hide_index=True, width="stretch", key=key, column_config=config)


def read_layouts(files) -> list:
    """Layouts from uploaded JSON files; a bad file is named in a message and left out."""
    from engine.page.layout import Layout

    layouts = []
    for upload in files or []:
        try:
            layouts.append(Layout.from_dict(json.loads(upload.getvalue().decode("utf-8")), upload.name))
        except (ValueError, UnicodeDecodeError, AttributeError) as exc:  # JSONDecodeError is a ValueError
            M.error(f"{upload.name}: not a layout JSON ({exc})")
    return layouts


def server_path(text: str, what: str) -> Path | None:
    """A typed path inside the data roots, else a message and None."""
    text = (text or "").strip()
    if not text:
        return None
    path = Path(text).expanduser()
    if not R.may_change(path):
        roots = ", ".join(p.name or str(p) for p in R.allowed_roots())
        M.error(f"only {what} files inside the data roots ({roots}) can be opened; set HOMEPAGE_DATA_ROOTS to allow others")
        return None
    if not path.is_file():
        M.error(f"{path.name or text}: no such file")
        return None
    return path


def current_settings(base: dict) -> Settings:
    """The homepage's knobs and rules (the browser tab's, else the link's, else the defaults) on the logged page's rows."""
    values = {}
    for name, (default, parse) in KNOBS.items():
        value = st.session_state.get(f"_keep_home_{name}")
        values[name] = value if value is not None else S.url_value(name, default, parse)
    rules = st.session_state.get("_keep_home_rules") or None
    keep = {k: v for k, v in base.items() if k in ("rows", "candidates", "similarity")}
    return Settings.from_dict({**keep, **values, "rules": rules}, "the homepage's settings")


# ----------------------------------------------------------------------------------------------
# The page


ctx = guards.ready("fb", need_segment=False)
method_k = clustering()
st.markdown("## Feedback")
st.caption("Clicks logged on a page (`homepage simulate` writes them on the demo store): a feedback table with user_id, item_id, "
           "layout_id, row, slot, shown_at, clicked and optionally purchased and propensity.")

S.choice("fb_source", None, ["upload", "path"], "upload")
source = st.radio("Feedback file", ["upload", "path"], key="fb_source", horizontal=True,
                  format_func={"upload": "Upload a file", "path": "A file on the server (inside the data roots)"}.get)
S.remember("fb_source", None)
feedback = digest = path = raw = None
name = ""
if source == "upload":
    c1, c2 = st.columns(2)
    upload = c1.file_uploader("Feedback (CSV or Parquet)", type=["csv", "parquet"], key="fb_file")
    layout_files = c2.file_uploader("Layout JSON(s) it refers to (optional)", type=["json"], accept_multiple_files=True, key="fb_layouts")
    layouts = read_layouts(layout_files)
    if upload is not None:
        name, raw = upload.name, upload.getvalue()
        try:
            feedback, digest = R.feedback_upload(ctx.data_dir, name, raw)
        except DataError as exc:
            M.error(exc)
else:
    c1, c2 = st.columns(2)
    path = server_path(c1.text_input("Path of a feedback file", key="fb_path", placeholder="/path/to/feedback.csv"), "feedback")
    layout_path = server_path(c2.text_input("Path of the layout JSON it refers to (optional)", key="fb_layout_path",
                                            placeholder="/path/to/layout.json"), "layout")
    layouts = []
    if layout_path is not None:
        from engine.page.layout import Layout

        try:
            layouts = [Layout.from_json(layout_path)]
        except (ValueError, OSError, UnicodeDecodeError) as exc:
            M.error(f"{layout_path.name}: not a layout JSON ({exc})")
    if path is not None:
        name = path.name
        try:
            feedback, digest = R.feedback_file(ctx.data_dir, path)
        except (DataError, OSError) as exc:
            M.error(exc)

if feedback is None:
    st.info("Give a feedback file to see its click rates.")
    st.stop()
if feedback.empty:
    M.warning(f"{name}: the feedback table has no rows.")
    st.stop()

try:
    report = R.feedback_report(ctx.data_dir, ctx.model, digest, feedback, layouts, *method_k)
except (ValueError, MemoryError) as exc:
    M.error(f"The feedback cannot be analysed: {exc}")
    st.stop()
summary = report["summary"]
cols = st.columns(4)
cols[0].metric("Cards shown", f"{summary['impressions']:,}")
cols[1].metric("Users", f"{summary['users']:,}")
cols[2].metric("Clicks", f"{summary['clicks']:,}")
cols[3].metric("Click rate", f"{summary['click_rate']:.4f}")
known = {layout.layout_id for layout in layouts}
st.caption(f"{len(summary['layouts'])} page(s) in the log, {sum(lid in known for lid in summary['layouts'])} with their layout given"
           + (" · the log explores (propensities under 1)" if summary["explored"] else "")
           + f" · overall 95% interval [{summary['low']:.4f}, {summary['high']:.4f}]. Intervals are 95% Wilson score intervals, "
             "which count cards as independent (a user who visits often makes them somewhat too narrow).")

# ---- Position bias ---------------------------------------------------------------------------
st.markdown("#### Position bias: click rate by slot")
position = report["position"].assign(series=lambda f: [f"row {r + 1}" for r in f["row"]])
overall = report["slot"].assign(series="all rows")
curve = pd.concat([overall, position], ignore_index=True).assign(slot=lambda f: f["slot"] + 1)
st.plotly_chart(charts.position_curve(curve, "slot", "click_rate", "series", "low", "high"), key="fb_position")
left, right = st.columns(2)
with left:
    st.markdown("#### By row")
    rate_table(report["row"].assign(row=lambda f: [f"row {r + 1}" for r in f["row"]]), ["row"], "fb_rows")
    st.markdown("#### By row theme")
    rate_table(report["theme"], ["theme"], "fb_themes")
    if not layouts:
        st.caption("Without the layout JSON, rows are named by number; give it to see their themes.")
with right:
    st.markdown("#### By badge")
    rate_table(report["badge"], ["badge"], "fb_badges")
    st.caption("A card with two badges counts in both; pins are known only from the layout JSON.")
    st.markdown("#### By segment")
    rate_table(report["segment"], ["name", "segment"], "fb_segments")
    st.caption("Each user's learned segment (the sidebar's clustering); users without training history have none.")

# ---- The current settings against the logged page --------------------------------------------
st.markdown("#### The current settings' page on the logged traffic")
logged_choices = [layout for layout in layouts if layout.layout_id in summary["layouts"]]
if not logged_choices:
    st.info("Give the layout JSON of the logged page to estimate how the homepage's current settings would have done on its traffic.")
else:
    by_id = {layout.layout_id: layout for layout in logged_choices}
    S.choice("fb_logged", None, list(by_id))
    logged_id = st.selectbox("Logged page", list(by_id), key="fb_logged",
                             format_func=lambda i: f"{i} · {by_id[i].segment.get('name', by_id[i].segment.get('id', '?'))}")
    S.remember("fb_logged", None)
    logged = by_id[logged_id]
    try:
        settings = current_settings(logged.settings if isinstance(logged.settings, dict) else {})
        segment_id = str(logged.segment.get("id", ""))
        R.segment(ctx.data_dir, ctx.model, segment_id, *method_k)
        result = R.offpolicy(ctx.data_dir, ctx.model, segment_id, digest, feedback, logged, settings, *method_k)
    except (ValueError, DataError) as exc:
        M.error(f"No off-policy comparison: {exc}")
    else:
        rows = [("logged page, observed", result["logged"])]
        if result["logged_page"] and result["explored"]:
            rows.append(("logged page as laid out (SNIPS)", result["logged_page"]))
        if result["current"]:
            rows.append(("current settings (SNIPS)", result["current"]))
        if result["current_position_model"]:
            rows.append(("current settings (position model)", result["current_position_model"]))
        table = pd.DataFrame([{"page": label, "click rate": part["click_rate"], "95% interval": f"[{part['ci95'][0]:.4f}, {part['ci95'][1]:.4f}]"}
                              for label, part in rows])
        if result["difference"]:
            d = result["difference"]
            table.loc[len(table)] = {"page": "current − logged", "click rate": d["value"], "95% interval": f"[{d['ci95'][0]:+.4f}, {d['ci95'][1]:+.4f}]"}
        st.dataframe(table, hide_index=True, width="stretch", key="fb_offpolicy",
                     column_config={"click rate": st.column_config.NumberColumn("click rate", format="%.4f")})
        st.caption(M.plain(result["sentence"]))
        st.caption(M.plain(f"Current settings (from the homepage preview): diversity {settings.diversity:.2f}, long tail {settings.long_tail:.2f}, "
                           f"visual {settings.visual:.2f}, {settings.method}" + (", with its rules" if settings.rules else "")
                           + "; rows as on the logged page."))
        for note in result["notes"]:
            M.warning(note)

# ---- Update the model ------------------------------------------------------------------------
st.markdown("#### Update the model")
st.caption("Fine-tunes the selected model on the clicks of this log and selects the updated model when done.")
if st.button("Update the model with this feedback", key="fb_update"):
    run_update(ctx.data_dir, ctx.model, path, raw, name)
