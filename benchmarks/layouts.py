"""Benchmark of segments, re-ranking and layout evaluation: timings and an accuracy-diversity frontier.

Usage: .venv/bin/python benchmarks/layouts.py [--datasets demo,hm] [--minutes 3] [--repeats 20]

For each data set it loads a trained model (``--model``, else benchmarks/out/models/<name> from the
ranker benchmark, else the newest under DIR/models, else it trains a small one within
``--minutes``: frozen encoder, 64-d), finds the learned segments, takes the largest, and times:
building the studio, clustering, re-ranking 500 candidates into 40 slots (MMR and DPP), evaluating
one layout for up to 5,000 held-out users, and a 5x5 diversity x long-tail frontier. Writes
benchmarks/out/layouts.md and benchmarks/out/layouts_<name>.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from baselines import prepare  # noqa: E402

from engine.data.tables import load_dataset  # noqa: E402
from engine.core.errors import ModelError  # noqa: E402
from engine.page.judge import evaluate_lists, frontier, segment_value  # noqa: E402
from engine.core.jsonio import write_json  # noqa: E402
from engine.models.store import newest_model  # noqa: E402
from engine.models.two_tower import Ranker  # noqa: E402
from engine.page.rerank import Settings, rank_segment  # noqa: E402
from engine.studio.segments import attribute_agreement, segment_catalogue  # noqa: E402
from engine.studio.context import load_studio  # noqa: E402
from meta import run_finished, run_started  # noqa: E402

RUNS = {"demo": ("loo", None), "hm": ("temporal", 28)}  # name -> (protocol, test_days), as benchmarks/ranker.py
FRONTIER_KEYS = ("diversity", "long_tail", "ndcg@10", "recall@40", "hr@40", "ild@10", "tail_share@10", "coverage@40", "novelty@10", "avg_price@10")
MAX_EVAL_USERS = 5000


def log(msg: str) -> None:
    print(msg, flush=True)


def _model_for(name: str, data, out: Path, minutes: float, given: Path | None) -> Path:
    """A model trained on this data: given, the ranker benchmark's, the newest in DIR/models, or a new small one."""
    candidates = [given] if given else [out / "models" / name, out / "models" / f"layouts_{name}"]
    if not given:
        try:
            candidates.append(newest_model(data.root))
        except ModelError:
            pass
    for path in candidates:
        if path and path.is_dir():
            try:
                Ranker.from_pretrained(path, data)
                return path
            except ModelError as exc:
                log(f"[{name}] skipping {path}: {exc}")
    from engine.data.splits import make_split
    from engine.models.two_tower import RankerConfig
    from engine.training.loop import train_ranker

    protocol, days = RUNS[name]
    split = make_split(data, protocol, days or 28)
    config = RankerConfig(dim=64, mode="frozen", use_text=data.has_text())
    log(f"[{name}] no trained model: training a small one ({protocol}, frozen encoder, {minutes} min budget)")
    model, tower, result = train_ranker(data, split, config, max_minutes=minutes)
    log(f"[{name}] trained {result.seconds:.0f}s, best epoch {result.best_epoch}, valid NDCG@10 {result.best_valid_ndcg:.4f}")
    return model.save_pretrained(out / "models" / f"layouts_{name}", data, {"protocol": protocol, "test_days": days})


def _median_ms(func, repeats: int) -> tuple[float, object]:
    times, value = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        value = func()
        times.append((time.perf_counter() - start) * 1e3)
    return float(np.median(times)), value


def _table(frame, keys) -> str:
    cols = [k for k in keys if k in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, row in frame.iterrows():
        cells = []
        for k in cols:
            v = row[k]
            cells.append("–" if v is None or (isinstance(v, float) and np.isnan(v)) else (f"{v:.2f}" if k in ("diversity", "long_tail") else (f"{v:.4f}" if isinstance(v, float) else str(v))))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run(name: str, out: Path, minutes: float, repeats: int, given: Path | None) -> tuple[str, dict] | None:
    path = prepare(name, out / "data", reimport=False)
    if path is None:
        return None
    started = run_started("layouts")
    data = load_dataset(path)
    model_dir = _model_for(name, data, out, minutes, given)
    start = time.perf_counter()
    studio = load_studio(data, model_dir)
    studio_s = time.perf_counter() - start
    log(f"[{name}] studio in {studio_s:.1f}s ({len(studio.users):,} users with history, {len(studio.eval_users):,} held out, {data.n_items:,} items; model {model_dir})")

    start = time.perf_counter()
    kmeans = segment_catalogue(studio, "kmeans", rules=False)
    seg = kmeans.learned
    cluster_s = time.perf_counter() - start
    start = time.perf_counter()
    gmm = segment_catalogue(studio, "gmm", rules=False).learned
    gmm_s = time.perf_counter() - start
    rules = segment_catalogue(studio, learned=False).visible
    segment = kmeans.visible[0]
    log(f"[{name}] k-means k={seg.k} (silhouette) in {cluster_s:.1f}s; GMM k={gmm.k} (BIC) in {gmm_s:.1f}s; {len(rules)} rule segments; "
        f"benchmark segment {segment.id} '{segment.name}' ({segment.size} users)")

    settings = Settings(diversity=0.5, long_tail=0.3, visual=0.3)
    timings = {}
    for method in ("mmr", "dpp"):
        s = Settings(**{**settings.to_dict(), "method": method, "rows": [(t, n) for t, n in settings.rows]})
        stage = [rank_segment(studio, segment, s).timing_ms for _ in range(repeats)]
        timings[f"rerank_{method}_ms"] = float(np.median([t["rerank"] for t in stage]))
        timings[f"page_{method}_ms"] = float(np.median([t["total"] for t in stage]))
    page = rank_segment(studio, segment, settings, explain=False)
    items = page.flat_items()
    users = studio.eval_users[:MAX_EVAL_USERS]
    rows = np.searchsorted(studio.eval_users, users)
    targets = [studio.eval_targets[r] for r in rows]
    timings["evaluate_ms"], ev = _median_ms(lambda: evaluate_lists(studio, items, users, targets, page.row_sizes()), repeats)
    timings["evaluate_users"] = int(len(users))
    seg_users, _ = studio.held_out(segment.members)
    start = time.perf_counter()
    table = frontier(studio, segment, settings)
    timings["frontier_5x5_s"] = time.perf_counter() - start
    value = segment_value(studio, segment, rank_segment(studio, segment, settings))

    ari = attribute_agreement(studio, "taste")
    result = {"dataset": name, "protocol": studio.split.protocol, "n_users": len(studio.users), "n_items": data.n_items,
              "model_dir": str(model_dir), "segment": segment.to_dict(), "segment_held_out": len(seg_users),
              "k_kmeans": seg.k, "k_gmm": gmm.k, "kmeans_seconds": cluster_s, "gmm_seconds": gmm_s, "n_rule_segments": len(rules),
              "repeats": repeats, "slots": len(items), "timings": timings, "studio_seconds": studio_s,
              "frontier": table.to_dict(orient="records"), "segment_value": value.to_dict(orient="records"),
              "layout_metrics": ev.metrics, "taste_ari": ari}
    result.update(run_finished(started))
    write_json(result, out / f"layouts_{name}.json")
    text = section(result)
    log(text)
    return text, result


def section(result: dict) -> str:
    """The markdown section of one run's result (the JSON ``layouts_<name>.json`` that :func:`run` writes)."""
    import pandas as pd

    name, timings, repeats, segment = result["dataset"], result["timings"], result["repeats"], result["segment"]
    lines = [f"### {name} ({result['protocol']}; {result['n_users']:,} users with history, {result['n_items']:,} items; model `{Path(result['model_dir']).name}`)", ""]
    lines.append(f"Segments: k-means k = {result['k_kmeans']} by silhouette ({result['kmeans_seconds']:.1f} s), GMM k = {result['k_gmm']} by BIC ({result['gmm_seconds']:.1f} s), {result['n_rule_segments']} rule segments. "
                 f"Benchmark segment: **{segment['name']}** ({segment['id']}, {segment['size']} users, {result['segment_held_out']} held out).")
    ari = result.get("taste_ari")
    if ari is not None:
        lines.append("")
        lines.append(f"Learned segments against the latent tastes in users.csv (k-means, k = {ari['k']}): adjusted Rand index "
                     f"{ari['all']:.3f} over all {ari['n_all']:,} users, {ari['long']:.3f} over the {ari['n_long']:,} with at least "
                     f"{ari['min_items']} items (the issue asks for at least 0.5).")
    lines.append("")
    lines.append("| timing (median of %d) | value |" % repeats)
    lines.append("|---|---|")
    lines.append(f"| studio (user vectors, text and colour features) | {result['studio_seconds']:.1f} s |")
    for method in ("mmr", "dpp"):
        lines.append(f"| re-rank {result['slots']} slots from 500 candidates, {method.upper()} (+ xQuAD, visual) | {timings[f'rerank_{method}_ms']:.1f} ms (whole page with rules and why: {timings[f'page_{method}_ms']:.1f} ms) |")
    lines.append(f"| evaluate one layout for {timings['evaluate_users']:,} held-out users | {timings['evaluate_ms']:.1f} ms |")
    lines.append(f"| 5x5 frontier (25 pages re-ranked and evaluated) | {timings['frontier_5x5_s']:.2f} s |")
    lines.append("")
    lines.append(f"Frontier for {segment['name']} (MMR, visual 0.3; current setting diversity 0.5, long-tail 0.3):")
    lines.append("")
    lines.append(_table(pd.DataFrame(result["frontier"]), FRONTIER_KEYS))
    lines.append("")
    lines.append("Segment page vs per-user personalised page vs one global popular page (same held-out members, 40 slots):")
    lines.append("")
    lines.append(_table(pd.DataFrame(result["segment_value"]), ("page", "n_users", "ndcg@10", "recall@40", "hr@40", "coverage@40", "tail_share@40", "ild@10", "novelty@10")))
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="demo,hm")
    parser.add_argument("--minutes", type=float, default=3.0, help="training budget when a data set has no trained model")
    parser.add_argument("--repeats", type=int, default=20, help="timing repeats (the median is reported)")
    parser.add_argument("--model", type=Path, help="model directory (only with a single data set)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out")
    args = parser.parse_args()
    names = args.datasets.split(",")
    if args.model and len(names) != 1:
        parser.error("--model needs exactly one data set in --datasets")
    sections = []
    for name in names:
        if name not in RUNS:
            parser.error(f"unknown data set {name!r}; choose from {','.join(RUNS)}")
        res = run(name, args.out, args.minutes, args.repeats, args.model)
        if res:
            sections.append(res[0])
            (args.out / "layouts.md").write_text("## Segments, re-ranking and layouts\n\n" + "\n".join(sections))
    log(f"wrote {args.out / 'layouts.md'}")


if __name__ == "__main__":
    main()
