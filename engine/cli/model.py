"""``homepage train``, ``evaluate`` and ``recommend``: the fine-tuned ranker from the command line."""

from __future__ import annotations

import functools
import importlib.util
import sys
import time
from pathlib import Path

import numpy as np

from engine.cli.common import int_at_least
from engine.core.errors import DataError, ModelError

WARM_ABOVE_USERS = 20_000  # from this many users, `homepage train` ends by filling the serving cache (minutes at a shop's size)


def register(sub, add_split_args) -> None:
    p = sub.add_parser("train", help="fine-tune the transformer ranker")
    p.add_argument("dir", type=Path)
    p.add_argument("--out", type=Path, help="model directory (default DIR/models/<UTC timestamp>)")
    add_split_args(p)
    p.add_argument("--max-minutes", type=float, default=None, help="budget of the training epochs, the modes --mode auto tries sharing it; the best checkpoint so far is kept "
                        "(encoding a new catalogue's item texts once, stage 2 and the test evaluation come on top)")
    p.add_argument("--mode", choices=["auto", "top", "full", "frozen", "lora"], default="auto",
                   help="encoder fine-tuning: auto (frozen and top both trained, the better on validation kept; the default), "
                        "the top layer(s), all of it, none, or LoRA adapters (peft) on the top layer(s)")
    p.add_argument("--max-epochs", type=int, default=None)
    p.add_argument("--encoder", help="BERT-family model folder (default: packaged all-MiniLM-L6-v2, or $HOMEPAGE_ENCODER)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--dim", type=int, default=None, help="vector size")
    p.add_argument("--event-head", action="store_true", help="multi-task: also predict the next event type")
    p.add_argument("--no-stage2", action="store_true",
                   help="train the fine-tuned model alone (by default a second, learning-to-rank stage is trained and kept where it wins on validation)")
    p.add_argument("--workers", type=int_at_least(0, "--workers"), default=0,
                   help="data-parallel Ray Train workers (0: one process, no Ray); joins the cluster RAY_ADDRESS names, if any")
    p.add_argument("--use-gpu", action="store_true",
                   help="with --workers: place each Ray worker on a GPU of its own (the ranker's tensors still live on the CPU)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="fine-tuned vs zero-shot vs baselines on the same split")
    p.add_argument("dir", type=Path)
    p.add_argument("--model", type=Path, help="model directory (default: newest under DIR/models)")
    add_split_args(p, protocol_default=None)
    p.add_argument("--json", type=Path, required=True)
    p.add_argument("--models", help="comma-separated subset of finetuned,zero_shot and the baselines")
    p.add_argument("--no-ild", action="store_true")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("recommend", help="a user's ranked items with titles")
    p.add_argument("dir", type=Path)
    p.add_argument("--model", type=Path)
    p.add_argument("--user", required=True)
    p.add_argument("--k", type=int, default=20)
    p.add_argument("--keep-history", action="store_true")
    p.set_defaults(func=cmd_recommend)


def _config(args, data):
    from engine.training.job import make_config

    return make_config(data, mode=args.mode, seed=args.seed, encoder=args.encoder, event_head=args.event_head, max_epochs=args.max_epochs, dim=args.dim, keep_history=args.keep_history, protocol=args.protocol, test_days=args.test_days)


def cmd_train(args) -> None:
    from tqdm import tqdm

    from engine.cli.common import load_data
    from engine.models.store import new_model_dir
    from engine.training.job import mode_candidates, train_and_save
    from engine.training.progress import describe_progress

    if args.use_gpu and not args.workers:
        raise DataError("--use-gpu needs --workers N (at least 1): GPUs are given to Ray workers")
    trainer = None
    if args.workers:
        from engine.scale.train import train_ranker_distributed

        # Checked before reading anything, but not imported: engine.scale.cluster sets Ray's environment first.
        if importlib.util.find_spec("ray") is None:
            raise ModelError("--workers needs Ray: pip install -e '.[scale]'")
        trainer = functools.partial(train_ranker_distributed, workers=args.workers, use_gpu=args.use_gpu,
                                    load_options={"drop_unknown": args.drop_unknown})
    data = load_data(args)
    config = _config(args, data)
    if not config.use_text:
        print(f"{data.name}: items have no real text (titles are placeholders): training the id part only, no encoder")
    out = args.out or new_model_dir(args.dir)
    steps = 1000  # the bar's resolution: it shows the stage's share done, by epochs or by budget
    bar = tqdm(total=steps, desc="train: reading the data and encoding item texts", file=sys.stderr, bar_format="{bar:24}| {desc}")
    entries: list[dict] = []

    def progress(entry: dict) -> None:
        if entry.get("epoch") == 0 and not entry.get("refit") and entries:  # the next encoder mode starts (--mode auto)
            entries.clear()
            bar.reset(total=steps)
        entries.append(entry)
        state = describe_progress(entries, config.max_epochs, args.max_minutes, refit_follows=config.refit)
        if state.refit and state.epoch == 1:  # the refit runs the best epoch count again: a bar of its own
            bar.reset(total=steps)
        bar.set_description_str(state.text, refresh=False)
        bar.n = round(state.fraction * steps)
        bar.refresh()

    def log(line: str) -> None:
        bar.set_description_str(line[:100])
        bar.refresh()

    out, manifest, result = train_and_save(
        data, out, config, protocol=args.protocol, test_days=args.test_days, max_minutes=args.max_minutes,
        mask_history=not args.keep_history, progress=progress, stage2=not args.no_stage2, log=log, trainer=trainer,
        modes=mode_candidates(config, args.mode),
    )
    bar.close()
    if manifest["training"].get("encode_seconds"):
        print(f"item texts encoded in {manifest['training']['encode_seconds']:.0f}s, before the budget (kept in {args.dir / '.cache'} for the next model)")
    where = f"{args.workers} Ray workers{' with GPUs' if args.use_gpu else ''}" if args.workers else "one process"
    print(f"trained in {result.seconds:.0f}s on {where} ({result.epochs} epochs, {result.steps} steps, {result.events_per_second:,.0f} events/s; "
          f"stopped by {result.stopped_by}; best epoch {result.best_epoch}, valid NDCG@10 {result.best_valid_ndcg:.4f}; refit {result.refit})")
    choice = manifest.get("mode_choice")
    if choice:
        tried = ", ".join(f"{m} {v:.4f} ({choice['seconds'][m]:.0f}s)" for m, v in choice["valid_ndcg@10"].items())
        print(f"encoder mode {choice['chosen']}, chosen on validation NDCG@10 ({tried}; {choice['total_seconds']:.0f}s in all)")
    stage2 = manifest["stage2"]
    if "valid_ndcg@10" in stage2:
        v = stage2["valid_ndcg@10"]
        print(f"stage 2 ({', '.join(stage2['sources'])}; {stage2['trees']} trees, {stage2['seconds']:.0f}s): validation NDCG@10 "
              f"{v['two_stage']:.4f} against stage 1's {v['finetuned']:.4f} on {stage2['judged_users']:,} held-out validation users: "
              f"{'kept' if stage2['used'] else 'not kept'}")
    elif not args.no_stage2:
        print(f"stage 2 not trained: {stage2.get('reason')}")
    for name, metrics in manifest["metrics_by_model"].items():
        print(f"test {name} ({manifest['protocol']}): NDCG@10 {metrics['ndcg@10']:.4f} [{metrics['ndcg@10_ci95'][0]:.4f}, {metrics['ndcg@10_ci95'][1]:.4f}], "
              f"HR@10 {metrics['hr@10']:.4f}, Recall@12 {metrics['recall@12']:.4f}, MAP@12 {metrics['map@12']:.4f}")
    print(f"the page uses {manifest['final_model']}; model saved to {out}")
    if data.n_users >= WARM_ABOVE_USERS:
        from engine.page.rerank import fill_serving_cache

        start = time.perf_counter()
        try:
            fill_serving_cache(data, out)
        except (DataError, ModelError, MemoryError, OSError, ValueError) as exc:  # the model is saved: only the cache is missing
            print(f"the serving cache was not filled ({exc}); the first page will compute it")
            return
        print(f"serving cache ready in {time.perf_counter() - start:.0f}s (user vectors, EASE's table, picture colours, segments and their relevance in {data.root / '.cache'}), "
              "so the first page does not compute them")


def _model_dir(args) -> Path:
    from engine.models.store import newest_model

    return args.model or newest_model(args.dir)


def cmd_evaluate(args) -> None:
    from tqdm import tqdm

    from engine.cli.common import ild_text_vectors, load_data, sample_note
    from engine.core.jsonio import write_json
    from engine.data.splits import make_split
    from engine.evaluation.heldout import evaluate_on_split, markdown_table, report
    from engine.models.baselines import BASELINES
    from engine.models.final import load_final

    data = load_data(args)
    model_dir = _model_dir(args)
    text_vectors = ild_text_vectors(data, True)
    final, rec, manifest = load_final(model_dir, data)
    protocol = args.protocol or manifest.get("protocol", "loo")
    test_days = args.test_days if args.protocol else (manifest.get("test_days") or args.test_days)
    split = make_split(data, protocol, test_days)
    mask = not args.keep_history
    trained = {"finetuned": rec, **({"two_stage": final} if final is not rec else {})}
    names = args.models.split(",") if args.models else [*trained, "zero_shot", *BASELINES]
    ild_vectors = None if args.no_ild else text_vectors
    with tqdm(total=len(names), desc="evaluate", unit="model", file=sys.stderr) as bar:
        models, _, ctx = evaluate_on_split(
            split, names, trained=trained, text_vectors=text_vectors, item_vectors=ild_vectors,
            mask_history=mask, progress=lambda name: bar.update(1),
        )
    if "finetuned" in models:
        models["finetuned"]["fit_seconds"] = manifest.get("training", {}).get("seconds")
    out = report(data.name, split, ctx, models, mask)
    out["model_dir"] = str(model_dir)
    print(f"{data.name}: {protocol}, {out['n_users']:,} evaluated users{sample_note(out)}, history {'masked' if mask else 'kept'}")
    print(markdown_table({k: v for k, v in models.items() if "note" not in v}))
    write_json(out, args.json)
    print(f"wrote {args.json}")


def cmd_recommend(args) -> None:
    from engine.cli.common import load_data
    from engine.data.splits import FitData
    from engine.models.final import load_final

    data = load_data(args)
    rec, _, _ = load_final(_model_dir(args), data)
    if args.user not in data.user_index:
        raise DataError(f"{data.root}: user {args.user!r} has no interactions")
    rec.fit(FitData(data.interactions, data.n_users, data.n_items))
    uidx = np.array([data.user_index[args.user]])
    items, scores = rec.rank(uidx, args.k, mask_history=not args.keep_history)
    cols = [c for c in ("item_id", "title", "category", "price") if c in data.items.columns]
    table = data.items.iloc[items[0]][cols].copy()
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    table["score"] = np.round(scores[0], 3)
    print(table.to_string(index=False))
