"""Atomic writes: a file goes to a temporary sibling and is renamed into place; a directory is
staged whole beside its target and swapped in with one rename, the old one kept until the new one
is there. Every writer of the project goes through here, so a failed or killed command leaves
what was saved before as it was."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temporary sibling of ``path``, then rename it over ``path``.

    Args:
        path: the file to write.
        write: writes the whole file to the path it is given.

    Returns:
        ``path`` as a Path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + "".join(path.suffixes), dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def new_stage(out_dir: str | Path, tag: str = "tmp") -> Path:
    """An empty staging directory beside ``out_dir`` (same filesystem, so a rename can place it)."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.{tag}-", dir=out_dir.parent))


def swap_in(stage: Path, out_dir: str | Path) -> Path:
    """Put the finished directory ``stage`` at ``out_dir``: the old one, if any, is moved aside,
    the stage renamed into place, and only then the old one removed."""
    out_dir = Path(out_dir)
    if out_dir.exists():
        backup = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
        shutil.rmtree(backup, ignore_errors=True)
        os.replace(out_dir, backup)
        try:
            os.replace(stage, out_dir)
        except BaseException:
            os.replace(backup, out_dir)
            raise
        shutil.rmtree(backup, ignore_errors=True)
    else:
        os.replace(stage, out_dir)
    return out_dir


@contextlib.contextmanager
def staged_directory(out_dir: str | Path, tag: str = "tmp") -> Iterator[Path]:
    """Yield a staging directory; on success it replaces ``out_dir`` whole, on error it is removed.

    Example:
        with staged_directory(model_dir) as stage:
            (stage / "config.json").write_text(...)
    """
    stage = new_stage(out_dir, tag)
    try:
        yield stage
        swap_in(stage, out_dir)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise


def atomic_save_npy(path: str | Path, array) -> Path:
    """``numpy.save`` of one array to ``path``, atomically."""
    import numpy as np

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:  # a handle, so numpy adds no suffix of its own
            np.save(handle, array)

    return atomic_write(path, write)


def atomic_save_npz(path: str | Path, **arrays) -> Path:
    """``numpy.savez`` of named arrays to ``path``, atomically."""
    import numpy as np

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)

    return atomic_write(path, write)


def read_cache(path: str | Path, load: Callable[[Path], object], valid: Callable[[object], bool] = lambda _: True):
    """A cached value, or None when there is none or it cannot be used.

    A cache that fails to read (truncated, garbage) or fails ``valid`` (another shape) is removed
    with a warning naming it, so the caller rebuilds it instead of failing on every later run.
    """
    path = Path(path)
    if not path.exists():
        return None
    try:
        value = load(path)
        if valid(value):
            return value
        reason = "it does not fit the data"
    except Exception as exc:  # numpy and zipfile raise several types for damaged files
        reason = f"{type(exc).__name__}: {exc}"
    warnings.warn(f"{path}: unusable cache ({reason}); rebuilding it", stacklevel=2)
    path.unlink(missing_ok=True)
    return None


CACHE_KEEP = 3  # files of one kind a cache folder keeps (the most recently used)


def cache_key(*parts) -> str:
    """A :func:`cached_array` key: 20 hex digits of the SHA-1 of the parts in order, a string by its
    UTF-8 bytes and anything else as a contiguous numpy array's bytes."""
    import numpy as np

    digest = hashlib.sha1()
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else np.ascontiguousarray(part).tobytes())
    return digest.hexdigest()[:20]


def cached_file(folder: str | Path | None, kind: str, suffix: str, key: str, compute: Callable[[], object],
                load: Callable[[Path], object], save: Callable[[object, Path], None], *,
                valid: Callable[[object], bool] = lambda _: True, keep: int | None = CACHE_KEEP, write: bool = True,
                quiet: tuple[type[BaseException], ...] = (OSError,)):
    """``compute()``, kept in ``folder/<kind>-<key><suffix>`` for the next call with the same key.

    A hit (``load(path)``, passing ``valid``) refreshes the file's time; after a write
    (``save(value, tmp)`` then a rename), only the ``keep`` most recently used files of the kind
    stay (these caches can be large: EASE's table is items² floats). A folder that cannot be
    written (or a ``save`` raising one of ``quiet``) just means no cache, as does ``folder`` None.

    Args:
        folder: the cache folder (a data directory's ``.cache``), or None for no cache.
        kind: the file name's prefix, one per kind of value.
        suffix: the file name's ending (``.npy``).
        key: what the value depends on, as a hex digest.
        compute: builds the value when there is no usable cache.
        load: reads a cached file.
        save: writes the value to the path it is given.
        valid: whether a cached value can be used (for example, its shape).
        keep: files of the kind kept (None: every one).
        write: False to only read a cache, never write one.
        quiet: what a failed write may raise without failing the call.

    Returns:
        The cached or computed value.
    """
    if folder is None:
        return compute()
    folder = Path(folder)
    path = folder / f"{kind}-{key}{suffix}"
    cached = read_cache(path, load, valid)
    if cached is not None:
        with contextlib.suppress(OSError):
            os.utime(path)
        return cached
    value = compute()
    if not write:
        return value
    try:
        atomic_write(path, lambda tmp: save(value, tmp))
        if keep is not None:
            older = sorted(folder.glob(f"{kind}-*{suffix}"), key=lambda p: p.stat().st_mtime, reverse=True)[keep:]
            for stale in older:
                stale.unlink(missing_ok=True)
    except quiet:
        pass  # a read-only or full data directory: no cache
    return value


def cached_array(folder: str | Path | None, kind: str, key: str, compute: Callable[[], object],
                 valid: Callable[[object], bool] = lambda _: True, keep: int | None = CACHE_KEEP):
    """``compute()``, a numpy array, kept in ``folder/<kind>-<key>.npy`` (see :func:`cached_file`)."""
    import numpy as np

    def save(value, tmp: Path) -> None:
        with open(tmp, "wb") as handle:  # a handle, so numpy adds no suffix of its own
            np.save(handle, value)

    return cached_file(folder, kind, ".npy", key, compute, lambda p: np.load(p, allow_pickle=False), save, valid=valid, keep=keep)


def check_output_file(path: str | Path) -> Path:
    """Check before any work that ``path`` can be written as a file: it is not a directory, no
    folder above it is a file, and the nearest existing folder is writable.

    Raises:
        OSError: naming the path and what is wrong (the CLI reports it as a short error).
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path}: is a directory; give a file name")
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise NotADirectoryError(f"{path}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK):
        raise PermissionError(f"{path}: {parent} is not writable")
    return path


def carry_over(old_dir: str | Path, stage: Path, skip: Callable[[str], bool] = lambda _: False) -> None:
    """Bring the entries of ``old_dir`` that the stage does not hold (and ``skip`` does not name)
    into the stage, as hard links where the filesystem allows (a model directory costs nothing),
    so that swapping the stage in keeps them. ``old_dir`` itself is not changed."""
    old_dir = Path(old_dir)
    if not old_dir.is_dir():
        return
    for entry in old_dir.iterdir():
        target = stage / entry.name
        if target.exists() or skip(entry.name) or entry.name.startswith(f".{old_dir.name}."):
            continue
        if entry.is_dir():
            shutil.copytree(entry, target, copy_function=_link_or_copy, symlinks=True)
        else:
            _link_or_copy(entry, target)


def _link_or_copy(source, target) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def create_from_stage(stage: Path, target: str | Path) -> Path:
    """Rename a finished stage to ``target``, which must not exist yet: of two writers racing for
    one name, exactly one wins and the other gets FileExistsError (nothing of it is mixed in)."""
    target = Path(target)
    if target.exists():
        raise FileExistsError(f"{target}: already exists")
    try:
        os.rename(stage, target)  # fails on an existing non-empty directory: the race's loser
    except OSError as exc:
        raise FileExistsError(f"{target}: already exists") from exc
    return target
