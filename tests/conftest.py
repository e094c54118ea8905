"""Shared fixtures: tiny hand-made data directories written into tmp_path, and the shared-data path."""

from __future__ import annotations

import os

# Before torch loads: idle OpenMP threads sleep instead of spinning. On a few CPU cores shared with
# other processes, spinning threads make MKL's small parallel regions (torch.cholesky_inverse in EASE)
# 10-100x slower (MovieLens EASE: 109 s instead of 2 s under load).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
HAS_SHARED = SHARED.is_dir()
needs_shared = pytest.mark.skipif(not HAS_SHARED, reason="needs the shared data sets in ../shared/data")

CATEGORIES = ("shoes", "bags", "hats", "coats")


def tiny_frames(n_items: int = 20, n_users: int = 30, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Items (titles, categories), interactions (5-10 per user over ten days) and users."""
    rng = np.random.default_rng(seed)
    item_ids = [f"I{i:03d}" for i in range(n_items)]
    items = pd.DataFrame(
        {
            "item_id": item_ids,
            "title": [f"{CATEGORIES[i % 4][:-1].title()} number {i}" for i in range(n_items)],
            "category": [CATEGORIES[i % 4] for i in range(n_items)],
            "price": np.round(rng.uniform(5, 100, n_items), 2),
        }
    )
    rows = []
    start = pd.Timestamp("2024-03-01")
    for u in range(n_users):
        n = int(rng.integers(5, 11))
        # Users stick to a category, so that the data has structure models can find.
        cat = u % 4
        pool = [i for i in range(n_items) if i % 4 == cat]
        days = np.sort(rng.integers(0, 10, n))
        for d in days:
            i = int(rng.choice(pool)) if rng.random() < 0.8 else int(rng.integers(n_items))
            ts = start + pd.Timedelta(days=int(d), seconds=int(rng.integers(0, 86400)))
            rows.append((f"U{u:03d}", item_ids[i], ts.isoformat()))
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    # Shuffle the file order: the loader must sort by time.
    inter = inter.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    users = pd.DataFrame({"user_id": [f"U{u:03d}" for u in range(n_users)], "age": rng.integers(18, 70, n_users)})
    return items, inter, users


def write_dir(root: Path, items: pd.DataFrame, inter: pd.DataFrame, users: pd.DataFrame | None = None) -> Path:
    """Write frames as a CSV data directory (plain to_csv, no validation)."""
    root.mkdir(parents=True, exist_ok=True)
    items.to_csv(root / "items.csv", index=False)
    inter.to_csv(root / "interactions.csv", index=False)
    if users is not None:
        users.to_csv(root / "users.csv", index=False)
    return root


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for the module that asks for it (training tests: reproducible, and no
    oversubscription of the machine's cores); the previous count afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def tiny_frames_factory() -> Callable[..., tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]]:
    return tiny_frames


@pytest.fixture
def tiny_dir(tmp_path: Path) -> Path:
    """A small valid data directory: 20 items, 30 users with 5-10 interactions each over 10 days."""
    items, inter, users = tiny_frames()
    return write_dir(tmp_path / "tiny", items, inter, users)


@pytest.fixture
def make_dir(tmp_path: Path) -> Callable[..., Path]:
    """Write a data directory from frames or raw text: make_dir(items=..., interactions=..., users=...)."""
    counter = iter(range(10_000))

    def make(items=None, interactions=None, users=None, name: str | None = None) -> Path:
        root = tmp_path / (name or f"d{next(counter)}")
        root.mkdir(parents=True, exist_ok=True)
        for table, value in (("items", items), ("interactions", interactions), ("users", users)):
            if value is None:
                continue
            path = root / f"{table}.csv"
            if isinstance(value, pd.DataFrame):
                value.to_csv(path, index=False)
            elif isinstance(value, bytes):
                path.write_bytes(value)
            else:
                path.write_text(value)
        return root

    return make


# ----------------------------------------------------------------------------------------------
# A small demo store with a trained model, shared by the dashboard and browser tests.

DEMO_MODEL = "tiny"


def build_trained_demo(root: Path, n_items: int = 600, n_users: int = 800) -> Path:
    """Generate a small demo store into root and train a tiny frozen-encoder model as root/models/tiny."""
    import torch

    from engine.data.tables import load_dataset
    from engine.data.demo_store import generate_demo
    from engine.models.two_tower import RankerConfig
    from engine.training.job import train_and_save

    generate_demo(root, n_items=n_items, n_users=n_users)
    data = load_dataset(root)
    config = RankerConfig(dim=32, user_layers=1, user_heads=1, max_epochs=2, mode="frozen", n_negatives=64, min_steps_per_epoch=10, seed=7)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train_and_save(data, root / "models" / DEMO_MODEL, config, protocol="loo")
    finally:
        torch.set_num_threads(threads)
    return root


@pytest.fixture(scope="session")
def trained_demo(request, tmp_path_factory) -> Path:
    """A 600-item demo store (with pictures) and a tiny trained model under models/tiny, for the dashboard tests.

    The store of :func:`demo_model` (trained once per run for every test that needs one), unless
    HOMEPAGE_TEST_MODEL points the engine tests elsewhere: then a store of its own.
    """
    import os

    if not os.environ.get("HOMEPAGE_TEST_MODEL"):
        return request.getfixturevalue("demo_model")[0]
    return build_trained_demo(tmp_path_factory.mktemp("dashboard") / "demo")


# ----------------------------------------------------------------------------------------------
# A small demo store with a tiny trained ranker, shared by the segment / layout / evaluate tests.

DEMO_ITEMS, DEMO_USERS = 600, 800


@pytest.fixture(scope="session")
def demo_model(tmp_path_factory) -> tuple[Path, Path]:
    """(data dir, model dir): a 600-item, 800-user demo store and a tiny ranker trained on it.

    The ranker is RankerConfig(dim=64, max_epochs=3, mode="frozen") under leave-one-out, trained on
    one torch thread (several times faster than contended threads on a shared CPU): about 30 s.
    Set HOMEPAGE_TEST_MODEL (and HOMEPAGE_TEST_DATA, default data/demo) to use a trained model instead.
    """
    import os

    if os.environ.get("HOMEPAGE_TEST_MODEL"):
        return Path(os.environ.get("HOMEPAGE_TEST_DATA", "data/demo")), Path(os.environ["HOMEPAGE_TEST_MODEL"])
    import torch

    from engine.data.tables import load_dataset
    from engine.data.demo_store import generate_demo
    from engine.models.two_tower import RankerConfig
    from engine.training.job import train_and_save

    root = tmp_path_factory.mktemp("demo_small") / "demo"
    generate_demo(root, n_items=DEMO_ITEMS, n_users=DEMO_USERS)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        data = load_dataset(root)
        # train_and_save, as `homepage train` does: the manifest carries held-out metrics (the dashboard shows them).
        model_dir, _, _ = train_and_save(data, root / "models" / DEMO_MODEL, RankerConfig(dim=64, max_epochs=3, mode="frozen"), protocol="loo")
    finally:
        torch.set_num_threads(threads)
    return root, model_dir


@pytest.fixture(scope="session")
def demo_studio(demo_model):
    """The :class:`engine.studio.Studio` of the demo model (test stage of leave-one-out). Do not mutate."""
    from engine.studio.context import load_studio

    return load_studio(*demo_model)


@pytest.fixture(scope="session")
def trained_demo_studio(tmp_path_factory):
    """A Studio of a properly trained model on the full demo store (5,000 users, 3,000 items).

    HOMEPAGE_TEST_MODEL (+ HOMEPAGE_TEST_DATA, default data/demo) when set; else the ranker
    benchmark's benchmarks/out/models/demo on data/demo when both exist and match; else (a fresh
    clone, CI) the full demo store is generated and a frozen-encoder ranker with the default
    config is trained on it until early stopping: about 3.5 minutes on 2 cores (ARI 0.598).
    """
    import os

    from engine.data.tables import load_dataset
    from engine.data.demo_store import generate_demo
    from engine.core.errors import ModelError
    from engine.studio.context import load_studio
    from engine.training.job import make_config, train_and_save

    root = Path(__file__).resolve().parents[1]
    if os.environ.get("HOMEPAGE_TEST_MODEL"):
        data_dir, model_dir = Path(os.environ.get("HOMEPAGE_TEST_DATA", root / "data" / "demo")), Path(os.environ["HOMEPAGE_TEST_MODEL"])
        return load_studio(data_dir, model_dir, images=False)
    data_dir, model_dir = root / "data" / "demo", root / "benchmarks" / "out" / "models" / "demo"
    if (data_dir / "items.csv").exists() and (model_dir / "manifest.json").exists():
        try:
            return load_studio(data_dir, model_dir, images=False)
        except ModelError:
            pass  # a model of an older demo store: train a fresh one below
    data_dir = tmp_path_factory.mktemp("full_demo") / "demo"
    generate_demo(data_dir)
    data = load_dataset(data_dir)
    model_dir, _, _ = train_and_save(data, data_dir / "models" / "frozen", make_config(data, mode="frozen"), protocol="loo")
    return load_studio(data_dir, model_dir, images=False)


# ----------------------------------------------------------------------------------------------
# A shop with a planted repeat-purchase pattern, for the two-stage tests.


def alternating_shop(root: Path, n_users: int = 300, n_items: int = 60, seed: int = 0) -> Path:
    """Every user alternates between two items of their own (a b a b ...), with a one-off item now
    and then: the next item is always the one before the last, never the last."""
    rng = np.random.default_rng(seed)
    rows, day = [], 0
    for u in range(n_users):
        a, b = rng.choice(n_items, 2, replace=False)
        length = int(rng.integers(6, 10))
        seq = [a if t % 2 == 0 else b for t in range(length)]
        for t, item in enumerate(seq):
            if t in (1, 3) and rng.random() < 0.3:  # a one-off item in the middle, bought once
                rows.append((f"u{u}", f"i{int(rng.integers(n_items))}", day))
                day += 1
            rows.append((f"u{u}", f"i{item}", day))
            day += 1
    items = pd.DataFrame({"item_id": [f"i{i}" for i in range(n_items)], "title": [f"item {i}" for i in range(n_items)]})
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "day"])
    inter["timestamp"] = (pd.Timestamp("2024-01-01") + pd.to_timedelta(inter.pop("day"), unit="h")).astype(str)
    from engine.data.tables import write_dataset

    return write_dataset(root, items, inter)
