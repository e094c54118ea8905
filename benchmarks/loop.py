"""Benchmark of the loop on the demo store, whose shoppers have known tastes: serve a page, simulate a
week of traffic, update the model on it, and judge the pages before and after; off-policy estimates
of other layouts against the simulator's truth; encoder modes side by side.

Usage: .venv/bin/python benchmarks/loop.py [--data data/demo] [--model benchmarks/out/models/demo] [--modes frozen,top,lora] [--days 7]
       .venv/bin/python benchmarks/loop.py --no-loop --data benchmarks/out/data/hm_week --protocol temporal --test-days 2

1. **Loop**: the largest learned segment's plain page from model M is shown to its members for
   `--days` days with 20% of the slots explored (`simulate_segment`); `update_model` fine-tunes M
   on that week (LoRA, the default) into M2; both models' held-out test metrics, and the
   simulator's click rate of each model's page (expected, and observed over another simulated week
   with a Wilson interval).
2. **Off-policy**: from the explored week of M's page, SNIPS and position-model estimates of three other layouts'
   click rates (`offpolicy_comparison`), each against the click rate the simulator gives when that
   layout is served (`true_click_rate`): is the truth inside the interval?
3. **Encoder modes**: `homepage train --mode X --no-stage2` for each mode: test NDCG@10, training
   time and the size of the saved model directory.

Writes benchmarks/out/loop.json, or with ``--no-loop`` (the encoder modes alone, on any data set)
benchmarks/out/loop_modes_<data>.json; docs/RESULTS.md is generated from them by benchmarks/report.py.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

from meta import run_finished, run_started  # noqa: E402

from engine.core.jsonio import write_json  # noqa: E402

OUT = ROOT / "benchmarks" / "out"
LAYOUTS = {  # the three layouts judged off-policy
    "diversity 0.3": {"diversity": 0.3},
    "long tail 0.3": {"long_tail": 0.3},
    "diversity 0.6, long tail 0.3": {"diversity": 0.6, "long_tail": 0.3},
}


def log(msg: str) -> None:
    print(msg, flush=True)


def observed_rate(feedback) -> dict:
    from engine.page.feedback_report import wilson_interval

    clicks, shown = int(feedback["clicked"].sum()), len(feedback)
    lo, hi = wilson_interval(clicks, shown)
    return {"click_rate": clicks / max(shown, 1), "ci95": [float(lo), float(hi)], "impressions": shown}


def run_loop(data_dir: Path, model_dir: Path, days: int, work: Path) -> dict:
    """Serve, simulate, update, judge; and the off-policy checks on the explored week."""
    import numpy as np

    from engine.data.feedback import write_feedback
    from engine.data.tables import load_dataset
    from engine.page.feedback_report import offpolicy_comparison
    from engine.page.rerank import Settings, rank_segment
    from engine.page.simulate import simulate_segment, taste_attraction, true_click_rate, user_tastes
    from engine.studio.context import load_studio
    from engine.studio.segments import learned_segments
    from engine.training.update import UpdateSettings, update_model

    data = load_dataset(data_dir)
    studio = load_studio(data, model_dir, images=False)
    segment = max(learned_segments(studio, "kmeans").segments, key=lambda s: s.size)
    page = rank_segment(studio, segment, Settings())
    tastes = user_tastes(data)[np.asarray(segment.members)]
    attraction = taste_attraction(data.items)
    log(f"[loop] segment {segment.id} ({segment.size:,} members): serving M's page for {days} days with 20% explored")
    feedback, summary = simulate_segment(studio, segment, page, days=days, explore=0.2, seed=1)
    path = work / "feedback.csv"
    write_feedback(feedback, path)

    offpolicy = []
    for name, knobs in LAYOUTS.items():
        start = time.perf_counter()
        found = offpolicy_comparison(studio, feedback, page, knobs, segment=segment)
        other = rank_segment(studio, segment, Settings(**knobs))
        truth = true_click_rate(other, tastes, attraction)
        row = {"layout": name, "settings": knobs, "true_click_rate": truth}
        for key, part in (("snips", found.get("current")), ("position_model", found.get("current_position_model"))):
            part = part or {}
            lo, hi = part.get("ci95", [float("nan"), float("nan")])
            row[key] = {"estimate": part.get("click_rate"), "ci95": [lo, hi], "covered": bool(lo <= truth <= hi) if part else None,
                        "support": part.get("support")}
            log(f"  off-policy {name}, {key}: {part.get('click_rate')} [{lo:.4f}, {hi:.4f}] vs truth {truth:.4f} (support {part.get('support')})")
        offpolicy.append({**row, "seconds": round(time.perf_counter() - start, 1)})

    out = work / "m2"
    start = time.perf_counter()
    result = update_model(data, model_dir, out, UpdateSettings(feedback=path), log=lambda line: log(f"  {line}"))
    update_seconds = time.perf_counter() - start
    studio2 = load_studio(data, out, images=False)
    page2 = rank_segment(studio2, segment, Settings())
    after_week, _ = simulate_segment(studio2, segment, page2, days=days, seed=2)
    before_week, _ = simulate_segment(studio, segment, page, days=days, seed=2)
    keys = ("ndcg@10", "ndcg@10_ci95", "hr@10", "recall@12", "map@12")
    return {
        "segment": segment.id, "members": int(segment.size), "days": days, "explored_week": summary,
        "update": {"seconds": round(update_seconds, 1), "new_interactions": result.new_interactions, "new_users": result.new_users,
                   "mode": result.manifest.get("update", {}).get("mode"), "parent": result.manifest.get("parent")},
        "before": {"test": {k: result.before.get(k) for k in keys}, "true_click_rate": true_click_rate(page, tastes, attraction),
                   "observed_week": observed_rate(before_week)},
        "after": {"test": {k: result.after.get(k) for k in keys}, "true_click_rate": true_click_rate(page2, tastes, attraction),
                  "observed_week": observed_rate(after_week)},
        "offpolicy": offpolicy,
    }


def run_modes(data_dir: Path, modes: list[str], minutes: float, work: Path, split: list[str]) -> list[dict]:
    """`homepage train --mode X --no-stage2` per mode: test NDCG@10, training time, size on disk.

    ``split`` holds extra ``homepage train`` flags that choose the held-out protocol (for example
    ``["--protocol", "temporal", "--test-days", "2"]``); empty for the command's defaults."""
    rows = []
    for mode in modes:
        out = work / f"mode_{mode}"
        log(f"[modes] {data_dir.name}: training --mode {mode} ({minutes:g} min budget)")
        start = time.perf_counter()
        proc = subprocess.run([str(Path(sys.executable).parent / "homepage"), "train", str(data_dir), "--mode", mode, "--no-stage2",
                               "--max-minutes", str(minutes), "--out", str(out), *split], capture_output=True, text=True, cwd=ROOT)
        seconds = time.perf_counter() - start
        if proc.returncode:
            rows.append({"mode": mode, "error": (proc.stderr or proc.stdout).strip().splitlines()[-1][:300]})
            continue
        manifest = json.loads((out / "manifest.json").read_text())
        size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
        metrics = manifest["metrics"]
        rows.append({"mode": mode, "ndcg@10": metrics["ndcg@10"], "ndcg@10_ci95": metrics["ndcg@10_ci95"], "seconds": round(seconds, 1),
                     "train_seconds": manifest["training"]["seconds"], "epochs": manifest["training"]["epochs"],
                     "stopped_by": manifest["training"]["stopped_by"], "saved_mb": round(size / 1e6, 2)})
        log(f"  mode {mode}: NDCG@10 {metrics['ndcg@10']:.4f}, {seconds:.0f} s, {size / 1e6:.1f} MB saved")
    return rows


def _share(value) -> str:
    return "–" if value is None else f"{value:.0%}"


def markdown_table(result: dict) -> str:
    """The loop before/after, the off-policy checks and the encoder modes."""
    lines = []
    loop = result.get("loop")
    if loop:
        lines += [f"Segment {loop['segment']} ({loop['members']:,} members), {loop['days']} simulated days a week; update: "
                  f"{loop['update']['new_interactions']:,} new interactions of {loop['update']['new_users']:,} users, "
                  f"{loop['update']['mode']} mode, {loop['update']['seconds']:.0f} s.", "",
                  "| model | test NDCG@10 | HR@10 | MAP@12 | simulator's expected click rate of its page | observed over a week |",
                  "|---|---|---|---|---|---|"]
        for name in ("before", "after"):
            side = loop[name]
            t, w = side["test"], side["observed_week"]
            ci = t.get("ndcg@10_ci95") or [float("nan")] * 2
            lines.append(f"| {'M' if name == 'before' else 'M2 (updated)'} | {t['ndcg@10']:.4f} [{ci[0]:.4f}, {ci[1]:.4f}] | {t['hr@10']:.4f} | "
                         f"{t['map@12']:.4f} | {side['true_click_rate']:.4f} | {w['click_rate']:.4f} [{w['ci95'][0]:.4f}, {w['ci95'][1]:.4f}] |")
        lines += ["", "| layout judged off-policy | estimator | estimate | 95% interval | simulator's truth | covered | support |",
                  "|---|---|---|---|---|---|---|"]
        for row in loop["offpolicy"]:
            for key, label in (("snips", "SNIPS"), ("position_model", "position model")):
                part = row.get(key) or {}
                est = "–" if part.get("estimate") is None else f"{part['estimate']:.4f}"
                lo, hi = part.get("ci95", [float("nan")] * 2)
                lines.append(f"| {row['layout']} | {label} | {est} | [{lo:.4f}, {hi:.4f}] | {row['true_click_rate']:.4f} | "
                             f"{part.get('covered')} | {_share(part.get('support'))} |")
    modes = result.get("modes")
    if modes:
        lines += ["", "| encoder mode | test NDCG@10 | run time (training alone) | epochs, stopped by | saved model |", "|---|---|---|---|---|"]
        for row in modes:
            if "error" in row:
                lines.append(f"| {row['mode']} | failed: {row['error']} | | | |")
                continue
            lo, hi = row["ndcg@10_ci95"]
            epochs = f"{row['epochs']}, {row['stopped_by']}" if "epochs" in row else "–"
            lines.append(f"| {row['mode']} | {row['ndcg@10']:.4f} [{lo:.4f}, {hi:.4f}] | {row['seconds']:.0f} s ({row['train_seconds']:.0f} s) | "
                         f"{epochs} | {row['saved_mb']:.1f} MB |")
    return "\n".join(lines).strip("\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "demo")
    parser.add_argument("--model", type=Path, default=OUT / "models" / "demo")
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--modes", default="frozen,top,lora")
    parser.add_argument("--minutes", type=float, default=8.0, help="training budget per encoder mode")
    parser.add_argument("--no-loop", action="store_true", help="only the encoder modes (any data set; no simulator needed)")
    parser.add_argument("--protocol", choices=("loo", "temporal"), help="held-out protocol of the mode runs (homepage train's default if unset)")
    parser.add_argument("--test-days", type=int, help="temporal protocol: days of test (and of validation before it)")
    args = parser.parse_args()
    split = [*(["--protocol", args.protocol] if args.protocol else []), *(["--test-days", str(args.test_days)] if args.test_days else [])]
    started = run_started("loop")
    with tempfile.TemporaryDirectory(prefix="loop-") as folder:
        work = Path(folder)
        result = {"data": args.data.name, "split": " ".join(split) or "homepage train's default"}
        if not args.no_loop:
            result["loop"] = run_loop(args.data, args.model, args.days, work)
        modes = [m for m in args.modes.split(",") if m]
        if modes:
            result["modes"] = run_modes(args.data, modes, args.minutes, work, split)
    path = OUT / ("loop.json" if not args.no_loop else f"loop_modes_{args.data.name}.json")
    write_json({**run_finished(started), **result}, path)
    log(markdown_table(result))
    log(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
