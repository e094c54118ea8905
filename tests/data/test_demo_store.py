"""Tests of the embedded demo store generator (engine.data.demo_store)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from engine.data.tables import load_dataset
from engine.data.demo_store import CATEGORIES, CATEGORY_NAMES, COLORS, COMPLEMENTS, START, TASTES, generate_demo
from engine.data.demo_pictures import BACKGROUND, SIZE

SMALL = {"n_items": 300, "n_users": 200}
CSV_FILES = ("items.csv", "interactions.csv", "users.csv")


@pytest.fixture(scope="module")
def small_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_demo(tmp_path_factory.mktemp("demo") / "store", seed=7, **SMALL)


@pytest.fixture(scope="module")
def small(small_dir: Path):
    return load_dataset(small_dir)


def _with_next_category(ds) -> pd.DataFrame:
    """Interactions in time order per user, with the category of the user's next interaction."""
    category = dict(zip(ds.items["item_id"], ds.items["category"]))
    inter = ds.interactions.sort_values(["user_id", "timestamp"], kind="stable").copy()
    inter["category"] = inter["item_id"].map(category)
    inter["next_category"] = inter.groupby("user_id")["category"].shift(-1)
    return inter


def _complement_lift(inter: pd.DataFrame, source: str | None = None) -> tuple[float, float, int]:
    """P(next category is a complement | purchase) against the complements' base rate, over purchases."""
    base_share = inter["category"].value_counts(normalize=True)
    bought = inter[(inter["event"] == "purchase") & inter["next_category"].notna()]
    if source is not None:
        bought = bought[bought["category"] == source]
    hits = [nxt in COMPLEMENTS[cat] for cat, nxt in zip(bought["category"], bought["next_category"])]
    base = [sum(base_share.get(c, 0.0) for c in COMPLEMENTS[cat]) for cat in bought["category"]]
    return float(np.mean(hits)), float(np.mean(base)), len(bought)


def _dominant_color(path: Path) -> np.ndarray:
    """The most frequent exact colour among the pixels that are not the background."""
    pixels = np.asarray(Image.open(path).convert("RGB")).reshape(-1, 3).astype(np.int64)
    pixels = pixels[(pixels != np.array(BACKGROUND)).any(axis=1)]
    packed = (pixels[:, 0] << 16) | (pixels[:, 1] << 8) | pixels[:, 2]
    values, counts = np.unique(packed, return_counts=True)
    top = values[counts.argmax()]
    return np.array([(top >> 16) & 255, (top >> 8) & 255, top & 255])


def test_vocabularies_name_known_categories_and_colours() -> None:
    assert len(set(CATEGORY_NAMES)) == len(CATEGORY_NAMES) >= 12
    for category in CATEGORIES:
        assert set(category.colors) <= set(COLORS), category.name
        assert len({brand for brand, _ in category.brands}) >= 3, category.name
    for taste in TASTES:
        assert set(taste.categories) <= set(CATEGORY_NAMES), taste.name
        assert set(taste.colors) <= set(COLORS), taste.name
    assert set(COMPLEMENTS) == set(CATEGORY_NAMES)
    assert all(set(dst) <= set(CATEGORY_NAMES) for dst in COMPLEMENTS.values())


def test_small_store_loads_with_the_catalogue_columns(small) -> None:
    assert small.n_items == SMALL["n_items"]
    assert small.n_users == SMALL["n_users"]
    for column in ("category", "brand", "price", "color", "description", "image", "created_at"):
        assert column in small.items.columns
    assert small.items["item_id"].str.fullmatch(r"P\d{5}").all()
    assert small.items["title"].is_unique
    assert set(small.interactions["event"]) == {"view", "click", "cart", "purchase"}
    assert small.has_text()
    assert (small.items["price"] > 0).all()


def test_small_store_has_categories_and_tastes(small) -> None:
    assert small.items["category"].nunique() >= 12
    assert set(small.items["category"]) <= set(CATEGORY_NAMES)
    users = small.users
    assert users is not None and list(users.columns) == ["user_id", "taste", "age", "region", "club_member"]
    assert users["taste"].nunique() >= 8
    assert set(users["club_member"]) <= {"yes", "no"}
    assert users["age"].astype(int).between(18, 80).all()
    assert set(users["user_id"]) == set(small.user_ids)


def test_every_user_has_at_least_three_interactions(small) -> None:
    assert small.interactions.groupby("user_id").size().min() >= 3


def test_new_arrivals_have_no_interactions_before_they_exist(small) -> None:
    created = small.items["created_at"]
    new = created >= pd.Timestamp(str(START))
    # About 8% of the items arrive during the last three weeks; the rest exist before the history starts.
    assert 0.05 <= new.mean() <= 0.11
    assert (created[new] >= pd.Timestamp(str(START)) + pd.Timedelta(days=90 - 21)).all()
    when = small.interactions["iidx"].map(created)
    assert (small.interactions["timestamp"] >= when).all()


def test_every_image_exists_and_is_filled_with_the_item_colour(small) -> None:
    for k in range(small.n_items):
        path = small.image_path(k)
        assert path is not None, small.items["image"].iat[k]
        with Image.open(path) as image:
            assert image.size == (SIZE, SIZE)
        expected = np.array(COLORS[small.items["color"].iat[k]])
        dominant = _dominant_color(path)
        assert np.abs(dominant - expected).max() <= 30, (small.items["item_id"].iat[k], dominant, expected)


def test_purchases_raise_the_chance_of_complement_categories(small) -> None:
    hit, base, n = _complement_lift(_with_next_category(small))
    assert n >= 50
    assert hit > 2.5 * base and hit > 0.4


def test_item_popularity_is_skewed(small) -> None:
    counts = small.interactions["item_id"].value_counts()
    top = counts.iloc[: small.n_items // 10].sum()
    assert top / len(small.interactions) > 0.30


def test_readme_says_synthetic_and_names_the_seed(small_dir: Path) -> None:
    text = (small_dir / "README.md").read_text()
    assert "synthetic" in text and "seed 7" in text


def test_same_seed_gives_identical_files_and_another_seed_does_not(small_dir: Path, tmp_path: Path) -> None:
    again = generate_demo(tmp_path / "again", seed=7, **SMALL)
    for name in CSV_FILES:
        assert (again / name).read_bytes() == (small_dir / name).read_bytes(), name
    images = sorted(p.name for p in (small_dir / "images").iterdir())
    assert images == sorted(p.name for p in (again / "images").iterdir())
    for name in images:
        assert (again / "images" / name).read_bytes() == (small_dir / "images" / name).read_bytes(), name
    other = generate_demo(tmp_path / "other", seed=8, **SMALL)
    for name in CSV_FILES:
        assert (other / name).read_bytes() != (small_dir / name).read_bytes(), name


def test_too_small_a_catalogue_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="n_items"):
        generate_demo(tmp_path / "tiny", n_items=10, n_users=5)
    assert not (tmp_path / "tiny").exists()


def test_default_store_matches_the_contract(tmp_path: Path) -> None:
    ds = load_dataset(generate_demo(tmp_path / "demo"))
    assert ds.n_items == 3000 and ds.n_users == 5000
    assert ds.items["category"].nunique() == len(CATEGORY_NAMES) >= 12
    assert ds.items.groupby("category")["brand"].nunique().min() >= 3
    assert ds.users is not None and ds.users["taste"].nunique() >= 8
    assert 100_000 <= len(ds.interactions) <= 150_000
    per_user = ds.interactions.groupby("user_id").size()
    assert 15 <= per_user.median() <= 30 and per_user.min() >= 3
    span = ds.interactions["timestamp"]
    assert span.min() >= pd.Timestamp("2024-01-01") and span.max() < pd.Timestamp("2024-03-31")
    assert len(list((tmp_path / "demo" / "images").glob("*.png"))) == 3000
    # Phone buyers go on to phone accessories or headphones far more often than shoppers at large.
    hit, base, n = _complement_lift(_with_next_category(ds), source="Phones")
    assert n >= 100 and hit > 3 * base


def test_a_shop_sized_store_is_parquet_with_shared_pictures(tmp_path: Path, small: object, monkeypatch) -> None:
    out = generate_demo(tmp_path / "shop", seed=7, fmt="parquet", shared_pictures=True, **SMALL)
    assert {p.name for p in out.iterdir()} >= {"items.parquet", "interactions.parquet", "users.parquet"}
    assert not list(out.glob("*.csv"))
    shop = load_dataset(out)
    # The same generator: the same events as the CSV store of the same seed and sizes.
    assert len(shop.interactions) == len(small.interactions)
    assert (shop.interactions["timestamp"].to_numpy() == small.interactions["timestamp"].to_numpy()).all()
    # One picture per (shape, variant, colour), shared by the items that look alike.
    paths = shop.items["image"].unique()
    assert len(paths) < len(shop.items) and all((out / p).is_file() for p in paths)
    assert len(list((out / "images").rglob("*.png"))) == len(paths)
    same = shop.items.groupby("image")["category"].nunique()
    assert (same == 1).all()  # a picture is never shared across categories
    # Colour features read each shared picture once, and every item sharing it gets its histogram.
    from engine.data import colours

    reads = []
    real = colours._read_picture
    monkeypatch.setattr(colours, "_read_picture", lambda path: reads.append(path) or real(path))
    feats = colours.colour_features(shop, use_cache=False)
    assert len(reads) == len(paths) and feats.available.all()
    first = shop.items.reset_index().groupby("image")["index"].transform("first").to_numpy()
    np.testing.assert_array_equal(feats.hist, feats.hist[first])
    one = int(np.flatnonzero(first != np.arange(len(first)))[0])  # an item whose picture another item showed first
    np.testing.assert_array_equal(feats.hist[one], colours.picture_histogram(real(shop.image_path(one)))[0])
