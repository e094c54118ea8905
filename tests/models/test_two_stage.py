"""engine.models.two_stage: stage 2 learns a planted signal, and no held-out row reaches its training pairs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("lightgbm")

from engine.data.splits import make_split  # noqa: E402
from engine.data.tables import load_dataset, write_dataset  # noqa: E402
from engine.models.baselines import Popularity, Rebuy  # noqa: E402
from engine.models.two_stage import TwoStage, TwoStageConfig  # noqa: E402


def alternating_shop(root: Path, n_users: int = 300, n_items: int = 60, seed: int = 0) -> Path:
    """Every user alternates between two items of their own (a b a b ...), with a one-off item now
    and then: the next item is always the one before the last, never the last."""
    rng = np.random.default_rng(seed)
    rows, day = [], 0
    for u in range(n_users):
        a, b = rng.choice(n_items, 2, replace=False)
        length = int(rng.integers(6, 10))
        seq = [a if t % 2 == 0 else b for t in range(length)]
        for t, item in enumerate(seq):
            if t in (1, 3) and rng.random() < 0.3:  # a one-off item in the middle, bought once
                rows.append((f"u{u}", f"i{int(rng.integers(n_items))}", day))
                day += 1
            rows.append((f"u{u}", f"i{item}", day))
            day += 1
    items = pd.DataFrame({"item_id": [f"i{i}" for i in range(n_items)], "title": [f"item {i}" for i in range(n_items)]})
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "day"])
    inter["timestamp"] = (pd.Timestamp("2024-01-01") + pd.to_timedelta(inter.pop("day"), unit="h")).astype(str)
    return write_dataset(root, items, inter)


def _top1_hits(model, split) -> float:
    users, targets = split.targets("test")
    top, _ = model.rank(users, 1, mask_history=False)
    return float(np.mean([top[r, 0] in t for r, t in enumerate(targets)]))


def test_stage_two_learns_the_planted_signal(tmp_path: Path) -> None:
    data = load_dataset(alternating_shop(tmp_path / "shop"))
    split = make_split(data, "loo")
    config = TwoStageConfig(per_source=10, keep_history=True, n_estimators=100, min_child_samples=5)
    model = TwoStage({"rebuy": Rebuy(), "popularity": Popularity()}, data.items, config=config).train(split)
    model.fit(split.fit_data("test"))
    rebuy = Rebuy().fit(split.fit_data("test"))
    assert _top1_hits(rebuy, split) < 0.2  # latest first: the last item, which is never next
    assert _top1_hits(model, split) > 0.9  # stage 2 puts the one before the last first
    gain = dict(zip(model.feature_names, model.ranker_.booster_.feature_importance("gain")))
    assert max(gain, key=gain.get) in ("user_item_recency", "user_item_days_since", "rebuy_rank", "rebuy_score")


def test_no_held_out_row_reaches_stage_two_training_pairs(tmp_path: Path) -> None:
    data = load_dataset(alternating_shop(tmp_path / "shop", n_users=120))
    split = make_split(data, "loo")
    config = TwoStageConfig(per_source=10, keep_history=True, n_estimators=20, min_child_samples=5)
    model = TwoStage({"rebuy": Rebuy(), "popularity": Popularity()}, data.items, config=config).train(split)
    # After train() the model stands on the validation stage: training interactions only.
    fit = model.context_.fit
    assert len(fit.interactions) == len(split.fit_data("valid").interactions)
    users, targets = split.targets("valid")
    frame = model.pairs(users)
    train_counts = split.fit_data("valid").interactions.groupby(["uidx", "iidx"]).size()
    counts = train_counts.reindex(pd.MultiIndex.from_arrays([frame["user"], frame["item"]]), fill_value=0).to_numpy()
    np.testing.assert_array_equal(frame["user_item_count"].to_numpy(), counts)  # features count train rows only
    # The check can fail: counted with the validation rows, the targets' counts would differ.
    with_valid = split.fit_data("test").interactions.groupby(["uidx", "iidx"]).size()
    leaked = with_valid.reindex(pd.MultiIndex.from_arrays([frame["user"], frame["item"]]), fill_value=0).to_numpy()
    assert (leaked != counts).any()
    assert model.context_.now == split.fit_data("valid").interactions["timestamp"].max()
