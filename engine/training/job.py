"""Train, judge on the held-out test set and save a model: one call shared by ``homepage train`` and the dashboard."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from engine.core.constants import DEFAULT_TEST_DAYS
from engine.data.tables import Dataset
from engine.models.two_tower import RankerConfig
from engine.training.loop import TrainResult


FULL_SOFTMAX_MAX_ITEMS = 20_000  # catalogues up to this size train with a full softmax (every item a negative)
AUTO = "auto"  # the encoder mode chosen on validation among AUTO_MODES
AUTO_MODES = ("frozen", "top")  # tried in this order; frozen first: it is the cheaper, and leaves top the budget it did not use


def zero_shot_start(data: Dataset, protocol: str, test_days: int = DEFAULT_TEST_DAYS, encoder: str | None = None) -> tuple[bool, dict]:
    """Whether training should start from the zero-shot ranking: the untrained text model (user = mean
    of history text vectors, cosine) beats popularity on the validation split's NDCG@10.

    Where item text already says what people buy next (fashion: H&M), a model that starts there and
    learns a correction keeps that knowledge; where it does not (the demo store, MovieLens titles), a
    randomly initialised user tower learns more. Returns (the decision, both validation NDCG@10s).
    """
    from engine.models.baselines import Popularity
    from engine.evaluation.heldout import EvalContext, evaluate_model
    from engine.data.splits import make_split
    from engine.models.finetuned import ZeroShot
    from engine.models.text_encoder import cached_item_vectors

    split = make_split(data, protocol, test_days)
    ctx = EvalContext.build(split, "valid")
    if not len(ctx.users):
        return False, {}
    fit = split.fit_data("valid")
    zero = evaluate_model(ZeroShot(cached_item_vectors(data.root, data.items, encoder)).fit(fit), ctx)[0]["ndcg@10"]
    pop = evaluate_model(Popularity().fit(fit), ctx)[0]["ndcg@10"]
    return bool(zero > pop), {"zero_shot": round(float(zero), 4), "popularity": round(float(pop), 4)}


def make_config(
    data: Dataset,
    *,
    mode: str = "top",
    seed: int = 42,
    encoder: str | None = None,
    event_head: bool = False,
    max_epochs: int | None = None,
    dim: int | None = None,
    keep_history: bool = False,
    protocol: str = "loo",
    test_days: int = DEFAULT_TEST_DAYS,
) -> RankerConfig:
    """The ranker config for a data set; data without real item text trains the id part only.

    Args:
        data: the loaded data directory.
        mode: encoder fine-tuning (``top``, ``full``, ``frozen`` or ``lora``: LoRA adapters on the top
            layers), or ``auto``: the config says ``top`` and :func:`mode_candidates` names the modes
            :func:`train_and_save` chooses among on validation.
        seed: seeds torch and numpy.
        encoder: BERT-family model folder (None: the packaged MiniLM).
        event_head: also predict the next event type.
        max_epochs: upper bound on epochs (None: the config's default).
        dim: vector size (None: the config's default).
        keep_history: evaluation keeps history items, so also learn to predict repeats.
        protocol: the split it will train on; ``temporal`` refits on train + validation after early
            stopping, since the validation days are the newest behaviour and hold the newest items.
        test_days: temporal protocol: days of test (for the validation check of :func:`zero_shot_start`).

    Returns:
        The config.
    """
    import engine.models.two_tower  # looked up at call time, so that tests can swap in small defaults

    config = engine.models.two_tower.RankerConfig(
        mode="top" if mode == AUTO else mode, seed=seed, encoder_path=encoder, use_text=data.has_text(), event_head=event_head,
        train_on_repeats=keep_history,  # masked evaluation never rewards predicting a repeat
        refit=protocol == "temporal",
    )
    changes: dict = {}
    if data.n_items <= FULL_SOFTMAX_MAX_ITEMS:
        # Every item as a negative instead of 512 sampled ones: on Beauty validation NDCG@10 after
        # 10 epochs rose from .039 to .048. Its cost grows with items x positions, hence the bound.
        changes["n_negatives"] = 0
    if config.use_text and zero_shot_start(data, protocol, test_days, encoder)[0]:
        # Start at the zero-shot ranking: u = mean of history vectors + a zero-initialised correction,
        # a PCA projection of the text vectors, ids at zero; cosine-sized scores need a low temperature
        # (docs/DESIGN.md: the zero-shot start).
        changes.update(user_residual=True, text_init="pca", temperature=0.05, lr=5e-4)
    if max_epochs:
        changes["max_epochs"] = max_epochs
    if dim:
        changes["dim"] = dim
    if not config.use_text:
        changes["mode"] = "frozen"
        changes["dropout"] = 0.5  # id-only sequences over sparse data overfit fast
        changes["lr"] = 1e-3  # the rate the id-only Beauty results were trained with (SVD-initialised ids, dropout 0.5)
    return dataclasses.replace(config, **changes)


def mode_candidates(config: RankerConfig, mode: str) -> tuple[str, ...]:
    """The encoder modes to train and choose among on validation: ``AUTO_MODES`` for ``auto`` when
    items have text (id-only data has no encoder to tune), else the config's own mode alone."""
    return AUTO_MODES if mode == AUTO and config.use_text and config.mode != "frozen" else (config.mode,)


def train_and_save(
    data: Dataset,
    out: str | Path,
    config: RankerConfig,
    *,
    protocol: str = "loo",
    test_days: int = DEFAULT_TEST_DAYS,
    max_minutes: float | None = None,
    mask_history: bool = True,
    progress: Callable[[dict], None] | None = None,
    stage2: bool = True,
    log: Callable[[str], None] | None = None,
    trainer: Callable[..., tuple] | None = None,
    modes: tuple[str, ...] | None = None,
) -> tuple[Path, dict, TrainResult]:
    """Fine-tune on the split's training part, evaluate on its test part and write the model directory.

    Args:
        data: the loaded data directory.
        out: the model directory to write (replaced atomically).
        config: the ranker config (see :func:`make_config`).
        protocol: ``loo`` or ``temporal``.
        test_days: temporal protocol: days of test.
        max_minutes: budget of the training epochs (shared among ``modes``); the best checkpoint so
            far is kept. Encoding the catalogue's text (:func:`_encode_catalogue`), stage 2 and
            the test evaluation come on top.
        mask_history: mask items already in a user's history when evaluating.
        progress: called after every epoch with ``{"epoch", "step", "loss", "valid_ndcg@10", "seconds", "events_per_second"}``.
        stage2: also train the second stage (``engine.training.stage2``), kept when it beats the
            fine-tuned model on held-out validation users.
        log: called with a line per stage-2 step.
        trainer: trains the ranker, called as ``trainer(data, split, config, max_minutes=, progress=)``
            and returning what :func:`engine.training.loop.train_ranker` (the default) returns; e.g.
            ``engine.scale.train.train_ranker_distributed`` with its workers bound (``homepage train
            --workers N``), passed in by the caller: the training layer never imports engine.scale.
        modes: encoder modes to choose among (:func:`mode_candidates`): each is trained in turn,
            with what is left of the budget shared equally among those still to run, and the one
            with the best validation NDCG@10 is kept (``manifest["mode_choice"]``); None or one
            mode: ``config.mode`` alone.

    Returns:
        (the model directory, its manifest, the training summary). ``manifest["metrics"]`` holds the
        held-out test metrics of the model the page uses (``manifest["final_model"]``),
        ``manifest["metrics_by_model"]`` those of stage 1 alone and, when kept, of both stages.
    """
    from engine.evaluation.heldout import EvalContext, evaluate_model
    from engine.data.splits import make_split
    from engine.models.finetuned import FineTunedRecommender
    from engine.training.loop import train_ranker

    split = make_split(data, protocol, test_days)
    start = time.perf_counter()
    encode_seconds = _encode_catalogue(data, config, modes or (config.mode,), log or (lambda _: None))
    model, config, result, mode_choice = _train_choosing_mode(trainer or train_ranker, data, split, config, modes or (config.mode,),
                                                              max_minutes, progress, log or (lambda _: None))
    rec = FineTunedRecommender(model, model.item_vectors().detach().numpy())
    valid_rec = rec if result.valid_model is model else FineTunedRecommender(result.valid_model, result.valid_model.item_vectors().detach().numpy())
    second = None
    stage2_info: dict = {"used": False, "reason": "not trained (stage2=False)"}
    if stage2:
        from engine.models.text_encoder import cached_item_vectors
        from engine.training.stage2 import train_stage2

        text = cached_item_vectors(data.root, data.items, config.encoder_path) if config.use_text else None
        # Stage 2 learns on the validation window from the model that never saw it; for test, its
        # stage-1 source becomes the final (refit) model, as the baselines among its sources are refit.
        found = train_stage2(split, valid_rec, data.items, text, keep_history=not mask_history, seed=config.seed, log=log)
        second, stage2_info = found.model, found.info
        if second is not None:
            second.sources["finetuned"] = rec
    test_ctx = EvalContext.build(split, "test")
    metrics, _ = evaluate_model(rec.fit(split.fit_data("test")), test_ctx, mask_history)
    by_model = {"finetuned": _plain(metrics)}
    if second is not None:
        # The fit serving uses too (the test stage's history): its EASE table is kept in DIR/.cache.
        final, _ = evaluate_model(second.use_cache(data.root / ".cache").fit(split.fit_data("test")), test_ctx, mask_history)
        by_model["two_stage"] = _plain(final)
    manifest = {
        "protocol": split.protocol,
        "test_days": split.test_days,
        "masked_history": mask_history,
        "split": split.describe(),
        "training": {"seconds": round(time.perf_counter() - start, 1), "encode_seconds": encode_seconds, **{k: v for k, v in vars(result).items() if k not in ("history", "valid_model")}, "history": result.history},
        "final_model": "two_stage" if second is not None else "finetuned",
        "metrics": by_model.get("two_stage", by_model["finetuned"]),  # of the model the page uses
        "metrics_by_model": by_model,
        "stage2": stage2_info,
        "text": bool(config.use_text),
        **({"mode_choice": mode_choice} if mode_choice else {}),
    }
    out = model.save_pretrained(out, data, manifest, extra=second.save if second is not None else None)
    return Path(out), manifest, result


def _encode_catalogue(data: Dataset, config: RankerConfig, modes: tuple[str, ...], log: Callable[[str], None]) -> float:
    """Run the pretrained encoder's lower layers over every item text into ``DIR/.cache`` before
    the budget starts, where every mode that caches them (all but ``full``) and every Ray worker
    reads them: a one-time cost per catalogue (488 s for 100,000 items on 2 cores),
    which a time budget shared among modes would otherwise charge to the first. Returns its seconds."""
    from engine.training.loop import build_text_tower

    if not config.use_text or all(mode == "full" for mode in modes):
        return 0.0
    start = time.perf_counter()
    build_text_tower(data, dataclasses.replace(config, mode=next(m for m in modes if m != "full")))  # read back from the file later
    seconds = round(time.perf_counter() - start, 1)
    log(f"item texts: the encoder's lower layers over {data.n_items:,} items in {seconds:.0f} s (kept in {data.root / '.cache'})")
    return seconds


def _train_choosing_mode(trainer: Callable[..., tuple], data: Dataset, split, config: RankerConfig, modes: tuple[str, ...],
                         max_minutes: float | None, progress: Callable[[dict], None] | None, log: Callable[[str], None]
                         ) -> tuple[object, RankerConfig, TrainResult, dict | None]:
    """Train ``config`` in each mode of ``modes`` and keep the best on validation NDCG@10.

    Returns:
        (the model, its config, its own training summary, ``{"valid_ndcg@10": {mode: value},
        "seconds": {mode: value}, "total_seconds", "chosen": mode}`` or None with one mode). With
        the temporal protocol every mode runs its own refit within its share of the budget.
    """
    if len(modes) == 1:
        model, _, result = trainer(data, split, dataclasses.replace(config, mode=modes[0]), max_minutes=max_minutes, progress=progress)
        return model, dataclasses.replace(config, mode=modes[0]), result, None
    start = time.perf_counter()
    best = None
    valid, seconds = {}, {}
    for i, mode in enumerate(modes):
        budget = None
        if max_minutes is not None:  # what is left, shared equally among the modes still to train
            budget = max(max_minutes - (time.perf_counter() - start) / 60.0, 0.05) / (len(modes) - i)
        candidate = dataclasses.replace(config, mode=mode)
        log(f"encoder mode {mode} ({i + 1} of {len(modes)}, chosen on validation){f': {budget:.1f} min' if budget else ''}")
        model, _, result = trainer(data, split, candidate, max_minutes=budget, progress=progress)
        valid[mode], seconds[mode] = round(float(result.best_valid_ndcg), 5), round(float(result.seconds), 1)
        log(f"encoder mode {mode}: validation NDCG@10 {result.best_valid_ndcg:.4f} in {result.seconds:.0f} s")
        if best is None or result.best_valid_ndcg > best[2].best_valid_ndcg:
            best = (model, candidate, result)
        else:
            del model, result  # only the best so far is held
    model, config, result = best
    log(f"encoder mode {config.mode} kept (validation NDCG@10 {result.best_valid_ndcg:.4f})")
    return model, config, result, {"valid_ndcg@10": valid, "seconds": seconds, "total_seconds": round(sum(seconds.values()), 1),
                                   "chosen": config.mode}


def _plain(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if not isinstance(v, np.ndarray)}
