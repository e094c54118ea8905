"""Cheap updates of a trained model from page feedback (``homepage update``).

A model M of a data directory is warm-started and fine-tuned for a small budget on the clicks and
purchases of a feedback table (:mod:`engine.data.feedback`), by default training only LoRA adapters
of the encoder's top layer(s) beside the towers (``lora`` mode), and written as a new model
directory M2 whose manifest names M as its ``parent``.

Training data:
    new interactions: each feedback row with ``clicked`` true is a ``click`` and with ``purchased``
        true a ``purchase`` of its item at ``shown_at`` (a row with both is a click, then a
        purchase), only those at or after ``since`` when given.
    new sequences: per user with new interactions, their history (the data directory's
        interactions before the held-out test part of the split M was evaluated on, so that the
        before/after comparison stays held out) followed by the new interactions in time order.
        Only the new positions are targets; the history is read, not trained on.
    replay: each pass also trains every position of a fresh random sample of ``replay`` x the
        old sequences (every user's history of two items or more), so the update does not forget
        what M learned.
An epoch counts passes as ``homepage train`` does (at least M's ``min_steps_per_epoch`` steps).

The second stage is not retrained: M2's final model is the fine-tuned ranker alone, whatever M's was
(``manifest["stage2"] = {"used": False, "reason": "not retrained by update"}``).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from engine.core.constants import DEFAULT_TEST_DAYS, ITEM_COL, TIME_COL, USER_COL
from engine.core.errors import DataError
from engine.data.feedback import CLICK_COL, PURCHASE_COL, SHOWN_COL, read_feedback
from engine.data.splits import FitData, Split, make_split
from engine.data.tables import Dataset
from engine.evaluation.heldout import EvalContext, evaluate_model
from engine.models.finetuned import FineTunedRecommender
from engine.models.two_tower import (
    ENCODER_MODES,
    Ranker,
    RankerConfig,
    collapse_repeats,
)
from engine.training.job import _plain
from engine.training.loop import _Sequences, _Trainer, build_text_tower

STAGE2_NOT_RETRAINED = {"used": False, "reason": "not retrained by update"}
SHOWN_METRICS = ("ndcg@10", "hr@10", "recall@12", "map@12")  # the before/after lines of `homepage update`


@dataclass(frozen=True)
class UpdateSettings:
    """What ``homepage update`` was asked to do.

    Attributes:
        feedback: the feedback table (``.csv`` or ``.parquet``).
        since: only feedback shown at or after this ISO date/datetime (None: all of it).
        mode: encoder mode of the update (``lora`` by default; ``frozen`` trains the towers only).
        epochs: epochs of fine-tuning.
        max_minutes: budget of the whole update; training stops at the first step past it.
        replay: share of the old sequences drawn anew into every pass, in [0, 1].
    """

    feedback: Path
    since: str | None = None
    mode: str = "lora"
    epochs: int = 2
    max_minutes: float | None = 5.0
    replay: float = 0.2

    def __post_init__(self):
        if self.mode not in ENCODER_MODES:
            raise ValueError(f"mode must be one of {ENCODER_MODES}, got {self.mode!r}")
        if not isinstance(self.epochs, int) or self.epochs < 1:
            raise ValueError(f"epochs must be a whole number of at least 1, got {self.epochs!r}")
        if self.max_minutes is not None and not (math.isfinite(self.max_minutes) and self.max_minutes > 0):
            raise ValueError(f"max_minutes must be above 0, got {self.max_minutes!r}")
        if not 0.0 <= self.replay <= 1.0:
            raise ValueError(f"replay must be a share in [0, 1], got {self.replay!r}")


@dataclass
class UpdateResult:
    """What an update did: the new model directory, its manifest, M's and M2's test metrics (the
    fine-tuned ranker of each), the new interactions and users, and M's manifest."""

    out: Path
    manifest: dict
    before: dict
    after: dict
    new_interactions: int
    new_users: int
    parent_manifest: dict


def parse_since(text: str | None) -> pd.Timestamp | None:
    """``--since``: an ISO date or datetime as a naive UTC timestamp (None stays None).

    Raises:
        DataError: the text is no ISO date.
    """
    if text is None:
        return None
    try:
        stamp = pd.Timestamp(str(text).strip())
    except (ValueError, TypeError) as exc:
        raise DataError(f"--since {text!r} is not an ISO date or datetime (e.g. 2024-04-01)") from exc
    if pd.isna(stamp):
        raise DataError(f"--since {text!r} is not an ISO date or datetime (e.g. 2024-04-01)")
    return stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo is not None else stamp


def new_interactions(feedback: pd.DataFrame, since: pd.Timestamp | None = None, where: str = "the feedback") -> pd.DataFrame:
    """The interactions a feedback table adds: its clicks and purchases, in time order.

    Args:
        feedback: a table as :func:`engine.data.feedback.read_feedback` returns it.
        since: keep only rows shown at or after this time.
        where: how messages name the table.

    Returns:
        user_id, item_id, timestamp, event (``click`` or ``purchase``); a row both clicked and
        purchased gives a click, then a purchase.

    Raises:
        DataError: nothing was clicked or bought (at or after ``since``).
    """
    rows = feedback if since is None else feedback[feedback[SHOWN_COL] >= since]
    parts = []
    for rank, (column, event) in enumerate(((CLICK_COL, "click"), (PURCHASE_COL, "purchase"))):
        if column in rows.columns:
            where_hit = np.flatnonzero(rows[column].to_numpy(dtype=bool))
            hit = rows.iloc[where_hit]
            parts.append(pd.DataFrame({USER_COL: hit[USER_COL].to_numpy(), ITEM_COL: hit[ITEM_COL].to_numpy(), TIME_COL: hit[SHOWN_COL].to_numpy(),
                                       "event": event, "_order": where_hit * 2 + rank}))  # a row's click before its purchase
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=[USER_COL, ITEM_COL, TIME_COL, "event", "_order"])
    if out.empty:
        after = f" shown at or after {since}" if since is not None else ""
        raise DataError(f"{where}: no clicked or purchased item{after} ({len(rows):,} of {len(feedback):,} rows considered): nothing to update from")
    out = out.sort_values([TIME_COL, "_order"], kind="stable").drop(columns="_order")
    return out.reset_index(drop=True)


def _old_sequences(fit: FitData, config: RankerConfig) -> dict[int, np.ndarray]:
    """Every user's history in ``fit`` as the model reads it (runs collapsed), two items or more."""
    seqs = fit.sequences()
    if config.collapse_repeats:
        seqs = {u: collapse_repeats(s) for u, s in seqs.items()}
    return {u: s for u, s in seqs.items() if len(s) >= 2}


def _joined(history: np.ndarray, new: np.ndarray, collapse: bool) -> tuple[np.ndarray, int]:
    """History followed by the new items, and the index of the first new position (at least 1)."""
    seq = np.concatenate([history, new]).astype(np.int64)
    first = len(history)
    if collapse and len(seq) > 1:
        keep = np.r_[True, seq[1:] != seq[:-1]]
        first = int(keep[: len(history)].sum())
        seq = seq[keep]
    return seq, max(first, 1)


@dataclass
class UpdateData:
    """The training sequences of an update.

    Attributes:
        sequences: ``_Sequences`` for the trainer: new sequences keyed ``n_users + j`` (so that a
            user's history can be replayed beside them), old ones by user index; ``train_from``
            names the new sequences' first new position.
        new_keys: keys of the new sequences.
        replay_pool: keys of the old sequences.
        new_items: item indices of the new interactions.
    """

    sequences: _Sequences
    new_keys: np.ndarray
    replay_pool: np.ndarray
    new_items: np.ndarray


def update_data(data: Dataset, split: Split, new: pd.DataFrame, config: RankerConfig) -> UpdateData:
    """Sequences of an update: history + new interactions per user, and the replay pool.

    Args:
        data: the data directory.
        split: the split M was evaluated on; histories are its ``fit_data("test")`` (no test rows).
        new: :func:`new_interactions`.
        config: the model's config (``collapse_repeats``).

    Returns:
        The :class:`UpdateData`.

    Raises:
        DataError: no user has a new interaction that can be a training target (one needs an item
            before it).
    """
    fit = split.fit_data("test")
    histories = fit.sequences()
    old = _old_sequences(fit, config)
    empty = np.zeros(0, dtype=np.int64)
    items = new[ITEM_COL].map(data.item_index).to_numpy(dtype=np.int64)
    seqs: dict[int, np.ndarray] = dict(old)
    train_from: dict[int, int] = {}
    keys = []
    for j, (user, rows) in enumerate(new.groupby(USER_COL, sort=True).indices.items()):
        uidx = data.user_index.get(user)
        history = histories.get(int(uidx), empty) if uidx is not None else empty
        seq, first = _joined(history, items[rows], config.collapse_repeats)
        if len(seq) <= first:  # no new position left to predict (a lone first item, or one run with the history's last)
            continue
        key = data.n_users + j
        seqs[key], train_from[key] = seq, first
        keys.append(key)
    if not keys:
        raise DataError(f"{len(new):,} new interaction(s), but none follows an earlier item of its user: nothing to train on "
                        "(a user needs a history, or two new interactions)")
    new_keys = np.array(keys, dtype=np.int64)
    sequences = _Sequences(fit, seqs, None, new_keys, config.n_events, train_from=train_from)
    return UpdateData(sequences, new_keys, np.array(sorted(old), dtype=np.int64), np.unique(items))


class _ReplayTrainer(_Trainer):
    """The training loop's trainer over an update's sequences: each pass is every new sequence plus
    a fresh sample of ``replay`` x the old ones (drawn with the batch-order generator)."""

    def __init__(self, model: Ranker, tower, data: UpdateData, config: RankerConfig, deadline: float, replay: float):
        super().__init__(model, tower, data.sequences, config, deadline)
        self.new_keys, self.pool = data.new_keys, data.replay_pool
        self.n_replay = min(len(self.pool), max(1, round(replay * len(self.pool)))) if replay > 0 and len(self.pool) else 0

    def pass_users(self) -> np.ndarray:
        """The new sequences and this pass's replay sample."""
        if not self.n_replay:
            return self.new_keys
        return np.concatenate([self.new_keys, self.rng.choice(self.pool, self.n_replay, replace=False)])


def warm_start(parent: Ranker, mode: str) -> Ranker:
    """A copy of a loaded model with every weight and buffer, its config's encoder mode set to ``mode``
    (``frozen`` for a model without text)."""
    config = dataclasses.replace(parent.config, mode=mode if parent.config.use_text else "frozen")
    model = Ranker(config, parent.n_items, text_dim=parent.text_table.shape[1])
    model.load_state_dict(parent.state_dict())
    return model


def heldout_metrics(model: Ranker, vectors: np.ndarray, split: Split, ctx: EvalContext, mask_history: bool) -> dict:
    """Held-out test metrics of the fine-tuned ranker with the given item table (histories: train + valid)."""
    rec = FineTunedRecommender(model, vectors).fit(split.fit_data("test"))
    return _plain(evaluate_model(rec, ctx, mask_history)[0])


def update_model(
    data: Dataset,
    model_dir: str | Path,
    out: str | Path,
    settings: UpdateSettings,
    *,
    log: Callable[[str], None] | None = None,
) -> UpdateResult:
    """Warm-start from ``model_dir``, fine-tune on the feedback's new interactions, judge M and M2 on
    M's held-out test split, and write M2 to ``out`` (staged, then renamed into place).

    Nothing is written before the model is: a foreign model, unknown users or items in the
    feedback, no new interactions or a failed training leave ``out`` as it was.

    Args:
        data: the data directory M was trained on (checked by fingerprint).
        model_dir: M.
        out: M2's directory (replaced whole if it exists).
        settings: the feedback and the update's budget (:class:`UpdateSettings`).
        log: called with a line per epoch.

    Returns:
        The :class:`UpdateResult`.

    Raises:
        ModelError: M is damaged or was trained on other data.
        DataError: the feedback is invalid, names unknown users or items, or adds nothing to train on.
    """
    start = time.perf_counter()
    deadline = start + settings.max_minutes * 60 if settings.max_minutes else math.inf
    parent = Ranker.from_pretrained(model_dir, data)
    since = parse_since(settings.since)
    new = new_interactions(read_feedback(settings.feedback, data), since, str(settings.feedback))
    parent_manifest = parent.manifest
    split = make_split(data, parent_manifest.get("protocol", "loo"), parent_manifest.get("test_days") or DEFAULT_TEST_DAYS)
    mask = bool(parent_manifest.get("masked_history", True))

    model = warm_start(parent, settings.mode)
    config = model.config
    torch.manual_seed(config.seed)
    found = update_data(data, split, new, config)
    model.warm[torch.from_numpy(found.new_items)] = 1.0  # items with new interactions get their id embeddings
    tower = None
    if config.use_text and config.mode != "frozen":
        tower = build_text_tower(data, config)
        tower.anchor(model.text_table)  # start from M's tuned text vectors, not the pretrained ones
    trainer = _ReplayTrainer(model, tower, found, config, deadline, settings.replay)
    history, stopped_by = [], "max_epochs"
    for epoch in range(1, settings.epochs + 1):
        loss, out_of_time = trainer.epoch()
        history.append({"epoch": epoch, "step": trainer.steps, "loss": loss, "seconds": round(time.perf_counter() - start, 1),
                        "events_per_second": trainer.last_events_per_second})
        if log:
            log(f"update epoch {epoch}/{settings.epochs}: loss {loss:.4f}, {trainer.steps} steps, {history[-1]['seconds']:.0f}s")
        if out_of_time:
            stopped_by = "max_minutes"
            break
    model.eval()
    train_seconds = round(time.perf_counter() - start, 1)

    ctx = EvalContext.build(split, "test")
    before = heldout_metrics(parent, parent.saved_item_vectors, split, ctx, mask)
    with torch.no_grad():
        after = heldout_metrics(model, model.item_vectors().numpy(), split, ctx, mask)
    seconds = round(time.perf_counter() - start, 1)
    manifest = {
        "protocol": split.protocol,
        "test_days": split.test_days,
        "masked_history": mask,
        "split": split.describe(),
        "training": {
            "seconds": train_seconds, "best_epoch": len(history), "best_valid_ndcg": None, "epochs": len(history),
            "steps": trainer.steps, "stopped_by": stopped_by, "refit": "off",
            "events_per_second": round(trainer.events / trainer.seconds, 1) if trainer.seconds > 0 else 0.0,
            "new_sequences": len(found.new_keys), "replay_sequences_per_pass": trainer.n_replay, "history": history,
        },
        "final_model": "finetuned",
        "metrics": after,
        "metrics_by_model": {"finetuned": after},
        "parent_metrics": before,
        "stage2": dict(STAGE2_NOT_RETRAINED),
        "text": bool(config.use_text),
        "parent": str(model_dir),
        "update": {"feedback": str(settings.feedback), "since": settings.since, "new_interactions": len(new),
                   "replay": settings.replay, "seconds": seconds, "mode": config.mode},
    }
    out = model.save_pretrained(out, data, manifest)
    return UpdateResult(Path(out), manifest, before, after, len(new), int(new[USER_COL].nunique()), parent_manifest)
