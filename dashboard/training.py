"""Training a model from the page, with a progress bar, and adding an uploaded data set."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import streamlit as st

from dashboard import messages as M

from dashboard import resources as R
from dashboard.sidebar import select_next_run
from engine.core.access import max_train_minutes
from engine.core.errors import DataError, ModelError

MODES = {"auto": "frozen and top both tried, the better on validation kept", "top": "fine-tune the encoder's top layer", "frozen": "frozen encoder (fastest)", "full": "fine-tune the whole encoder (slowest)"}
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")


@st.fragment
def train_panel(data_dir: str, prefix: str, expanded_note: str | None = None) -> None:
    """A form that trains a model on the data set and selects it when done.

    A fragment: submitting the form runs the training here without redrawing the rest of the page first.
    """
    if expanded_note:
        st.info(expanded_note)
    with st.form(f"{prefix}_train_form", border=True):
        c1, c2, c3 = st.columns(3)
        minutes = c1.number_input("Time budget (minutes)", min_value=0.5, max_value=max_train_minutes(), value=min(8.0, max_train_minutes()), step=0.5, key=f"{prefix}_train_minutes",
                                  help="Training stops at the budget and keeps the best checkpoint so far; with the auto encoder, "
                                       "the two modes share it")
        mode = c2.selectbox("Encoder", list(MODES), format_func=lambda m: f"{m}: {MODES[m]}", key=f"{prefix}_train_mode")
        protocol = c3.selectbox("Held-out protocol", ["loo", "temporal"], key=f"{prefix}_train_protocol",
                                format_func=lambda p: {"loo": "leave last one out", "temporal": "last 28 days"}[p])
        submitted = st.form_submit_button("Train a model", type="primary")
    if submitted:
        run_training(data_dir, minutes=float(minutes), mode=mode, protocol=protocol)


def run_training(data_dir: str, *, minutes: float, mode: str, protocol: str) -> None:
    """Train with the engine, drawing its per-epoch progress; select the new model and redraw."""
    from engine.models.store import new_model_dir
    from engine.training.job import make_config, mode_candidates, train_and_save
    from engine.training.progress import describe_progress, finished_label

    if not R.may_change(Path(data_dir)):
        st.error("This data set lies outside the data roots, so the app does not write a model into it.")
        return
    minutes = min(float(minutes), max_train_minutes())
    data = R.dataset(data_dir)
    config = make_config(data, mode=mode, protocol=protocol)
    bar = st.progress(0.0, text="Reading the catalogue and encoding item texts…")
    entries: list[dict] = []

    def progress(entry: dict) -> None:
        if entry.get("epoch") == 0 and not entry.get("refit") and entries:  # the next encoder mode starts (auto)
            entries.clear()
        entries.append(entry)
        state = describe_progress(entries, config.max_epochs, minutes, refit_follows=config.refit)
        bar.progress(min(state.fraction, 0.99), text=state.text)

    try:
        out, manifest, result = train_and_save(data, new_model_dir(data_dir), config, protocol=protocol, max_minutes=minutes, progress=progress,
                                               modes=mode_candidates(config, mode))
    except (DataError, ModelError, ValueError) as exc:
        bar.empty()
        M.error(f"Training failed: {exc}")
        return
    bar.progress(1.0, text=finished_label(result.epochs, result.seconds, result.stopped_by))
    select_next_run(side_model=out.name)
    st.session_state["_flash"] = (
        f"Trained model {out.name}: held-out NDCG@10 {manifest['metrics'].get('ndcg@10', float('nan')):.4f} "
        f"({result.epochs} epochs in {result.seconds:.0f} s)."
    )
    st.rerun()


def flash() -> None:
    """Show (once) the message a finished action left for the next run."""
    message = st.session_state.pop("_flash", None)
    if message:
        st.success(message)


# ----------------------------------------------------------------------------------------------
# Uploading a data set


def _suffix(upload) -> str:
    name = upload.name.lower()
    if name.endswith(".parquet"):
        return "parquet"
    if name.endswith(".csv"):
        return "csv"
    raise DataError(f"{upload.name}: upload a .csv or .parquet file")


ENCODINGS = {"utf-8": "UTF-8", "cp1252": "Windows / Excel (cp1252)", "latin-1": "Latin-1 (ISO 8859-1)"}


def _as_utf8(raw: bytes, encoding: str, filename: str) -> bytes:
    """A CSV upload's bytes re-encoded as UTF-8 (what the data directory keeps)."""
    from engine.data.tables import undecodable_at

    read_as = "utf-8-sig" if encoding == "utf-8" else encoding
    try:
        return raw.decode(read_as).encode("utf-8")
    except UnicodeDecodeError:
        line, _ = undecodable_at(raw, read_as)
        raise DataError(f"{filename}: line {line} is not valid {ENCODINGS.get(encoding, encoding)} text; "
                        "choose the file's encoding in the form (Windows and Excel exports are often cp1252)") from None


def import_upload(name: str, items, interactions, users=None, encoding: str = "utf-8") -> Path:
    """Validate uploaded tables with the engine's loader and add them as a data directory.

    CSV files are read in ``encoding`` and kept as UTF-8.

    Returns:
        The new data directory.

    Raises:
        DataError: a bad name, a missing file or the loader's message (naming the uploaded file,
            column and rows).
    """
    from engine.core.files import create_from_stage, new_stage
    from engine.data.tables import load_dataset

    name = (name or "").strip()
    if not NAME_RE.match(name):
        raise DataError(f"{name or '(empty)'}: name the data set with letters, digits, '-' or '_' (at most 40)")
    if items is None or interactions is None:
        raise DataError("upload both a catalogue (items) and an interactions file")
    root = R.upload_root()
    if not R.may_change(root):
        raise DataError("uploads are off: the upload folder lies outside the data roots (HOMEPAGE_DATA_ROOTS)")
    target = root / name
    if target.exists():
        raise DataError(f"a data set named {name!r} already exists in {root}; choose another name")
    root.mkdir(parents=True, exist_ok=True)
    stage = new_stage(target, "upload")
    renames: dict[str, str] = {}
    try:
        for table, upload in (("items", items), ("interactions", interactions), ("users", users)):
            if upload is None:
                continue
            path = stage / f"{table}.{_suffix(upload)}"
            raw = upload.getvalue()
            path.write_bytes(_as_utf8(raw, encoding, upload.name) if path.suffix == ".csv" else raw)
            renames[str(path)] = upload.name
        try:
            data = load_dataset(stage)
        except DataError as exc:
            message = str(exc)
            for staged, original in renames.items():
                message = message.replace(staged, original)
            raise DataError(message.replace(str(stage), name)) from None
        del data
        try:
            create_from_stage(stage, target)
        except FileExistsError:
            raise DataError(f"a data set named {name!r} already exists in {root}; choose another name") from None
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return target


@st.fragment
def upload_panel(prefix: str) -> None:
    """A form to upload a catalogue and interactions; engine errors show as messages, never tracebacks.

    A fragment: a rejected upload redraws only this panel, with the message.
    """
    st.caption(
        "Catalogue: `item_id`, `title` and optional `category`, `brand`, `price`, `color`, `description`, `created_at`. "
        "Interactions: `user_id`, `item_id`, `timestamp` and optional `event`, `weight`. CSV or Parquet."
    )
    with st.form(f"{prefix}_upload_form", border=True):
        name = st.text_input("Name of the new data set", key=f"{prefix}_upload_name", placeholder="my-shop")
        c1, c2, c3 = st.columns(3)
        items = c1.file_uploader("Catalogue (items)", type=["csv", "parquet"], key=f"{prefix}_upload_items")
        inter = c2.file_uploader("Interactions", type=["csv", "parquet"], key=f"{prefix}_upload_interactions")
        users = c3.file_uploader("Users (optional)", type=["csv", "parquet"], key=f"{prefix}_upload_users")
        encoding = st.selectbox("Text encoding of the CSV files", list(ENCODINGS), format_func=ENCODINGS.get, key=f"{prefix}_upload_encoding")
        submitted = st.form_submit_button("Validate and add")
    if not submitted:
        return
    try:
        target = import_upload(name, items, inter, users, encoding)
    except DataError as exc:
        M.error(exc)
        return
    except Exception as exc:  # an unreadable upload must never show a traceback
        M.error(f"The upload could not be read: {type(exc).__name__}: {exc}")
        return
    select_next_run(side_data=target.name)
    st.session_state["_flash"] = f"Added data set {target.name}; it is now selected. Train a model on it below."
    st.rerun()
