"""Tests for the data-set importers: real shared data where present, small hand-written CSVs always."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.data.tables import load_dataset
from engine.core.errors import DataError
from engine.data.importers import IMPORTERS, import_beauty, import_csv, import_hm, import_movielens

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def test_registry_names_every_importer() -> None:
    assert IMPORTERS == {"hm": import_hm, "beauty": import_beauty, "movielens": import_movielens, "csv": import_csv}


# ------------------------------------------------------------------------------------------------
# H&M


@pytest.fixture(scope="module")
def hm_histories(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not SHARED.exists():
        pytest.skip("needs the shared data sets in ../shared/data")
    return import_hm(SHARED / "hm", tmp_path_factory.mktemp("hm") / "histories")


@pytest.mark.shared
@pytest.mark.skipif(not SHARED.exists(), reason="needs the shared data sets in ../shared/data")
def test_hm_histories_counts_and_ids(hm_histories: Path) -> None:
    data = load_dataset(hm_histories)
    assert data.n_users == 1364
    assert len(data.interactions) == 31662
    assert data.n_items == 17033
    ids = data.items["item_id"]
    assert ids.str.len().eq(10).all()
    assert ids.str.startswith("0").any()  # leading zeros kept, not parsed as numbers
    assert "0108775015" in set(ids)
    assert (data.interactions["event"] == "purchase").all()
    assert set(data.interactions["channel"]) == {"store", "online"}
    first = data.items.set_index("item_id").loc["0108775015"]
    assert first["title"] == "Strap top"
    assert first["category"] == "Vest top"
    assert first["color"] == "Black"
    assert first["brand"] == "Ladieswear"
    assert first["description"].startswith("Jersey top with narrow shoulder straps.")
    assert "department: Jersey Basic" in first["description"]
    assert first["section_name"] == "Womens Everyday Basics"


@pytest.mark.shared
@pytest.mark.skipif(not SHARED.exists(), reason="needs the shared data sets in ../shared/data")
def test_hm_histories_prices_and_users(hm_histories: Path) -> None:
    data = load_dataset(hm_histories)
    assert data.items["price"].dtype == np.float64
    assert data.items["price"].notna().all() and (data.items["price"] > 0).all()
    assert data.interactions["price"].dtype == np.float64
    # price = mean transaction price of the article
    raw = pd.read_csv(SHARED / "hm" / "transactions_histories.csv", dtype={"article_id": str})
    expected = raw.groupby("article_id")["price"].mean()
    got = data.items.set_index("item_id")["price"]
    assert np.allclose(got.loc[expected.index].to_numpy(), expected.to_numpy())
    assert (hm_histories / "users.parquet").exists()
    assert data.users is not None
    assert set(data.users["user_id"]) == set(data.user_ids)
    assert {"age", "club_member_status", "fashion_news_frequency"} <= set(data.users.columns)


@pytest.mark.shared
@pytest.mark.skipif(not SHARED.exists(), reason="needs the shared data sets in ../shared/data")
def test_hm_histories_images_only_for_kept_items(hm_histories: Path) -> None:
    data = load_dataset(hm_histories)
    with_image = data.items.loc[data.items["image"] != "", "item_id"]
    assert len(with_image) > 0.7 * data.n_items
    for item_id in with_image:
        assert (hm_histories / "images" / f"{item_id}.jpg").is_file()
    for item_id in data.items.loc[data.items["image"] == "", "item_id"]:
        assert not (SHARED / "hm" / "images" / item_id[:3] / f"{item_id}.jpg").exists()
    on_disk = {p.stem for p in (hm_histories / "images").iterdir()}
    assert on_disk == set(with_image)
    assert data.image_path(data.item_index[with_image.iloc[0]]) is not None


@pytest.mark.shared
@pytest.mark.skipif(not SHARED.exists(), reason="needs the shared data sets in ../shared/data")
def test_hm_keeps_file_order_within_a_day(hm_histories: Path) -> None:
    data = load_dataset(hm_histories)
    raw = pd.read_csv(SHARED / "hm" / "transactions_histories.csv", dtype=str)
    assert data.interactions["item_id"].tolist() == raw["article_id"].tolist()  # the file is in date order


@pytest.mark.shared
@pytest.mark.skipif(not SHARED.exists(), reason="needs the shared data sets in ../shared/data")
def test_hm_last_week(tmp_path: Path) -> None:
    out = import_hm(SHARED / "hm", tmp_path / "week", transactions="last_week")
    data = load_dataset(out)
    assert len(data.interactions) == 240311
    assert data.n_items == 17986
    assert data.n_users == 68984
    with_image = set(data.items.loc[data.items["image"] != "", "item_id"])
    assert {p.stem for p in (out / "images").iterdir()} == with_image


@pytest.mark.shared
@pytest.mark.skipif(not SHARED.exists(), reason="needs the shared data sets in ../shared/data")
def test_hm_both_drops_the_overlap_once(tmp_path: Path) -> None:
    out = import_hm(SHARED / "hm", tmp_path / "both", transactions="both", images=False, fmt="csv")
    data = load_dataset(out)
    assert len(data.interactions) == 31662 + 240311 - 219
    assert data.n_users == 1364 + 68984 - 65
    assert (out / "users.csv").exists()
    assert "image" not in data.items.columns and not (out / "images").exists()


# ------------------------------------------------------------------------------------------------
# Beauty and MovieLens


@pytest.mark.shared
@pytest.mark.skipif(not SHARED.exists(), reason="needs the shared data sets in ../shared/data")
def test_beauty(tmp_path: Path) -> None:
    out = import_beauty(SHARED / "beauty", tmp_path / "beauty")
    data = load_dataset(out)
    assert data.n_users == 22363
    assert data.n_items == 12101
    assert len(data.interactions) == 198502
    assert not data.has_text()
    assert "placeholder" in (out / "README.md").read_text()
    lines = (SHARED / "beauty" / "Beauty.txt").read_text().splitlines()
    grouped = data.interactions.groupby("uidx", sort=False)["item_id"].agg(list)
    for line in (lines[0], lines[1], lines[-1]):
        user, *items = line.split()
        assert grouped.loc[data.user_index[user]] == items
    assert data.user_ids[0] == lines[0].split()[0]


@pytest.mark.shared
@pytest.mark.skipif(not SHARED.exists(), reason="needs the shared data sets in ../shared/data")
def test_beauty_accepts_the_file_itself(tmp_path: Path) -> None:
    out = import_beauty(SHARED / "beauty" / "Beauty.txt", tmp_path / "b", fmt="parquet")
    assert (out / "interactions.parquet").exists()


@pytest.mark.shared
@pytest.mark.skipif(not SHARED.exists(), reason="needs the shared data sets in ../shared/data")
def test_movielens(tmp_path: Path) -> None:
    out = import_movielens(SHARED / "movielens-100k", tmp_path / "ml")
    data = load_dataset(out)
    assert data.n_users == 943
    assert data.n_items == 1682
    assert len(data.interactions) == 100000
    items = data.items.set_index("item_id")
    assert items.loc["1", "title"] == "Toy Story (1995)"
    assert items.loc["1", "genres"] == "Animation|Children's|Comedy"
    assert items.loc["1", "category"] == "Animation"
    genres = set((SHARED / "movielens-100k" / "u.genre").read_text(encoding="latin-1").replace("|", "\n").split())
    assert set(items["category"]) <= genres
    assert items.loc["1", "created_at"] == pd.Timestamp("1995-01-01")
    assert set(data.interactions["weight"]) == {1.0, 2.0, 3.0, 4.0, 5.0}
    assert data.users is not None and len(data.users) == 943
    assert {"age", "gender", "occupation", "zip"} <= set(data.users.columns)


@pytest.mark.shared
@pytest.mark.skipif(not SHARED.exists(), reason="needs the shared data sets in ../shared/data")
def test_movielens_min_rating(tmp_path: Path) -> None:
    data = load_dataset(import_movielens(SHARED / "movielens-100k", tmp_path / "ml4", min_rating=4))
    assert data.interactions["weight"].min() == 4.0
    assert len(data.interactions) < 100000


# ------------------------------------------------------------------------------------------------
# import_csv (no shared data needed)


def _shop(tmp_path: Path, encoding: str = "utf-8") -> tuple[Path, Path]:
    items = tmp_path / "products.csv"
    items.write_text(
        "sku,name,kind,cost,maker,colour\n"
        "A1,Café mug,kitchen,9.5,Acme,red\n"
        "B2,Tea pot,kitchen,25,Acme,blue\n"
        "C3,Apron,textile,12.0,Loom,green\n",
        encoding=encoding,
    )
    events = tmp_path / "orders.csv"
    events.write_text(
        "customer,sku,when,qty\n"
        "u1,A1,2024-01-02,1\n"
        "u1,B2,2024-01-03,2\n"
        "u2,C3,2024-01-01,1\n"
        "u2,A1,2024-01-05,1\n",
        encoding=encoding,
    )
    return items, events


def test_csv_column_mapping(tmp_path: Path) -> None:
    items, events = _shop(tmp_path)
    out = import_csv(
        items, events, tmp_path / "out",
        item_col="sku", title_col="name", user_col="customer", time_col="when",
        category_col="kind", price_col="cost", brand_col="maker",
    )
    data = load_dataset(out)
    assert data.items["item_id"].tolist() == ["A1", "B2", "C3"]
    assert data.items["title"].tolist() == ["Café mug", "Tea pot", "Apron"]
    assert data.items["category"].tolist() == ["kitchen", "kitchen", "textile"]
    assert data.items["brand"].tolist() == ["Acme", "Acme", "Loom"]
    assert data.items["price"].tolist() == [9.5, 25.0, 12.0]
    assert data.items["colour"].tolist() == ["red", "blue", "green"]  # unmapped columns kept
    assert data.interactions["user_id"].tolist() == ["u2", "u1", "u1", "u2"]  # time order
    assert data.interactions["qty"].tolist() == ["1", "1", "2", "1"]


def test_csv_missing_mapped_column_names_file_and_column(tmp_path: Path) -> None:
    items, events = _shop(tmp_path)
    with pytest.raises(DataError, match=r"products\.csv.*'price_eur'"):
        import_csv(items, events, tmp_path / "out", item_col="sku", title_col="name", user_col="customer", time_col="when", price_col="price_eur")
    with pytest.raises(DataError, match=r"orders\.csv.*'user_id'"):
        import_csv(items, events, tmp_path / "out", item_col="sku", title_col="name", time_col="when")
    assert not (tmp_path / "out").exists()


def test_csv_latin1_names_the_encoding(tmp_path: Path) -> None:
    items, events = _shop(tmp_path, encoding="latin-1")
    kwargs = dict(item_col="sku", title_col="name", user_col="customer", time_col="when")
    with pytest.raises(DataError, match=r"products\.csv.*latin-1"):
        import_csv(items, events, tmp_path / "out", **kwargs)
    out = import_csv(items, events, tmp_path / "out", encoding="latin-1", **kwargs)
    assert load_dataset(out).items["title"].iat[0] == "Café mug"


def test_csv_bad_values_name_source_file_column_and_line(tmp_path: Path) -> None:
    items, events = _shop(tmp_path)
    events.write_text("customer,sku,when\nu1,A1,2024-01-02\nu1,B2,yesterday\n")
    kwargs = dict(item_col="sku", title_col="name", user_col="customer", time_col="when")
    with pytest.raises(DataError, match=r"orders\.csv: column when .*first at 3 \(file lines\)"):
        import_csv(items, events, tmp_path / "out", **kwargs)
    events.write_text("customer,sku,when\nu1,A1,2024-01-02\nu1,Z9,2024-01-03\n")
    with pytest.raises(DataError, match=r"orders\.csv: column sku.*Z9"):
        import_csv(items, events, tmp_path / "out", **kwargs)
    with pytest.warns(UserWarning, match="dropped 1"):
        out = import_csv(items, events, tmp_path / "out", drop_unknown=True, **kwargs)
    assert len(load_dataset(out).interactions) == 1


def test_csv_images_copied_and_reimport_replaces_tables(tmp_path: Path) -> None:
    items, events = _shop(tmp_path)
    (tmp_path / "pics").mkdir()
    (tmp_path / "pics" / "a1.jpg").write_bytes(b"\xff\xd8fake")
    items.write_text("sku,name,pic\nA1,Mug,pics/a1.jpg\nB2,Pot,https://example.com/b2.jpg\nC3,Apron,pics/missing.jpg\n")
    kwargs = dict(item_col="sku", title_col="name", user_col="customer", time_col="when", image_col="pic")
    with pytest.warns(UserWarning, match="not found"):
        out = import_csv(items, events, tmp_path / "out", fmt="parquet", **kwargs)
    data = load_dataset(out)
    assert data.image_path(0) is not None and data.image_path(0).read_bytes() == b"\xff\xd8fake"
    assert data.items["image"].tolist()[1:] == ["https://example.com/b2.jpg", ""]
    # Re-importing as CSV must leave no parquet table to shadow the new files.
    with pytest.warns(UserWarning):
        import_csv(items, events, out, **kwargs)
    assert not (out / "items.parquet").exists() and (out / "items.csv").exists()
