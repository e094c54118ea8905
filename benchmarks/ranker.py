"""Benchmark of the fine-tuned ranker: finetuned vs zero-shot vs every baseline, plus inference speed.

Usage: .venv/bin/python benchmarks/ranker.py [--datasets demo,movielens,hm,hm_week,beauty] [--minutes 15] [--mode top|full|frozen] [--keep-history] [--set FIELD=VALUE ...]

For each data set it trains a model as `homepage train` does (`train_and_save`: the fine-tuned
ranker within a time budget, then stage 2, kept where it wins on held-out validation users),
evaluates `finetuned`, `two_stage` (when kept), zero-shot and the baselines on the same test users,
and writes
benchmarks/out/ranker.md and one JSON per run. Beauty runs id-only (no item text).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from baselines import prepare  # noqa: E402

from engine.models.baselines import BASELINES  # noqa: E402
from engine.data.tables import load_dataset  # noqa: E402
from engine.evaluation.heldout import evaluate_on_split, markdown_table, report  # noqa: E402
from engine.core.jsonio import write_json  # noqa: E402
from engine.evaluation.metrics import paired_bootstrap_ci  # noqa: E402
from engine.data.splits import make_split  # noqa: E402
from engine.models.final import load_final  # noqa: E402
from engine.models.text_encoder import cached_item_vectors  # noqa: E402
from engine.training.job import make_config, mode_candidates, train_and_save  # noqa: E402
from meta import run_finished, run_started  # noqa: E402

RUNS = {  # name -> (protocol, test_days)
    "demo": ("loo", None),
    "movielens": ("loo", None),
    "hm": ("temporal", 28),
    "hm_week": ("temporal", 2),
    "beauty": ("loo", None),
}
KEYS = ("ndcg@10", "hr@10", "recall@12", "map@12", "coverage@10", "tail_share@10", "ild@10", "fit_seconds")
PAIRED_KEYS = ("ndcg@10", "hr@10", "recall@12", "map@12")  # per-user arrays evaluate_on_split returns
PUBLISHED_BEAUTY = {"SASRec (as reported by S3-Rec/ICLRec)": (0.032, 0.061), "ICLRec": (0.0403, 0.0744), "eSASRec (2025)": (0.0523, 0.0928)}


def log(msg: str) -> None:
    print(msg, flush=True)


def inference_speed(rec, users: np.ndarray, n: int = 1000) -> float:
    """Seconds to score every item for n users, stage 2 ranking their candidates included (best of 3
    after a warm-up call, whose first allocations are not what serving costs)."""
    users = np.resize(users, n)
    rec.score(users)
    times = []
    for _ in range(3):
        start = time.perf_counter()
        rec.score(users)
        times.append(time.perf_counter() - start)
    return min(times)


def parse_overrides(pairs: list[str]) -> dict:
    """``["id_dropout=0.5", "n_negatives=0"]`` -> typed RankerConfig overrides."""
    from dataclasses import fields

    from engine.models.two_tower import RankerConfig

    types = {f.name: type(f.default) for f in fields(RankerConfig)}
    out = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        if key not in types or not value:
            raise SystemExit(f"--set {pair!r}: expected FIELD=VALUE with a RankerConfig field ({', '.join(types)})")
        kind = types[key]
        out[key] = value.lower() in ("1", "true", "yes") if kind is bool else (value if kind in (str, type(None)) else kind(value))
    return out


def run(name: str, minutes: float, out_dir: Path, data_root: Path, mode: str = "auto", overrides: dict | None = None,
        keep_history: bool = False) -> tuple[str, dict] | None:
    path = prepare(name, data_root, reimport=False)
    if path is None:
        return None
    started = run_started("ranker")
    data = load_dataset(path)
    protocol, days = RUNS[name]
    mask = not keep_history
    run_name = f"{name}{'_kept' if keep_history else ''}"
    split = make_split(data, protocol, days or 28)
    # The same config and the same training call as `homepage train` (stage 2 included).
    config = make_config(data, mode=mode, protocol=protocol, test_days=days or 28, keep_history=keep_history)
    config = dataclasses.replace(config, **(overrides or {}))
    log(f"[{run_name}] training ({protocol}, budget {minutes} min, text={'yes' if config.use_text else 'no: id part only'})")
    model_dir, manifest, result = train_and_save(
        data, out_dir / "models" / run_name, config, protocol=protocol, test_days=days or 28, max_minutes=minutes, mask_history=mask,
        modes=mode_candidates(config, mode),
        progress=lambda e: log(f"  {'refit ' if e.get('refit') else ''}epoch {e['epoch']:3d} step {e['step']:5d} loss {e['loss']:.3f} valid ndcg@10 {e['valid_ndcg@10']:.4f} ({e['seconds']:.0f}s)"),
        log=lambda line: log(f"  {line}"),
    )
    log(f"[{run_name}] trained {result.seconds:.0f}s, best epoch {result.best_epoch}, stopped by {result.stopped_by}; refit {result.refit}; "
        f"the page uses {manifest['final_model']}")
    text_vectors = cached_item_vectors(data.root, data.items) if data.has_text() else None
    final, rec, manifest = load_final(model_dir, data)
    trained = {"finetuned": rec, **({"two_stage": final} if final is not rec else {})}
    names = [*trained, *(["zero_shot"] if text_vectors is not None else []), *BASELINES]
    # The same evaluation as `homepage evaluate`: every model on the same test users.
    models, per_user, ctx = evaluate_on_split(split, names, trained=trained, text_vectors=text_vectors, item_vectors=text_vectors, mask_history=mask)
    train_seconds = (manifest.get("mode_choice") or {}).get("total_seconds", result.seconds)  # every encoder mode tried
    models["finetuned"]["fit_seconds"] = train_seconds
    if "two_stage" in models:
        models["two_stage"]["fit_seconds"] = round(train_seconds + manifest["stage2"]["seconds"], 1)
    speed = inference_speed(final, ctx.users)
    out = report(data.name, split, ctx, models, mask)
    out["training"] = {"mode": manifest.get("mode_choice", {}).get("chosen", config.mode), "mode_choice": manifest.get("mode_choice"), "overrides": overrides or {}, "seconds": train_seconds, "epochs": result.epochs, "best_epoch": result.best_epoch, "stopped_by": result.stopped_by, "refit": result.refit, "start": "zero_shot" if config.user_residual else "random", "history": result.history}
    out["stage2"], out["final_model"] = manifest["stage2"], manifest["final_model"]
    out["inference_seconds_1000_users"] = speed
    best_base = max(BASELINES, key=lambda n: models[n]["ndcg@10"])
    # Paired bootstrap over the same test users: the page's model minus the best baseline, per metric.
    paired = {key: paired_bootstrap_ci(per_user[best_base][key], per_user[out["final_model"]][key]) for key in PAIRED_KEYS}
    out["paired_vs_best_baseline"] = {"baseline": best_base, **{k: {"diff": d, "ci95": [lo, hi]} for k, (d, lo, hi) in paired.items()}}
    out["run"] = run_name
    out.update(run_finished(started))
    write_json(out, out_dir / f"ranker_{run_name}.json")
    text = section(out)
    log(text)
    return text, out


def section(out: dict) -> str:
    """The markdown section of one run's result (the JSON ``ranker_<name>.json`` that :func:`run` writes)."""
    name, protocol, days = out["run"], out["protocol"], out["split"].get("test_days")
    models, training, speed = out["models"], out["training"], out["inference_seconds_1000_users"]
    overrides = training.get("overrides") or {}
    pairs = out["paired_vs_best_baseline"]
    best_base = pairs["baseline"]
    paired = {k: (v["diff"], *v["ci95"]) for k, v in pairs.items() if k != "baseline"}
    final_name = out.get("final_model", "finetuned")
    ft = models[final_name]
    history = "masked history" if out.get("masked_history", True) else "history kept"
    lines = [f"### {name} ({protocol}{f', last {days} days' if days else ''}; {out['n_users']:,} test users, {out['n_items']:,} items, {history}; encoder {training['mode']}{', zero-shot start' if training.get('start') == 'zero_shot' else ''}{', refit on train + validation' if str(training.get('refit', '')).startswith('done') else ''}{''.join(f', {k}={v}' for k, v in overrides.items())})", ""]
    lines.append(markdown_table(models, KEYS))
    lines.append("")
    margin = ft["ndcg@10"] - models[best_base]["ndcg@10"]
    stage2 = out.get("stage2") or {}
    if "valid_ndcg@10" in stage2:
        v = stage2["valid_ndcg@10"]
        lines.append(f"Stage 2 ({', '.join(stage2['sources'])}; {stage2['trees']} trees, trained in {stage2['seconds']:.0f} s): validation NDCG@10 "
                     f"{v['two_stage']:.4f} against stage 1's {v['finetuned']:.4f} on {stage2['judged_users']:,} held-out validation users, "
                     f"so the page uses **{final_name}**.")
        lines.append("")
    elif stage2:
        lines.append(f"Stage 2 not trained: {stage2.get('reason')}.")
        lines.append("")
    lines.append(
        f"{final_name} vs best baseline ({best_base}) NDCG@10: {ft['ndcg@10']:.4f} vs {models[best_base]['ndcg@10']:.4f} "
        f"({margin:+.4f}, {margin / max(models[best_base]['ndcg@10'], 1e-9):+.0%}); "
        + (f"vs zero_shot {models['zero_shot']['ndcg@10']:.4f}; " if "zero_shot" in models else "zero_shot: n/a (no text); ")
        + f"training {training['seconds'] / 60:.1f} min ({training.get('epochs', '?')} epochs, best epoch {training.get('best_epoch', '?')}, "
        f"stopped by {training.get('stopped_by', '?')}) on this machine; scoring all items for 1,000 users{' and ranking their candidates in stage 2' if final_name == 'two_stage' else ''} {speed * 1000:.0f} ms."
    )
    lines.append("")
    lines.append(f"Paired difference {final_name} - {best_base} over the same {out['n_users']:,} users (95% bootstrap interval; "
                 "an interval above 0 is a significant win): "
                 + "; ".join(f"{k} {d:+.4f} [{lo:+.4f}, {hi:+.4f}]" for k, (d, lo, hi) in paired.items()) + ".")
    if name == "beauty":
        lines.append("")
        lines.append("| Beauty (loo, full ranking, masked) | NDCG@10 | HR@10 |\n|---|---|---|")
        lines.append(f"| **ours: {final_name} (id-only transformer{' + stage 2' if final_name == 'two_stage' else ''})** | {ft['ndcg@10']:.4f} | {ft['hr@10']:.4f} |")
        for pub, (n, h) in PUBLISHED_BEAUTY.items():
            lines.append(f"| {pub} (published) | {n:.4f} | {h:.4f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--datasets", default="demo,movielens,hm,hm_week,beauty")
    parser.add_argument("--minutes", type=float, default=15.0, help="training budget per data set")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out")
    parser.add_argument("--mode", choices=("auto", "top", "full", "frozen"), default="auto",
                        help="encoder fine-tuning mode, as homepage train's --mode (id-only data always trains frozen)")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="override a RankerConfig field, e.g. --set id_dropout=0.5 (repeatable)")
    parser.add_argument("--keep-history", action="store_true", help="a user's own past items may be recommended (runs named <data>_kept)")
    args = parser.parse_args()
    overrides = parse_overrides(args.set)
    suffix = "_kept" if args.keep_history else ""
    for name in args.datasets.split(","):
        res = run(name, args.minutes, args.out, args.out / "data", args.mode, overrides, args.keep_history)
        if res:
            (args.out / f"ranker_{name}{suffix}.md").write_text(res[0])
    # ranker.md gathers every data set's latest section, also those of earlier runs.
    names = [f"{n}{kept}" for n in RUNS for kept in ("", "_kept")]
    sections = [(args.out / f"ranker_{n}.md").read_text() for n in names if (args.out / f"ranker_{n}.md").exists()]
    (args.out / "ranker.md").write_text("## Fine-tuned ranker\n\n" + "\n".join(sections))
    log(f"wrote {args.out / 'ranker.md'}")


if __name__ == "__main__":
    main()
