"""Model and data: what is loaded, the model's held-out metrics against the baselines, training and uploads."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from dashboard import messages as M

from dashboard import charts
from dashboard import resources as R
from dashboard import state as S
from dashboard import training as T
from dashboard import views as V
from engine.core.errors import DataError, ModelError

ctx = S.context()
st.title("Model and data")
T.flash()

if ctx.data_error or not ctx.data_dir:
    M.error(ctx.data_error or "No data set selected.")
    with st.expander("Add a data set (upload)", expanded=True):
        T.upload_panel("model")
    st.stop()

data = R.dataset(ctx.data_dir)

# ---- The data set ---------------------------------------------------------------------------
st.subheader(f"Data set · {ctx.data_name}")
times = data.interactions["timestamp"]
c = st.columns(5)
c[0].metric("Items", f"{data.n_items:,}")
c[1].metric("Users", f"{data.n_users:,}")
c[2].metric("Interactions", f"{len(data.interactions):,}")
c[3].metric("First event", str(times.min().date()))
c[4].metric("Last event", str(times.max().date()))
notes = [f"directory `{data.root}`"]
if "event" in data.interactions.columns:
    counts = data.interactions["event"].value_counts()
    notes.append("events: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
if "image" in data.items.columns:
    notes.append("product pictures: yes")
notes.append("item text: " + ("titles and descriptions" if data.has_text() else "none (placeholders: the model trains on ids only)"))
st.caption(" · ".join(notes))

# ---- The model ------------------------------------------------------------------------------
st.subheader("Model")
if not ctx.model:
    T.train_panel(ctx.data_dir, "model", f"No trained model for **{ctx.data_name}** yet. Train one here; progress shows below.")
elif ctx.model_error:
    M.error(ctx.model_error)
    with st.expander("Train a new model", expanded=True):
        T.train_panel(ctx.data_dir, "model")
else:
    try:
        manifest = R.manifest(ctx.data_dir, ctx.model)
    except ModelError as exc:
        M.error(exc)
        st.stop()
    metrics = manifest.get("metrics", {})
    training = manifest.get("training", {})
    split = manifest.get("split", {})
    c = st.columns(5)
    for col, key in zip(c, ("ndcg@10", "hr@10", "recall@10", "coverage@10", "tail_share@10")):
        value = metrics.get(key)
        col.metric(V.label(key), f"{value:.4f}" if isinstance(value, (int, float)) else "–")
    ci = metrics.get("ndcg@10_ci95")
    protocol = manifest.get("protocol", "?")
    protocol_text = "leave last one out" if protocol == "loo" else f"temporal, last {manifest.get('test_days')} days"
    parts = [f"Held-out test ({protocol_text})"]
    if split.get("test_rows"):
        parts[0] += f", {split['test_rows']:,} test rows"
    parts[0] += f", history {'masked' if manifest.get('masked_history', True) else 'kept'}"
    if isinstance(ci, list) and len(ci) == 2:
        parts.append(f"NDCG@10 95% CI [{ci[0]:.4f}, {ci[1]:.4f}]")
    if training.get("epochs"):
        stopped = str(training.get("stopped_by", "")).replace("_", " ")
        parts.append(f"trained {training.get('seconds', 0):.0f} s, {training['epochs']} epochs" + (f" (stopped by {stopped})" if stopped else ""))
    stage2 = manifest.get("stage2") if isinstance(manifest.get("stage2"), dict) else {}
    judged = stage2.get("valid_ndcg@10") if isinstance(stage2.get("valid_ndcg@10"), dict) else None
    if judged and all(isinstance(judged.get(k), (int, float)) for k in ("two_stage", "finetuned")):
        parts.append(f"stage 2 {'kept' if stage2.get('used') else 'not kept'}: validation NDCG@10 {judged['two_stage']:.4f} "
                     f"against stage 1's {judged['finetuned']:.4f}")
    if manifest.get("created_utc"):
        parts.append(f"created {str(manifest['created_utc'])[:16].replace('T', ' ')} UTC")
    st.caption(" · ".join(parts))

    models = dict(manifest.get("metrics_by_model") or {"finetuned": metrics})  # stage 1 alone, and both stages when kept
    report = R.baselines_report(ctx.data_dir)
    same_split = report is not None and report.get("protocol") == protocol and report.get("masked_history", True) == manifest.get("masked_history", True)
    if same_split:
        models.update(report["models"])
    left, right = st.columns(2)
    acc = V.models_frame(models, V.ACCURACY)
    beyond = V.models_frame(models, ("coverage@10", "tail_share@10"))
    highlight = V.MODEL_LABELS.get(manifest.get("final_model", "finetuned"), V.MODEL_LABELS["finetuned"])
    left.plotly_chart(charts.metric_bars(acc, "metric", "value", "model", "low", "high", highlight=highlight, title="Accuracy on held-out data"),
                      key="model_chart_acc")
    right.plotly_chart(charts.metric_bars(beyond, "metric", "value", "model", highlight=highlight, title="Beyond accuracy"), key="model_chart_beyond")
    if not same_split:
        st.info(f"No baseline results for this split yet (`{ctx.data_dir}/baselines.json`, protocol {protocol}).")
        if st.button("Evaluate the baselines on this split", key="model_evaluate_on_split"):
            from engine.evaluation.heldout import report as make_report
            from engine.evaluation.heldout import evaluate_on_split
            from engine.core.jsonio import write_json
            from engine.data.splits import make_split

            with st.status("Tuning and evaluating the baselines…", expanded=True) as status:
                try:
                    split_obj = make_split(data, protocol, manifest.get("test_days") or 28)
                    res, _, bctx = evaluate_on_split(split_obj, mask_history=manifest.get("masked_history", True),
                                                 progress=lambda name: st.write(f"{name} done"))
                except (DataError, ValueError) as exc:
                    status.update(label="Baselines failed", state="error")
                    M.error(exc)
                    st.stop()
                write_json(make_report(data.name, split_obj, bctx, res, manifest.get("masked_history", True)), Path(ctx.data_dir) / "baselines.json")
                status.update(label="Baselines done", state="complete")
            st.rerun()

    history = V.history_frame(training.get("history", []))
    if len(history):
        st.plotly_chart(charts.training_curve(history, "epoch", "loss", "valid_ndcg@10", title="Training"), key="model_chart_training")
    with st.expander("Train a new model"):
        T.train_panel(ctx.data_dir, "model")

# ---- Uploads --------------------------------------------------------------------------------
st.subheader("Add a data set")
with st.expander("Upload a catalogue and interactions (CSV or Parquet)", expanded=False):
    T.upload_panel("model")
