"""benchmarks/report.py: RESULTS.md from hand-made benchmark JSON files, every table headed by its run."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import meta  # noqa: E402
import report  # noqa: E402

MACHINE = {"host": "box", "cpus": 2, "cpu_model": "Test CPU 9000", "memory_gib": 23.5, "python": "3.11.7",
           "torch": "2.0.0+cpu", "load_1min_start": 1.27, "load_1min_end": 1.9}


def _meta(benchmark: str, command: str) -> dict:
    return {"benchmark": benchmark, "command": command, "date": "2026-12-01T10:00:00+00:00",
            "finished": "2026-12-01T10:30:00+00:00", "machine": MACHINE}


def _model(ndcg: float, lo: float, hi: float, **extra) -> dict:
    return {"ndcg@10": ndcg, "ndcg@10_ci95": [lo, hi], "hr@10": 0.08, "recall@12": 0.09, "map@12": 0.035,
            "coverage@10": 0.5, "tail_share@10": 0.05, "ild@10": None, "fit_seconds": 1.0, "eval_seconds": 2.0, **extra}


BEAUTY_SPLIT = {"protocol": "loo", "train_rows": 150000, "valid_rows": 22363, "test_rows": 22363}
BASELINES_CMD = ".venv/bin/python benchmarks/baselines.py --datasets beauty"
RANKER_CMD = ".venv/bin/python benchmarks/ranker.py --datasets beauty --minutes 25"


def beauty_baselines() -> dict:
    models = {"popularity": _model(0.0061, 0.0054, 0.0068),
              "ease": _model(0.0445, 0.0422, 0.0466, params={"lam": 50.0}, **{"valid_ndcg@10": {"50.0": 0.051, "200.0": 0.049}}),
              "transition": _model(0.0503, 0.0480, 0.0529)}
    return {"dataset": "beauty", "protocol": "loo", "k": 10, "n_users": 22363, "n_items": 12101, "masked_history": True,
            "split": BEAUTY_SPLIT, "models": models, "run": "beauty", "wall_seconds": 113.0,
            **_meta("baselines", BASELINES_CMD)}


def beauty_ranker() -> dict:
    models = {"finetuned": _model(0.0463, 0.0442, 0.0487, fit_seconds=1522.1), "transition": _model(0.0503, 0.0480, 0.0529)}
    paired = {"baseline": "transition", "ndcg@10": {"diff": -0.0041, "ci95": [-0.0061, -0.0019]},
              "hr@10": {"diff": 0.0063, "ci95": [0.0031, 0.0097]}}
    training = {"mode": "frozen", "overrides": {}, "seconds": 1522.1, "epochs": 17, "best_epoch": 16,
                "stopped_by": "time", "refit": "off", "start": "random", "history": []}
    return {"dataset": "beauty", "protocol": "loo", "k": 10, "n_users": 22363, "n_items": 12101, "masked_history": True,
            "split": BEAUTY_SPLIT, "models": models, "training": training, "inference_seconds_1000_users": 0.47,
            "paired_vs_best_baseline": paired, "run": "beauty", **_meta("ranker", RANKER_CMD)}


def demo_layouts() -> dict:
    frontier = [{"diversity": 0.5, "long_tail": 0.3, "ndcg@10": 0.0245, "recall@40": 0.0714, "hr@40": 0.0714, "ild@10": 0.6918,
                 "tail_share@10": 0.0, "coverage@40": 0.0133, "novelty@10": 3.6916, "avg_price@10": None}]
    value = [{"page": "segment page", "n_users": 2018, "ndcg@10": 0.0245, "recall@40": 0.0714, "hr@40": 0.0714,
              "coverage@40": 0.0133, "tail_share@40": 0.45, "ild@10": 0.6918, "novelty@10": 3.6916}]
    timings = {"rerank_mmr_ms": 3.9, "page_mmr_ms": 7.8, "rerank_dpp_ms": 4.5, "page_dpp_ms": 8.2, "evaluate_ms": 4.7,
               "evaluate_users": 5000, "frontier_5x5_s": 0.25}
    ari = {"k": 8, "all": 0.587, "n_all": 5000, "long": 0.7, "n_long": 3888, "min_items": 5}
    return {"dataset": "demo", "protocol": "loo", "n_users": 5000, "n_items": 3000, "model_dir": "/x/benchmarks/out/models/demo",
            "segment": {"id": "kmeans-1", "name": "Sneakers & Bags", "kind": "kmeans", "size": 2018},
            "segment_held_out": 2018, "k_kmeans": 4, "k_gmm": 12, "kmeans_seconds": 1.8, "gmm_seconds": 0.8,
            "n_rule_segments": 21, "repeats": 20, "slots": 40, "timings": timings, "studio_seconds": 2.4,
            "frontier": frontier, "segment_value": value, "layout_metrics": {}, "taste_ari": ari,
            **_meta("layouts", ".venv/bin/python benchmarks/layouts.py")}


def dashboard_result() -> dict:
    runs = [{"data": "demo", "moves": 10, "first_load_s": 12.3, "images": 40, "median_ms": 275.4, "min_ms": 172.0,
             "max_ms": 340.2, "times_ms": [], "engine": ""}]
    return {**_meta("dashboard", ".venv/bin/python benchmarks/dashboard.py"), "runs": runs}


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    out.mkdir()
    for name, value in {"beauty": beauty_baselines(), "ranker_beauty": beauty_ranker(),
                        "layouts_demo": demo_layouts(), "dashboard": dashboard_result()}.items():
        (out / f"{name}.json").write_text(json.dumps(value))
    return out


def _section(text: str, heading: str) -> str:
    """The lines from ``heading`` up to the next heading of the same or a higher level."""
    level = heading.split(" ")[0]
    lines = text.splitlines()
    start = lines.index(heading)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("#") and len(lines[i].split(" ")[0]) <= len(level)), len(lines))
    return "\n".join(lines[start:end])


def test_report_writes_every_table_headed_by_its_run(out_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "docs" / "RESULTS.md"
    assert report.main(["--out", str(out_dir), "--results", str(path)]) == 0
    text = path.read_text()
    assert text.splitlines()[0] == report.GENERATED
    assert "`.venv/bin/python benchmarks/report.py`" in text.splitlines()[0]

    base = _section(text, "### beauty")
    assert base.splitlines()[2].startswith(f"`{BASELINES_CMD}` — 2026-12-01 10:00:00 UTC to 10:30:00 (30.0 min); 2 CPUs (Test CPU 9000)")
    assert "1-minute load average 1.27 at the start, 1.90 at the end" in base
    assert "| ease | 0.0445 [0.0422, 0.0466] | 0.0800 |" in base
    assert "EASE lambda 50 (validation NDCG@10 by lambda: 50.0 0.0510, 200.0 0.0490)." in base

    comparison = _section(text, "### Comparison with the reference numbers (../shared/data/README.md)")
    assert f"From beauty: `{BASELINES_CMD}`" in comparison
    ref = report.baselines.REFERENCE["beauty"]["ease"]["ndcg@10"]
    assert f"| beauty | ease | ndcg@10 | 0.0445 | {ref:.4f} | {(0.0445 - ref) / ref:+.1%} | yes |" in comparison
    assert "| beauty | (split) | n_users | 22,363 | 22,363 | +0.0% | yes |" in comparison

    fine = text[text.index("## Our ranker"):text.index("## Segments")]
    assert "No result file yet: run `.venv/bin/python benchmarks/ranker.py --datasets demo`." in fine
    beauty = fine[fine.index("### beauty ("):]
    assert beauty.splitlines()[2].startswith(f"`{RANKER_CMD}` — 2026-12-01 10:00:00 UTC")
    assert "| finetuned | 0.0463 [0.0442, 0.0487] |" in beauty
    assert "training 25.4 min (17 epochs, best epoch 16, stopped by time)" in beauty
    assert "ndcg@10 -0.0041 [-0.0061, -0.0019]; hr@10 +0.0063 [+0.0031, +0.0097]." in beauty
    assert "| **ours: finetuned (id-only transformer)** | 0.0463 | 0.0800 |" in beauty
    for name, (ndcg, hr) in report.ranker.PUBLISHED_BEAUTY.items():
        assert f"| {name} (published) | {ndcg:.4f} | {hr:.4f} |" in beauty

    lay = text[text.index("### demo (loo; 5,000 users with history"):text.index("## Dashboard")]
    assert lay.splitlines()[2].startswith("`.venv/bin/python benchmarks/layouts.py` —")
    assert "adjusted Rand index 0.587 over all 5,000 users" in lay
    assert "| 0.50 | 0.30 | 0.0245 | 0.0714 | 0.0714 | 0.6918 | 0.0000 | 0.0133 | 3.6916 | – |" in lay
    assert "| segment page | 2018 | 0.0245 |" in lay
    assert "No result file yet: run `.venv/bin/python benchmarks/layouts.py --datasets hm`." in text

    dash = text[text.index("## Dashboard"):]
    assert "`.venv/bin/python benchmarks/dashboard.py` —" in dash
    assert "| demo | 275 ms | 172–340 ms | 10 | 12.3 s | 40 |" in dash


def test_report_names_a_broken_or_incomplete_file(out_dir: Path, tmp_path: Path, capsys) -> None:
    (out_dir / "movielens.json").write_text("{not json")
    assert report.main(["--out", str(out_dir), "--results", str(tmp_path / "R.md")]) == 1
    assert "movielens.json" in capsys.readouterr().err
    assert not (tmp_path / "R.md").exists()

    (out_dir / "movielens.json").unlink()
    broken = beauty_ranker()
    del broken["paired_vs_best_baseline"]
    (out_dir / "ranker_beauty.json").write_text(json.dumps(broken))
    with pytest.raises(report.ReportError, match="ranker_beauty.json"):
        report.write_report(out_dir, tmp_path / "R.md")


def test_report_marks_a_result_without_metadata(out_dir: Path, tmp_path: Path) -> None:
    old = beauty_ranker()
    for key in ("command", "date", "finished", "machine", "benchmark"):
        del old[key]
    (out_dir / "ranker_beauty.json").write_text(json.dumps(old))
    (out_dir / "stray.json").write_text("{}")
    text = report.write_report(out_dir, tmp_path / "R.md")
    beauty = text[text.index("### beauty (loo; 22,363 test users"):]
    assert beauty.splitlines()[2] == "_Command, date and machine not recorded in this result file._"
    assert "Not in any table above: stray.json." in text


def test_meta_records_command_date_and_machine() -> None:
    started = meta.run_started("ranker")
    assert started["benchmark"] == "ranker"
    assert started["command"]
    assert started["date"].endswith("+00:00")
    machine = started["machine"]
    assert machine["cpus"] >= 1 and machine["python"] and "load_1min_start" in machine
    done = meta.run_finished(started)
    assert "load_1min_end" in done["machine"] and "load_1min_end" not in started["machine"]
    assert done["finished"] >= done["date"]


def test_readme_block_and_load_section(out_dir: Path, tmp_path: Path) -> None:
    runs = [{"sessions": n, "seconds": 120.0, "moves": 30 * n, "redraw_ms_p50": 150.0 * n, "redraw_ms_p95": 400.0 * n,
             "redraw_ms_max": 900.0, "first_page_s_max": 9.5, "timeouts": 0, "errors_on_pages": 0, "server_peak_rss_mb": 1100.0}
            for n in (1, 20)]
    (out_dir / "load.json").write_text(json.dumps({**_meta("load", ".venv/bin/python benchmarks/load.py"), "data": "demo", "runs": runs}))
    results = report.load_results(out_dir)
    text = report.render(results)
    assert "| 20 | 600 | 3000.0 ms | 8000.0 ms |" in text and "`.venv/bin/python benchmarks/load.py`" in text
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{report.README_START}\nold numbers\n{report.README_END}\nafter\n")
    report.write_readme_block(results, readme)
    written = readme.read_text()
    assert written.startswith("intro\n") and written.endswith(f"{report.README_END}\nafter\n") and "old numbers" not in written
    assert "| beauty | 0.0463" in written or "| beauty |" in written
    assert "20 concurrent sessions: slider redraw p95 8000.0 ms" in written
    readme.write_text("no markers")
    with pytest.raises(report.ReportError, match="markers"):
        report.write_readme_block(results, readme)
