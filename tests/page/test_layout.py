"""The homepage layout: themed rows, badges and reasons, JSON and CSV round trips, the layout command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from engine.cli.parser import main
from engine.page.judge import judged_layout
from engine.page.layout import Card, Layout, Row
from engine.page.rerank import Settings
from engine.studio.segments import learned_segments


@pytest.fixture(scope="module")
def segment(demo_studio):
    return learned_segments(demo_studio, "kmeans", k=6).segments[1]


@pytest.fixture(scope="module")
def layout(demo_studio, segment) -> Layout:
    rules = {"pin": [{"item": str(demo_studio.data.item_ids[0]), "row": 2, "slot": 2}], "bury": [{"category": "Books", "weight": 0.2}]}
    return judged_layout(demo_studio, segment, Settings(diversity=0.3, long_tail=0.2, visual=0.3, rules=rules))


def test_rows_have_themes_titles_badges_and_reasons(demo_studio, segment, layout: Layout) -> None:
    themes = [r.theme for r in layout.rows]
    assert themes == ["top_picks", "because", "new", "hidden_gems"]
    titles = [r.title for r in layout.rows]
    assert titles[0] == f"Top picks for {segment.name}"
    assert titles[1].startswith("Because they buy ") and titles[1].split()[-1] in segment.keywords
    assert titles[2:] == ["New arrivals", "Hidden gems"]
    assert all(len(r.items) == r.slots == 10 for r in layout.rows)
    ids = [i for i in layout.item_ids() if i is not None]
    assert len(ids) == len(set(ids)) == 40  # no item twice on a page
    idx = layout.item_indices(demo_studio)
    for card, i in zip(layout.rows[2].items, idx[20:30]):
        assert "new" in card.badges and demo_studio.is_new[i]
    for card in layout.rows[3].items:
        assert "long-tail" in card.badges
    keyword = titles[1].split()[-1]
    assert all(any(keyword in w for w in c.why) for c in layout.rows[1].items if "pinned" not in c.badges)
    assert all(c.why for r in layout.rows for c in r.items)
    assert any(w.startswith("like ") for c in layout.rows[0].items for w in c.why)
    assert layout.card_at(1, 1).badges[-1] == "pinned"
    assert {"relevance", "rerank", "why", "total", "evaluate"} <= set(layout.timing_ms)


def test_json_round_trip_is_identical(layout: Layout, tmp_path: Path) -> None:
    path = layout.to_json(tmp_path / "page.json")
    back = Layout.from_json(path)
    assert back == layout
    obj = json.loads(path.read_text())
    assert {"segment", "settings", "rows", "metrics", "timing_ms"} <= set(obj)
    assert {"title", "items"} <= set(obj["rows"][0])
    assert {"item_id", "title", "score", "badges", "why"} <= set(obj["rows"][0]["items"][0])
    assert {"ndcg@10", "ild@10", "tail_share@10", "recall@10", "hr@10", "coverage@10", "novelty@10", "avg_price@10"} <= set(obj["metrics"])
    assert "members" not in obj["segment"]


def test_csv_round_trip_is_identical(layout: Layout, tmp_path: Path) -> None:
    path = layout.to_csv(tmp_path / "page.csv")
    back = Layout.from_csv(path)
    assert back == layout
    lines = path.read_text().splitlines()
    assert lines[0].startswith("# layout {") and lines[1] == "row,slot,theme,row_title,item_id,title,score,badges,why"
    assert len(lines) == 2 + 40


def test_round_trip_of_awkward_values(tmp_path: Path) -> None:
    rows = [Row("top_picks", 'Top picks for "Quotes", commas\nand lines', 3, [
        Card("A,1", 'Title with "quotes", commas, | pipes', 0.1 + 0.2, ["new", "pinned"], ["matches a, b", "like X; Y"]),
        Card(None, "", None),
        Card("B", "Ünïcödé ☂", -1e-17, [], []),
    ])]
    layout = Layout({"id": "rule:x", "name": "X", "size": 25}, {"diversity": 0.1}, rows, {"ndcg@10": 1 / 3, "ild@10": None}, {"total": 1.5}, ["a note"])
    assert Layout.from_csv(layout.to_csv(tmp_path / "x.csv")) == layout
    assert Layout.from_json(layout.to_json(tmp_path / "x.json")) == layout


def test_bad_files_are_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("row,slot\n1,1\n")
    with pytest.raises(ValueError, match="bad.csv: line 1"):
        Layout.from_csv(bad)
    bad_json = tmp_path / "bad.json"
    bad_json.write_text(json.dumps({"rows": []}))
    with pytest.raises(ValueError, match="bad.json: not a layout"):
        Layout.from_json(bad_json)


def test_layout_command(demo_model, demo_studio, tmp_path: Path, capsys) -> None:
    data_dir, model_dir = demo_model
    segment = learned_segments(demo_studio, "kmeans", k=6).segments[0]
    rules = tmp_path / "rules.json"
    excluded = str(demo_studio.data.item_ids[np.argmax(demo_studio.item_counts)])
    rules.write_text(json.dumps({"exclude": {"items": [excluded]}}))
    out, csv_out = tmp_path / "layout.json", tmp_path / "layout.csv"
    rc = main(["layout", str(data_dir), "--model", str(model_dir), "--k", "6", "--segment", segment.id, "--diversity", "0.4",
               "--long-tail", "0.3", "--rules", str(rules), "--json", str(out), "--csv", str(csv_out)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "row 1: Top picks for" in captured.out and "ndcg@10" in captured.out
    obj = json.loads(out.read_text())
    assert obj["segment"]["id"] == segment.id and obj["settings"]["diversity"] == 0.4 and obj["settings"]["long_tail"] == 0.3
    assert excluded not in [c["item_id"] for r in obj["rows"] for c in r["items"]]
    assert Layout.from_csv(csv_out) == Layout.from_json(out)
    # Rule segments by id, bad input as a clean error.
    assert main(["layout", str(data_dir), "--model", str(model_dir), "--segment", "rule:new-users", "--json", str(tmp_path / "n.json")]) in (0, 2)
    rc = main(["layout", str(data_dir), "--model", str(model_dir), "--segment", "nope", "--json", str(tmp_path / "x.json")])
    assert rc == 2 and "no segment 'nope'" in capsys.readouterr().err
