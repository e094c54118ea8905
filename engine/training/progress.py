"""Wording of training progress (stage, epochs, loss, validation NDCG, time left) from train_ranker's entries."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

REFIT_STAGE = "Refit on train + validation"


@dataclass(frozen=True)
class Progress:
    """Where a training run stands after its latest progress entry.

    Attributes:
        refit: whether the run is in its refit on train + validation.
        epoch: epochs trained in the current stage (0: the untrained model was scored).
        total: the stage's epoch bound (``max_epochs``, or the refit's epoch count).
        fraction: share of the stage done, in [0, 1]: the larger of the epoch share and the budget share.
        seconds: seconds since training started.
        remaining: estimated seconds left in the stage, or None when nothing tells yet.
        budget_bound: whether the time budget, not the epoch bound, ends the stage first.
        text: the one-line label (see :func:`progress_label`).
    """

    refit: bool
    epoch: int
    total: int
    fraction: float
    seconds: float
    remaining: float | None
    budget_bound: bool
    text: str


def format_duration(seconds: float) -> str:
    """``m:ss`` under an hour, ``h:mm:ss`` above (rounded up to whole seconds, never negative)."""
    s = max(0, math.ceil(seconds))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _stage_start(entries: Sequence[Mapping]) -> float:
    """When the current stage began, in seconds since the start: the untrained model's score (epoch 0)
    for training, the last training entry for the refit."""
    if entries[-1].get("refit"):
        train = [e for e in entries if not e.get("refit")]
        return float(train[-1]["seconds"]) if train else 0.0
    zero = next((e for e in entries if e["epoch"] == 0 and not e.get("refit")), None)
    return float(zero["seconds"]) if zero is not None else 0.0


def remaining_seconds(entries: Sequence[Mapping], max_epochs: int, max_minutes: float | None = None) -> tuple[float | None, bool]:
    """Seconds left in the current stage: min(the stage's remaining epochs at the observed pace, the budget left).

    The pace is the stage's training time per epoch so far (training: from the untrained model's
    score, epoch 0; refit: from the last training entry). ``seconds`` in the entries counts from the
    start of training, which is also when the budget's clock starts.

    Args:
        entries: progress entries so far, oldest first (``{"epoch", "loss", "valid_ndcg@10", "seconds"}``,
            plus ``"refit": True`` and ``"refit_epochs"`` in the refit).
        max_epochs: the training stage's epoch bound.
        max_minutes: the time budget of the whole run, or None.

    Returns:
        (seconds left or None when neither a pace nor a budget is known yet, whether the budget is what ends the stage).
    """
    if not entries:
        return (max_minutes * 60 if max_minutes else None), bool(max_minutes)
    last = entries[-1]
    begun = _stage_start(entries)
    total = int(last.get("refit_epochs") or 0) if last.get("refit") else int(max_epochs)
    done = int(last["epoch"])
    by_epochs = None
    if done > 0:
        pace = max(0.0, float(last["seconds"]) - begun) / done
        by_epochs = pace * max(0, total - done)
    elif total <= 0:
        by_epochs = 0.0
    budget = max(0.0, max_minutes * 60 - float(last["seconds"])) if max_minutes else None
    if by_epochs is None:
        return budget, budget is not None
    if budget is not None and budget < by_epochs:
        return budget, True
    return by_epochs, False


def describe_progress(entries: Sequence[Mapping], max_epochs: int, max_minutes: float | None = None, refit_follows: bool = False) -> Progress:
    """The state and label of a training run after its latest progress entry.

    Args:
        entries: progress entries so far, oldest first (at least one).
        max_epochs: the training stage's epoch bound (``RankerConfig.max_epochs``).
        max_minutes: the run's time budget, or None.
        refit_follows: the training stage will be followed by a refit on train + validation
            (``RankerConfig.refit``): the time left then covers training only, and says so.

    Returns:
        The :class:`Progress`, whose ``text`` is e.g. ``Epoch 3/60 · loss 5.123 · validation NDCG@10 0.0412 ·
        1:05 elapsed · about 7:08 left (time budget)``.

    Raises:
        ValueError: no entries.
    """
    if not entries:
        raise ValueError("no progress entries yet")
    last = entries[-1]
    refit = bool(last.get("refit"))
    epoch = int(last["epoch"])
    total = int(last.get("refit_epochs") or epoch) if refit else int(max_epochs)
    seconds = float(last.get("seconds") or 0.0)
    remaining, budget_bound = remaining_seconds(entries, max_epochs, max_minutes)
    share = epoch / total if total > 0 else 1.0
    if max_minutes:
        begun = _stage_start(entries)
        budget_left_at_start = max(1e-9, max_minutes * 60 - begun)
        share = max(share, (seconds - begun) / budget_left_at_start)
    fraction = min(1.0, max(0.0, share))

    parts = [f"{REFIT_STAGE}, epoch {epoch}/{total}" if refit else f"Epoch {epoch}/{total}" + (" (untrained model)" if epoch == 0 else "")]
    if _finite(last.get("loss")):  # epoch 0, the untrained model, has no loss
        parts.append(f"loss {float(last['loss']):.3f}")
    if not refit and _finite(last.get("valid_ndcg@10")):  # refit epochs have no validation left to score
        parts.append(f"validation NDCG@10 {float(last['valid_ndcg@10']):.4f}")
    parts.append(f"{format_duration(seconds)} elapsed")
    if remaining is not None:
        if epoch == 0 and not refit:
            left = f"at most {format_duration(remaining)} left"
        else:
            left = f"about {format_duration(remaining)} left"
        if budget_bound:
            left += " (time budget)"
        elif refit_follows and not refit:
            left += " before the refit"
        parts.append(left)
    return Progress(refit, epoch, total, fraction, seconds, remaining, budget_bound, " · ".join(parts))


def progress_label(entries: Sequence[Mapping], max_epochs: int, max_minutes: float | None = None, refit_follows: bool = False) -> str:
    """The one-line label of :func:`describe_progress` (shared by the CLI's bar and the dashboard's)."""
    return describe_progress(entries, max_epochs, max_minutes, refit_follows).text


def finished_label(epochs: int, seconds: float, stopped_by: str) -> str:
    """The label once training is over, e.g. ``Done in 1:05: 12 epochs, stopped by early stopping``."""
    return f"Done in {format_duration(seconds)}: {epochs} epochs, stopped by {stopped_by.replace('_', ' ')}"
