"""``homepage score``: every user's top-k items to one Parquet file, in one process and through Ray Data."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.cli.parser import main

HAS_RAY = importlib.util.find_spec("ray") is not None
needs_ray = pytest.mark.skipif(not HAS_RAY, reason="needs Ray (pip install -e '.[scale]')")


@pytest.fixture(scope="module")
def demo(trained_demo: Path):
    """(data dir, loaded data set) of the tiny trained demo store."""
    from engine.data.tables import load_dataset

    return trained_demo, load_dataset(trained_demo)


def score(capsys, *args: str) -> tuple[int, str, str]:
    rc = main(["score", *args])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def test_score_writes_k_rows_per_user_without_history(demo, tmp_path: Path, capsys) -> None:
    root, data = demo
    out = tmp_path / "scores.parquet"
    rc, stdout, err = score(capsys, str(root), "--k", "5", "--out", str(out))
    assert rc == 0, err
    assert f"scored {data.n_users:,} users (k=5)" in stdout and str(out) in stdout
    table = pd.read_parquet(out)
    assert list(table.columns) == ["user_id", "rank", "item_id", "score"]
    assert str(table["score"].dtype) == "float32"
    assert len(table) == 5 * data.n_users
    assert table["user_id"].tolist() == np.repeat(data.user_ids.astype(str), 5).tolist()  # user index order
    assert table["rank"].tolist() == list(range(1, 6)) * data.n_users
    assert (table.groupby("user_id", sort=False)["score"].apply(lambda s: s.is_monotonic_decreasing)).all()
    history = set(zip(data.interactions["user_id"].astype(str), data.interactions["item_id"].astype(str)))
    assert not any(pair in history for pair in zip(table["user_id"], table["item_id"]))
    assert [p.name for p in tmp_path.iterdir()] == ["scores.parquet"]  # no temporary file left

    kept = tmp_path / "kept.parquet"
    rc, _, err = score(capsys, str(root), "--k", "5", "--out", str(kept), "--keep-history")
    assert rc == 0, err
    assert any(pair in history for pair in zip(*pd.read_parquet(kept)[["user_id", "item_id"]].to_numpy().T))


def test_top_k_table_matches_recommend_order(demo) -> None:
    """The one-process table is what `homepage recommend` ranks, user by user."""
    from engine.models.store import newest_model
    from engine.scale.score import load_ranker, top_k_table

    root, data = demo
    table = top_k_table(data, newest_model(root), 3)
    rec = load_ranker(data, newest_model(root))
    items, _ = rec.rank(np.array([0, data.n_users - 1]), 3)
    assert table["item_id"].iloc[:3].tolist() == data.item_ids[items[0]].astype(str).tolist()
    assert table["item_id"].iloc[-3:].tolist() == data.item_ids[items[1]].astype(str).tolist()


@pytest.mark.parametrize("args", [["--k", "0"], ["--workers", "-1"], ["--k", "x"]])
def test_bad_flags_exit_2(demo, tmp_path: Path, capsys, args: list[str]) -> None:
    out = tmp_path / "scores.parquet"
    with pytest.raises(SystemExit) as exc:
        main(["score", str(demo[0]), "--out", str(out), *args])
    assert exc.value.code == 2
    assert "error:" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("workers", ["0", "2"])
def test_missing_model_dir_is_a_clean_error(demo, tmp_path: Path, capsys, workers: str) -> None:
    out = tmp_path / "scores.parquet"
    rc, _, err = score(capsys, str(demo[0]), "--model", str(tmp_path / "nowhere"), "--out", str(out), "--workers", workers)
    assert rc == 2
    assert err.startswith("error: ") and "no such model directory" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_score_refuses_a_directory_as_output(demo, tmp_path: Path, capsys) -> None:
    rc, _, err = score(capsys, str(demo[0]), "--out", str(tmp_path))
    assert rc == 2 and err.startswith("error: ")


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray (2 CPUs, bound to 127.0.0.1) for this module's Ray tests; `homepage score
    --workers` finds it started and uses it as it is."""
    from engine.scale.cluster import ray_session

    with ray_session(num_cpus=2) as ray:
        yield ray


def descendants(pid: int) -> set[int]:
    """``pid`` and every process below it (a local Ray's GCS, raylet and workers are children of the driver)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # the process ended meanwhile
            continue
        ppid = int(text[text.rindex(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        found.add(todo[-1])
        todo.extend(children.get(todo.pop(), []))
    return found


def listening_addresses(pids: set[int]) -> list[str]:
    """The local addresses of the TCP sockets these processes listen on."""
    lines = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout.splitlines()
    return [line.split()[3] for line in lines if set(map(int, re.findall(r"pid=(\d+)", line))) & pids]


@needs_ray
def test_ray_workers_write_the_same_table(demo, tmp_path: Path, capsys, monkeypatch, local_ray) -> None:
    """Two Ray Data workers over 3 batches of users write the one-process table, bound to 127.0.0.1."""
    from engine.scale import score as score_module

    monkeypatch.setattr(score_module, "BATCH_USERS", 300)  # 800 users: 3 batches for 2 workers
    root, data = demo
    single, spread = tmp_path / "single.parquet", tmp_path / "ray.parquet"
    rc, _, err = score(capsys, str(root), "--k", "7", "--out", str(single))
    assert rc == 0, err
    rc, stdout, err = score(capsys, str(root), "--k", "7", "--out", str(spread), "--workers", "2")
    assert rc == 0, err
    assert "2 Ray workers" in stdout and str(spread) in stdout
    a, b = pd.read_parquet(single), pd.read_parquet(spread)
    assert len(b) == 7 * data.n_users
    pd.testing.assert_frame_equal(a[["user_id", "rank", "item_id"]], b[["user_id", "rank", "item_id"]])
    np.testing.assert_allclose(a["score"], b["score"], rtol=1e-5, atol=1e-5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ray.parquet", "single.parquet"]

    assert local_ray.nodes()[0]["NodeManagerAddress"] == "127.0.0.1"
    addresses = listening_addresses(descendants(os.getpid()))
    assert addresses  # the GCS, the raylet and the workers listen
    assert all(a.rsplit(":", 1)[0] in ("127.0.0.1", "[::1]", "[::ffff:127.0.0.1]") for a in addresses), addresses
