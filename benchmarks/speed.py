"""Benchmark of serving speed: scoring every item for 1,000 users with the model the page uses, stage
2 ranking their candidates included.

Usage: .venv/bin/python benchmarks/speed.py [--runs hm_week,hm_week_kept,demo,movielens,beauty] [--users 1000]

For each model that benchmarks/ranker.py saved (benchmarks/out/models/<run>) it loads the final
model as the app does (``engine.models.final.load_final``), attaches the test stage's histories,
and times ``score`` for ``--users`` test users (best of 3 after one warm-up call), with stage 1
alone beside it. Writes benchmarks/out/speed.json. The bar is 1 s for 1,000 users.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from baselines import prepare  # noqa: E402
from meta import run_finished, run_started  # noqa: E402
from ranker import inference_speed  # noqa: E402

from engine.core.jsonio import write_json  # noqa: E402
from engine.data.splits import make_split  # noqa: E402
from engine.data.tables import load_dataset  # noqa: E402
from engine.models.final import load_final  # noqa: E402

OUT = ROOT / "benchmarks" / "out"


def measure(run: str, n_users: int) -> dict | None:
    name = run.removesuffix("_kept")
    model_dir = OUT / "models" / run
    data_dir = prepare(name, OUT / "data", reimport=False)
    if not (model_dir / "manifest.json").is_file() or data_dir is None:
        print(f"[{run}] SKIPPED: no model at {model_dir} (run benchmarks/ranker.py first) or no data", flush=True)
        return None
    data = load_dataset(data_dir)
    final, stage1, manifest = load_final(model_dir, data)
    split = make_split(data, manifest.get("protocol", "loo"), manifest.get("test_days") or 28)
    final.fit(split.fit_data("test"))
    if final is not stage1:
        stage1.fit(split.fit_data("test"))
    users = split.targets("test")[0]
    out = {"run": run, "final_model": manifest.get("final_model", "finetuned"), "n_items": data.n_items, "users": n_users,
           "seconds": round(inference_speed(final, users, n_users), 3),
           "stage1_seconds": round(inference_speed(stage1, users, n_users), 3)}
    print(f"[{run}] {out['final_model']}: {out['seconds'] * 1000:.0f} ms for {n_users:,} users "
          f"(stage 1 alone {out['stage1_seconds'] * 1000:.0f} ms, {data.n_items:,} items)", flush=True)
    return out


def markdown_table(runs: list[dict]) -> str:
    lines = ["| run | model | items | users | scoring and ranking | stage 1 alone |", "|---|---|---|---|---|---|"]
    for r in runs:
        lines.append(f"| {r['run']} | {r['final_model']} | {r['n_items']:,} | {r['users']:,} | {r['seconds'] * 1000:.0f} ms | {r['stage1_seconds'] * 1000:.0f} ms |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", default="hm_week,hm_week_kept,demo,movielens,beauty")
    parser.add_argument("--users", type=int, default=1000)
    args = parser.parse_args()
    started = run_started("speed")
    runs = [r for r in (measure(run.strip(), args.users) for run in args.runs.split(",") if run.strip()) if r]
    write_json({**run_finished(started), "runs": runs}, OUT / "speed.json")
    print(markdown_table(runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
