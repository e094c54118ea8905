"""Segments: clustering and the choice of k, recovery of the demo tastes, rule segments, privacy."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS
from sklearn.metrics import adjusted_rand_score

from engine.cli.parser import main
from engine.studio.segments import (
    CATALOGUE_FILLER,
    MIN_SEGMENT_SIZE,
    Segment,
    SegmentCatalogue,
    attribute_agreement,
    check_size,
    cluster_users,
    describe_groups,
    describe_members,
    get_segment,
    learned_segments,
    rule_segments,
    segment_catalogue,
    segments_table,
    user_features,
    visible_segments,
)

MIN_HISTORY = 5  # ARI is judged on users with at least this many distinct training items


def _blobs(k: int = 5, per: int = 60, dim: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1, (k, dim)) * 6
    labels = np.repeat(np.arange(k), per)
    return centres[labels] + rng.normal(0, 0.5, (k * per, dim)), labels


@pytest.mark.parametrize("method", ["kmeans", "gmm"])
def test_k_is_chosen_within_range_and_finds_true_blobs(method: str) -> None:
    x, truth = _blobs()
    labels, k, criterion, scores = cluster_users(x, method, k_range=(2, 8))
    assert criterion == ("silhouette" if method == "kmeans" else "bic")
    assert set(scores) == set(range(2, 9))
    assert k == 5
    assert adjusted_rand_score(truth, labels) > 0.95


def test_many_users_are_clustered_by_minibatch_kmeans(monkeypatch) -> None:
    from engine.studio import segments

    x, truth = _blobs(k=4, per=80)
    monkeypatch.setattr(segments, "MINIBATCH_ABOVE", 100)  # 320 users count as a shop's million
    made = []
    real = __import__("sklearn.cluster", fromlist=["MiniBatchKMeans"]).MiniBatchKMeans

    def spy(*args, **kwargs):
        made.append(kwargs.get("batch_size"))
        return real(*args, **kwargs)

    monkeypatch.setattr("sklearn.cluster.MiniBatchKMeans", spy)
    labels, k, _, _ = cluster_users(x, "kmeans", k_range=(2, 6))
    assert made and k == 4 and adjusted_rand_score(truth, labels) > 0.95


def test_a_studio_of_many_users_holds_a_seeded_sample(demo_model) -> None:
    from engine.studio.context import load_studio
    from engine.studio import context

    full = load_studio(*demo_model)
    sample = context.Studio.build(full.data, full.rec, full.split, max_users=100)
    again = context.Studio.build(full.data, full.rec, full.split, max_users=100)
    assert len(sample.users) == 100 and sample.sampled_from == len(full.users) and full.sampled_from is None
    assert np.isin(sample.users, full.users).all() and (sample.users == again.users).all()
    assert sample.n_train_users == full.n_train_users  # item statistics still count every user
    rows = full.rows_of(sample.users)
    np.testing.assert_allclose(sample.user_vectors, full.user_vectors[rows], rtol=1e-4, atol=1e-5)
    segs = learned_segments(sample, "kmeans", k=3)
    assert sum(s.size for s in segs.segments) == 100


def test_given_k_and_bad_k() -> None:
    x, _ = _blobs(k=3, per=20)
    labels, k, criterion, scores = cluster_users(x, "kmeans", k=4)
    assert (k, criterion, scores) == (4, "given", {}) and len(np.unique(labels)) == 4
    with pytest.raises(ValueError, match="k must be between"):
        cluster_users(x, "kmeans", k=1)
    with pytest.raises(ValueError, match="method"):
        cluster_users(x, "dbscan")


@pytest.mark.slow
def test_learned_segments_find_taste_structure(demo_studio) -> None:
    """Even the tiny 3-epoch test model's segments follow the 8 latent tastes (ARI 0 = chance)."""
    assert attribute_agreement(demo_studio, "taste")["all"] >= 0.25


@pytest.mark.slow
def test_attribute_agreement_needs_the_column(demo_studio) -> None:
    assert attribute_agreement(demo_studio, "no_such_column") is None


@pytest.mark.slow
def test_within_category_block_removes_category_means(demo_studio) -> None:
    """The taste half of ``profile``: item vectors centred on their category's mean."""
    from engine.studio.segments import _within_category

    items = demo_studio.data.items
    within = _within_category(items, demo_studio.item_vectors)
    cats = items["category"].astype(str).to_numpy()
    for c in np.unique(cats)[:3]:
        np.testing.assert_allclose(within[cats == c].mean(axis=0), 0.0, atol=1e-6)
    assert _within_category(items.drop(columns=["category"]), demo_studio.item_vectors) is None


@pytest.mark.slow
def test_learned_segments_recover_demo_tastes(trained_demo_studio) -> None:
    """ARI >= 0.5 between 8 learned segments and the 8 latent tastes of the demo users.

    Needs a properly trained model on the full demo store: the ranker benchmark's, or one the
    fixture trains (frozen encoder, about 3.5 minutes). Users with one or two items cannot reveal a
    taste, so those with at least MIN_HISTORY items must do better.
    """
    ari = attribute_agreement(trained_demo_studio, "taste", min_items=MIN_HISTORY)
    assert ari["k"] == 8 and ari["n_all"] > 4000
    assert ari["all"] >= 0.5
    assert ari["long"] >= 0.55


def test_learned_segments_are_named_and_sized(demo_studio) -> None:
    seg = learned_segments(demo_studio, "kmeans", k_range=(4, 6))
    assert 4 <= seg.k <= 6 and seg.criterion == "silhouette"
    sizes = [s.size for s in seg.segments]
    assert sizes == sorted(sizes, reverse=True) and sum(sizes) == len(demo_studio.users)
    for s in seg.segments:
        assert s.kind == "learned" and s.id.startswith("kmeans-")
        assert s.name and s.keywords and s.top_categories
        assert s.centroid.shape == (demo_studio.item_vectors.shape[1],)
    assert len({s.name for s in seg.segments}) == len(seg.segments)


def test_gmm_segments_choose_k_by_bic(demo_studio) -> None:
    seg = learned_segments(demo_studio, "gmm", k_range=(3, 5))
    assert seg.criterion == "bic" and seg.k == min(seg.scores, key=seg.scores.get)


@pytest.mark.parametrize("space", ["profile", "model", "blend"])
def test_user_features_are_unit_rows(demo_studio, space: str) -> None:
    x = user_features(demo_studio, space)
    assert x.shape[0] == len(demo_studio.users)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-4)


def test_keywords_set_a_group_apart(demo_studio) -> None:
    """Members who all bought books get book words, not the words every user buys."""
    studio = demo_studio
    items = studio.data.items
    books = np.flatnonzero(items["category"].to_numpy() == "Books")
    share = np.asarray(studio.history[studio.users][:, books].sum(axis=1)).ravel() / np.diff(studio.history[studio.users].indptr)
    readers = studio.users[np.argsort(-share)[:60]]
    keywords, cats = describe_members(studio, readers)
    assert cats[0] == "Books"
    assert "books" in keywords or "book" in keywords or "novel" in " ".join(keywords)


def _shop() -> tuple[pd.DataFrame, sp.csr_matrix, list[np.ndarray]]:
    """A catalogue where every group buys mostly Tops (the shop's best seller) but each more of its own category.

    Every item text holds catalogue filler (field labels, "containing", "basic"), fragments ("HW",
    "ED") and digits; one member of the first group made one odd Watches purchase.
    """
    label = " Type: {0}; product group: {0}; colour: Black"
    rows = [("Tops", f"Top {i}", "Basic jersey top containing cotton." + label.format("Top")) for i in range(12)]
    rows += [("Shoes", f"ED Runner HW 2pk {i}", "Basic leather sneakers containing rubber soles." + label.format("Shoes")) for i in range(4)]
    rows += [("Bags", f"Tote {i}", "Basic canvas tote with zip pocket." + label.format("Bags")) for i in range(4)]
    rows += [("Hats", f"Beanie {i}", "Basic wool beanie, ribbed knit." + label.format("Hats")) for i in range(4)]
    rows += [("Watches", f"Steel watch {i}", "Basic steel watch." + label.format("Watches")) for i in range(2)]
    items = pd.DataFrame(rows, columns=["category", "title", "description"])
    items.insert(0, "item_id", [f"I{i}" for i in range(len(items))])
    first = {c: int(np.flatnonzero(items["category"] == c)[0]) for c in ("Shoes", "Bags", "Hats")}
    rng = np.random.default_rng(0)
    pairs = []
    for g, cat in enumerate(("Shoes", "Bags", "Hats")):
        for u in range(g * 20, g * 20 + 20):
            pairs += [(u, i) for i in rng.choice(12, 3, replace=False)] + [(u, first[cat] + int(rng.integers(4)))]
    pairs.append((0, int(np.flatnonzero(items["category"] == "Watches")[0])))
    u, i = np.array(pairs).T
    history = sp.csr_matrix((np.ones(len(u)), (u, i)), shape=(60, len(items)))
    return items, history, [np.arange(g * 20, g * 20 + 20) for g in range(3)]


def _is_filler(word: str) -> bool:
    return (word in ENGLISH_STOP_WORDS or word in CATALOGUE_FILLER or len(word) < 3 or any(ch.isdigit() for ch in word)
            or word in {"basic", "black", "colour", "group", "type", "product"})


def test_names_follow_what_a_segment_buys_more_of() -> None:
    """Every group's most bought category is Tops; each is named by the category it over-indexes on."""
    items, history, groups = _shop()
    for members in groups + [np.arange(60)]:
        assert items["category"].iloc[history[members].nonzero()[1]].value_counts().index[0] == "Tops"
    found = describe_groups(items, history, groups)
    for d, cat in zip(found, ("Shoes", "Bags", "Hats")):
        assert d.top_categories[0] == cat and "Tops" not in d.top_categories
        assert d.name.startswith(cat)
        assert "Watches" not in d.top_categories  # one odd purchase names nothing
        assert "steel" not in d.keywords and "watch" not in d.keywords
        assert d.keywords
    assert len({d.name for d in found}) == len(found)
    assert "leather" in found[0].keywords and "canvas" in found[1].keywords and "wool" in found[2].keywords


def test_filler_and_fragments_never_describe_a_group() -> None:
    items, history, groups = _shop()
    for d in describe_groups(items, history, groups + [np.arange(60)]):
        words = d.name.replace("&", " ").replace(":", " ").replace(",", " ").lower().split()
        assert not [w for w in d.keywords + words if _is_filler(w)], d


def test_names_are_distinct_when_the_best_terms_collide() -> None:
    items, history, groups = _shop()
    same = [groups[0], groups[0], groups[0]]
    names = [d.name for d in describe_groups(items, history, same)]
    assert len(set(names)) == 3 and names[0].startswith("Shoes")
    assert names == [d.name for d in describe_groups(items, history, same)]  # deterministic


def test_segment_catalogue_lists_learned_then_rule_segments(demo_studio) -> None:
    catalogue = segment_catalogue(demo_studio, k=5)
    assert isinstance(catalogue, SegmentCatalogue) and catalogue.learned.k == 5
    kinds = [s.kind for s in catalogue.visible]
    assert kinds == sorted(kinds) and kinds[0] == "learned" and kinds[-1] == "rule"  # "learned" < "rule"
    assert [s.id for s in catalogue.visible] == [s.id for s in visible_segments(catalogue.learned.segments + catalogue.rules)]
    assert catalogue.get("rule:heavy-buyers").kind == "rule"
    assert catalogue.get(catalogue.visible[0].name) is catalogue.visible[0]
    rules_only = segment_catalogue(demo_studio, learned=False)
    assert rules_only.learned is None and rules_only.get("rule:heavy-buyers").size == catalogue.get("rule:heavy-buyers").size
    with pytest.raises(ValueError, match="no segment"):
        rules_only.get("kmeans-1")
    assert segment_catalogue(demo_studio, k=5, rules=False).rules == []


def test_a_studio_keeps_its_segments_in_the_cache_folder(demo_model, tmp_path: Path, monkeypatch) -> None:
    import dataclasses
    import shutil

    from engine.studio import segments as module
    from engine.studio.context import load_studio

    data_dir, model_dir = demo_model
    data = tmp_path / "data"  # a copy: the cache starts empty and no other test sees it
    shutil.copytree(data_dir, data, ignore=shutil.ignore_patterns(".cache", "models"))
    studio = load_studio(data, shutil.copytree(model_dir, tmp_path / "model"), images=False)
    first = segment_catalogue(studio)
    assert len(list((data / ".cache").glob("segments-*.npz"))) == 1

    def no_clustering(*args, **kwargs):
        raise AssertionError("the cached segments should have been read")

    monkeypatch.setattr(module, "cluster_users", no_clustering)
    again = segment_catalogue(studio)
    assert again.min_size == first.min_size and [s.id for s in again.visible] == [s.id for s in first.visible]
    for a, b in zip(again.segments, first.segments, strict=True):
        assert (a.id, a.name, a.kind, a.keywords, a.top_categories, a.rule) == (b.id, b.name, b.kind, b.keywords, b.top_categories, b.rule)
        np.testing.assert_array_equal(a.members, b.members)
        assert (a.centroid is None) == (b.centroid is None)
        if a.centroid is not None:
            np.testing.assert_array_equal(a.centroid, b.centroid)
    assert (again.learned.method, again.learned.space, again.learned.k, again.learned.criterion, again.learned.scores) == \
        (first.learned.method, first.learned.space, first.learned.k, first.learned.criterion, first.learned.scores)
    np.testing.assert_array_equal(again.learned.labels, first.learned.labels)
    # Other settings, or a data set built in memory (no files to name it), are computed.
    with pytest.raises(AssertionError, match="cached segments"):
        segment_catalogue(studio, k=3)
    with pytest.raises(AssertionError, match="cached segments"):
        segment_catalogue(dataclasses.replace(studio, data=dataclasses.replace(studio.data, source=None)))


def test_demo_segment_names_are_distinct_and_clean(demo_studio) -> None:
    segments = segment_catalogue(demo_studio, k=8, rules=False).learned.segments
    assert len({s.name for s in segments}) == len(segments)
    for s in segments:
        assert not [w for w in s.keywords if _is_filler(w)], s.keywords
        assert len(s.name) <= 60


def test_rule_segments_from_attributes_and_behaviour(demo_studio) -> None:
    studio = demo_studio
    rules = {s.id: s for s in rule_segments(studio)}
    assert {"rule:age-18-25", "rule:club-member", "rule:new-users", "rule:heavy-buyers", "rule:region-north"} <= set(rules)
    users = studio.data.users.set_index("user_id")
    ages = users.loc[studio.data.user_ids[rules["rule:age-18-25"].members], "age"].astype(int)
    assert ages.between(18, 25).all()
    assert (users.loc[studio.data.user_ids[rules["rule:club-member"].members], "club_member"] == "yes").all()
    counts = np.bincount(studio.fit.interactions["uidx"], minlength=studio.data.n_users)
    assert (counts[rules["rule:new-users"].members] < 3).all()
    heavy = rules["rule:heavy-buyers"]
    assert 0.05 * len(studio.users) <= heavy.size <= 0.3 * len(studio.users)
    for seg in rules.values():
        assert seg.kind == "rule" and seg.rule
        assert (studio.rows_of(seg.members) >= 0).all()  # only users with history


def test_small_segments_are_never_shown_and_refused(demo_studio) -> None:
    studio = demo_studio
    tiny = Segment("rule:tiny", "Tiny", "rule", studio.users[: MIN_SEGMENT_SIZE - 1])
    big = Segment("rule:big", "Big", "rule", studio.users[:MIN_SEGMENT_SIZE])
    assert visible_segments([tiny, big]) == [big]
    assert list(segments_table([tiny, big])["id"]) == ["rule:big"]
    with pytest.raises(ValueError, match="under the minimum of 20"):
        check_size(tiny)
    with pytest.raises(ValueError, match="under the minimum"):
        get_segment([tiny, big], "rule:tiny")
    with pytest.raises(ValueError, match="no segment"):
        get_segment([tiny, big], "nope")
    assert get_segment([tiny, big], "BIG") is big
    shown = segment_catalogue(studio, k=6).visible
    assert all(s.size >= MIN_SEGMENT_SIZE for s in shown)


def test_exports_hold_no_user(demo_studio) -> None:
    studio = demo_studio
    segments = segment_catalogue(studio, k=5).visible
    text = json.dumps([s.to_dict() for s in segments]) + segments_table(segments).to_csv()
    assert set(segments[0].to_dict()) >= {"id", "name", "size", "keywords", "top_categories"}
    assert "members" not in segments[0].to_dict() and "centroid" not in segments[0].to_dict()
    for uid in studio.data.user_ids[:200]:
        assert uid not in text


def test_segments_command_writes_json(demo_model, tmp_path: Path, capsys) -> None:
    data_dir, model_dir = demo_model
    out = tmp_path / "segments.json"
    rc = main(["segments", str(data_dir), "--model", str(model_dir), "--k", "5", "--json", str(out)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "kmeans-1" in captured.out and "rule:heavy-buyers" in captured.out
    result = json.loads(out.read_text())
    assert {"id", "name", "size", "keywords", "top_categories"} <= set(result["segments"][0])
    assert sum(s["id"].startswith("kmeans-") for s in result["segments"]) <= 5
    assert all(s["size"] >= MIN_SEGMENT_SIZE for s in result["segments"])
    assert "U0" not in out.read_text()  # no demo user id anywhere
