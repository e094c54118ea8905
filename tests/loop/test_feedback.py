"""The feedback table: one reader that names the file, column and rows at fault, one atomic writer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.core.errors import DataError
from engine.data.feedback import FEEDBACK_REQUIRED, read_feedback, write_feedback
from engine.data.tables import load_dataset

HEADER = "user_id,item_id,layout_id,row,slot,shown_at,clicked,purchased,propensity\n"


def _feedback(path: Path, *lines: str, header: str = HEADER) -> Path:
    path.write_text(header + "".join(line + "\n" for line in lines))
    return path


GOOD = (
    "U000,I001,abc123def456,0,0,2024-03-12T10:00:00,1,0,1.0",
    "U000,I002,abc123def456,0,1,2024-03-12T10:00:00,false,no,0.5",
    "U001,I003,abc123def456,1,3,2024-03-12T10:00:00,YES,true,0.25",
)


def test_reads_and_types_a_good_file(tmp_path: Path) -> None:
    frame = read_feedback(_feedback(tmp_path / "feedback.csv", *GOOD))
    assert list(frame.columns[: len(FEEDBACK_REQUIRED)]) == list(FEEDBACK_REQUIRED)
    assert frame["clicked"].tolist() == [True, False, True]
    assert frame["purchased"].tolist() == [False, False, True]
    assert frame["row"].dtype == np.int64 and frame["slot"].tolist() == [0, 1, 3]
    assert frame["propensity"].tolist() == [1.0, 0.5, 0.25]
    assert frame["shown_at"].iloc[2] == pd.Timestamp("2024-03-12T10:00:00")


def test_optional_columns_may_be_left_out(tmp_path: Path) -> None:
    header = "user_id,item_id,layout_id,row,slot,shown_at,clicked\n"
    frame = read_feedback(_feedback(tmp_path / "f.csv", "U000,I001,x,0,0,2024-03-12,0", header=header))
    assert "propensity" not in frame.columns and frame["clicked"].tolist() == [False]


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_write_then_read_round_trips(tmp_path: Path, suffix: str) -> None:
    frame = read_feedback(_feedback(tmp_path / "in.csv", *GOOD))
    out = write_feedback(frame, tmp_path / f"out{suffix}")
    back = read_feedback(out)
    pd.testing.assert_frame_equal(back, frame)
    assert not list(tmp_path.glob(".out*"))  # no temporary file left behind


def test_missing_column_names_file_and_column(tmp_path: Path) -> None:
    header = "user_id,item_id,row,slot,shown_at,clicked\n"
    path = _feedback(tmp_path / "feedback.csv", "U000,I001,0,0,2024-03-12,1", header=header)
    with pytest.raises(DataError, match=r"feedback\.csv: missing required column\(s\) layout_id"):
        read_feedback(path)


def test_bad_clicked_value_names_file_column_and_line(tmp_path: Path) -> None:
    path = _feedback(tmp_path / "feedback.csv", GOOD[0], GOOD[1], "U001,I003,abc,1,3,2024-03-12,maybe,0,1")
    with pytest.raises(DataError) as err:
        read_feedback(path)
    message = str(err.value)
    assert "feedback.csv" in message and "column clicked" in message and "first at 4 (file lines)" in message and "maybe" in message


@pytest.mark.parametrize(("line", "column"), [
    ("U000,I001,abc,-1,0,2024-03-12,1,0,1", "row"),
    ("U000,I001,abc,0,1.5,2024-03-12,1,0,1", "slot"),
    ("U000,I001,abc,0,0,2024-03-12,1,0,0", "propensity"),
    ("U000,I001,abc,0,0,2024-03-12,1,0,1.2", "propensity"),
    ("U000,I001,abc,0,0,last tuesday,1,0,1", "shown_at"),
    ("U000,I001,abc,0,0,2024-03-12,1,2,1", "purchased"),
    ("U000,,abc,0,0,2024-03-12,1,0,1", "item_id"),
])
def test_bad_values_name_the_column_and_line(tmp_path: Path, line: str, column: str) -> None:
    path = _feedback(tmp_path / "feedback.csv", GOOD[0], line)
    with pytest.raises(DataError, match=rf"feedback\.csv: column {column} .*first at 3 \(file lines\)"):
        read_feedback(path)


def test_unknown_users_and_items_are_named(tiny_dir: Path, tmp_path: Path) -> None:
    data = load_dataset(tiny_dir)
    assert read_feedback(_feedback(tmp_path / "ok.csv", *GOOD), data)["user_id"].tolist() == ["U000", "U000", "U001"]
    path = _feedback(tmp_path / "feedback.csv", GOOD[0], GOOD[1], "U999,I001,abc,0,0,2024-03-12,1,0,1")
    with pytest.raises(DataError, match=r"feedback\.csv: column user_id: 1 row\(s\) name users unknown to .*\['U999'\]\), first at 4 \(file lines\)"):
        read_feedback(path, data)
    path = _feedback(tmp_path / "items.csv", "U000,X77,abc,0,0,2024-03-12,1,0,1")
    with pytest.raises(DataError, match=r"column item_id: 1 row\(s\) name items unknown .*\['X77'\]"):
        read_feedback(path, data)


def test_parquet_rows_are_named_from_zero(tmp_path: Path) -> None:
    frame = read_feedback(_feedback(tmp_path / "in.csv", *GOOD))
    frame["propensity"] = frame["propensity"].astype(str)
    frame.loc[1, "propensity"] = "high"
    frame.to_parquet(tmp_path / "feedback.parquet", index=False)
    with pytest.raises(DataError, match=r"feedback\.parquet: column propensity .*first at 1 \(row numbers from 0\)"):
        read_feedback(tmp_path / "feedback.parquet")


def test_writer_refuses_bad_rows_and_suffixes(tmp_path: Path) -> None:
    frame = read_feedback(_feedback(tmp_path / "in.csv", *GOOD))
    with pytest.raises(DataError, match=r"\.csv or \.parquet"):
        write_feedback(frame, tmp_path / "feedback.txt")
    bad = frame.assign(propensity=[1.0, 0.0, 0.5])
    with pytest.raises(DataError, match="column propensity"):
        write_feedback(bad, tmp_path / "feedback.csv")
    assert not (tmp_path / "feedback.csv").exists()
