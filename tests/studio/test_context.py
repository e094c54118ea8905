"""The studio's serving cache (user vectors computed once per model and histories, then read), and
a sampled studio's second stage, fitted for its own users."""

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


def test_a_sampled_studio_scores_its_users_as_a_studio_of_everyone_does(demo_model) -> None:
    from engine.models.baselines import Popularity
    from engine.models.two_stage import TwoStage, TwoStageConfig
    from engine.studio.context import Studio

    full = load_studio(*demo_model, images=False, text=False)
    final = TwoStage({"finetuned": full.rec, "popularity": Popularity()}, full.data.items,
                     config=TwoStageConfig(per_source=20, n_estimators=10, min_child_samples=5)).train(full.split)
    everyone = Studio.build(full.data, full.rec, full.split, final=final)
    import pandas as pd

    def pairs(users: np.ndarray) -> pd.DataFrame:  # (user, item, score) of the users' candidates
        rows, items, scores = final.candidate_scores(users)
        return pd.DataFrame({"user": users[rows], "item": items, "score": scores}).sort_values(["user", "item"], ignore_index=True)

    expected = pairs(everyone.users)  # before the sample's build refits the shared second stage
    sample = Studio.build(full.data, full.rec, full.split, final=final, max_users=300)
    assert len(sample.users) == 300 and sample.final is final
    expected = expected[expected["user"].isin(sample.users)].reset_index(drop=True)
    pd.testing.assert_frame_equal(pairs(sample.users), expected, rtol=1e-5, atol=1e-5)  # float noise of other batch sizes
    # Stage 2's per-user tables hold the sample alone: anyone else is refused, not scored from empty tables.
    outside = np.setdiff1d(everyone.users, sample.users)[:1]
    with pytest.raises(ValueError, match="not among the users"):
        final.score(outside)


class _CountingFinal:
    """A stand-in second stage: three candidates per user with made-up scores, and a call count."""

    def __init__(self, n_items: int):
        self.n_items, self.calls = n_items, 0

    def candidate_scores(self, users: np.ndarray):
        self.calls += 1
        rows = np.repeat(np.arange(len(users)), 3)
        items = (users[rows] * 7 + np.tile([0, 1, 2], len(users))) % self.n_items
        return rows, items, (items % 5).astype(np.float32)


def test_relevance_and_tfidf_are_read_from_the_cache_the_second_time(demo_model, tmp_path: Path, monkeypatch) -> None:
    from engine.studio import context

    data_dir, model_dir = demo_model
    data = tmp_path / "data"
    shutil.copytree(data_dir, data, ignore=shutil.ignore_patterns(".cache", "models"))
    model = shutil.copytree(model_dir, tmp_path / "model")
    first = load_studio(data, model, images=False, text=False)
    first.final = _CountingFinal(first.n_items)
    members = first.users[::3]
    relevance = first.member_relevance(members)
    assert first.final.calls > 0 and len(list((data / ".cache").glob("relevance-*.npy"))) == 1
    matrix, terms = first.tfidf()
    assert matrix.shape[0] == first.n_items and len(terms) > 0

    monkeypatch.setattr(context, "_tfidf", lambda items: pytest.fail("the kept TF-IDF should have been read"))
    again = load_studio(data, model, images=False, text=False)
    again.final = _CountingFinal(again.n_items)
    np.testing.assert_array_equal(again.member_relevance(members), relevance)
    assert again.final.calls == 0
    kept_matrix, kept_terms = again.tfidf()
    assert (kept_matrix != matrix).nnz == 0 and kept_terms.tolist() == terms.tolist()
    # Other members are another key: computed, not read.
    again.member_relevance(members[:-1])
    assert again.final.calls > 0


def test_the_serving_cache_holds_the_first_pages_work(demo_model, tmp_path: Path, monkeypatch) -> None:
    from engine.page.rerank import fill_serving_cache, rank_segment
    from engine.studio import context, segments

    data_dir, model_dir = demo_model
    data = tmp_path / "data"
    shutil.copytree(data_dir, data, ignore=shutil.ignore_patterns(".cache", "models"))
    model = shutil.copytree(model_dir, tmp_path / "model")
    fill_serving_cache(data, model)
    kept = {p.name.split("-")[0] for p in (data / ".cache").iterdir()}
    assert {"interactions", "user_states", "segments", "tfidf", "fingerprint"} <= kept
    # The next studio (the app's first page) reads all of it: no user tower, no clustering, no TF-IDF,
    # and with two stages no relevance of a learned segment.
    monkeypatch.setattr(FineTunedRecommender, "user_states", lambda *a, **k: pytest.fail("user vectors recomputed"))
    monkeypatch.setattr(segments, "_learned", lambda *a, **k: pytest.fail("segments recomputed"))
    monkeypatch.setattr(context, "_tfidf", lambda items: pytest.fail("TF-IDF recomputed"))
    monkeypatch.setattr(context.Studio, "_mean_relevance", lambda self, members: pytest.fail("relevance recomputed"))
    studio = load_studio(data, model)
    learned = [s for s in segments.segment_catalogue(studio).visible if s.kind == "learned"]
    assert learned and ("relevance" in kept) == (studio.final is not None)
    for segment in learned:
        assert rank_segment(studio, segment).items().size > 0
