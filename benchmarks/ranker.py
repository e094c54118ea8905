"""Benchmark of the fine-tuned ranker: finetuned vs zero-shot vs every baseline, plus inference speed.

Usage: .venv/bin/python benchmarks/ranker.py [--datasets demo,movielens,hm,hm_week,beauty] [--minutes 15] [--mode top|full|frozen] [--set FIELD=VALUE ...]

For each data set it trains a model (`train_ranker`, encoder mode `top` unless --mode says otherwise, within a time budget),
evaluates it on the test split beside zero-shot and the baselines, and writes
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
from engine.models.finetuned import FineTunedRecommender  # noqa: E402
from engine.models.text_encoder import cached_item_vectors  # noqa: E402
from engine.training.loop import train_ranker  # noqa: E402
from engine.training.job import make_config  # noqa: E402
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


def inference_speed(rec: FineTunedRecommender, users: np.ndarray, n: int = 1000) -> float:
    """Seconds to score every item for n users (best of 3)."""
    users = np.resize(users, n)
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


def run(name: str, minutes: float, out_dir: Path, data_root: Path, mode: str = "top", overrides: dict | None = None) -> tuple[str, dict] | None:
    path = prepare(name, data_root, reimport=False)
    if path is None:
        return None
    started = run_started("ranker")
    data = load_dataset(path)
    protocol, days = RUNS[name]
    split = make_split(data, protocol, days or 28)
    config = make_config(data, mode=mode, protocol=protocol, test_days=days or 28)  # the same config `homepage train --mode MODE` uses
    config = dataclasses.replace(config, **(overrides or {}))
    log(f"[{name}] training ({protocol}, budget {minutes} min, text={'yes' if config.use_text else 'no: id part only'})")
    model, tower, result = train_ranker(
        data, split, config, max_minutes=minutes,
        progress=lambda e: log(f"  {'refit ' if e.get('refit') else ''}epoch {e['epoch']:3d} step {e['step']:5d} loss {e['loss']:.3f} valid ndcg@10 {e['valid_ndcg@10']:.4f} ({e['seconds']:.0f}s)"),
    )
    log(f"[{name}] trained {result.seconds:.0f}s, best epoch {result.best_epoch}, stopped by {result.stopped_by}; refit {result.refit}")
    text_vectors = cached_item_vectors(data.root, data.items) if data.has_text() else None
    rec = FineTunedRecommender(model, model.item_vectors().detach().numpy())
    names = ["finetuned", *(["zero_shot"] if text_vectors is not None else []), *BASELINES]
    # The same evaluation as `homepage evaluate`: every model on the same test users.
    models, per_user, ctx = evaluate_on_split(split, names, trained={"finetuned": rec}, text_vectors=text_vectors, item_vectors=text_vectors)
    models["finetuned"]["fit_seconds"] = result.seconds
    ft_users, base_users = per_user["finetuned"], per_user
    speed = inference_speed(rec, ctx.users)
    out = report(data.name, split, ctx, models, True)
    out["training"] = {"mode": config.mode, "overrides": overrides or {}, "seconds": result.seconds, "epochs": result.epochs, "best_epoch": result.best_epoch, "stopped_by": result.stopped_by, "refit": result.refit, "start": "zero_shot" if config.user_residual else "random", "history": result.history}
    out["inference_seconds_1000_users"] = speed
    model.save_pretrained(out_dir / "models" / name, data, {"protocol": protocol, "test_days": days, "metrics": models["finetuned"]})
    best_base = max(BASELINES, key=lambda n: models[n]["ndcg@10"])
    # Paired bootstrap over the same test users: finetuned minus the best baseline, per metric.
    paired = {key: paired_bootstrap_ci(base_users[best_base][key], ft_users[key]) for key in PAIRED_KEYS}
    out["paired_vs_best_baseline"] = {"baseline": best_base, **{k: {"diff": d, "ci95": [lo, hi]} for k, (d, lo, hi) in paired.items()}}
    out["run"] = name
    out.update(run_finished(started))
    write_json(out, out_dir / f"ranker_{name}.json")
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
    ft = models["finetuned"]
    lines = [f"### {name} ({protocol}{f', last {days} days' if days else ''}; {out['n_users']:,} test users, {out['n_items']:,} items, masked history; encoder {training['mode']}{', zero-shot start' if training.get('start') == 'zero_shot' else ''}{', refit on train + validation' if str(training.get('refit', '')).startswith('done') else ''}{''.join(f', {k}={v}' for k, v in overrides.items())})", ""]
    lines.append(markdown_table(models, KEYS))
    lines.append("")
    margin = ft["ndcg@10"] - models[best_base]["ndcg@10"]
    lines.append(
        f"finetuned vs best baseline ({best_base}) NDCG@10: {ft['ndcg@10']:.4f} vs {models[best_base]['ndcg@10']:.4f} "
        f"({margin:+.4f}, {margin / max(models[best_base]['ndcg@10'], 1e-9):+.0%}); "
        + (f"vs zero_shot {models['zero_shot']['ndcg@10']:.4f}; " if "zero_shot" in models else "zero_shot: n/a (no text); ")
        + f"training {training['seconds'] / 60:.1f} min ({training.get('epochs', '?')} epochs, best epoch {training.get('best_epoch', '?')}, "
        f"stopped by {training.get('stopped_by', '?')}) on this machine; scoring all items for 1,000 users {speed * 1000:.0f} ms."
    )
    lines.append("")
    lines.append(f"Paired difference finetuned - {best_base} over the same {out['n_users']:,} users (95% bootstrap interval; "
                 "an interval above 0 is a significant win): "
                 + "; ".join(f"{k} {d:+.4f} [{lo:+.4f}, {hi:+.4f}]" for k, (d, lo, hi) in paired.items()) + ".")
    if name == "beauty":
        lines.append("")
        lines.append("| Beauty (loo, full ranking, masked) | NDCG@10 | HR@10 |\n|---|---|---|")
        lines.append(f"| **ours: finetuned (id-only transformer)** | {ft['ndcg@10']:.4f} | {ft['hr@10']:.4f} |")
        for pub, (n, h) in PUBLISHED_BEAUTY.items():
            lines.append(f"| {pub} (published) | {n:.4f} | {h:.4f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--datasets", default="demo,movielens,hm,hm_week,beauty")
    parser.add_argument("--minutes", type=float, default=15.0, help="training budget per data set")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out")
    parser.add_argument("--mode", choices=("top", "full", "frozen"), default="top", help="encoder fine-tuning mode (id-only data always trains frozen)")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="override a RankerConfig field, e.g. --set id_dropout=0.5 (repeatable)")
    args = parser.parse_args()
    overrides = parse_overrides(args.set)
    for name in args.datasets.split(","):
        res = run(name, args.minutes, args.out, args.out / "data", args.mode, overrides)
        if res:
            (args.out / f"ranker_{name}.md").write_text(res[0])
    # ranker.md gathers every data set's latest section, also those of earlier runs.
    sections = [(args.out / f"ranker_{n}.md").read_text() for n in RUNS if (args.out / f"ranker_{n}.md").exists()]
    (args.out / "ranker.md").write_text("## Fine-tuned ranker\n\n" + "\n".join(sections))
    log(f"wrote {args.out / 'ranker.md'}")


if __name__ == "__main__":
    main()
