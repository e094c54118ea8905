"""The ``homepage`` command line through engine.cli.main: baselines, errors, and a real import."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from conftest import SHARED, needs_shared

from engine.cli.parser import main

NAMES = ["popularity", "recent_popularity", "item_knn", "ease", "transition", "rebuy"]


def test_baselines_writes_json_and_prints_table(tiny_dir: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "res" / "baselines.json"
    rc = main(["baselines", str(tiny_dir), "--protocol", "loo", "--json", str(out), "--no-ild"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "| model | ndcg@10 |" in captured.out
    for name in NAMES:
        assert f"| {name} |" in captured.out
    assert "history masked" in captured.out and f"wrote {out}" in captured.out
    result = json.loads(out.read_text())
    assert {"dataset", "protocol", "k", "n_users", "n_items", "models"} <= set(result)
    assert result["dataset"] == "tiny" and result["protocol"] == "loo" and result["masked_history"] is True
    assert list(result["models"]) == NAMES
    assert result["models"]["ease"]["ild@10"] is None  # --no-ild


def test_baselines_subset_temporal_keep_history(tiny_dir: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "b.json"
    rc = main(["baselines", str(tiny_dir), "--protocol", "temporal", "--test-days", "2", "--keep-history",
               "--models", "popularity,transition", "--json", str(out), "--no-ild"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "history kept" in captured.out
    result = json.loads(out.read_text())
    assert list(result["models"]) == ["popularity", "transition"]
    assert result["masked_history"] is False
    assert result["split"]["test_days"] == 2 and result["split"]["test_start"] == "2024-03-09"


def test_missing_data_dir_is_a_clean_error(tmp_path: Path, capsys) -> None:
    rc = main(["baselines", str(tmp_path / "nowhere"), "--no-ild"])
    captured = capsys.readouterr()
    assert rc == 2
    assert captured.err.startswith("error: ") and "nowhere" in captured.err
    assert "Traceback" not in captured.err + captured.out


def test_bad_data_is_a_clean_error(tiny_dir: Path, capsys) -> None:
    items = pd.read_csv(tiny_dir / "items.csv", dtype=str)
    pd.concat([items, items.iloc[[3]]]).to_csv(tiny_dir / "items.csv", index=False)
    rc = main(["baselines", str(tiny_dir), "--no-ild"])
    captured = capsys.readouterr()
    assert rc == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert "items.csv" in lines[0] and "item_id" in lines[0] and "duplicate" in lines[0]
    assert "Traceback" not in captured.err


def test_test_days_longer_than_data_is_a_clean_error(tiny_dir: Path, capsys) -> None:
    rc = main(["baselines", str(tiny_dir), "--protocol", "temporal", "--test-days", "30", "--no-ild"])
    captured = capsys.readouterr()
    assert rc == 2
    assert captured.err.startswith("error: ") and "no training data" in captured.err


@pytest.mark.parametrize("args", [["--models", "popularity,nope"], ["--test-days", "0"], ["--protocol", "random"]])
def test_usage_errors_exit_2(tiny_dir: Path, capsys, args: list[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["baselines", str(tiny_dir), "--no-ild", *args])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "error:" in err and "Traceback" not in err


def test_drop_unknown_prints_a_warning(tiny_dir: Path, capsys) -> None:
    inter = pd.read_csv(tiny_dir / "interactions.csv", dtype=str)
    inter.loc[0, "item_id"] = "NOT-IN-CATALOGUE"
    inter.to_csv(tiny_dir / "interactions.csv", index=False)
    assert main(["baselines", str(tiny_dir), "--no-ild", "--models", "popularity"]) == 2
    assert "--drop-unknown" in capsys.readouterr().err
    assert main(["baselines", str(tiny_dir), "--no-ild", "--models", "popularity", "--drop-unknown"]) == 0
    err = capsys.readouterr().err
    assert "warning:" in err and "dropped 1 interaction" in err


@pytest.mark.shared
@needs_shared
def test_import_movielens_then_baselines(tmp_path: Path, capsys) -> None:
    data_dir = tmp_path / "ml"
    rc = main(["import", "movielens", str(SHARED / "movielens-100k"), "--out", str(data_dir)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "1,682 items, 943 users, 100,000 interactions" in captured.out
    out = tmp_path / "ml.json"
    assert main(["baselines", str(data_dir), "--protocol", "loo", "--json", str(out), "--no-ild"]) == 0
    result = json.loads(out.read_text())
    assert result["n_users"] == 943 and result["n_items"] == 1682
    ease = result["models"]["ease"]["ndcg@10"]
    assert 0.05 <= ease <= 0.10, ease
    assert result["models"]["popularity"]["ndcg@10"] < ease


@pytest.mark.parametrize("where", ["a directory", "under a file"])
def test_an_unwritable_json_path_fails_before_any_work(tiny_dir: Path, tmp_path: Path, capsys, where: str) -> None:
    (tmp_path / "f").write_text("x")
    target = tmp_path if where == "a directory" else tmp_path / "f" / "out.json"
    assert main(["baselines", str(tiny_dir), "--protocol", "loo", "--json", str(target), "--no-ild"]) == 2
    captured = capsys.readouterr()
    assert "error:" in captured.err and "Traceback" not in captured.err
    assert "| model |" not in captured.out  # nothing was evaluated
    assert not [p for p in tmp_path.rglob("*") if ".tmp" in p.name]  # nothing half-written left behind


def test_a_bug_is_one_line_not_a_traceback(tiny_dir: Path, monkeypatch, capsys) -> None:
    from engine.cli import parser

    def broken(args):
        raise KeyError("boom")

    monkeypatch.setattr(parser, "cmd_baselines", broken)
    monkeypatch.delenv("HOMEPAGE_DEBUG", raising=False)
    assert main(["baselines", str(tiny_dir)]) == 1
    err = capsys.readouterr().err
    assert "unexpected KeyError" in err and "HOMEPAGE_DEBUG" in err and "Traceback" not in err
