"""A 2-D map of users for display: the first two principal components of the clustered user features."""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine.core.constants import SEED
from engine.studio.segments import MIN_SEGMENT_SIZE, user_features
from engine.studio.context import Studio

MAP_USERS = 3000  # users drawn at most (a seeded sample): enough to see the clusters, light for the browser
OTHER = "other users"


def user_map(
    studio: Studio,
    groups: list[tuple[str, np.ndarray]],
    *,
    space: str = "model",
    n_max: int = MAP_USERS,
    min_size: int = MIN_SEGMENT_SIZE,
    random_state: int = SEED,
) -> pd.DataFrame:
    """Project users to 2-D and label each with the first group that holds them.

    The projection is PCA (via SVD of the centred features) of :func:`engine.studio.segments.user_features`,
    the same representation the learned segments cluster, so clusters that are apart in the
    model's space tend to be apart on the map. Groups under ``min_size`` members are labelled
    ``OTHER`` (privacy), and no user id is returned.

    Args:
        studio: the shared context.
        groups: (name, member user indices) in priority order, e.g. the learned segments.
        space: the user representation (see :func:`engine.studio.segments.user_features`).
        n_max: at most this many users (seeded sample), so the page stays light.
        min_size: groups with fewer members are not named.
        random_state: seeds the sample.

    Returns:
        A frame with columns ``x``, ``y``, ``group`` (one row per sampled user).
    """
    feats = user_features(studio, space).astype(np.float64)
    n = len(feats)
    rows = np.arange(n)
    if n > n_max:
        rows = np.sort(np.random.default_rng(random_state).choice(n, n_max, replace=False))
    centred = feats - feats.mean(axis=0, keepdims=True)
    if n >= 2 and centred.shape[1] >= 2:
        _, _, vt = np.linalg.svd(centred[rows], full_matrices=False)
        xy = centred[rows] @ vt[:2].T
    else:
        xy = np.zeros((len(rows), 2))
    label = np.full(studio.data.n_users, OTHER, dtype=object)
    for name, members in reversed(groups):  # earlier groups win
        members = np.asarray(members, dtype=np.int64)
        if len(members) >= min_size:
            label[members] = name
    return pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "group": label[studio.users[rows]]})
