"""The training-progress label shared by `homepage train` and the dashboard, on hand-made progress entries."""

from __future__ import annotations

import pytest

from engine.training.progress import (
    describe_progress,
    finished_label,
    format_duration,
    progress_label,
    remaining_seconds,
)

NAN = float("nan")


def entry(epoch: int, seconds: float, loss: float = 5.0, ndcg: float = 0.03, **extra) -> dict:
    return {"epoch": epoch, "step": epoch * 10, "loss": NAN if epoch == 0 and not extra.get("refit") else loss,
            "valid_ndcg@10": NAN if extra.get("refit") else ndcg, "seconds": seconds, **extra}


def test_format_duration() -> None:
    assert format_duration(0) == "0:00"
    assert format_duration(59.2) == "1:00"
    assert format_duration(1354) == "22:34"
    assert format_duration(3725) == "1:02:05"
    assert format_duration(-3) == "0:00"


def test_epoch_bound_time_left_is_the_remaining_epochs_at_the_observed_pace() -> None:
    # Setup took 20 s (epoch 0 scored at 20 s), then 10 s per epoch; 10 epochs at most, no budget.
    entries = [entry(0, 20.0), entry(1, 30.0), entry(2, 40.0), entry(3, 50.0)]
    left, budget_bound = remaining_seconds(entries, max_epochs=10)
    assert left == pytest.approx(70.0) and not budget_bound
    # A generous budget changes nothing: the epochs end first.
    left, budget_bound = remaining_seconds(entries, max_epochs=10, max_minutes=60)
    assert left == pytest.approx(70.0) and not budget_bound
    state = describe_progress(entries, 10, 60)
    assert state.text == "Epoch 3/10 · loss 5.000 · validation NDCG@10 0.0300 · 0:50 elapsed · about 1:10 left"
    assert state.fraction == pytest.approx(0.3) and state.epoch == 3 and state.total == 10


def test_budget_bound_time_left_is_the_budget_left() -> None:
    # `--max-minutes 8` with 61 epochs at 22.6 s each: the 60 left would need 22:36, the budget ends first.
    entries = [entry(0, 30.0), entry(1, 52.6)]
    assert remaining_seconds(entries, max_epochs=61) == (pytest.approx(60 * 22.6), False)
    left, budget_bound = remaining_seconds(entries, max_epochs=61, max_minutes=8)
    assert left == pytest.approx(8 * 60 - 52.6) and budget_bound
    text = progress_label(entries, 61, 8)
    assert text.endswith("about 7:08 left (time budget)"), text
    assert "22:" not in text
    state = describe_progress(entries, 61, 8)
    # The bar's share is the budget's share, not 1/61 of the epochs.
    assert state.fraction == pytest.approx((52.6 - 30.0) / (480 - 30.0))
    # Past the deadline the time left is zero, never negative.
    assert remaining_seconds(entries + [entry(2, 495.0)], 61, 8) == (0.0, True)


def test_untrained_model_has_no_loss_and_at_most_the_budget_left() -> None:
    text = progress_label([entry(0, 12.0)], 60, 8)
    assert "nan" not in text and "loss" not in text
    assert text.startswith("Epoch 0/60 (untrained model) · validation NDCG@10 0.0300")
    assert text.endswith("at most 7:48 left (time budget)")
    # Without a budget, nothing tells the time left yet.
    assert "left" not in progress_label([entry(0, 12.0)], 60)


def test_refit_stage_is_labelled_and_paced_on_its_own() -> None:
    train = [entry(0, 10.0), entry(1, 20.0), entry(2, 30.0), entry(3, 40.0)]
    refit = [entry(1, 52.0, loss=4.2, refit=True, refit_epochs=2)]
    state = describe_progress(train + refit, 10, refit_follows=True)
    assert state.refit and state.epoch == 1 and state.total == 2
    assert state.text.startswith("Refit on train + validation, epoch 1/2 · loss 4.200 · 0:52 elapsed")
    assert "validation NDCG" not in state.text and "nan" not in state.text
    assert state.remaining == pytest.approx(12.0) and state.fraction == pytest.approx(0.5)
    # During training, a refit to come is said so.
    assert progress_label(train, 10, refit_follows=True).endswith("about 1:10 left before the refit")


def test_finished_label() -> None:
    assert finished_label(12, 65.4, "early_stopping") == "Done in 1:06: 12 epochs, stopped by early stopping"


def test_no_entries_is_an_error() -> None:
    with pytest.raises(ValueError, match="no progress entries"):
        describe_progress([], 10)
