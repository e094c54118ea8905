"""Training loop of the ranker: next-item softmax over sampled and in-batch negatives, early stopping."""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from engine.core.constants import DEFAULT_K
from engine.core.memory import require
from engine.data.tables import Dataset
from engine.evaluation.heldout import EvalContext, evaluate_model
from engine.data.splits import FitData, Split
from engine.models.two_tower import Ranker, RankerConfig, TextTower
from engine.models.finetuned import FineTunedRecommender
from engine.models.text_encoder import default_encoder_path, item_texts, load_encoder


@dataclass
class TrainResult:
    """What happened in training, for the manifest and the terminal."""

    best_epoch: int = 0
    best_valid_ndcg: float = 0.0
    epochs: int = 0
    steps: int = 0
    seconds: float = 0.0
    stopped_by: str = "max_epochs"
    refit: str = "off"  # whether a final model was trained on train + validation (config.refit)
    # Training throughput: target positions trained on (each one interaction predicted from the items
    # before it: the rows of the loss, summed over all processes of a data-parallel run) per second
    # spent in training passes (forward, backward, optimiser step and the text-table refresh; not
    # validation, data loading or encoder set-up), over every pass of the run, refit included.
    events_per_second: float = 0.0
    history: list[dict] = field(default_factory=list)
    # The early-stopped model, trained on training data only (the returned one when there is no
    # refit): stage 2 learns from its scores on the validation window, which the refit model has seen.
    valid_model: Ranker | None = field(default=None, repr=False, compare=False)


def _event_codes(frame) -> tuple[dict[int, np.ndarray] | None, int]:
    """Per-user event codes aligned with the training sequences of ``frame``, when it has events."""
    if "event" not in frame.columns:
        return None, 0
    event = frame["event"]
    if not isinstance(event.dtype, pd.CategoricalDtype):
        event = event.astype(str).astype("category")
    # Codes in the sorted order of the names present (np.unique's order), from the categorical's
    # codes: np.unique over the strings took about a minute at a million users.
    raw = event.cat.codes.to_numpy().astype(np.int64)
    present = np.flatnonzero(np.bincount(raw, minlength=len(event.cat.categories)))
    names = np.asarray(event.cat.categories.astype(str))[present]
    remap = np.zeros(len(event.cat.categories), dtype=np.int64)
    remap[present[np.argsort(names)]] = np.arange(len(present))
    codes = remap[raw]
    order = np.argsort(frame["uidx"].to_numpy(), kind="stable")
    users = frame["uidx"].to_numpy()[order]
    ev = codes[order]
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    return {int(users[s]): ev[s:e] for s, e in zip(starts, np.r_[starts[1:], len(users)])}, len(names)


def build_text_tower(data: Dataset, config: RankerConfig) -> TextTower:
    """Tokenise every item's text once and wrap the pretrained encoder."""
    tokenizer, encoder = load_encoder(config.encoder_path)
    if config.mode != "full":  # top/lora/frozen keep the lower layers' hidden states of every item, float16
        require(f"the text cache of {len(data.items):,} items", 2 * len(data.items) * config.text_max_len * encoder.config.hidden_size,
                "train with --mode full (no cache, slower), or with a shorter text_max_len")
    tok = tokenizer(item_texts(data.items), padding="max_length", truncation=True, max_length=config.text_max_len, return_tensors="pt")
    # Trim padding columns no item uses: cheaper layers.
    width = int(tok["attention_mask"].sum(1).max())
    tower = TextTower(encoder, tok["input_ids"][:, :width], tok["attention_mask"][:, :width], config.mode, config.top_layers)
    tower.build_cache(folder=data.root / ".cache", encoder_name=str(config.encoder_path or default_encoder_path()))
    return tower


def _window(n: int, max_len: int, rng: np.random.Generator, first_target: int = 0) -> tuple[int, int]:
    """A training window [start, end) of a sequence of length n: the latest one, or half the time a
    random earlier crop when the sequence is longer than the user tower reads.

    A crop keeps at least one target at index ``first_target`` or later (0: any crop).
    """
    end = n
    if n > max_len + 1 and rng.random() < 0.5:
        end = int(rng.integers(max(max_len + 1, first_target + 1), n + 1))
    return max(0, end - max_len - 1), end


def svd_item_factors(matrix, dim: int, seed: int) -> np.ndarray:
    """Item factors V sqrt(S) of a rank-``dim`` SVD of the user x item matrix, scaled to std 0.1.

    Without text, random id embeddings learn slowly (each item is a target only a few times per
    epoch); co-occurrence factors give them the structure text vectors give the text model.
    """
    from scipy.sparse.linalg import svds

    k = max(1, min(dim, min(matrix.shape) - 1))
    rng = np.random.default_rng(seed)
    _, s, vt = svds(matrix.astype(np.float64), k=k, v0=rng.standard_normal(min(matrix.shape)))
    factors = np.zeros((matrix.shape[1], dim))
    factors[:, :k] = vt.T * np.sqrt(s)
    scale = factors[:, :k].std()
    return (factors * (0.1 / scale if scale > 0 else 1.0)).astype(np.float32)


def pca_projection(text: np.ndarray, dim: int) -> np.ndarray:
    """(dim, H) rows = the top right singular vectors of the (uncentred) text table.

    With W from here, W t_i . W t_j is t_i . t_j restricted to the table's main directions, so a
    projection that starts there starts at the zero-shot similarities instead of a random view.
    """
    _, _, vt = np.linalg.svd(text.astype(np.float64), full_matrices=False)
    out = np.zeros((dim, text.shape[1]))
    k = min(dim, vt.shape[0])
    out[:k] = vt[:k]
    return out.astype(np.float32)


def _first_occurrence(seq: np.ndarray) -> np.ndarray:
    """True where an item appears for the first time in the sequence."""
    first = np.zeros(len(seq), dtype=bool)
    _, idx = np.unique(seq, return_index=True)
    first[idx] = True
    return first


@dataclass
class _Sequences:
    """Training sequences of one fit: per-user item sequences (two items or more) and event codes.

    ``train_from`` (``homepage update``): for the sequences it names, the index of the first position
    trained on as a target; earlier positions are read as history only. None: every position trains.
    """

    fit: FitData
    seqs: dict[int, np.ndarray]
    events: dict[int, np.ndarray] | None
    users: np.ndarray
    n_events: int
    train_from: dict[int, int] | None = None


def _sequences(data: Dataset, fit: FitData, config: RankerConfig) -> _Sequences:
    seqs = fit.sequences()
    events, n_events = _event_codes(fit.interactions) if config.event_head else (None, 0)
    if config.collapse_repeats:
        keep = {u: np.r_[True, s[1:] != s[:-1]] for u, s in seqs.items()}
        seqs = {u: s[keep[u]] for u, s in seqs.items()}
        events = {u: e[keep[u]] for u, e in events.items()} if events else None
    seqs = {u: s for u, s in seqs.items() if len(s) >= 2}
    users = np.array(sorted(seqs), dtype=np.int64)
    if len(users) == 0:
        raise ValueError(f"{data.root}: no user has two training interactions; nothing to learn from")
    return _Sequences(fit, seqs, events, users, n_events)


def _blank_model(data: Dataset, config: RankerConfig, tower: TextTower | None) -> Ranker:
    """The ranker's modules for this data and tower, as constructed (before :func:`_new_model`'s
    initialisation): what a saved state dict is loaded into."""
    return Ranker(config, data.n_items, text_dim=tower.encoder.config.hidden_size if tower is not None else 1)


def _new_model(data: Dataset, fit: FitData, config: RankerConfig, tower: TextTower | None) -> Ranker:
    """A freshly initialised ranker whose warm items are those of ``fit``."""
    model = _blank_model(data, config, tower)
    model.warm.copy_(torch.from_numpy((fit.item_counts() > 0).astype(np.float32))[:, None])
    if model.item_emb is not None and not config.use_text and config.id_init == "svd":
        model.item_emb.weight.data.copy_(torch.from_numpy(svd_item_factors(fit.matrix(), config.dim, config.seed)))
    if tower is not None:
        model.text_table.copy_(tower.encode_all())
        if config.text_init == "pca":
            model.text_proj.weight.data.copy_(torch.from_numpy(pca_projection(model.text_table.numpy(), config.dim)))
            model.text_proj.bias.data.zero_()
    return model


@dataclass
class Plateau:
    """When training stops: ``patience`` trained epochs in a row without progress.

    Progress is a validation NDCG@10 above the best trained epoch's so far by ``min_gain`` (a
    share): a gain within validation noise does not count, so a plateau ends the run instead of
    creeping on (the better model is still kept). Epoch 0, the untrained model, never counts: a
    strong start (the zero-shot ranking, SVD-initialised ids) may take training several epochs to
    pass, and is kept if it is never passed.
    """

    patience: int
    min_gain: float
    best: float = -math.inf
    bad: int = 0

    def update(self, epoch: int, ndcg: float) -> None:
        if epoch == 0:
            return
        progressed = ndcg > self.best * (1.0 + self.min_gain)
        self.best = max(self.best, ndcg)
        self.bad = 0 if progressed else self.bad + 1

    @property
    def stop(self) -> bool:
        return self.bad >= self.patience


class Collective:
    """The processes of one data-parallel training run and how they agree; this base is a run of one
    process, where every operation is the identity.

    ``engine.scale.train`` gives the torch.distributed one (one process per Ray Train worker). Every
    method is a collective operation: every process calls it at the same point of the run, in the
    same order, so the replicas stay in lockstep.
    """

    rank: int = 0
    world: int = 1

    def average_grads(self, params: list[torch.nn.Parameter]) -> None:
        """Replace each parameter's gradient by its mean over the processes."""

    def any(self, flag: bool) -> bool:
        """Whether ``flag`` is true in any process."""
        return flag

    def sum(self, values: list[float]) -> list[float]:
        """Element-wise sums over the processes."""
        return values

    def broadcast(self, value):
        """Process 0's value (a small picklable object), in every process."""
        return value

    def copy_from_first(self, tensors: list[torch.Tensor]) -> None:
        """Overwrite ``tensors`` in place with process 0's values."""


class _Trainer:
    """One model, its optimiser and the passes over one fit's sequences.

    With a :class:`Collective` of several processes this is one replica of a data-parallel run:
    every process shuffles the same batch list (the same seed; its own generator for what a step
    draws: windows, negatives), trains on its shard of it (:meth:`epoch_batches`) and averages the
    gradients before each optimiser step, so the replicas keep identical weights.
    """

    def __init__(self, model: Ranker, tower: TextTower | None, data: _Sequences, config: RankerConfig, deadline: float,
                 collective: Collective | None = None):
        self.model, self.tower, self.data, self.config, self.deadline = model, tower, data, config, deadline
        self.collective = collective or Collective()
        self.rng = np.random.default_rng(config.seed)  # batch order: the same sequence in every process
        # What a step draws: one process keeps the one generator it always had (the same numbers as
        # before data-parallel training existed); replicas draw apart, or their shards would crop
        # the same windows and share negatives.
        self.step_rng = self.rng if self.collective.world == 1 else np.random.default_rng([config.seed, self.collective.rank])
        self.params = [{"params": [p for p in model.parameters() if p.requires_grad], "lr": config.lr}]
        self.enc_params = tower.trainable() if tower is not None else []
        if self.enc_params:
            self.params.append({"params": self.enc_params, "lr": config.lora_lr if config.mode == "lora" else config.encoder_lr})
        self.optim = torch.optim.AdamW(self.params, weight_decay=config.weight_decay)
        self.steps = 0
        self.events = 0  # target positions trained on, all processes (see TrainResult.events_per_second)
        self.seconds = 0.0  # spent in epoch()
        self.last_events, self.last_seconds = 0, 0.0  # of the latest epoch

    def pass_users(self) -> np.ndarray:
        """The sequences (keys of ``data.seqs``) of one pass: every training user. A subclass may
        draw them anew each pass (``engine.training.update`` mixes in a replay sample)."""
        return self.data.users

    def bucketed_batches(self) -> list[np.ndarray]:
        """One pass over the users in batches of similar history length, in random order.

        A batch is padded to its longest window, so mixing a 50-item history with 5-item ones makes
        the user tower run mostly on padding; users are shuffled, then sorted by window length
        (stable, so equal lengths stay shuffled), cut into batches, and the batches shuffled.
        """
        d, size = self.data, self.config.batch_size
        users = self.rng.permutation(self.pass_users())
        lengths = np.array([min(len(d.seqs[int(u)]), self.config.max_len + 1) for u in users])
        users = users[np.argsort(lengths, kind="stable")]
        batches = [users[b : b + size] for b in range(0, len(users), size)]
        return [batches[i] for i in self.rng.permutation(len(batches))]

    def epoch_batches(self) -> list[np.ndarray]:
        """This process's batches of one epoch: enough passes over the users for
        ``min_steps_per_epoch`` optimiser steps, and of their batches every ``world``-th one from
        ``rank`` on.

        Every process draws the same passes, so the shards are disjoint and together cover the
        epoch. A batch count that is no multiple of ``world`` is topped up with the epoch's first
        batches (as torch's DistributedSampler repeats samples): every process takes the same number
        of steps, each one averaging gradients with all the others.
        """
        config, rank, world = self.config, self.collective.rank, self.collective.world
        # Small data sets get several passes per epoch so validation is not run every few steps
        # (optimiser steps: with several processes each one's share of the batches): passes are
        # added until the epoch has min_steps_per_epoch * world batches.
        batches = self.bucketed_batches()
        while batches and len(batches) < config.min_steps_per_epoch * world:
            batches += self.bucketed_batches()
        if world == 1:
            return batches
        batches += batches[: (-len(batches)) % world]
        return batches[rank::world]

    def epoch(self) -> tuple[float, bool]:
        """One epoch; returns (mean loss over every process's steps, whether the deadline cut it short)."""
        model, tower, d, config, collective = self.model, self.tower, self.data, self.config, self.collective
        start = time.perf_counter()
        model.train()
        if tower is not None:
            tower.train()
        losses, out_of_time, events = [], False, 0
        trained = [p for g in self.params for p in g["params"]]
        for batch in self.epoch_batches():
            stats: dict = {}
            train_from = [d.train_from.get(int(u), 0) for u in batch] if d.train_from else None
            loss = _step(model, tower, [d.seqs[int(u)] for u in batch], [d.events[int(u)] if d.events else None for u in batch], config, self.step_rng, stats,
                         train_from=train_from)
            self.optim.zero_grad(set_to_none=True)
            loss.backward()
            collective.average_grads(trained)  # the model's and the encoder's trainable layers alike
            torch.nn.utils.clip_grad_norm_(trained, 1.0)
            self.optim.step()
            losses.append(float(loss.detach()))
            events += stats["positions"]
            self.steps += 1
            if collective.any(time.perf_counter() > self.deadline):  # all stop at the same step
                out_of_time = True
                break
        if tower is not None and self.enc_params:
            model.text_table.copy_(tower.encode_all())  # refresh the table with the tuned encoder
        loss_sum, n_losses, events = collective.sum([float(np.sum(losses)), float(len(losses)), float(events)])
        self.last_events, self.last_seconds = int(events), time.perf_counter() - start
        self.events += self.last_events
        self.seconds += self.last_seconds
        return loss_sum / n_losses if n_losses else float("nan"), out_of_time

    @property
    def last_events_per_second(self) -> float:
        """Events per second of the latest epoch (see TrainResult.events_per_second)."""
        return round(self.last_events / self.last_seconds, 1) if self.last_seconds > 0 else 0.0


def train_ranker(
    data: Dataset,
    split: Split,
    config: RankerConfig,
    *,
    max_minutes: float | None = None,
    progress: Callable[[dict], None] | None = None,
    collective: Collective | None = None,
) -> tuple[Ranker, TextTower | None, TrainResult]:
    """Fine-tune on the split's training sequences, early-stopping on validation NDCG@10.

    With ``config.refit`` a second model is then trained from the same start on train + validation
    for the best epoch count (as EASE's lambda is chosen on validation and refit), when the budget
    left allows it; otherwise the early-stopped model is returned.

    With a ``collective`` of several processes (``engine.scale.train``, one per Ray Train worker),
    this is one replica of a data-parallel run: every process builds the same model from the same
    seed, trains on its shard of each epoch and averages gradients every step; process 0 validates
    and the others take its NDCG, so early stopping and the refit decision are the same everywhere.

    Returns:
        (the best model, its text tower or None, a summary). ``model.text_table`` holds the text
        vectors of the best epoch.
    """
    collective = collective or Collective()
    torch.manual_seed(config.seed)
    start_time = time.perf_counter()
    deadline = start_time + max_minutes * 60 if max_minutes else math.inf
    train = _sequences(data, split.fit_data("valid"), config)  # train only: validation is for early stopping
    config = dataclasses.replace(config, n_events=train.n_events)  # the model is built for the data's event types

    tower = build_text_tower(data, config) if config.use_text else None
    enc_start = [p.detach().clone() for p in tower.trainable()] if tower is not None else []
    model = _new_model(data, train.fit, config, tower)
    trainer = _Trainer(model, tower, train, config, deadline, collective)
    if collective.world > 1:  # replicas start from process 0's weights (as DDP does), whatever the seeds gave
        collective.copy_from_first([*model.parameters(), *model.buffers(), *trainer.enc_params])

    valid_ctx = EvalContext.build(split, "valid") if collective.rank == 0 else None
    result = TrainResult()
    best_state, best_enc = None, None
    plateau = Plateau(config.patience, config.min_gain)

    def validate(epoch: int) -> float:
        nonlocal best_state, best_enc
        ndcg = 0.0
        if collective.rank == 0:
            rec = FineTunedRecommender(model, model.item_vectors().detach().numpy()).fit(train.fit)
            ndcg = evaluate_model(rec, valid_ctx)[0][f"ndcg@{DEFAULT_K}"] if len(valid_ctx.users) else 0.0
        ndcg = collective.broadcast(ndcg)  # every replica decides on process 0's number
        plateau.update(epoch, ndcg)
        if best_state is None or ndcg > result.best_valid_ndcg:
            result.best_valid_ndcg, result.best_epoch = ndcg, epoch
            best_state = copy.deepcopy(model.state_dict())
            best_enc = [p.detach().clone() for p in trainer.enc_params]
        return ndcg

    def report(entry: dict) -> None:
        result.history.append(entry)
        if progress:
            progress(entry)

    # Epoch 0 is the untrained model: with ``user_residual`` and a PCA projection that is the
    # zero-shot ranking, which training then has to beat on validation to replace.
    report({"epoch": 0, "step": 0, "loss": float("nan"), "valid_ndcg@10": validate(0), "seconds": round(time.perf_counter() - start_time, 1),
            "events_per_second": float("nan")})
    for epoch in range(1, config.max_epochs + 1):
        loss, out_of_time = trainer.epoch()
        report({"epoch": epoch, "step": trainer.steps, "loss": loss, "valid_ndcg@10": validate(epoch), "seconds": round(time.perf_counter() - start_time, 1),
                "events_per_second": trainer.last_events_per_second})
        if out_of_time:
            result.stopped_by = "max_minutes"
            break
        if plateau.stop:
            result.stopped_by = "early_stopping"
            break
    model.load_state_dict(best_state)
    for p, saved in zip(trainer.enc_params, best_enc or []):
        p.data.copy_(saved)
    result.epochs, result.steps = len(result.history) - 1, trainer.steps
    result.valid_model = model
    trainers = [trainer]

    if config.refit:
        refit = _refit(data, split, config, tower, enc_start, result, deadline, start_time, report, collective, trainers)
        if refit is not None:
            model = refit
        elif tower is not None:  # the refit was abandoned: the early-stopped encoder and table back
            for p, saved in zip(trainer.enc_params, best_enc or []):
                p.data.copy_(saved)
    model.eval()
    result.seconds = round(time.perf_counter() - start_time, 1)
    seconds = sum(t.seconds for t in trainers)
    result.events_per_second = round(sum(t.events for t in trainers) / seconds, 1) if seconds > 0 else 0.0
    return model, tower, result


def _refit(
    data: Dataset, split: Split, config: RankerConfig, tower: TextTower | None, enc_start: list[torch.Tensor],
    result: TrainResult, deadline: float, start_time: float, report: Callable[[dict], None],
    collective: Collective | None = None, trainers: list[_Trainer] | None = None,
) -> Ranker | None:
    """Train again from the start on train + validation for ``result.best_epoch`` epochs.

    Returns None (and says why in ``result.refit``) when the budget left is less than the early
    stopped run needed to reach its best epoch, or runs out during the refit. The refit's trainer
    is appended to ``trainers`` (for the events per second).
    """
    collective = collective or Collective()
    best = next(e for e in result.history if e["epoch"] == result.best_epoch)
    needed = best["seconds"] - result.history[0]["seconds"]  # training time to the best epoch
    if collective.any(time.perf_counter() + needed > deadline):  # skipped by all when one process is short
        result.refit = f"skipped: the budget left is under the {needed:.0f} s it needs"
        return None
    data_all = _sequences(data, split.fit_data("test"), config)
    if data_all.n_events != config.n_events:
        result.refit = "skipped: the validation days have event types training did not"
        return None
    torch.manual_seed(config.seed)
    for p, saved in zip(tower.trainable() if tower is not None else [], enc_start):
        p.data.copy_(saved)  # the pretrained encoder again
    model = _new_model(data, data_all.fit, config, tower)
    trainer = _Trainer(model, tower, data_all, config, deadline, collective)
    if collective.world > 1:
        collective.copy_from_first([*model.parameters(), *model.buffers(), *trainer.enc_params])
    if trainers is not None:
        trainers.append(trainer)
    for epoch in range(1, result.best_epoch + 1):
        loss, out_of_time = trainer.epoch()
        report({"epoch": epoch, "refit": True, "refit_epochs": result.best_epoch, "step": trainer.steps, "loss": loss, "valid_ndcg@10": float("nan"), "seconds": round(time.perf_counter() - start_time, 1),
                "events_per_second": trainer.last_events_per_second})
        if out_of_time and epoch < result.best_epoch:
            result.refit = f"abandoned: the budget ran out after {epoch} of {result.best_epoch} epochs"
            return None
    result.refit = f"done: {result.best_epoch} epochs on train + validation"
    return model


def _step(model: Ranker, tower: TextTower | None, seqs: list[np.ndarray], events: list, config: RankerConfig, rng: np.random.Generator,
          stats: dict | None = None, train_from: list[int] | None = None) -> torch.Tensor:
    """Loss of one batch: every position predicts its next item against shared negatives.

    ``stats``, when given, gets ``"positions"``: the target positions in the loss (its rows).
    ``train_from``, when given, holds per sequence the index of its first target position: earlier
    items are read as history only (``homepage update`` trains on the new interactions).
    """
    firsts = train_from if train_from is not None else [0] * len(seqs)
    spans = [_window(len(s), config.max_len, rng, first) for s, first in zip(seqs, firsts)]
    width = max(end - start - 1 for start, end in spans)
    inp = np.zeros((len(seqs), width), dtype=np.int64)
    tgt = np.zeros_like(inp)
    valid = np.zeros(inp.shape, dtype=bool)
    use_events = model.event_head is not None and events[0] is not None
    ev = np.zeros_like(inp)
    for row, (s, (start, end)) in enumerate(zip(seqs, spans)):
        n = end - start - 1
        inp[row, :n], tgt[row, :n], valid[row, :n] = s[start : end - 1], s[start + 1 : end], True
        if not config.train_on_repeats:
            valid[row, :n] = _first_occurrence(s)[start + 1 : end]
        if train_from is not None:
            valid[row, :n] &= np.arange(start + 1, end) >= firsts[row]
        if use_events:
            ev[row, :n] = events[row][start + 1 : end]  # event type of each target
    if not valid.any():  # a batch of pure repeats: learn from them rather than from nothing
        for row, (start, end) in enumerate(spans):
            valid[row, : end - start - 1] = np.arange(start + 1, end) >= firsts[row]
    inp_t, tgt_t, valid_t = map(torch.from_numpy, (inp, tgt, valid))

    keep = None
    if config.id_dropout > 0 and model.text_proj is not None:
        keep = torch.from_numpy((rng.random((model.n_items, 1)) >= config.id_dropout).astype(np.float32))  # (I, 1)
    table = model.item_vectors(id_keep=keep)  # (I, D), gradient into projection and id embeddings
    if tower is not None and tower.trainable():
        # Freshly encoded targets of this batch replace their table rows, so the gradient reaches
        # the encoder. Replace, not add: adding a zero-valued fresh copy (straight-through) would
        # count these rows twice in the projection's gradient, and their extra gradient on the
        # projection bias (which the softmax cancels over the full table) only grew the bias.
        # On the 18k-item H&M week the loss after 120 steps was 5.97 that way, 5.61 this way.
        targets = np.unique(tgt[valid])
        chosen = torch.from_numpy(rng.choice(targets, size=min(len(targets), config.encoder_items_per_step), replace=False))
        fresh_text = tower(chosen)  # (S, H)
        table = table.index_copy(0, chosen, model.item_vectors(chosen, fresh_text=fresh_text, id_keep=None if keep is None else keep[chosen]))  # (I, D)
        # Write the fresh text vectors back so the table tracks the encoder between full refreshes
        # (the gathered copy above is what this step's graph uses).
        model.text_table[chosen] = fresh_text.detach()
    states = model.user_states(table[inp_t])  # (B, L, D)
    h = states[valid_t]  # (P, D)
    t = tgt_t[valid_t]  # (P,)
    if stats is not None:
        stats["positions"] = len(t)
    if config.n_negatives <= 0:  # full softmax: every item is a candidate
        cand = torch.arange(model.n_items)  # (I,)
    else:
        last = tgt_t[torch.arange(len(seqs)), torch.from_numpy(np.array([end - start - 2 for start, end in spans]))]  # (B,) in-batch targets
        negatives = torch.from_numpy(rng.integers(0, model.n_items, size=config.n_negatives))
        cand = torch.cat([negatives, last])  # (K,)
    pos = (h * table[t]).sum(-1, keepdim=True)  # (P, 1)
    neg = h @ table[cand].T  # (P, K)
    neg = neg.masked_fill(cand[None, :] == t[:, None], float("-inf"))  # accidental hits
    logits = torch.cat([pos, neg], dim=1) / config.temperature
    loss = F.cross_entropy(logits, torch.zeros(len(t), dtype=torch.long))
    if use_events:
        loss = loss + 0.2 * F.cross_entropy(model.event_head(h), torch.from_numpy(ev)[valid_t])
    return loss
