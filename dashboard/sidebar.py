"""The sidebar every page shares: data set, model and segment pickers (all kept in the URL)."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from dashboard import messages as M

from dashboard import resources as R
from dashboard import state as S
from dashboard.loading import FirstLoad
from engine.core.errors import DataError, ModelError

PENDING = "_pending_select"  # {widget key: value} to apply before the widgets of the next run exist
EXTRA_DIRS = "_extra_dirs"  # data directories this browser tab opened by path: name -> path


def select_next_run(**values: str) -> None:
    """Select a data set or model on the next run (a widget's value cannot change once it is drawn)."""
    st.session_state.setdefault(PENDING, {}).update(values)


def _apply_pending() -> None:
    for key, value in st.session_state.pop(PENDING, {}).items():
        st.session_state[key] = value
        st.session_state.pop(f"_keep_{key}", None)


def _open_directory() -> None:
    """Callback of "Open": validate a typed path and select it."""
    text = st.session_state.get("side_open_path", "").strip()
    path = Path(text).expanduser()
    if text and not R.may_change(path):
        roots = ", ".join(p.name or str(p) for p in R.allowed_roots())
        st.session_state["_open_error"] = f"only data directories inside the data roots ({roots}) can be opened; set HOMEPAGE_DATA_ROOTS to allow others"
        return
    if not text or not R.is_data_dir(path):
        st.session_state["_open_error"] = "no items.csv or items.parquet there"
        return
    path = path.resolve()
    extra = st.session_state.setdefault(EXTRA_DIRS, {})
    name = path.name if path.name not in R.data_choices() else f"{path.name} ({path.parent.name})"
    extra[name] = str(path)
    st.session_state["side_data"] = name
    st.session_state.pop("_keep_side_data", None)
    st.session_state.pop("_open_error", None)


def _model_label(data_dir: str, name: str) -> str:
    try:
        manifest = R.manifest(data_dir, name)
    except ModelError:
        return f"{name} (unreadable)"
    ndcg = manifest.get("metrics", {}).get("ndcg@10")
    created = str(manifest.get("created_utc", ""))[:16].replace("T", " ")
    return f"{name} · NDCG@10 {ndcg:.3f}" if isinstance(ndcg, float) else f"{name} {created}"


def sidebar() -> S.Context:
    """Draw the shared pickers and store what they chose for the pages."""
    _apply_pending()
    ctx = S.Context()
    main_note = st.empty()
    with st.sidebar:
        st.markdown("## :material/storefront: Homepage Studio")
        choices = {**R.data_choices(), **st.session_state.get(EXTRA_DIRS, {})}
        names = list(choices)
        if not names:
            ctx.data_error = (
                f"No data set found: {R.default_data_dir()} holds no items.csv. Run `homepage demo --out data/demo` "
                f"or start the app with `homepage app DIR`."
            )
            S.set_context(ctx)
            return ctx
        S.choice("side_data", "data", names)
        st.selectbox("Data set", names, key="side_data", help="Data directories found beside the default one, in data/ and benchmarks/out/data/")
        ctx.data_name = S.remember("side_data", "data")
        ctx.data_dir = choices[ctx.data_name]
        with st.expander("Open another directory"):
            st.text_input("Path of a data directory", key="side_open_path", placeholder="/path/to/imported/data")
            st.button("Open", key="side_open", on_click=_open_directory)
            if st.session_state.get("_open_error"):
                M.error(st.session_state["_open_error"])
        loading = FirstLoad(main_note, f"Preparing {ctx.data_name}")
        try:
            with loading.step("Reading the data set", slow=not R.dataset_loaded(ctx.data_dir)):
                data = R.dataset(ctx.data_dir)
        except DataError as exc:
            ctx.data_error = str(exc)
            st.error("This data set does not load; see the page.")
            S.set_context(ctx)
            return ctx
        st.caption(f"{data.n_items:,} items · {data.n_users:,} users · {len(data.interactions):,} interactions")

        ctx.models = list(R.model_choices(ctx.data_dir))
        if ctx.models:
            S.choice("side_model", "model", ctx.models)
            st.selectbox("Model", ctx.models, key="side_model", format_func=lambda m: _model_label(ctx.data_dir, m))
            ctx.model = S.remember("side_model", "model")
            try:
                R.manifest(ctx.data_dir, ctx.model)
            except ModelError as exc:
                ctx.model_error = str(exc)
        else:
            ctx.model_error = f"No trained model for {ctx.data_name} yet."
            st.info("No trained model yet: train one on the **Model and data** page.")
        if ctx.model and not ctx.model_error:
            from dashboard.segment_picker import clustering, segment_picker

            if R.catalogue_built(ctx.data_dir, ctx.model, *clustering()):
                segment_picker(ctx)
            else:  # the first load of a model: its steps show in the main area, not only in the sidebar's spinner
                loading.title = f"Preparing {ctx.data_name} with model {ctx.model}"
                with loading.step("Loading the model; computing user vectors, item text vectors and picture colours"):
                    R.studio(ctx.data_dir, ctx.model)
                with loading.step("Finding segments in the user vectors"):
                    segment_picker(ctx)
        loading.finish()
    S.set_context(ctx)
    return ctx
