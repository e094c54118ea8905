"""engine.core.files: atomic file writes and whole-directory swaps leave the old state on failure."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.core.files import (
    atomic_save_npy,
    atomic_write,
    atomic_write_text,
    cached_array,
    carry_over,
    create_from_stage,
    new_stage,
    staged_directory,
)


def test_atomic_write_replaces_and_leaves_nothing_behind(tmp_path: Path) -> None:
    target = tmp_path / "out" / "a.json"
    atomic_write_text(target, "one")
    atomic_write_text(target, "two")
    assert target.read_text() == "two"
    assert sorted(p.name for p in target.parent.iterdir()) == ["a.json"]


def test_a_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    atomic_write_text(target, "old")

    def half_then_fail(tmp: Path) -> None:
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(target, half_then_fail)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_npy_keeps_its_name(tmp_path: Path) -> None:
    target = tmp_path / "v.npy"
    atomic_save_npy(target, np.arange(3))
    assert np.load(target).tolist() == [0, 1, 2] and [p.name for p in tmp_path.iterdir()] == ["v.npy"]


def test_staged_directory_swaps_whole_or_not_at_all(tmp_path: Path) -> None:
    out = tmp_path / "model"
    with staged_directory(out) as stage:
        (stage / "a").write_text("1")
        (stage / "b").write_text("1")
    with pytest.raises(RuntimeError):
        with staged_directory(out) as stage:
            (stage / "a").write_text("2")
            raise RuntimeError("killed halfway")
    assert {p.name: p.read_text() for p in out.iterdir()} == {"a": "1", "b": "1"}
    with staged_directory(out) as stage:
        (stage / "c").write_text("3")
    assert [p.name for p in out.iterdir()] == ["c"]  # whole: nothing of the old one is mixed in
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_carry_over_links_what_the_stage_does_not_hold(tmp_path: Path) -> None:
    out = tmp_path / "data"
    (out / "models" / "m").mkdir(parents=True)
    (out / "models" / "m" / "w").write_text("weights")
    (out / "items.csv").write_text("old")
    stage = new_stage(out)
    (stage / "items.parquet").write_text("new")
    carry_over(out, stage, skip=lambda name: name.startswith("items."))
    assert sorted(p.name for p in stage.iterdir()) == ["items.parquet", "models"]
    assert (stage / "models" / "m" / "w").read_text() == "weights" and (out / "items.csv").read_text() == "old"


def test_of_two_writers_racing_for_one_name_exactly_one_wins(tmp_path: Path) -> None:
    target = tmp_path / "upload"
    a, b = new_stage(target), new_stage(target)
    (a / "items.csv").write_text("A")
    (b / "items.csv").write_text("B")
    create_from_stage(a, target)
    with pytest.raises(FileExistsError):
        create_from_stage(b, target)
    assert (target / "items.csv").read_text() == "A" and [p.name for p in target.iterdir()] == ["items.csv"]


def test_a_failed_swap_puts_the_old_directory_back(tmp_path: Path, monkeypatch) -> None:
    import engine.core.files as files

    out = tmp_path / "data"
    with staged_directory(out) as stage:
        (stage / "a").write_text("old")
    real, calls = files.os.replace, []

    def second_fails(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise OSError("killed between the two renames")
        return real(src, dst)

    monkeypatch.setattr(files.os, "replace", second_fails)
    with pytest.raises(OSError):
        with staged_directory(out) as stage:
            (stage / "a").write_text("new")
    monkeypatch.setattr(files.os, "replace", real)
    assert (out / "a").read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["data"]


def test_an_unreadable_cache_is_rebuilt_with_a_warning(tmp_path: Path) -> None:
    from engine.core.files import read_cache

    cache = tmp_path / "v.npy"
    atomic_save_npy(cache, np.ones((4, 2)))
    cache.write_bytes(cache.read_bytes()[:40])  # truncated
    with pytest.warns(UserWarning, match=r"v\.npy: unusable cache"):
        assert read_cache(cache, np.load) is None
    assert not cache.exists()  # the next run rebuilds it instead of failing again
    atomic_save_npy(cache, np.ones((4, 2)))
    with pytest.warns(UserWarning, match="does not fit"):
        assert read_cache(cache, np.load, lambda v: len(v) == 5) is None


def test_output_paths_are_checked_before_any_work(tmp_path: Path) -> None:
    from engine.core.files import check_output_file

    (tmp_path / "a_file").write_text("x")
    with pytest.raises(IsADirectoryError, match="is a directory"):
        check_output_file(tmp_path)
    with pytest.raises(NotADirectoryError, match="is a file, not a folder"):
        check_output_file(tmp_path / "a_file" / "deeper" / "out.json")
    assert check_output_file(tmp_path / "new" / "out.json") == tmp_path / "new" / "out.json"


def test_cached_array_computes_once_keeps_the_newest_and_rebuilds_what_it_cannot_use(tmp_path: Path) -> None:
    calls = []

    def compute(value: float):
        return lambda: calls.append(value) or np.full(3, value, dtype=np.float32)

    assert cached_array(tmp_path, "kind", "aa", compute(1.0)).tolist() == [1.0] * 3
    assert cached_array(tmp_path, "kind", "aa", compute(9.0)).tolist() == [1.0] * 3  # read, not computed
    assert calls == [1.0]
    for key, value in (("bb", 2.0), ("cc", 3.0), ("dd", 4.0)):
        cached_array(tmp_path, "kind", key, compute(value), keep=3)
    assert sorted(p.name for p in tmp_path.glob("kind-*.npy")) == ["kind-bb.npy", "kind-cc.npy", "kind-dd.npy"]
    (tmp_path / "kind-dd.npy").write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="unusable cache"):
        assert cached_array(tmp_path, "kind", "dd", compute(5.0)).tolist() == [5.0] * 3
    # A cached value that fails the check (another shape) is rebuilt too; no folder: no cache at all.
    with pytest.warns(UserWarning, match="unusable cache"):
        assert cached_array(tmp_path, "kind", "cc", compute(6.0), valid=lambda a: a.shape == (4,)).tolist() == [6.0] * 3
    assert cached_array(None, "kind", "zz", compute(7.0)).tolist() == [7.0] * 3
    assert not list(tmp_path.glob("kind-zz*"))
