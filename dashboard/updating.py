"""Updating the selected model with a feedback log from the page, through ``engine.training.update.update_model``."""

from __future__ import annotations

import tempfile
from pathlib import Path

import streamlit as st

from dashboard import messages as M
from dashboard import resources as R
from dashboard.sidebar import select_next_run
from engine.core.errors import DataError, ModelError


def run_update(data_dir: str, model: str, feedback_path: Path | None, upload: bytes | None, upload_name: str) -> None:
    """Update the model with the feedback through ``engine.training.update.update_model``; select the result and reload."""
    from engine.training.update import UpdateSettings, update_model

    if not R.may_change(Path(data_dir)):
        M.error("This data set lies outside the data roots, so the app does not write a model into it.")
        return
    from engine.models.store import new_model_dir

    with st.status("Updating the model with this feedback…", expanded=True) as status, tempfile.TemporaryDirectory(prefix="feedback-") as folder:
        bar = st.progress(0.0, text="Starting…")

        def progress(line: str) -> None:
            bar.progress(0.5, text=line[:200])

        path = feedback_path
        if path is None:
            path = Path(folder) / f"feedback{Path(upload_name).suffix.lower()}"
            path.write_bytes(upload or b"")
        try:
            result = update_model(R.dataset(data_dir), R.model_path(data_dir, model), new_model_dir(data_dir),
                                  UpdateSettings(feedback=path), log=progress)
        except (DataError, ModelError, ValueError, TypeError, MemoryError, OSError) as exc:
            status.update(label="The update failed", state="error")
            M.error(f"The update failed: {exc}")
            return
        except Exception as exc:  # an engine failure must never show a traceback
            status.update(label="The update failed", state="error")
            M.error(f"The update failed: {type(exc).__name__}: {exc}")
            return
        bar.progress(1.0, text="Done")
        status.update(label="Model updated", state="complete")
    new = result.out
    st.cache_data.clear()  # every cached page, metric and report was built on the old model
    st.cache_resource.clear()
    if new.name in R.model_choices(data_dir):
        select_next_run(side_model=new.name)
        st.session_state["_flash"] = f"Updated the model with the feedback: {new.name} is now selected."
    else:
        st.session_state["_flash"] = "Updated the model with the feedback."
    st.rerun()
