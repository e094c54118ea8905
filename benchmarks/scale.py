"""Benchmark of every step at a shop's size: 10k, 100k and 1M users on this one machine.

Usage: .venv/bin/python benchmarks/scale.py [--sizes 10k,100k,1m] [--train-minutes 10] [--no-dashboard] [--no-ray]

For each size it generates the demo store (`homepage demo --users N --items M`), then runs each step
as the user would, one command at a time, and records its wall time and the peak memory of its
process (`/usr/bin/time`; Ray workers are separate processes, their memory is not in it):

- load: read and validate the data directory (`load_dataset`, with no cached interactions: it
  leaves them in DIR/.cache); load_cached: the same call again, which reads them from there;
- baselines: `homepage baselines DIR` (tuned on validation, judged on test; evaluation on a sample
  of users above `EVAL_MAX_USERS`);
- train: `homepage train DIR --max-minutes T` (two stages; events per second from the manifest);
- segments, page, compare: `homepage segments`, `homepage layout`, `homepage compare`;
- score: `homepage score DIR --k 100` in one process, and with 1 and 2 local Ray workers (same top-k);
- train_one, train_ray2: `homepage train DIR --mode frozen --no-stage2` for a short budget in one
  process and with `--workers 2` (events per second, like for like; one mode, so the budget is not
  shared out among the modes `auto` would try);
- dashboard: the homepage in chromium: first page once the model exists, and a slider move.

Between sizes it reports the growth exponent of each step's time and memory (time ∝ users^a).
Writes benchmarks/out/scale.json (docs/RESULTS.md is generated from it by benchmarks/report.py).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from meta import command_line, run_finished, run_started, utc_now  # noqa: E402

from engine.core.jsonio import write_json  # noqa: E402

OUT = ROOT / "benchmarks" / "out"
BIN = Path(sys.executable).parent
SIZES = {"10k": (10_000, 10_000), "100k": (100_000, 30_000), "1m": (1_000_000, 100_000)}  # users, items
SCORE_USERS = 20_000  # `homepage score --limit`: users per scoring run (throughput; a full 1M run is hours on 2 cores)
RAY_TRAIN_MAX_USERS = 100_000  # sizes up to this also train with 2 Ray workers (throughput)


def log(msg: str) -> None:
    print(msg, flush=True)


def timed(name: str, argv: list[str], logfile: Path, env: dict | None = None) -> dict:
    """Run one step as its own process under /usr/bin/time: seconds, peak memory (MB), exit code."""
    logfile.parent.mkdir(parents=True, exist_ok=True)
    cmd = ["/usr/bin/time", "-f", "TIME %e %M", *argv]
    start = time.perf_counter()
    with open(logfile, "w") as fh:
        proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}, cwd=ROOT)
    seconds = time.perf_counter() - start
    text = logfile.read_text(errors="replace")
    found = re.findall(r"TIME ([\d.]+) (\d+)", text)
    peak = int(found[-1][1]) / 1024 if found else None
    row = {"step": name, "seconds": round(seconds, 1), "peak_mb": round(peak) if peak else None, "rc": proc.returncode,
           "command": " ".join(a if a.startswith("-") or "/" not in a else Path(a).name for a in argv[1:] if a)}
    tail = [line for line in text.splitlines() if line.strip() and not line.startswith("TIME ")][-3:]
    if proc.returncode:
        row["error"] = " | ".join(tail)[-400:]
    log(f"  {name}: {row['seconds']:.1f} s, peak {row['peak_mb']} MB, rc {proc.returncode}" + (f" ({row['error']})" if proc.returncode else ""))
    return row


def homepage(*args: str) -> list[str]:
    return [str(BIN / "homepage"), *args]


def python(code: str) -> list[str]:
    return [str(BIN / "python"), "-c", code]


def run_size(name: str, users: int, items: int, train_minutes: float, dashboard: bool, ray: bool, reuse: dict | None = None,
             skip: frozenset = frozenset(), reuse_steps: frozenset = frozenset()) -> dict:
    data = OUT / "data" / f"scale_{name}"
    logs = OUT / "logs" / f"scale_{name}"
    model = data / "models" / "scale"
    steps = []
    log(f"[{name}] {users:,} users, {items:,} items -> {data}")
    if reuse is not None:  # the store exists: its generation time from the log of the run that made it
        steps.append({**reuse, "reused": True})
        log(f"  demo: reused ({reuse['seconds']:.1f} s, peak {reuse['peak_mb']} MB when generated)")
    else:
        steps.append(timed("demo", homepage("demo", "--out", str(data), "--users", str(users), "--items", str(items)), logs / "demo.log"))
    if steps[-1]["rc"]:
        return {"size": name, "users": users, "items": items, "steps": steps}
    reused = {step: _earlier(name, step) for step in reuse_steps}

    def measure(step: str, argv: list[str]) -> dict:
        """The step's row: from the earlier run that made its output when it is reused, else run now (log: ``LOGS[step]``)."""
        return reused[step] if reused.get(step) else timed(step, argv, logs / LOGS[step])

    load = python(f"from engine.data.tables import load_dataset; d = load_dataset({str(data)!r}); "
                  "print(d.n_users, d.n_items, len(d.interactions))")
    if not reused.get("load"):
        for cached in (data / ".cache").glob("interactions-*.feather"):
            cached.unlink()  # load measures reading and checking the files; load_cached, the cache it leaves
    steps.append(measure("load", load))
    steps.append(measure("load_cached", load))
    if reused.get("baselines") or "baselines" not in skip:
        steps.append(measure("baselines", homepage("baselines", str(data), "--no-ild", "--json", str(logs / "baselines.json"))))
    manifest = {}
    if reused.get("train") and (model / "manifest.json").is_file():
        steps.append(reused["train"])
        manifest = json.loads((model / "manifest.json").read_text())
    elif "train" not in skip:
        steps.append(timed("train", homepage("train", str(data), "--max-minutes", str(train_minutes), "--out", str(model)), logs / "train.log"))
        manifest = json.loads((model / "manifest.json").read_text()) if (model / "manifest.json").is_file() else {}
    extra = {"events_per_second_1": manifest.get("training", {}).get("events_per_second"), "mode_1": _mode(model),
             "ndcg@10": manifest.get("metrics", {}).get("ndcg@10"), "final_model": manifest.get("final_model")}
    if manifest and "segments" not in skip:
        seg = logs / "segments.json"
        steps.append(measure("segments", homepage("segments", str(data), "--model", str(model), "--json", str(seg))))
        segment = _first_segment(seg)
        steps.append(measure("page", homepage("layout", str(data), "--model", str(model), "--segment", segment, "--diversity", "0.3",
                                              "--json", str(logs / "layout.json"))))
        a, b = logs / "a.json", logs / "b.json"
        a.write_text(json.dumps({"diversity": 0.0}))
        b.write_text(json.dumps({"diversity": 0.5, "long_tail": 0.3}))
        steps.append(measure("compare", homepage("compare", str(data), "--model", str(model), "--segment", segment, "--a", str(a), "--b", str(b),
                                                 "--json", str(logs / "compare.json"))))
    if manifest:
        tables = {}
        for workers in ([0, 1, 2] if ray else [0]):
            out = logs / f"scores_{workers}.parquet"
            args = ["score", str(data), "--model", str(model), "--k", "100", "--out", str(out), "--limit", str(SCORE_USERS)]
            if workers:
                args += ["--workers", str(workers)]
            step = f"score_{workers or 'single'}"
            steps.append(measure(step, homepage(*args)))
            tables[workers] = out
        extra["score_same_topk"], extra["score_same_share"] = _same_tables(tables)
        if extra["score_same_share"] is None and all(s.get("reused") for s in steps if s["step"].startswith("score_")):
            extra.update({k: _last_run(name).get(k) for k in ("score_same_topk", "score_same_share")})  # reused runs: their tables' verdict
        if ray and users <= RAY_TRAIN_MAX_USERS:
            # Throughput, one process against 2 Ray workers: the same mode, budget and data.
            short = ["--max-minutes", str(min(train_minutes, 5)), "--mode", "frozen", "--no-stage2"]
            for step, workers, folder, key in (("train_one", [], "model_one", "one"), ("train_ray2", ["--workers", "2"], "model_ray", "ray2")):
                out = logs / folder
                steps.append(measure(step, homepage("train", str(data), *workers, *short, "--out", str(out))))
                if (out / "manifest.json").is_file():
                    extra[f"events_per_second_{key}"] = json.loads((out / "manifest.json").read_text()).get("training", {}).get("events_per_second")
                    extra[f"mode_{key}"] = _mode(out)
        if dashboard:
            extra["dashboard"] = _dashboard(data, model)
    return {"size": name, "users": users, "items": items, "score_users": min(users, SCORE_USERS), "steps": steps,
            "skipped": sorted(skip), **extra}


def _mode(model_dir: Path) -> str | None:
    """The encoder mode a saved model was trained in (its config.json), or None."""
    path = model_dir / "config.json"
    return json.loads(path.read_text()).get("mode") if path.is_file() else None


LOGS = {"demo": "demo.log", "load": "load.log", "load_cached": "load_cached.log", "baselines": "baselines.log", "train": "train.log", "segments": "segments.log",
        "page": "layout.log", "compare": "compare.log", "score_single": "score_0.log",
        "score_1": "score_1.log", "score_2": "score_2.log", "train_one": "train_one.log", "train_ray2": "train_ray.log"}


def _earlier(name: str, step: str) -> dict | None:
    """A step's row from the log of the run that made its output (its /usr/bin/time line); without
    a log, the row the last scale.json holds for the size (itself marked reused); else None."""
    logfile = OUT / "logs" / f"scale_{name}" / LOGS[step]
    found = re.findall(r"TIME ([\d.]+) (\d+)", logfile.read_text(errors="replace")) if logfile.is_file() else []
    if not found:
        rows = [s for s in _last_run(name).get("steps", []) if s.get("step") == step and not s.get("rc")]
        return {**rows[0], "reused": True} if rows else None
    return {"step": step, "seconds": float(found[-1][0]), "peak_mb": round(int(found[-1][1]) / 1024), "rc": 0,
            "command": f"{step} (an earlier run's output)", "reused": True}


def _last_run(name: str) -> dict:
    """The size's run in the last scale.json ({} when there is none): for steps whose outputs are gone."""
    path = OUT / "scale.json"
    runs = json.loads(path.read_text()).get("runs", []) if path.is_file() else []
    return next((r for r in runs if r.get("size") == name), {})


def _reused_demo(name: str) -> dict | None:
    """The demo step of a store generated earlier (from its demo.log), or None when there is none."""
    data = OUT / "data" / f"scale_{name}"
    if not (data / "items.parquet").is_file() and not (data / "items.csv").is_file():
        return None
    return _earlier(name, "demo")


def _first_segment(path: Path) -> str:
    try:
        segments = json.loads(path.read_text())["segments"]
        learned = [s for s in segments if str(s.get("id", "")).startswith(("kmeans", "gmm"))]
        return (learned or segments)[0]["id"]
    except (OSError, ValueError, KeyError, IndexError):
        return "kmeans-1"


def _same_tables(tables: dict[int, Path]) -> tuple[bool | None, float | None]:
    """Whether every run wrote the same (user, rank, item) rows, and the share of rows all agree on."""
    import pandas as pd

    frames = {w: pd.read_parquet(p) for w, p in tables.items() if p.is_file()}
    if len(frames) < 2:
        return None, None
    keys = ["user_id", "rank", "item_id"]
    sorted_frames = [f.sort_values(["user_id", "rank"]).reset_index(drop=True)[keys] for f in frames.values()]
    base = sorted_frames[0]
    if any(len(f) != len(base) or not f[["user_id", "rank"]].equals(base[["user_id", "rank"]]) for f in sorted_frames):
        return False, None
    agree = np.logical_and.reduce([f["item_id"].to_numpy() == base["item_id"].to_numpy() for f in sorted_frames])
    return bool(agree.all()), round(float(agree.mean()), 6)


def _dashboard(data: Path, model: Path) -> dict:
    """First page (once the model exists) and slider redraws, as benchmarks/dashboard.py measures them."""
    import importlib.util

    # benchmarks/dashboard.py, by path: the app's dashboard/ package has the same name.
    spec = importlib.util.spec_from_file_location("_benchmark_dashboard", ROOT / "benchmarks" / "dashboard.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    measure = module.measure

    try:
        return measure(data, 5, {"HOMEPAGE_MODELS": str(model)})
    except Exception as exc:  # a page that never came is a result too
        return {"error": f"{type(exc).__name__}: {exc}"[:300]}


def growth(runs: list[dict]) -> list[dict]:
    """Per step and consecutive pair of sizes: the exponents a in time ∝ users^a and memory ∝ users^a."""
    out = []
    for small, big in zip(runs, runs[1:]):
        ratio = math.log(big["users"] / small["users"])
        by_step = {s["step"]: s for s in small["steps"] if not s["rc"]}
        for step in big["steps"]:
            before = by_step.get(step["step"])
            if step["rc"] or before is None or not before["seconds"]:
                continue
            row = {"step": step["step"], "from": small["size"], "to": big["size"],
                   "time_exponent": round(math.log(max(step["seconds"], 0.1) / max(before["seconds"], 0.1)) / ratio, 2)}
            if step.get("peak_mb") and before.get("peak_mb"):
                row["memory_exponent"] = round(math.log(step["peak_mb"] / before["peak_mb"]) / ratio, 2)
            out.append(row)
    return out


def markdown_table(result: dict) -> str:
    """Steps by size: wall time and peak memory, with the growth exponents between sizes; then
    scoring and training throughput, and the dashboard's first page and slider redraw."""
    runs = result.get("runs", [])
    sizes = [r["size"] for r in runs]
    steps = list(dict.fromkeys(s["step"] for r in runs for s in r["steps"]))
    grow = {(g["step"], g["to"]): g for g in result.get("growth", [])}
    head = ["step", *[f"{r['size']} ({r['users']:,} users, {r['items']:,} items)" for r in runs],
            *[f"exponent {a}→{b} (time, memory)" for a, b in zip(sizes, sizes[1:])]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for step in steps:
        cells = [step]
        for r in runs:
            found = next((s for s in r["steps"] if s["step"] == step), None)
            if found is None:
                cells.append("–")
            elif found["rc"]:
                cells.append(f"failed ({found.get('error', '')[:60]})")
            else:
                cells.append(f"{found['seconds']:,.0f} s, {found['peak_mb']:,} MB" + (" †" if found.get("reused") else ""))
        for b in sizes[1:]:
            g = grow.get((step, b))
            cells.append(f"{g['time_exponent']:.2f}, {g.get('memory_exponent', float('nan')):.2f}" if g else "–")
        lines.append("| " + " | ".join(cells) + " |")
    notes = []
    if any(s.get("reused") for r in runs for s in r["steps"]):
        notes.append("- †: measured by an earlier run of the benchmark, the one that made the step's output (its time and memory "
                     "from that run's log, or from the scale.json it wrote when the log is gone); the command below re-ran the other steps.")
    for r in runs:
        if r.get("command"):
            notes.append(f"- {r['size']}: `{r['command']}`, {r['started'][:16].replace('T', ' ')} to {r['finished'][11:16]} UTC.")
        if r.get("skipped"):
            notes.append(f"- {r['size']}: left out: {', '.join(r['skipped'])}" + (" (with train, every step that needs a model)" if "train" in r["skipped"] else "") + ".")
        score = {s["step"]: s for s in r["steps"] if s["step"].startswith("score_") and not s["rc"]}
        if score:
            n = min(r["users"], r.get("score_users", r["users"]))
            command = f"homepage score --limit {n:,}" if "score_users" in r else "homepage score"
            label = {"score_single": "one process", "score_1": "1 Ray worker", "score_2": "2 Ray workers"}
            rates = ", ".join(f"{label.get(name, name)} {n / s['seconds']:,.0f} users/s" for name, s in score.items())
            same = "" if r.get("score_same_topk") is None else f"; the same top-k in every run: {r['score_same_topk']}"
            if r.get("score_same_share") is not None and not r["score_same_topk"]:
                same += f" ({r['score_same_share']:.4%} of (user, rank) rows alike)"
            notes.append(f"- {r['size']}: `{command}` (load the data and the model, rank the top 100 of {n:,} users, write): {rates}{same}.")
        speeds = [f"{r[key]:,.0f} events/s {label}" + (f" ({r[mode]} encoder)" if r.get(mode) else "")
                  for key, label, mode in (("events_per_second_1", "in the train step", "mode_1"), ("events_per_second_one", "in one process", "mode_one"),
                                           ("events_per_second_ray2", "with 2 Ray workers", "mode_ray2"))
                  if r.get(key)]
        if speeds or r.get("ndcg@10") is not None:
            notes.append(f"- {r['size']}: training throughput {', '.join(speeds) or 'not recorded'}; test NDCG@10 of the page's model "
                         f"({r.get('final_model')}) {r.get('ndcg@10') or 0:.4f}.")
        dash = r.get("dashboard") or {}
        if dash.get("first_load_s") is not None:
            notes.append(f"- {r['size']}: the dashboard's first page {dash['first_load_s']:.1f} s once the model exists; "
                         f"slider redraw median {dash['median_ms']:.0f} ms.")
        elif dash.get("error"):
            notes.append(f"- {r['size']}: the dashboard did not show a page: {dash['error']}")
    return "\n".join(lines + ([""] + notes if notes else []))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10k,100k,1m")
    parser.add_argument("--train-minutes", type=float, default=10.0)
    parser.add_argument("--no-dashboard", action="store_true")
    parser.add_argument("--no-ray", action="store_true")
    parser.add_argument("--skip", default="", help="comma-separated steps left out (baselines; train, and with it every step that needs a model; segments: segments, page and compare)")
    parser.add_argument("--reuse", default="", help="comma-separated steps (load, load_cached, baselines, train, segments, page, compare, score_*, train_one, train_ray2) whose output an earlier run left: "
                        "their rows come from that run's logs")
    parser.add_argument("--reuse-data", action="store_true", help="keep a store already generated by an earlier run (its demo timing from demo.log)")
    args = parser.parse_args()
    started = run_started("scale")
    runs = []
    path = OUT / "scale.json"
    for name in args.sizes.split(","):
        users, items = SIZES[name]
        begun = utc_now()
        reuse = _reused_demo(name) if args.reuse_data else None
        result = {**run_size(name, users, items, args.train_minutes, not args.no_dashboard, not args.no_ray, reuse,
                             frozenset(filter(None, args.skip.split(","))), frozenset(filter(None, args.reuse.split(",")))),
                  "command": command_line(), "started": begun, "finished": utc_now()}
        # Sizes not run here keep their last result (read now: another run may have written one meanwhile).
        previous = {r["size"]: r for r in json.loads(path.read_text()).get("runs", [])} if path.is_file() else {}
        previous[name] = result
        runs = [previous[n] for n in SIZES if n in previous]
        write_json({**run_finished(started), "runs": runs, "growth": growth(runs)}, path)
    log(f"wrote {path}")
    for r in runs:
        log(f"{r['size']}: " + ", ".join(f"{s['step']} {s['seconds']:.0f}s/{s['peak_mb']}MB" for s in r["steps"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
