"""Tests of the data-directory contract: loading, validation messages and the all-or-nothing writer."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.data.tables import Dataset, load_dataset, write_dataset
from engine.core.errors import DataError

ITEMS = "item_id,title,category\nA,Alpha,x\nB,Beta,x\nC,Gamma,y\n"
INTER = "user_id,item_id,timestamp\nu1,A,2024-01-01\nu1,B,2024-01-02\nu2,C,2024-01-01\n"


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _error(root: Path, **kwargs) -> str:
    with pytest.raises(DataError) as info:
        load_dataset(root, **kwargs)
    assert isinstance(info.value, ValueError)
    return str(info.value)


# ------------------------------------------------------------------------------------------------
# Loading a valid directory


def test_valid_dir_loads(tiny_dir: Path) -> None:
    data = load_dataset(tiny_dir)
    assert isinstance(data, Dataset)
    assert data.n_items == 20
    assert data.n_users == 30
    assert data.name == "tiny"
    raw = pd.read_csv(tiny_dir / "interactions.csv")
    assert len(data.interactions) == len(raw)
    assert data.interactions["timestamp"].dtype == "datetime64[ns]"
    assert data.interactions["timestamp"].is_monotonic_increasing
    # Indices point at the right ids.
    ids = data.item_ids[data.interactions["iidx"].to_numpy()]
    assert (ids == data.interactions["item_id"].to_numpy()).all()
    assert (data.user_ids[data.interactions["uidx"].to_numpy()] == data.interactions["user_id"].to_numpy()).all()
    assert data.users is not None and len(data.users) == 30
    assert data.has_text()
    assert data.items["price"].dtype == float


def test_ties_keep_file_order(make_dir) -> None:
    inter = (
        "user_id,item_id,timestamp\n"
        "u1,C,2024-01-02\n"
        "u1,B,2024-01-01\n"
        "u2,A,2024-01-01\n"
        "u1,A,2024-01-01\n"
        "u2,C,2024-01-02\n"
    )
    data = load_dataset(make_dir(items=ITEMS, interactions=inter))
    got = list(zip(data.interactions["user_id"], data.interactions["item_id"]))
    assert got == [("u1", "B"), ("u2", "A"), ("u1", "A"), ("u1", "C"), ("u2", "C")]
    # User index in order of first appearance in time.
    assert list(data.user_ids) == ["u1", "u2"]


def test_unix_seconds_parse(make_dir) -> None:
    inter = "user_id,item_id,timestamp\nu1,A,1700000000\nu1,B,1600000000\nu2,C,0\n"
    data = load_dataset(make_dir(items=ITEMS, interactions=inter))
    stamps = list(data.interactions["timestamp"])
    assert stamps == [pd.Timestamp("1970-01-01"), pd.Timestamp("2020-09-13 12:26:40"), pd.Timestamp("2023-11-14 22:13:20")]
    assert list(data.interactions["item_id"]) == ["C", "B", "A"]


def test_iso_datetimes_with_offsets_become_naive_utc(make_dir) -> None:
    inter = "user_id,item_id,timestamp\nu1,A,2024-01-01T10:00:00+02:00\nu1,B,2024-01-01T09:00:00Z\n"
    data = load_dataset(make_dir(items=ITEMS, interactions=inter))
    assert list(data.interactions["timestamp"]) == [pd.Timestamp("2024-01-01 08:00"), pd.Timestamp("2024-01-01 09:00")]


def test_item_ids_keep_leading_zeros(make_dir) -> None:
    items = "item_id,title\n007,Bond\n7,Seven\n"
    inter = "user_id,item_id,timestamp\n01,007,2024-01-01\n1,7,2024-01-02\n"
    data = load_dataset(make_dir(items=items, interactions=inter))
    assert list(data.item_ids) == ["007", "7"]
    assert list(data.interactions["iidx"]) == [0, 1]
    assert list(data.user_ids) == ["01", "1"]


# ------------------------------------------------------------------------------------------------
# Bad input: every message names the file, the column and the first offending rows


def test_missing_required_column(make_dir) -> None:
    root = make_dir(items=ITEMS, interactions="user_id,item_id,when\nu1,A,2024-01-01\n")
    msg = _error(root)
    assert "interactions.csv" in msg and "timestamp" in msg and "missing" in msg
    root = make_dir(items="item_id,name\nA,x\n", interactions=INTER)
    msg = _error(root)
    assert "items.csv" in msg and "title" in msg


def test_missing_table(make_dir) -> None:
    msg = _error(make_dir(items=ITEMS))
    assert "interactions.csv" in msg


def test_not_a_directory(tmp_path: Path) -> None:
    msg = _error(tmp_path / "nope")
    assert "nope" in msg and "not a data directory" in msg


def test_duplicate_item_ids(make_dir) -> None:
    items = "item_id,title\nA,a\nB,b\nA,again\nC,c\nB,again\n"
    msg = _error(make_dir(items=items, interactions=INTER))
    assert "items.csv" in msg and "item_id" in msg
    assert "2 duplicate" in msg
    # Lines 4 and 6 of the file (header = line 1).
    assert re.search(r"\b4, 6\b", msg), msg
    assert "'A'" in msg and "'B'" in msg


def test_unknown_items_fail_with_count(make_dir) -> None:
    inter = "user_id,item_id,timestamp\nu1,A,2024-01-01\nu1,Z,2024-01-02\nu2,Y,2024-01-03\nu2,Z,2024-01-04\n"
    root = make_dir(items=ITEMS, interactions=inter)
    msg = _error(root)
    assert "interactions.csv" in msg and "item_id" in msg
    assert "3 interaction(s)" in msg
    assert re.search(r"\b3, 4, 5\b", msg), msg
    assert "--drop-unknown" in msg


def test_unknown_items_dropped_with_warning(make_dir) -> None:
    inter = "user_id,item_id,timestamp\nu1,A,2024-01-01\nu1,Z,2024-01-02\nu2,Y,2024-01-03\nu2,C,2024-01-04\n"
    root = make_dir(items=ITEMS, interactions=inter)
    with pytest.warns(UserWarning, match="dropped 2 interaction"):
        data = load_dataset(root, drop_unknown=True)
    assert list(data.interactions["item_id"]) == ["A", "C"]
    assert list(data.interactions["iidx"]) == [0, 2]


def test_unparseable_timestamps(make_dir) -> None:
    inter = "user_id,item_id,timestamp\nu1,A,2024-01-01\nu1,B,yesterday\nu2,C,2024-13-45\nu2,A,2024-01-05\n"
    msg = _error(make_dir(items=ITEMS, interactions=inter))
    assert "interactions.csv" in msg and "timestamp" in msg
    assert "2 value(s)" in msg
    assert re.search(r"\b3, 4\b", msg), msg
    assert "yesterday" in msg


def test_empty_timestamp_value(make_dir) -> None:
    inter = "user_id,item_id,timestamp\nu1,A,2024-01-01\nu1,B,\n"
    msg = _error(make_dir(items=ITEMS, interactions=inter))
    assert "interactions.csv" in msg and "timestamp" in msg and "3" in msg


@pytest.mark.parametrize("table", ["items", "interactions"])
def test_empty_file(make_dir, table: str) -> None:
    kwargs = {"items": ITEMS, "interactions": INTER, table: ""}
    msg = _error(make_dir(**kwargs))
    assert f"{table}.csv" in msg and "empty" in msg


@pytest.mark.parametrize("table", ["items", "interactions"])
def test_header_only_file(make_dir, table: str) -> None:
    header = {"items": "item_id,title\n", "interactions": "user_id,item_id,timestamp\n"}[table]
    kwargs = {"items": ITEMS, "interactions": INTER, table: header}
    msg = _error(make_dir(**kwargs))
    assert f"{table}.csv" in msg and "no rows" in msg


def test_non_utf8_text_names_an_encoding(make_dir) -> None:
    items = "item_id,title\nA,Caf\u00e9 cr\u00e8me\nB,b\nC,c\n".encode("latin-1")
    root = make_dir(items=items, interactions=INTER)
    msg = _error(root)
    assert "items.csv" in msg and "utf-8" in msg.lower()
    assert "--encoding latin-1" in msg and "line 2," in msg  # the line, not only a byte offset
    data = load_dataset(root, encoding="latin-1")
    assert data.items["title"].iat[0] == "Caf\u00e9 cr\u00e8me"


@pytest.mark.parametrize(
    "image, words",
    [
        ("../outside.png", "leaves the data directory"),
        ("images/../../outside.png", "leaves the data directory"),
        ("/etc/passwd", "leaves the data directory"),
        ("file:///etc/passwd", "only http(s)"),
        ("C:\\Windows\\x.png", "leaves the data directory"),
    ],
)
def test_bad_image_paths(make_dir, image: str, words: str) -> None:
    items = pd.DataFrame({"item_id": ["A", "B", "C"], "title": ["a", "b", "c"], "image": ["images/a.png", image, ""]})
    msg = _error(make_dir(items=items, interactions=INTER))
    assert "items.csv" in msg and "'B'" in msg and "column image" in msg and words in msg


def test_good_image_paths_resolve(make_dir) -> None:
    items = pd.DataFrame(
        {"item_id": ["A", "B", "C"], "title": ["a", "b", "c"], "image": ["images/a.png", "https://x.org/b.png", ""]}
    )
    root = make_dir(items=items, interactions=INTER)
    (root / "images").mkdir()
    (root / "images" / "a.png").write_bytes(b"png")
    data = load_dataset(root)
    assert data.image_path(0) == (root / "images" / "a.png").resolve()
    assert data.image_path(1) is None and data.image_path(2) is None


def test_placeholder_titles_have_no_text(make_dir) -> None:
    items = "item_id,title\n1,item 1\n2,item 2\n"
    inter = "user_id,item_id,timestamp\nu,1,2024-01-01\n"
    assert not load_dataset(make_dir(items=items, interactions=inter)).has_text()


def test_bad_weight_and_price(make_dir) -> None:
    inter = "user_id,item_id,timestamp,weight\nu1,A,2024-01-01,1\nu1,B,2024-01-02,lots\n"
    msg = _error(make_dir(items=ITEMS, interactions=inter))
    assert "interactions.csv" in msg and "weight" in msg and "3" in msg
    items = "item_id,title,price\nA,a,1.5\nB,b,cheap\nC,c,\n"
    msg = _error(make_dir(items=items, interactions=INTER))
    assert "items.csv" in msg and "price" in msg and "3" in msg


# ------------------------------------------------------------------------------------------------
# Writing


def _frames():
    items = pd.DataFrame({"item_id": ["A", "B", "C"], "title": ["a", "b", "c"], "image": ["images/A.png", "", ""]})
    inter = pd.DataFrame({"user_id": ["u1", "u1", "u2"], "item_id": ["A", "B", "C"], "timestamp": ["2024-01-01", "2024-01-02", "2024-01-03"]})
    return items, inter


def test_write_is_all_or_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    items, inter = _frames()
    write_dataset(out, items, inter, images={"images/A.png": b"old picture"}, extra_files={"README.md": "old"})
    (out / "models").mkdir()
    (out / "models" / "x").write_text("model")
    before = _snapshot(out)
    siblings = sorted(p.name for p in tmp_path.iterdir())

    new_items = items.assign(title=["new a", "new b", "new c"])
    with pytest.raises(FileNotFoundError):
        write_dataset(
            out, new_items, inter,
            images={"images/A.png": b"new picture", "images/B.png": tmp_path / "missing.png"},
            extra_files={"README.md": "new"},
        )
    assert _snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == siblings  # no temporary directory left behind
    assert load_dataset(out).items["title"].tolist() == ["a", "b", "c"]


def test_write_fails_on_bad_image_key_without_touching_out(tmp_path: Path) -> None:
    out = tmp_path / "out"
    items, inter = _frames()
    write_dataset(out, items, inter)
    before = _snapshot(out)
    with pytest.raises(DataError, match="leaves the data directory"):
        write_dataset(out, items.assign(title="z"), inter, images={"../evil.png": b"x"})
    assert _snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_write_keeps_unrelated_files(tmp_path: Path) -> None:
    out = tmp_path / "out"
    items, inter = _frames()
    write_dataset(out, items, inter, extra_files={"README.md": "one"})
    (out / "models").mkdir()
    (out / "models" / "x").write_bytes(b"\x00weights")
    (out / "notes.txt").write_text("mine")
    write_dataset(out, items.assign(title=["x", "y", "z"]), inter, images={"images/A.png": b"pic"}, extra_files={"README.md": "two"})
    assert (out / "models" / "x").read_bytes() == b"\x00weights"
    assert (out / "notes.txt").read_text() == "mine"
    assert (out / "README.md").read_text() == "two"
    assert (out / "images" / "A.png").read_bytes() == b"pic"
    data = load_dataset(out)
    assert data.items["title"].tolist() == ["x", "y", "z"]
    assert data.image_path(0) == (out / "images" / "A.png").resolve()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_write_links_or_copies_image_files(tmp_path: Path) -> None:
    src = tmp_path / "src.png"
    src.write_bytes(b"source picture")
    items, inter = _frames()
    out = write_dataset(tmp_path / "out", items, inter, images={"images/A.png": src})
    assert (out / "images" / "A.png").read_bytes() == b"source picture"


def test_write_refuses_missing_columns(tmp_path: Path) -> None:
    items, inter = _frames()
    with pytest.raises(DataError, match="title"):
        write_dataset(tmp_path / "out", items.drop(columns="title"), inter)
    assert not (tmp_path / "out").exists()


def test_parquet_round_trip(tmp_path: Path, tiny_frames_factory) -> None:
    items, inter, users = tiny_frames_factory()
    inter = inter.assign(event="Purchase", weight=2.0)
    csv_dir = write_dataset(tmp_path / "csv", items, inter, users, fmt="csv")
    pq_dir = write_dataset(tmp_path / "pq", items, inter, users, fmt="parquet")
    assert sorted(p.name for p in pq_dir.iterdir()) == ["interactions.parquet", "items.parquet", "users.parquet"]
    a, b = load_dataset(csv_dir), load_dataset(pq_dir)
    assert a.fingerprint() == b.fingerprint()
    pd.testing.assert_frame_equal(a.items, b.items, check_dtype=False)
    cols = ["user_id", "item_id", "timestamp", "uidx", "iidx", "event", "weight"]
    pd.testing.assert_frame_equal(a.interactions[cols], b.interactions[cols])
    assert (b.interactions["event"] == "purchase").all()
    # Writing CSV over a parquet directory must not leave the parquet tables shadowing the new ones.
    write_dataset(pq_dir, items.assign(title="renamed"), inter, fmt="csv")
    assert not list(pq_dir.glob("items.parquet"))
    assert (load_dataset(pq_dir).items["title"] == "renamed").all()


def test_parquet_datetimes_and_int_ids(tmp_path: Path) -> None:
    out = tmp_path / "pq"
    out.mkdir()
    pd.DataFrame({"item_id": [10, 20], "title": ["a", "b"]}).to_parquet(out / "items.parquet")
    stamps = pd.to_datetime(["2024-01-02", "2024-01-01"]).tz_localize("Europe/Berlin")
    pd.DataFrame({"user_id": [1, 1], "item_id": [10, 20], "timestamp": stamps}).to_parquet(out / "interactions.parquet")
    data = load_dataset(out)
    assert list(data.interactions["item_id"]) == ["20", "10"]
    assert data.interactions["timestamp"].iat[0] == pd.Timestamp("2023-12-31 23:00")
    assert data.interactions["timestamp"].dtype == np.dtype("datetime64[ns]")


def test_write_leaves_no_temp_on_success(tmp_path: Path) -> None:
    items, inter = _frames()
    write_dataset(tmp_path / "out", items, inter)
    assert [p for p in os.listdir(tmp_path) if p.startswith(".")] == []


def test_unix_milliseconds_are_refused_not_crashing(make_dir) -> None:
    inter = "user_id,item_id,timestamp\nu1,A,1700000000\nu1,B,1700000000000\n"
    msg = _error(make_dir(items=ITEMS, interactions=inter))
    assert "interactions.csv" in msg and "timestamp" in msg and "at 3 " in msg


def test_line_numbers_survive_subsets(make_dir) -> None:
    # created_at is parsed on its non-empty values only: the message must still name file line 4.
    items = "item_id,title,created_at\nA,a,\nB,b,2024-01-01\nC,c,someday\n"
    msg = _error(make_dir(items=items, interactions=INTER))
    assert "items.csv" in msg and "created_at" in msg and "at 4 " in msg
    # After dropping unknown items, a bad timestamp is still named by its file line.
    inter = "user_id,item_id,timestamp\nu1,Z,2024-01-01\nu1,A,2024-01-01\nu1,B,never\n"
    with pytest.warns(UserWarning):
        msg = _error(make_dir(items=ITEMS, interactions=inter), drop_unknown=True)
    assert "at 4 " in msg


@pytest.mark.parametrize("price, what", [("-3", "negative or infinite"), ("inf", "negative or infinite"), ("-inf", "negative or infinite")])
def test_negative_and_infinite_prices_are_refused(make_dir, price: str, what: str) -> None:
    items = f"item_id,title,price\nA,Alpha,1.5\nB,Beta,{price}\nC,Gamma,2\n"
    msg = _error(make_dir(items=items, interactions=INTER))
    assert "column price" in msg and what in msg and "3 (file lines)" in msg


@pytest.mark.parametrize("marker", ["NaN", "nan", "None", "null"])
def test_a_user_id_written_as_nan_is_an_empty_value(make_dir, marker: str) -> None:
    inter = f"user_id,item_id,timestamp\nu1,A,2024-01-01\n{marker},B,2024-01-02\n"
    msg = _error(make_dir(items=ITEMS, interactions=inter))
    assert "column user_id is empty" in msg and "3 (file lines)" in msg


def test_a_new_data_set_replaces_the_tables_whole_and_keeps_models(tmp_path: Path) -> None:
    items = pd.DataFrame({"item_id": ["A", "B"], "title": ["a", "b"]})
    inter = pd.DataFrame({"user_id": ["u", "u"], "item_id": ["A", "B"], "timestamp": ["2024-01-01", "2024-01-02"]})
    users = pd.DataFrame({"user_id": ["u"], "age": ["30"]})
    out = write_dataset(tmp_path / "shop", items, inter, users)
    (out / "models" / "m1").mkdir(parents=True)
    (out / "models" / "m1" / "manifest.json").write_text("{}")
    write_dataset(out, items.assign(title=["a2", "b2"]), inter, fmt="parquet")
    assert sorted(p.name for p in out.iterdir()) == ["interactions.parquet", "items.parquet", "models"]
    assert (out / "models" / "m1" / "manifest.json").read_text() == "{}"
    assert load_dataset(out).items["title"].tolist() == ["a2", "b2"]
    with pytest.raises(DataError, match="shop"):
        write_dataset(out, items, inter.assign(item_id=["A", "Z"]))  # does not load: nothing changes
    assert load_dataset(out).items["title"].tolist() == ["a2", "b2"]
    assert [p.name for p in tmp_path.iterdir()] == ["shop"]


# ------------------------------------------------------------------------------------------------
# The loaded-interactions cache


def test_a_second_load_reads_the_checked_interactions_from_the_cache(tiny_dir: Path, monkeypatch) -> None:
    from engine.data import tables

    first = load_dataset(tiny_dir)
    (cache,) = (tiny_dir / ".cache").glob("interactions-*.feather")

    def unchecked(*args, **kwargs):
        raise AssertionError("the cached interactions should have been read")

    monkeypatch.setattr(tables, "_load_interactions", unchecked)
    again = load_dataset(tiny_dir)
    pd.testing.assert_frame_equal(again.interactions, first.interactions)
    assert list(again.user_ids) == list(first.user_ids) and again.user_index == first.user_index
    assert again.fingerprint() == first.fingerprint() == first._fingerprint()
    (kept,) = (tiny_dir / ".cache").glob("fingerprint-*.txt")
    monkeypatch.setattr(tables.Dataset, "_fingerprint", lambda self: "read, not computed")
    assert again.fingerprint() == kept.read_text() == first.fingerprint()
    # Other options are another key: loaded and checked again.
    with pytest.raises(AssertionError, match="cached interactions"):
        load_dataset(tiny_dir, drop_unknown=True)
    # A damaged cache is named, removed and rebuilt.
    monkeypatch.undo()
    cache.write_bytes(b"not arrow")
    with pytest.warns(UserWarning, match="unusable cache"):
        rebuilt = load_dataset(tiny_dir)
    pd.testing.assert_frame_equal(rebuilt.interactions, first.interactions)


def test_changed_interactions_are_not_read_from_an_old_cache(tiny_dir: Path) -> None:
    first = load_dataset(tiny_dir)
    path = tiny_dir / "interactions.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:-3]) + "\n")  # three events fewer
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    assert len(load_dataset(tiny_dir).interactions) == len(first.interactions) - 3
    assert len(list((tiny_dir / ".cache").glob("interactions-*.feather"))) == 2  # the newest two are kept
