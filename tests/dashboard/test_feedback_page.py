"""The Feedback page with a simulated log (AppTest), and the homepage's layout advice applied in one click."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import DEMO_MODEL
from test_dashboard import app, no_errors

UPDATE_TIMEOUT = 600  # seconds of the run that updates the model (UpdateSettings' defaults) and then redraws the page on it


@pytest.fixture(scope="module")
def logged(trained_demo: Path, tmp_path_factory) -> tuple[Path, Path]:
    """(layout JSON, feedback CSV): two days of simulated traffic with exploration on a rule segment's page."""
    from engine.cli.parser import main

    out = tmp_path_factory.mktemp("feedback")
    page, feedback = out / "page.json", out / "feedback.csv"
    assert main(["layout", str(trained_demo), "--segment", "rule:heavy-buyers", "--json", str(page)]) == 0
    assert main(["simulate", str(trained_demo), "--layout", str(page), "--days", "2", "--explore", "0.3", "--out", str(feedback)]) == 0
    return page, feedback


def test_feedback_page_shows_position_bias_tables_and_the_offpolicy_comparison(trained_demo: Path, logged, monkeypatch) -> None:
    page, feedback = logged
    at = app(monkeypatch, trained_demo)
    at.run()
    at.switch_page("app_pages/feedback.py").run()
    no_errors(at)
    assert any("Give a feedback file" in i.value for i in at.info)
    at.file_uploader(key="fb_file").upload("feedback.csv", feedback.read_bytes(), "text/csv")
    at.file_uploader(key="fb_layouts").upload("page.json", page.read_bytes(), "application/json")
    at.run()
    no_errors(at)

    charts = at.get("plotly_chart")
    assert len(charts) == 1
    spec = json.loads(charts[0].proto.spec)
    names = [trace["name"] for trace in spec["data"]]
    assert names[0] == "all rows" and "row 1" in names and len(names) == 1 + 4  # the four rows of the page
    tables = {t.value.columns[0]: t.value for t in at.dataframe}  # each table by its key column
    rows, themes, badges, segments = (tables[k] for k in ("row", "theme", "badge", "name"))
    assert set(themes["theme"]) == {"top_picks", "because", "new", "hidden_gems"}  # from the layout JSON
    assert "long-tail" in set(badges["badge"]) and segments["impressions"].sum() == rows["impressions"].sum()
    assert all(t["interval"].str.startswith("[").all() for t in (rows, themes, badges, segments))
    comparison = tables["page"]
    assert comparison["page"].tolist()[0] == "logged page, observed" and "current settings (SNIPS)" in comparison["page"].tolist()
    assert any("SNIPS" in c.value for c in at.caption)
    assert at.button(key="fb_update").label == "Update the model with this feedback"


def test_updating_the_model_with_the_feedback_selects_the_child_model(trained_demo: Path, logged, monkeypatch, tmp_path: Path) -> None:
    """The button writes a child of the selected model into a copy of the demo store and selects it."""
    page, feedback = logged
    data_dir = tmp_path / "demo"  # a copy: the update adds a model to the data directory's models folder
    shutil.copytree(trained_demo, data_dir, ignore=shutil.ignore_patterns("models"))
    shutil.copytree(trained_demo / "models" / DEMO_MODEL, data_dir / "models" / DEMO_MODEL)
    parent = (data_dir / "models" / DEMO_MODEL).resolve()
    monkeypatch.setenv("HOMEPAGE_DATA_ROOTS", str(tmp_path))  # R.may_change: the app writes only inside the data roots
    at = app(monkeypatch, data_dir)
    at.run()
    at.switch_page("app_pages/feedback.py").run()
    at.file_uploader(key="fb_file").upload("feedback.csv", feedback.read_bytes(), "text/csv")
    at.file_uploader(key="fb_layouts").upload("page.json", page.read_bytes(), "application/json")
    at.run()
    no_errors(at)
    assert at.session_state["side_model"] == DEMO_MODEL

    at.button(key="fb_update").click().run(timeout=UPDATE_TIMEOUT)
    no_errors(at)
    children = [p for p in (data_dir / "models").iterdir() if p.name != DEMO_MODEL]
    assert len(children) == 1, children
    child = children[0]
    manifest = json.loads((child / "manifest.json").read_text())
    assert Path(manifest["parent"]) == parent and manifest["update"]["new_interactions"] > 0
    assert at.session_state["side_model"] == child.name and at.sidebar.selectbox(key="side_model").value == child.name
    assert [s.value for s in at.success] == [f"Updated the model with the feedback: {child.name} is now selected."]


def test_a_feedback_path_outside_the_data_roots_is_refused(trained_demo: Path, monkeypatch, tmp_path: Path) -> None:
    outside = tmp_path / "feedback.csv"
    outside.write_text("user_id,item_id,layout_id,row,slot,shown_at,clicked\n")
    at = app(monkeypatch, trained_demo)
    at.run()
    at.switch_page("app_pages/feedback.py").run()
    at.radio(key="fb_source").set_value("path").run()
    at.text_input(key="fb_path").input(str(outside)).run()
    assert not at.exception
    errors = [e.value.replace("\\", "") for e in at.error]
    assert any("only feedback files inside the data roots" in e for e in errors), errors
    assert str(tmp_path) not in " ".join(errors)


def test_layout_advice_applies_its_settings_to_the_sliders(trained_demo: Path, monkeypatch) -> None:
    at = app(monkeypatch, trained_demo)
    at.run()
    with pytest.raises(KeyError):  # a closed panel draws nothing (a slider move redraws less)
        at.number_input(key="home_advice_drop")
    at.session_state["home_advice_open"] = True  # opening the expander
    at.run()
    at.number_input(key="home_advice_drop").set_value(50.0)  # a loose guardrail: some setting gains long-tail share
    at.toggle(key="home_advice").set_value(True).run()
    no_errors(at)
    sentence = next(c.value.replace("\\", "") for c in at.caption if "→" in c.value)
    assert "within 50% of the plain ranking" in sentence
    apply = at.button(key="home_advice_apply")
    assert not apply.disabled
    apply.click().run()
    no_errors(at)
    diversity, long_tail = at.slider(key="home_diversity").value, at.slider(key="home_long_tail").value
    assert (diversity, long_tail) != (0.0, 0.0)
    assert f"diversity {diversity:.2f} and long tail {long_tail:.2f}" in sentence
    assert at.query_params["long_tail"] in (f"{long_tail:.2f}", [f"{long_tail:.2f}"])
    assert at.button(key="home_advice_apply").disabled  # applied
