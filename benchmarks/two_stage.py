"""Benchmark of the two-stage ranker: candidates from the fine-tuned model, re-buy, EASE and recent
popularity, re-ranked by a LambdaRank model trained on the validation window.

Usage: .venv/bin/python benchmarks/two_stage.py [--datasets hm_week,demo] [--keep-history]

For each data set it loads the model that benchmarks/ranker.py saved (benchmarks/out/models/<name>),
chooses EASE's lambda on validation as the baselines do, trains stage 2 on the validation window
(sources fitted on training data only), refits the sources on train + validation and evaluates
``two_stage`` beside ``finetuned`` and every baseline on test, with the paired difference against
the best baseline. Writes benchmarks/out/two_stage_<name>[_kept].json.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from baselines import prepare  # noqa: E402
from meta import run_finished, run_started  # noqa: E402
from ranker import PAIRED_KEYS, RUNS  # noqa: E402

from engine.core.jsonio import write_json  # noqa: E402
from engine.data.splits import make_split  # noqa: E402
from engine.data.tables import load_dataset  # noqa: E402
from engine.evaluation.heldout import EvalContext, evaluate_on_split, markdown_table, report, tune_and_fit  # noqa: E402
from engine.evaluation.metrics import paired_bootstrap_ci  # noqa: E402
from engine.models.baselines import BASELINES, EASE, RecentPopularity, Rebuy  # noqa: E402
from engine.models.finetuned import FineTunedRecommender  # noqa: E402
from engine.models.text_encoder import cached_item_vectors  # noqa: E402
from engine.models.two_stage import TwoStage, TwoStageConfig  # noqa: E402

OUT = ROOT / "benchmarks" / "out"


def log(msg: str) -> None:
    print(msg, flush=True)


def run(name: str, keep_history: bool) -> dict | None:
    path = prepare(name, OUT / "data", reimport=False)
    model_dir = OUT / "models" / name
    if path is None or not (model_dir / "manifest.json").is_file():
        log(f"[{name}] SKIPPED: no data or no model at {model_dir} (run benchmarks/ranker.py first)")
        return None
    started = run_started("two_stage")
    data = load_dataset(path)
    protocol, days = RUNS[name]
    split = make_split(data, protocol, days or 28)
    finetuned, _ = FineTunedRecommender.from_pretrained(model_dir, data)
    mask = not keep_history
    start = time.perf_counter()
    _, ease_info = tune_and_fit(BASELINES["ease"], split, EvalContext.build(split, "valid"), mask)
    lam = ease_info["params"]["lam"]
    log(f"[{name}] EASE lambda {lam} chosen on validation ({time.perf_counter() - start:.0f} s)")
    text = cached_item_vectors(data.root, data.items) if data.has_text() else None
    sources = {"finetuned": finetuned, "rebuy": Rebuy(), "ease": EASE(lam), "recent_popularity": RecentPopularity()}
    stage2 = TwoStage(sources, data.items, text, TwoStageConfig(keep_history=keep_history))
    start = time.perf_counter()
    stage2.train(split)
    train_seconds = round(time.perf_counter() - start, 1)
    log(f"[{name}] stage 2 trained on {stage2.training_pairs_:,} pairs in {train_seconds} s "
        f"({stage2.ranker_.best_iteration_ or stage2.ranker_.n_estimators} trees)")
    names = ["two_stage", "finetuned", *BASELINES]
    models, per_user, ctx = evaluate_on_split(split, names, trained={"two_stage": stage2, "finetuned": finetuned},
                                              item_vectors=text, mask_history=mask)
    models["two_stage"]["fit_seconds"] = train_seconds
    best = max(BASELINES, key=lambda n: models[n]["ndcg@10"])
    paired = {key: paired_bootstrap_ci(per_user[best][key], per_user["two_stage"][key]) for key in PAIRED_KEYS}
    out = report(data.name, split, ctx, models, mask)
    out["paired_vs_best_baseline"] = {"baseline": best, **{k: {"diff": d, "ci95": [lo, hi]} for k, (d, lo, hi) in paired.items()}}
    gain = dict(zip(stage2.feature_names, stage2.ranker_.booster_.feature_importance("gain").tolist()))
    out["stage2"] = {"training_pairs": stage2.training_pairs_, "seconds": train_seconds, "ease_lambda": lam,
                     "feature_gain": dict(sorted(gain.items(), key=lambda kv: -kv[1]))}
    out["run"] = f"{name}{'_kept' if keep_history else ''}"
    out.update(run_finished(started))
    write_json(out, OUT / f"two_stage_{out['run']}.json")
    log(markdown_table(models, ("ndcg@10", "hr@10", "recall@12", "map@12", "coverage@10", "fit_seconds")))
    log(f"two_stage - {best}: " + "; ".join(f"{k} {d:+.4f} [{lo:+.4f}, {hi:+.4f}]" for k, (d, lo, hi) in paired.items()))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default="hm_week")
    parser.add_argument("--keep-history", action="store_true", help="a user's own past items may be recommended (repeat purchases)")
    args = parser.parse_args()
    for name in [d.strip() for d in args.datasets.split(",") if d.strip()]:
        run(name, args.keep_history)
    return 0


if __name__ == "__main__":
    sys.exit(main())
