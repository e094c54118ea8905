"""The studio's serving cache: user vectors are computed once per model and histories, then read."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from engine.models.finetuned import FineTunedRecommender
from engine.studio.context import load_studio, model_key


def test_user_vectors_are_read_from_the_cache_the_second_time(demo_model, tmp_path: Path, monkeypatch) -> None:
    data_dir, model_dir = demo_model
    data = tmp_path / "data"  # a copy, so the cache starts empty and no other test sees it
    shutil.copytree(data_dir, data, ignore=shutil.ignore_patterns(".cache", "models"))
    model = shutil.copytree(model_dir, tmp_path / "model")
    first = load_studio(data, model, images=False, text=False)
    assert len(list((data / ".cache").glob("user_states-*.npy"))) == 1

    def no_tower(self, histories, batch=1024):
        raise AssertionError("the cached user vectors should have been read")

    monkeypatch.setattr(FineTunedRecommender, "user_states", no_tower)
    again = load_studio(data, model, images=False, text=False)
    np.testing.assert_array_equal(again.user_vectors, first.user_vectors)
    np.testing.assert_array_equal(again.state_means, first.state_means)
    # Another model (here the same weights written again later) is another key: computed anew.
    before = model_key(model)
    (model / "manifest.json").touch()
    assert model_key(model) != before
    with pytest.raises(AssertionError, match="cached user vectors"):
        load_studio(data, model, images=False, text=False)
