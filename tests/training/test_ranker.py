"""The fine-tuned ranker end to end on a tiny synthetic shop: training, the model directory, new items, the CLI.

Every data set here is written into tmp_path; nothing needs ../shared. Models are tiny (dim 32, one
user-tower layer) and torch runs on one thread: on a small shared CPU, two OpenMP threads competing
with other processes make these steps ten times slower, not faster.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors import safe_open

import engine.models.two_tower
from engine.cli.parser import main
from engine.data.tables import Dataset, load_dataset, write_dataset
from engine.core.errors import ModelError
from engine.models.store import FILES, newest_model
from engine.data.splits import make_split
from engine.models.two_tower import Ranker, RankerConfig, score_users
from engine.models.finetuned import FineTunedRecommender
from engine.training.loop import train_ranker

# Four clear categories of 15 items each; users stay (90 %) within one category.
CATEGORIES = {
    "shoes": ("running shoe", ["Lightweight", "Cushioned", "Breathable", "Marathon", "Road", "Racing", "Neutral", "Stability",
                               "Mesh", "Sprint", "Daily", "Tempo", "Carbon", "Women's", "Men's"]),
    "mugs": ("coffee mug", ["Enamel", "Stoneware", "Travel", "Insulated", "Espresso", "Glass", "Latte", "Camping", "Porcelain",
                            "Large", "Small", "Matte", "Speckled", "Handmade", "Double-wall"]),
    "audio": ("wireless headphones", ["Noise-cancelling", "Over-ear", "On-ear", "Bluetooth", "Studio", "Foldable", "Kids", "Sport",
                                      "Premium", "Budget", "Bass", "Retro", "Gaming", "Travel", "Hi-fi"]),
    "yoga": ("yoga mat", ["Non-slip", "Thick", "Cork", "Travel", "Eco", "Extra long", "Cushioned", "Rubber", "Printed", "Foldable",
                          "Hot yoga", "Alignment", "Natural", "Grip", "Studio"]),
}
CATS = list(CATEGORIES)
# In the catalogue, never bought: scored from their text alone.
NEW_ITEMS = [("new-trail", "Trail running shoe", "shoes"), ("new-mug", "Ceramic coffee mug", "mugs"), ("new-lamp", "Desk lamp", "lighting")]

# Small enough to train in seconds on two shared cores; from_dict drops keys the config lacks.
TINY = dict(dim=32, user_layers=1, user_heads=1, max_len=10, n_negatives=32, batch_size=16, max_epochs=3, mode="frozen",
            text_max_len=16, min_steps_per_epoch=20, encoder_items_per_step=32, seed=7)


def tiny_config(**overrides) -> RankerConfig:
    return RankerConfig.from_dict({**TINY, **overrides})


def shop_frames(seed: int = 0, n_users: int = 40, text: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Items (60 bought + 3 new) and 6-10 interactions per user, user u mostly in category u % 4."""
    rng = np.random.default_rng(seed)
    rows = []
    for cat, (noun, adjectives) in CATEGORIES.items():
        rows += [(f"{cat}-{len(rows) + j:03d}", f"{adj} {noun}", cat) for j, adj in enumerate(adjectives)]
    items = pd.DataFrame(rows + NEW_ITEMS, columns=["item_id", "title", "category"])
    if not text:  # placeholder titles, as in the Beauty benchmark
        items = pd.DataFrame({"item_id": [str(i) for i in range(1, len(items) + 1)]})
        items["title"] = "item " + items["item_id"]
    pools = [np.arange(15 * c, 15 * (c + 1)) for c in range(len(CATS))]
    start = pd.Timestamp("2024-01-01")
    inter = []
    for u in range(n_users):
        for j in range(int(rng.integers(6, 11))):
            pool = pools[u % 4] if rng.random() < 0.9 else pools[int(rng.integers(4))]
            ts = start + pd.Timedelta(days=j, hours=u)
            inter.append((f"U{u:02d}", items["item_id"].iat[int(rng.choice(pool))], ts.isoformat()))
    return items, pd.DataFrame(inter, columns=["user_id", "item_id", "timestamp"])


def write_shop(root: Path, **kwargs) -> Path:
    items, inter = shop_frames(**kwargs)
    return write_dataset(root, items, inter)


@pytest.fixture(scope="module", autouse=True)
def one_thread(one_torch_thread):
    """Every test of this module trains with one torch thread (tests/conftest.py)."""


@pytest.fixture(scope="module")
def shop_dir(tmp_path_factory) -> Path:
    return write_shop(tmp_path_factory.mktemp("ranker") / "shop")


@pytest.fixture(scope="module")
def trained(shop_dir: Path):
    """A frozen-encoder model trained on the shop: (data, split, model, tower, result)."""
    data = load_dataset(shop_dir)
    split = make_split(data, "loo")
    model, tower, result = train_ranker(data, split, tiny_config())
    return data, split, model, tower, result


@pytest.fixture(scope="module")
def saved(trained, tmp_path_factory) -> Path:
    data, split, model, tower, result = trained
    return model.save_pretrained(tmp_path_factory.mktemp("models") / "m1", data, {"protocol": "loo", "note": "test"})


def _scores(model, data: Dataset, split, vectors: np.ndarray) -> np.ndarray:
    rec = FineTunedRecommender(model, vectors).fit(split.fit_data("test"))
    return rec.score(np.arange(data.n_users))


# ---------------------------------------------------------------------------------------------
# Training


def test_tiny_training_loss_falls(trained) -> None:
    data, split, model, tower, result = trained
    assert result.history[0]["epoch"] == 0 and np.isnan(result.history[0]["loss"])  # the untrained model, validated
    losses = [entry["loss"] for entry in result.history[1:]]
    assert len(losses) == result.epochs == 3
    assert all(np.isfinite(losses))
    assert losses[-1] < losses[0], losses
    assert 0 <= result.best_epoch <= result.epochs and result.steps > 0 and result.refit == "off"
    assert all("valid_ndcg@10" in entry for entry in result.history)
    assert tower is not None and model.config.use_text
    scores = _scores(model, data, split, model.item_vectors().detach().numpy())
    assert scores.shape == (data.n_users, data.n_items) and np.isfinite(scores).all()


def test_batches_group_users_of_similar_history_length(tmp_path: Path) -> None:
    from engine.training.loop import _sequences, _Trainer

    items, inter = shop_frames(n_users=200)
    long_users = inter["user_id"].isin([f"U{u:02d}" for u in range(0, 200, 7)])
    inter = pd.concat([inter, inter[long_users].assign(timestamp=lambda f: (pd.to_datetime(f["timestamp"]) + pd.Timedelta(days=60)).astype(str))] * 3)
    data = load_dataset(write_dataset(tmp_path / "shop", items, inter))
    config = tiny_config(max_len=50, batch_size=16)
    seqs = _sequences(data, make_split(data, "loo").fit_data("valid"), config)
    trainer = _Trainer(torch.nn.Linear(1, 1), None, seqs, config, deadline=float("inf"))  # batching needs no real model
    batches = trainer.bucketed_batches()
    assert sorted(np.concatenate(batches).tolist()) == sorted(seqs.users.tolist())  # every user once per pass
    widths = [max(len(seqs.seqs[int(u)]) for u in b) for b in batches]
    padded = sum(w * len(b) for w, b in zip(widths, batches))
    shuffled = np.random.default_rng(0).permutation(seqs.users)
    random_padded = sum(len(b) * max(len(seqs.seqs[int(u)]) for u in b) for b in np.array_split(shuffled, len(batches)))
    assert padded < 0.6 * random_padded  # far less padding than random batches
    assert trainer.bucketed_batches()[0].tolist() != batches[0].tolist()  # a new order each pass


@pytest.mark.parametrize("curve, stops_after", [
    ([0.0295, 0.0184, 0.0287, 0.0330, 0.0390, 0.0420], None),  # a strong start (epoch 0) is passed later: no stop
    ([0.0045, 0.0471, 0.0516, 0.0516, 0.0518], 4),  # gains under 1% are a plateau
    ([0.0296, 0.0306, 0.0285, 0.0313, 0.0295, 0.0281], 5),  # a 2% gain after a dip resets the count
])
def test_plateau_counts_progress_among_trained_epochs(curve: list[float], stops_after: int | None) -> None:
    from engine.training.loop import Plateau

    plateau = Plateau(patience=2, min_gain=0.01)
    stopped = None
    for epoch, ndcg in enumerate(curve):
        plateau.update(epoch, ndcg)
        if epoch and plateau.stop:
            stopped = epoch
            break
    assert stopped == stops_after


def test_id_dropout_zeroes_id_embeddings_in_training(trained) -> None:
    """id_dropout = 1 trains as if every item were new: no gradient reaches the id embeddings."""
    from engine.training.loop import _step

    data, split, model, tower, _ = trained
    seqs = [s for s in split.fit_data("valid").sequences().values() if len(s) >= 2][:8]
    model.train()
    grads = {}
    for share in (0.0, 1.0):
        model.zero_grad()
        config = tiny_config(id_dropout=share)
        _step(model, tower, seqs, [None] * len(seqs), config, np.random.default_rng(0)).backward()
        grads[share] = model.item_emb.weight.grad.abs().sum().item()
    model.zero_grad()
    model.eval()
    assert grads[0.0] > 0 and grads[1.0] == 0


def test_full_softmax_is_cross_entropy_over_every_item(trained) -> None:
    """n_negatives = 0: the loss of one next-item step is the cross-entropy over the whole catalogue."""
    from engine.training.loop import _step

    _, _, model, _, _ = trained
    model.eval()  # no dropout: the step and the hand computation see the same vectors
    with torch.no_grad():
        loss = _step(model, None, [np.array([3, 17])], [None], tiny_config(n_negatives=0), np.random.default_rng(0))
        table = model.item_vectors()
        h = model.user_states(table[torch.tensor([[3]])])[0, 0]
        expected = torch.nn.functional.cross_entropy((table @ h)[None, :] / model.config.temperature, torch.tensor([17]))
    assert torch.isclose(loss, expected, atol=1e-5)


@pytest.mark.slow
def test_top_mode_fine_tunes_the_encoder_and_saves_what_inference_reads(shop_dir: Path, tmp_path: Path) -> None:
    data = load_dataset(shop_dir)
    split = make_split(data, "loo")
    config = tiny_config(mode="top", max_epochs=2, min_steps_per_epoch=10)
    model, tower, result = train_ranker(data, split, config)
    assert result.epochs == 2 and all(np.isfinite(e["loss"]) for e in result.history[1:])
    tuned = {name for name, p in tower.encoder.named_parameters() if p.requires_grad}
    assert tuned and all(".layer.5." in name for name in tuned)  # MiniLM has 6 layers; top_layers=1
    # The tuned encoder's vectors of every item are in the text table; the encoder itself is not saved.
    np.testing.assert_allclose(model.text_table.numpy(), tower.encode_all().numpy(), atol=1e-3)
    out = model.save_pretrained(tmp_path / "top", data, {})
    with safe_open(str(out / "model.safetensors"), "pt") as f:
        keys = set(f.keys())
    assert keys == set(model.state_dict()) and not any(k.startswith("encoder.") for k in keys)
    loaded = Ranker.from_pretrained(out, data)
    vectors = loaded.saved_item_vectors
    np.testing.assert_allclose(_scores(loaded, data, split, vectors), _scores(model, data, split, model.item_vectors().detach().numpy()), atol=1e-6)


def test_format_1_directories_still_load_and_unknown_formats_say_how_to_retrain(trained, saved: Path, tmp_path: Path) -> None:
    """A format-1 directory (it also held encoder layers) loads; a newer format fails clearly."""
    from safetensors.torch import load_file, save_file

    data = trained[0]
    old = Path(shutil.copytree(saved, tmp_path / "old"))
    tensors = load_file(str(old / "model.safetensors"))
    tensors["encoder.encoder.layer.5.output.dense.weight"] = torch.zeros(2, 2)
    save_file(tensors, str(old / "model.safetensors"))
    _edit_json(old / "manifest.json", "format", 1)
    config = json.loads((old / "config.json").read_text())
    config["retired_field"] = 1  # a field this version no longer has is ignored
    (old / "config.json").write_text(json.dumps(config))
    loaded = Ranker.from_pretrained(old, data)
    np.testing.assert_array_equal(loaded.saved_item_vectors, Ranker.from_pretrained(saved, data).saved_item_vectors)
    _edit_json(old / "manifest.json", "format", 99)
    with pytest.raises(ModelError, match=r"model format 99 .*homepage train"):
        Ranker.from_pretrained(old, data)


def test_a_config_of_the_wrong_type_is_a_clear_error(trained, saved: Path, tmp_path: Path) -> None:
    broken = Path(shutil.copytree(saved, tmp_path / "broken"))
    for key, value in (("dim", "abc"), ("dropout", float("nan")), ("dim", -4)):
        _edit_json(broken / "config.json", key, value)
        with pytest.raises(ModelError, match=rf"config\.json: corrupted config \({key} must be"):
            Ranker.from_pretrained(broken, trained[0])
        shutil.copy(saved / "config.json", broken / "config.json")


def test_config_is_frozen_and_replace_validates_again() -> None:
    import dataclasses

    config = RankerConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.dim = 8
    assert dataclasses.replace(config, dim=8).dim == 8 and config.dim == 128
    with pytest.raises(ValueError, match="mode must be one of"):
        dataclasses.replace(config, mode="sideways")


# ---------------------------------------------------------------------------------------------
# The model directory


def test_save_load_round_trip(trained, saved: Path) -> None:
    data, split, model, tower, result = trained
    assert sorted(p.name for p in saved.iterdir()) == sorted(FILES)
    assert not list(saved.glob("*.pt")) and not list(saved.glob("*.pkl")) and not list(saved.glob("*.bin"))
    assert not [p for p in saved.parent.iterdir() if p.name.startswith(".")]  # no staging leftovers
    with safe_open(str(saved / "model.safetensors"), "pt") as f:  # a real safetensors file
        assert "warm" in f.keys() and "text_table" in f.keys()
    assert RankerConfig.from_dict(json.loads((saved / "config.json").read_text())) == model.config
    assert json.loads((saved / "config.json").read_text()) == asdict(model.config)
    index = pd.read_parquet(saved / "item_index.parquet")
    assert index["item_id"].tolist() == data.item_ids.tolist()
    manifest = json.loads((saved / "manifest.json").read_text())
    assert manifest["data_fingerprint"] == data.fingerprint() and manifest["n_items"] == data.n_items
    assert manifest["note"] == "test"

    loaded = Ranker.from_pretrained(saved, data)
    vectors, manifest2 = loaded.saved_item_vectors, loaded.manifest
    assert manifest2 == manifest and loaded.config == model.config and not loaded.training
    np.testing.assert_array_equal(vectors, model.item_vectors().detach().numpy())
    np.testing.assert_array_equal(np.load(saved / "item_vectors.npy", allow_pickle=False), vectors)
    with torch.no_grad():
        np.testing.assert_array_equal(loaded.item_vectors().numpy(), vectors)
    np.testing.assert_array_equal(loaded.warm.numpy(), model.warm.numpy())
    expected = _scores(model, data, split, model.item_vectors().detach().numpy())
    np.testing.assert_allclose(_scores(loaded, data, split, vectors), expected, atol=1e-6)
    rec, _ = FineTunedRecommender.from_pretrained(saved, data)
    np.testing.assert_allclose(rec.fit(split.fit_data("test")).score(np.arange(data.n_users)), expected, atol=1e-6)


def _half(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _edit_json(path: Path, key: str, value) -> None:
    values = json.loads(path.read_text())
    values[key] = value
    path.write_text(json.dumps(values))


CORRUPTIONS = {
    "truncated weights": (lambda d: _half(d / "model.safetensors"), r"model\.safetensors: corrupted weights"),
    "garbage weights": (lambda d: (d / "model.safetensors").write_bytes(b"garbage" * 20), r"model\.safetensors: corrupted weights"),
    "missing vectors": (lambda d: (d / "item_vectors.npy").unlink(), r"incomplete model directory, missing item_vectors\.npy"),
    "truncated vectors": (lambda d: _half(d / "item_vectors.npy"), r"item_vectors\.npy: corrupted item vectors"),
    "garbage manifest": (lambda d: (d / "manifest.json").write_text("{not json"), r"manifest\.json: corrupted manifest"),
    "manifest not an object": (lambda d: (d / "manifest.json").write_text("[1, 2]"), r"manifest\.json: corrupted manifest"),
    "binary manifest": (lambda d: (d / "manifest.json").write_bytes(b"\xff\xfe\x00"), r"manifest\.json: corrupted manifest"),
    "bad n_items": (lambda d: _edit_json(d / "manifest.json", "n_items", "many"), r"n_items"),
    "garbage config": (lambda d: (d / "config.json").write_text("\x00garbage"), r"config\.json: corrupted config"),
    "config not an object": (lambda d: (d / "config.json").write_text("[1]"), r"config\.json: corrupted config"),
    "config of another size": (lambda d: _edit_json(d / "config.json", "dim", 16), r"model\.safetensors does not fit config\.json"),
    "garbage item index": (lambda d: (d / "item_index.parquet").write_text("x"), r"item_index\.parquet: corrupted item index"),
    "NaN item vectors": (lambda d: np.save(d / "item_vectors.npy", np.full_like(np.load(d / "item_vectors.npy"), np.nan)),
                         r"item_vectors\.npy: the item vectors hold NaN"),
}


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_corrupted_model_directory_gives_model_error(name: str, trained, saved: Path, tmp_path: Path) -> None:
    corrupt, message = CORRUPTIONS[name]
    broken = Path(shutil.copytree(saved, tmp_path / "broken"))
    corrupt(broken)
    with pytest.raises(ModelError, match=message) as info:
        Ranker.from_pretrained(broken, trained[0])
    assert str(broken) in str(info.value)


def test_missing_model_directory_gives_model_error(trained, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no such model directory"):
        Ranker.from_pretrained(tmp_path / "nowhere", trained[0])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="incomplete model directory"):
        Ranker.from_pretrained(tmp_path / "empty", trained[0])


def test_model_on_other_data_gives_fingerprint_error(saved: Path, tmp_path: Path) -> None:
    other = load_dataset(write_shop(tmp_path / "other", seed=1))  # same catalogue, other interactions
    with pytest.raises(ModelError, match="fingerprint") as info:
        FineTunedRecommender.from_pretrained(saved, other)
    assert str(other.root) in str(info.value) and "homepage train" in str(info.value)


def test_newest_model_without_models_gives_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no trained model"):
        newest_model(tmp_path)


# ---------------------------------------------------------------------------------------------
# New items: scored from their text


def test_new_items_are_scored_from_text(trained) -> None:
    data, split, model, tower, result = trained
    new = np.array([data.item_index[item_id] for item_id, _, _ in NEW_ITEMS])
    trail, mug, lamp = new
    assert model.warm[new].sum() == 0  # no id embedding for never-bought items
    assert model.warm.sum() > 0.8 * (data.n_items - len(new))
    vectors = model.item_vectors().detach().numpy()
    rec = FineTunedRecommender(model, vectors).fit(split.fit_data("test"))
    scores = rec.score(np.arange(data.n_users))
    assert np.isfinite(scores[:, new]).all() and np.abs(vectors[new]).sum() > 0

    shoes, mugs = np.arange(0, 15), np.arange(15, 30)
    runner, drinker = rec.score_histories([shoes[:8], mugs[:8]])
    assert runner[trail] > max(runner[mug], runner[lamp]), runner[new]
    assert drinker[mug] > max(drinker[trail], drinker[lamp]), drinker[new]
    # A real user of the data who bought running shoes.
    u = data.user_index["U00"]
    assert scores[u, trail] > max(scores[u, mug], scores[u, lamp]), scores[u, new]


# ---------------------------------------------------------------------------------------------
# Data without item text


def test_data_without_text_trains_ids_only(tmp_path: Path, monkeypatch) -> None:
    items, inter = shop_frames(text=False)
    data = load_dataset(write_dataset(tmp_path / "notext", items, inter))
    assert not data.has_text()

    def no_encoder(*args, **kwargs):
        raise AssertionError("the encoder must not be loaded for data without text")

    monkeypatch.setattr("engine.training.loop.load_encoder", no_encoder)
    monkeypatch.setattr("engine.models.text_encoder.load_encoder", no_encoder)
    split = make_split(data, "loo")
    model, tower, result = train_ranker(data, split, tiny_config(use_text=False, max_epochs=3))
    assert tower is None and model.text_proj is None and not model.config.use_text
    losses = [entry["loss"] for entry in result.history[1:]]
    assert losses[-1] < losses[0], losses
    with torch.no_grad():
        table = model.item_vectors()
    scores = score_users(model, list(split.fit_data("test").sequences().values()), table)
    assert np.isfinite(scores).all()
    out = model.save_pretrained(tmp_path / "m", data, {})
    loaded = Ranker.from_pretrained(out, data)
    vectors = loaded.saved_item_vectors
    assert not loaded.config.use_text
    np.testing.assert_array_equal(vectors, table.numpy())


def test_residual_user_vector_starts_as_the_history_mean(trained) -> None:
    """user_residual: before training, u = the mean of the history's item vectors (the zero-shot user)."""
    from engine.models.two_tower import Ranker

    data, _, _, _, _ = trained
    model = Ranker(tiny_config(user_residual=True, text_init="pca"), data.n_items, text_dim=8)
    model.text_table.copy_(torch.randn(data.n_items, 8))
    model.eval()
    with torch.no_grad():
        table = model.item_vectors()
        assert table.abs().sum() > 0 and model.item_emb.weight.abs().sum() == 0  # ids start at zero
        seqs = torch.tensor([[3, 5, 9], [4, 0, 0]])
        users = model.user_vectors(seqs, torch.tensor([3, 1]), table)
    torch.testing.assert_close(users[0], table[[3, 5, 9]].mean(0))
    torch.testing.assert_close(users[1], table[4])


def test_pca_projection_keeps_inner_products() -> None:
    """W from pca_projection has orthonormal rows; on a table of rank <= dim, W t_i . W t_j = t_i . t_j."""
    from engine.training.loop import pca_projection

    rng = np.random.default_rng(0)
    text = rng.normal(size=(50, 3)) @ rng.normal(size=(3, 12))  # rank 3 in 12 dimensions
    w = pca_projection(text, 4)
    assert w.shape == (4, 12)
    np.testing.assert_allclose(w[:3] @ w[:3].T, np.eye(3), atol=1e-5)
    projected = text @ w.T
    np.testing.assert_allclose(projected @ projected.T, text @ text.T, rtol=1e-3, atol=1e-3)


def test_refit_trains_the_final_model_on_train_and_validation(shop_dir: Path) -> None:
    """refit: after early stopping, a second model learns from train + validation for the best epoch count."""
    data = load_dataset(shop_dir)
    split = make_split(data, "temporal", 2)
    valid_only = np.setdiff1d(split.valid["iidx"].unique(), split.train["iidx"].unique())
    assert len(valid_only), "the shop should have items first bought in the validation days"
    model, _, result = train_ranker(data, split, tiny_config(refit=True, max_epochs=2, patience=5))
    assert result.refit == f"done: {result.best_epoch} epochs on train + validation", result.refit
    refit_entries = [e for e in result.history if e.get("refit")]
    assert len(refit_entries) == result.best_epoch and all(e["refit_epochs"] == result.best_epoch for e in refit_entries)
    assert model.warm[valid_only].min() == 1  # warm: their id embeddings were learned
    # Stage 2 learns on the validation window from the early-stopped model, which never saw it.
    assert result.valid_model is not model and result.valid_model.warm[valid_only].max() == 0
    # A budget already spent skips the refit and keeps the early-stopped model.
    _, _, rushed = train_ranker(data, split, tiny_config(refit=True, max_epochs=2), max_minutes=1e-4)
    assert rushed.refit.startswith("skipped"), rushed.refit


def test_make_config_refits_on_the_temporal_protocol(shop_dir: Path) -> None:
    import engine.training.job as train_job

    data = load_dataset(shop_dir)
    assert train_job.make_config(data, protocol="temporal", test_days=2).refit
    assert not train_job.make_config(data, protocol="loo").refit


def test_make_config_starts_from_zero_shot_where_text_beats_popularity(shop_dir: Path, monkeypatch) -> None:
    """In the shop, titles name each user's category: the untrained text model beats popularity on
    validation, so training starts from it; where it does not, the user tower starts at random."""
    import engine.training.job as train_job

    data = load_dataset(shop_dir)
    start, ndcg = train_job.zero_shot_start(data, "loo")
    assert start and ndcg["zero_shot"] > ndcg["popularity"], ndcg
    config = train_job.make_config(data)
    assert config.user_residual and config.text_init == "pca" and config.temperature < 1
    monkeypatch.setattr(train_job, "zero_shot_start", lambda *a, **k: (False, {}))
    config = train_job.make_config(data)
    assert not config.user_residual and config.text_init == "random" and config.temperature == RankerConfig().temperature


def test_make_config_uses_a_full_softmax_on_small_catalogues(shop_dir: Path, monkeypatch) -> None:
    import engine.training.job as train_job

    data = load_dataset(shop_dir)
    assert train_job.make_config(data).n_negatives == 0
    monkeypatch.setattr(train_job, "FULL_SOFTMAX_MAX_ITEMS", data.n_items - 1)
    assert train_job.make_config(data).n_negatives == RankerConfig().n_negatives > 0


# ---------------------------------------------------------------------------------------------
# The command line


class _TinyCliConfig(RankerConfig):
    """The CLI's RankerConfig with test-sized defaults (explicit flags still win)."""

    def __init__(self, **kwargs):
        known = {k: v for k, v in TINY.items() if k in RankerConfig.__dataclass_fields__ and k not in ("mode", "seed")}
        super().__init__(**{**known, **kwargs})


@pytest.fixture
def tiny_cli(monkeypatch) -> None:
    monkeypatch.setattr(engine.models.two_tower, "RankerConfig", _TinyCliConfig)


@pytest.mark.slow
def test_cli_train_with_out(shop_dir: Path, tmp_path: Path, tiny_cli, capsys) -> None:
    out = tmp_path / "model"
    rc = main(["train", str(shop_dir), "--out", str(out), "--protocol", "loo", "--max-epochs", "2", "--mode", "frozen", "--dim", "16"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert f"model saved to {out}" in captured.out and "NDCG@10" in captured.out
    assert "2/2" in captured.err and "nan" not in captured.err  # the bar counts trained epochs; epoch 0 has no loss to show
    for name in FILES:
        assert (out / name).is_file(), name
    config = json.loads((out / "config.json").read_text())
    assert config["dim"] == 16 and config["max_epochs"] == 2 and config["mode"] == "frozen" and config["use_text"] is True
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["protocol"] == "loo" and manifest["text"] is True
    assert "ndcg@10" in manifest["metrics"] and [e["epoch"] for e in manifest["training"]["history"]] == [0, 1, 2]
    assert manifest["training"]["history"][0]["loss"] is None  # strict JSON: the untrained epoch's loss is null, not NaN
    json.loads((out / "manifest.json").read_text(), parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    assert not (shop_dir / "models").exists()  # --out given: nothing under DIR/models
    data = load_dataset(shop_dir)
    vectors = Ranker.from_pretrained(out, data).saved_item_vectors
    assert vectors.shape == (data.n_items, 16)


def test_the_encoder_mode_is_chosen_on_validation_with_the_budget_shared() -> None:
    from engine.training.job import AUTO_MODES, _train_choosing_mode, mode_candidates
    from engine.training.loop import TrainResult

    calls = []

    def trainer(data, split, config, max_minutes=None, progress=None):
        calls.append((config.mode, max_minutes))
        valid = {"frozen": 0.05, "top": 0.04}[config.mode]
        return f"model-{config.mode}", None, TrainResult(best_valid_ndcg=valid, seconds=60.0)

    config = engine.models.two_tower.RankerConfig(mode="top")
    lines = []
    model, chosen, result, choice = _train_choosing_mode(trainer, None, None, config, AUTO_MODES, 10.0, None, lines.append)
    assert model == "model-frozen" and chosen.mode == "frozen" and result.best_valid_ndcg == 0.05
    assert choice == {"valid_ndcg@10": {"frozen": 0.05, "top": 0.04}, "seconds": {"frozen": 60.0, "top": 60.0}, "total_seconds": 120.0,
                      "chosen": "frozen"}
    assert result.seconds == 60.0  # the kept mode's own training; what choosing cost is total_seconds
    assert [m for m, _ in calls] == ["frozen", "top"]
    assert calls[0][1] == pytest.approx(5.0, abs=1e-3) and 9.9 < calls[1][1] <= 10.0  # half the budget, then all that is left (here nearly all)
    assert any("kept" in line for line in lines)
    calls.clear()  # one mode: trained as it is, no choice recorded
    assert _train_choosing_mode(trainer, None, None, config, ("top",), None, None, lines.append)[3] is None and calls == [("top", None)]
    assert mode_candidates(config, "auto") == AUTO_MODES and mode_candidates(config, "top") == ("top",)
    ids_only = dataclasses.replace(config, use_text=False, mode="frozen")
    assert mode_candidates(ids_only, "auto") == ("frozen",)  # no encoder to tune


@pytest.mark.slow
def test_cli_train_chooses_the_encoder_mode_by_default(shop_dir: Path, tmp_path: Path, tiny_cli, capsys) -> None:
    out = tmp_path / "model"
    rc = main(["train", str(shop_dir), "--out", str(out), "--protocol", "loo", "--max-epochs", "1", "--dim", "16", "--no-stage2"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    manifest = json.loads((out / "manifest.json").read_text())
    choice = manifest["mode_choice"]
    assert set(choice["valid_ndcg@10"]) == {"frozen", "top"} and choice["chosen"] in ("frozen", "top")
    assert choice["valid_ndcg@10"][choice["chosen"]] == max(choice["valid_ndcg@10"].values())
    assert json.loads((out / "config.json").read_text())["mode"] == choice["chosen"]
    assert f"encoder mode {choice['chosen']}, chosen on validation" in captured.out


@pytest.mark.slow
def test_cli_train_default_dir_then_evaluate_and_recommend(tmp_path: Path, tiny_cli, capsys) -> None:
    shop = write_shop(tmp_path / "shop")
    rc = main(["train", str(shop), "--max-epochs", "2", "--mode", "frozen"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    models = [p for p in (shop / "models").iterdir() if not p.name.startswith(".")]
    assert len(models) == 1 and newest_model(shop) == models[0]
    assert sorted(p.name for p in models[0].iterdir()) == sorted(FILES)

    report_path = tmp_path / "eval" / "report.json"
    rc = main(["evaluate", str(shop), "--json", str(report_path), "--models", "finetuned,zero_shot,popularity", "--no-ild"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    report = json.loads(report_path.read_text())
    assert list(report["models"]) == ["finetuned", "zero_shot", "popularity"]
    assert report["model_dir"] == str(models[0]) and report["protocol"] == "loo" and report["n_users"] > 0
    for name in ("finetuned", "zero_shot", "popularity"):
        assert 0.0 <= report["models"][name]["ndcg@10"] <= 1.0
    assert "| finetuned |" in captured.out

    rc = main(["recommend", str(shop), "--user", "U00", "--k", "5"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    lines = captured.out.strip().splitlines()
    assert "title" in lines[0] and len(lines) == 6
    assert any(noun in captured.out for noun, _ in CATEGORIES.values())

    rc = main(["recommend", str(shop), "--user", "nobody"])
    assert rc == 2 and "nobody" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_without_text_trains_ids_only(tmp_path: Path, tiny_cli, monkeypatch, capsys) -> None:
    items, inter = shop_frames(text=False)
    shop = write_dataset(tmp_path / "notext", items, inter)

    def no_encoder(*args, **kwargs):
        raise AssertionError("the encoder must not be loaded for data without text")

    monkeypatch.setattr("engine.training.loop.load_encoder", no_encoder)
    monkeypatch.setattr("engine.models.text_encoder.load_encoder", no_encoder)
    out = tmp_path / "m"
    rc = main(["train", str(shop), "--out", str(out), "--max-epochs", "2"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "no encoder" in captured.out
    config = json.loads((out / "config.json").read_text())
    assert config["use_text"] is False and config["mode"] == "frozen"
    report_path = tmp_path / "r.json"
    rc = main(["evaluate", str(shop), "--model", str(out), "--json", str(report_path), "--models", "finetuned,zero_shot,popularity", "--no-ild"])
    assert rc == 0, capsys.readouterr().err
    report = json.loads(report_path.read_text())
    assert "note" in report["models"]["zero_shot"] and "ndcg@10" in report["models"]["finetuned"]


def test_cli_model_errors(saved: Path, tmp_path: Path, capsys) -> None:
    shop = write_shop(tmp_path / "shop", seed=1)
    rc = main(["evaluate", str(shop), "--model", str(saved), "--json", str(tmp_path / "r.json")])
    assert rc == 2 and "fingerprint" in capsys.readouterr().err
    assert not (tmp_path / "r.json").exists()
    rc = main(["evaluate", str(shop), "--json", str(tmp_path / "r.json")])
    assert rc == 2 and "no trained model" in capsys.readouterr().err
    rc = main(["recommend", str(shop), "--model", str(tmp_path / "missing"), "--user", "U00"])
    assert rc == 2 and "no such model directory" in capsys.readouterr().err


def test_item_text_is_cut_before_tokenising() -> None:
    from engine.models.text_encoder import FIELD_CHARS, item_texts

    items = pd.DataFrame({"item_id": ["a", "b"], "title": ["x" * 5_000_000, "short"], "category": ["c", "c"]})
    texts = item_texts(items)
    assert len(texts[0]) <= FIELD_CHARS + 10 and texts[1] == "short | c"


def test_a_truncated_text_vector_cache_is_rebuilt(tmp_path: Path, monkeypatch) -> None:
    from engine.models import text_encoder

    items = pd.DataFrame({"item_id": ["a", "b"], "title": ["red shoe", "blue bag"]})
    first = text_encoder.cached_item_vectors(tmp_path, items)
    (cache,) = (tmp_path / ".cache").glob("text_vectors-*.npy")
    cache.write_bytes(cache.read_bytes()[:60])
    with pytest.warns(UserWarning, match="unusable cache"):
        again = text_encoder.cached_item_vectors(tmp_path, items)
    np.testing.assert_allclose(again, first, atol=1e-6)
    np.testing.assert_allclose(text_encoder.cached_item_vectors(tmp_path, items), first, atol=1e-6)  # and it is whole again


def test_modes_share_the_cached_lower_layers_of_the_encoder(tmp_path: Path, monkeypatch) -> None:
    """The first tower keeps the lower layers' states in DIR/.cache; a tower of another mode on the
    same texts and encoder reads them instead of running those layers again."""
    from engine.models.two_tower import TextTower
    from engine.training.loop import build_text_tower

    data = load_dataset(write_shop(tmp_path / "shop"))
    frozen = build_text_tower(data, tiny_config(mode="frozen"))
    assert len(list((data.root / ".cache").glob("text_layers-*.npy"))) == 1
    lower_runs = []
    run = TextTower._run
    monkeypatch.setattr(TextTower, "_run", lambda self, ids, mask, start, stop, hidden=None: (
        lower_runs.append(start), run(self, ids, mask, start, stop, hidden))[1])
    top = build_text_tower(data, tiny_config(mode="top"))
    assert 0 not in lower_runs  # nothing ran from the embeddings up
    assert torch.equal(top.cache, frozen.cache) and top.split == frozen.split == 5
    # A frozen tower's vectors are the full encoder's (layer 6 run from the cached layer 5).
    full = TextTower(top.encoder, top.input_ids, top.attention_mask, "full", 1)
    torch.testing.assert_close(frozen.encode_all(), full.encode_all(), atol=2e-3, rtol=0)


def test_scores_do_not_depend_on_how_histories_are_batched(trained) -> None:
    """score_users runs histories by length in token-bounded batches; each user's scores are those
    of scoring the user alone, in the given order (an empty history scores 0)."""
    from engine.models.two_tower import TOKENS_PER_ROW, _length_batches

    data, split, model, _, _ = trained
    table = model.item_vectors().detach()
    rng = np.random.default_rng(0)
    histories = [rng.integers(0, data.n_items, n) for n in (9, 1, 0, 4, 10, 2, 7, 3)]
    together = score_users(model, histories, table, batch=3)
    alone = np.concatenate([score_users(model, [h], table) for h in histories])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    assert not together[2].any()
    lengths = np.array([40, 1, 40, 3, 40, 40])
    order = np.argsort(lengths, kind="stable")
    batches = list(_length_batches(order, lengths[order], batch=4))
    assert sorted(np.concatenate(batches).tolist()) == list(range(6))
    assert all(len(b) * lengths[b].max() <= 4 * TOKENS_PER_ROW or len(b) == 1 for b in batches)
    assert sorted(lengths[batches[0]].tolist()) == [1, 3]  # short rows together, each long one alone
