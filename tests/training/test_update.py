"""LoRA encoder mode and ``homepage update``: cheap updates of a trained model from page feedback.

Models are tiny and torch runs on one thread (as in test_ranker.py); the update runs on the shared
``trained_demo`` store with a one-epoch, seconds-long budget.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from engine.cli.parser import main
from engine.core.errors import DataError
from engine.data.feedback import write_feedback
from engine.data.splits import make_split
from engine.data.tables import load_dataset
from engine.models.store import newest_model
from engine.models.two_tower import LORA_RANK, Ranker, RankerConfig
from engine.training.loop import (
    _new_model,
    _sequences,
    _step,
    _Trainer,
    build_text_tower,
)
from engine.training.update import _joined, new_interactions, parse_since

TINY_LORA = dict(dim=16, user_layers=1, user_heads=1, max_len=10, n_negatives=8, batch_size=8, mode="lora", text_max_len=16,
                 encoder_items_per_step=8, min_steps_per_epoch=2, max_epochs=1, seed=7)


@pytest.fixture(scope="module", autouse=True)
def one_thread(one_torch_thread):
    """Every test of this module trains with one torch thread (tests/conftest.py)."""


# ---------------------------------------------------------------------------------------------
# lora mode


def test_lora_mode_trains_only_adapters_and_towers(tiny_dir: Path) -> None:
    data = load_dataset(tiny_dir)
    config = RankerConfig(**TINY_LORA)
    seqs = _sequences(data, make_split(data, "loo").fit_data("valid"), config)
    tower = build_text_tower(data, config)
    encoder = tower.encoder
    n_layers, hidden = len(encoder.encoder.layer), encoder.config.hidden_size
    assert tower.split == n_layers - 1  # the lower layers are cached, as in top mode
    assert tower.cache is not None and tower.cache.shape[:1] == (data.n_items,) and tower.cache.dtype == torch.float16

    trainable = {name for name, p in encoder.named_parameters() if p.requires_grad}
    assert trainable == {f"encoder.layer.{n_layers - 1}.attention.self.{m}.lora_{ab}.default.weight" for m in ("query", "value") for ab in "AB"}
    assert sum(p.numel() for p in tower.trainable()) == 2 * 2 * LORA_RANK * hidden  # A (r x H) and B (H x r), query and value
    model = _new_model(data, seqs.fit, config, tower)
    trainer = _Trainer(model, tower, seqs, config, deadline=math.inf)
    groups = trainer.optim.param_groups
    assert [len(g["params"]) for g in groups] == [sum(1 for p in model.parameters() if p.requires_grad), 4]
    assert groups[1]["lr"] == config.lora_lr and all(p.requires_grad for p in model.parameters())  # the towers train too

    before = {name: p.detach().clone() for name, p in encoder.named_parameters()}
    calls = {"lower": 0, "top": 0}
    hooks = [encoder.embeddings.register_forward_hook(lambda *_: calls.__setitem__("lower", calls["lower"] + 1)),
             *[layer.register_forward_hook(lambda *_: calls.__setitem__("lower", calls["lower"] + 1)) for layer in encoder.encoder.layer[:-1]],
             encoder.encoder.layer[-1].register_forward_hook(lambda *_: calls.__setitem__("top", calls["top"] + 1))]
    try:
        trainer.epoch()
    finally:
        for hook in hooks:
            hook.remove()
    assert trainer.steps >= config.min_steps_per_epoch
    assert calls["lower"] == 0 and calls["top"] > 0  # every re-encoding started from the cache
    for name, p in encoder.named_parameters():
        if "lora_B" in name:
            assert not torch.equal(p, before[name]), name  # B starts at zero and moved
        elif "lora_" not in name:
            assert torch.equal(p, before[name]), name  # pretrained weights, lower layers included, unchanged


def test_anchored_tower_starts_at_a_saved_table(tiny_dir: Path) -> None:
    """An update starts from the saved model's text vectors, not the pretrained encoder's."""
    data = load_dataset(tiny_dir)
    tower = build_text_tower(data, RankerConfig(**TINY_LORA))
    table = torch.randn(data.n_items, tower.encoder.config.hidden_size)
    tower.anchor(table)
    torch.testing.assert_close(tower.encode_all(), table, atol=1e-5, rtol=1e-5)
    model = Ranker(RankerConfig(**TINY_LORA), data.n_items, text_dim=table.shape[1])
    _step(model, tower, [np.array([0, 1, 2]), np.array([3, 4])], [None, None], model.config, np.random.default_rng(0)).backward()
    grads = {name: p.grad for name, p in tower.encoder.named_parameters() if p.requires_grad}
    assert all(g is not None and g.abs().sum() > 0 for name, g in grads.items() if "lora_B" in name)  # the gradient reaches the adapters


def test_train_ranker_in_lora_mode(tiny_dir: Path) -> None:
    """`homepage train --mode lora` end to end: the table holds the adapted encoder's vectors."""
    from engine.training.loop import train_ranker

    data = load_dataset(tiny_dir)
    model, tower, result = train_ranker(data, make_split(data, "loo"), RankerConfig(**TINY_LORA))
    assert result.epochs == 1 and tower.mode == "lora" and model.config.mode == "lora"
    torch.testing.assert_close(model.text_table, tower.encode_all())


def test_lora_needs_a_layer_to_adapt() -> None:
    with pytest.raises(ValueError, match="top_layers"):
        RankerConfig(mode="lora", top_layers=0)
    assert RankerConfig(mode="lora").mode == "lora"


# ---------------------------------------------------------------------------------------------
# The update's training data


def test_new_interactions_are_clicks_then_purchases_since_a_date() -> None:
    shown = pd.to_datetime(["2024-05-01", "2024-05-02", "2024-05-03", "2024-05-04"])
    feedback = pd.DataFrame({"user_id": ["a", "a", "b", "b"], "item_id": ["x", "y", "z", "w"], "shown_at": shown,
                             "clicked": [True, True, False, True], "purchased": [False, True, False, False]})
    new = new_interactions(feedback)
    assert new[["item_id", "event"]].values.tolist() == [["x", "click"], ["y", "click"], ["y", "purchase"], ["w", "click"]]
    assert new_interactions(feedback, parse_since("2024-05-03"))["item_id"].tolist() == ["w"]
    with pytest.raises(DataError, match="no clicked or purchased"):
        new_interactions(feedback, parse_since("2024-06-01"))
    with pytest.raises(DataError, match="not an ISO date"):
        parse_since("next tuesday")


def test_history_then_new_positions() -> None:
    seq, first = _joined(np.array([1, 2, 3]), np.array([3, 4, 5]), collapse=True)  # 3 runs on from the history
    assert seq.tolist() == [1, 2, 3, 4, 5] and first == 3  # targets: 4 and 5
    seq, first = _joined(np.zeros(0, dtype=np.int64), np.array([7, 8]), collapse=True)
    assert seq.tolist() == [7, 8] and first == 1  # no history: the first new item is read, the second trained


def test_step_trains_only_from_the_first_new_position(tiny_dir: Path) -> None:
    """With train_from, earlier targets carry no loss: the loss equals that of the new positions alone."""
    data = load_dataset(tiny_dir)
    config = RankerConfig(**{**TINY_LORA, "mode": "frozen", "n_negatives": 0, "dropout": 0.0})
    model = Ranker(config, data.n_items, text_dim=4)
    model.text_table.copy_(torch.randn(data.n_items, 4))
    model.eval()
    seq = np.array([1, 5, 9, 13, 2])
    with torch.no_grad():
        part = _step(model, None, [seq], [None], config, np.random.default_rng(0), train_from=[3])
        table = model.item_vectors()
        states = model.user_states(table[torch.from_numpy(seq[:-1])][None])[0]  # (4, D)
        logits = states[2:] @ table.T  # positions predicting seq[3] and seq[4]
        expected = torch.nn.functional.cross_entropy(logits, torch.from_numpy(seq[3:]))
    assert torch.isclose(part, expected, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# homepage update


def _feedback(data, users: list[str], path: Path, n_per_user: int = 4, seed: int = 0) -> Path:
    """A small feedback table on the day after the data's last interaction: each user clicks every
    card shown and buys one."""
    rng = np.random.default_rng(seed)
    start = data.interactions["timestamp"].max().normalize() + pd.Timedelta(days=1)
    rows = []
    for u, user in enumerate(users):
        for slot, item in enumerate(rng.choice(data.item_ids, n_per_user, replace=False)):
            rows.append({"user_id": user, "item_id": str(item), "layout_id": "L1", "row": 0, "slot": slot,
                         "shown_at": start + pd.Timedelta(hours=u, minutes=slot), "clicked": True, "purchased": slot == 0})
    return write_feedback(pd.DataFrame(rows), path)


def test_update_writes_a_child_model_and_prints_before_and_after(trained_demo: Path, tmp_path: Path, capsys) -> None:
    data = load_dataset(trained_demo)
    parent = newest_model(trained_demo)
    feedback = _feedback(data, [str(u) for u in data.user_ids[:20]], tmp_path / "feedback.csv")
    out = tmp_path / "m2"
    rc = main(["update", str(trained_demo), "--model", str(parent), "--feedback", str(feedback), "--out", str(out),
               "--epochs", "1", "--max-minutes", "0.05"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    lines = captured.out.splitlines()
    header = next(line for line in lines if line.startswith("held-out test"))
    assert all(name in header for name in ("NDCG@10", "HR@10", "Recall@12", "MAP@12"))
    before = next(line for line in lines if line.startswith("before") and str(parent) in line)
    after = next(line for line in lines if line.startswith("after") and str(out) in line)
    assert len(before.split()) == len(after.split()) == 2 + 4
    assert "100 new interactions of 20 users" in captured.out  # 20 users x (4 clicks + 1 purchase)

    manifest = json.loads((out / "manifest.json").read_text())
    parent_manifest = json.loads((parent / "manifest.json").read_text())
    assert manifest["parent"] == str(parent)
    assert manifest["update"] == {"feedback": str(feedback), "since": None, "new_interactions": 100, "replay": 0.2,
                                  "seconds": manifest["update"]["seconds"], "mode": "lora"}
    assert manifest["final_model"] == "finetuned" and manifest["stage2"] == {"used": False, "reason": "not retrained by update"}
    missing = set(parent_manifest) - set(manifest)
    assert not missing, missing  # everything a trained model's manifest has
    assert manifest["protocol"] == parent_manifest["protocol"] and manifest["data_fingerprint"] == parent_manifest["data_fingerprint"]
    assert manifest["metrics"]["ndcg@10"] == pytest.approx(float(after.split()[2]), abs=1e-4)
    model = Ranker.from_pretrained(out, data)  # a normal model directory
    assert model.config.mode == "lora" and model.config.dim == Ranker.from_pretrained(parent, data).config.dim


def test_update_refuses_unknown_users_and_writes_nothing(trained_demo: Path, tmp_path: Path, capsys) -> None:
    data = load_dataset(trained_demo)
    feedback = _feedback(data, [str(data.user_ids[0]), "ghost-user"], tmp_path / "feedback.csv")
    out = tmp_path / "new" / "m2"
    rc = main(["update", str(trained_demo), "--model", str(newest_model(trained_demo)), "--feedback", str(feedback), "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error:") and "ghost-user" in err and "Traceback" not in err
    assert not out.exists()
    # Nothing left after --since: a clear error too.
    good = _feedback(data, [str(data.user_ids[0])], tmp_path / "good.csv")
    rc = main(["update", str(trained_demo), "--model", str(newest_model(trained_demo)), "--feedback", str(good), "--out", str(out),
               "--since", "2999-01-01"])
    err = capsys.readouterr().err
    assert rc == 2 and "no clicked or purchased" in err and not out.exists()


def test_update_refuses_a_model_of_other_data(trained_demo: Path, tiny_dir: Path, tmp_path: Path, capsys) -> None:
    data = load_dataset(tiny_dir)
    feedback = _feedback(data, [str(data.user_ids[0])], tmp_path / "feedback.csv")
    out = tmp_path / "m2"
    rc = main(["update", str(tiny_dir), "--model", str(newest_model(trained_demo)), "--feedback", str(feedback), "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error:") and "fingerprint" in err
    assert not out.exists()
