"""User segments: clusters of the model's user vectors and rules on user attributes, named from item text."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from engine.core.constants import EVENT_COL, SEED, USER_COL
from engine.studio.context import Studio

MIN_SEGMENT_SIZE = 20  # a segment with fewer users is never shown or exported (privacy)
K_RANGE = (4, 12)  # k searched when k is not given
METHODS = ("kmeans", "gmm")
SPACES = ("profile", "model", "blend")
SILHOUETTE_SAMPLE = 3000  # users the silhouette is computed on (it is quadratic in users)
KMEANS_INIT = 10  # k-means restarts of the final clustering (the best inertia is kept)
KMEANS_SEARCH_INIT = 3  # restarts per k while k is searched
KMEANS_DIMS = 32  # principal components k-means runs on
GMM_DIMS = 16  # principal components the Gaussian mixture is fitted on (diagonal covariances)
NEW_USER_MAX = 2  # "new users" have at most this many training interactions
HEAVY_SHARE = 0.10  # "heavy buyers" are the top 10% by purchases (by interactions without events)
AGE_BANDS = ((18, 25), (26, 35), (36, 45), (46, 55), (56, 120))
MAX_LEVELS = 12  # a users.csv column with more distinct values (postal codes, ids) makes no segments
N_KEYWORDS = 8
N_CATEGORIES = 3


@dataclass
class Segment:
    """A group of users that share one page.

    Attributes:
        id: stable identifier (``kmeans-3``, ``rule:age-18-25``).
        name: readable name for the page.
        kind: ``"learned"`` (clustered) or ``"rule"`` (from attributes or behaviour).
        members: user indices; internal only, never in :meth:`to_dict`.
        keywords: terms of the members' items that set them apart (TF-IDF against all users).
        top_categories: the categories the members interact with most.
        centroid: (D,) mean of the members' user vectors; its inner product with an item vector is
            the mean of the members' scores.
        rule: the definition of a rule segment (``age 18-25``), empty for learned ones.
    """

    id: str
    name: str
    kind: str
    members: np.ndarray = field(repr=False)
    keywords: list[str] = field(default_factory=list)
    top_categories: list[str] = field(default_factory=list)
    centroid: np.ndarray | None = field(default=None, repr=False)
    rule: str = ""

    @property
    def size(self) -> int:
        return int(len(self.members))

    def to_dict(self) -> dict:
        """What may be shown or exported: no member, no vector."""
        out = {"id": self.id, "name": self.name, "kind": self.kind, "size": self.size,
               "keywords": list(self.keywords), "top_categories": list(self.top_categories)}
        if self.rule:
            out["rule"] = self.rule
        return out


@dataclass
class Segmentation:
    """A clustering of the users with history and how k was chosen.

    Attributes:
        segments: every cluster as a :class:`Segment`, largest first (small ones included; filter
            with :func:`visible_segments` before showing them).
        method: ``"kmeans"`` or ``"gmm"``.
        space: the user representation clustered (see :func:`user_features`).
        k: the number of clusters.
        criterion: ``"silhouette"`` (higher is better), ``"bic"`` (lower is better) or ``"given"``.
        scores: criterion value per k tried.
        labels: (U,) cluster of each of ``studio.users`` (position in ``segments``).
    """

    segments: list[Segment]
    method: str
    space: str
    k: int
    criterion: str
    scores: dict[int, float]
    labels: np.ndarray = field(repr=False)


# ----------------------------------------------------------------------------------------------
# Features and clustering


def _normalise(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _history_mean(studio: Studio, vectors: np.ndarray) -> np.ndarray:
    """Mean of item vectors over each user's distinct training items: (U, d)."""
    hist = studio.history[studio.users]
    counts = np.maximum(np.asarray(hist.sum(axis=1)), 1.0)
    return np.asarray(hist @ vectors) / counts


def user_features(studio: Studio, space: str = "profile") -> np.ndarray:
    """The user representation that is clustered, one row per ``studio.users``.

    * ``profile`` (default): two halves of equal weight.
      - The fine-tuned model's view of a user over time, three blocks: the user vector (the user
        tower's state after the last item), the mean of the tower's states over every history
        position, and the mean of the model's item vectors over the user's distinct items.
        Tastes separate better here than in the last state alone, which follows the latest
        session.
      - The user's taste within categories (when items have a category): the mean over the
        user's distinct items of (item vector - mean item vector of its category). Which
        categories a user shops is partly personal; what they choose within a category (brand,
        colour, price level, as the model has learned them) is the taste. On the demo store this
        half lifts the adjusted Rand index with the latent tastes from 0.44 to 0.57.
    * ``model``: the model's user vectors alone, L2-normalised.
    * ``blend``: ``profile`` plus the mean pretrained text vector of the history (when the data
      has text), L2-normalised.

    Every block is L2-normalised; blocks are weighted so that rows have norm 1.

    Args:
        studio: the shared context.
        space: one of ``SPACES``.

    Returns:
        (U, d) float32 features.
    """
    if space not in SPACES:
        raise ValueError(f"space must be one of {SPACES}, got {space!r}")
    if space == "model":
        return _normalise(studio.user_vectors).astype(np.float32)
    view = [_normalise(studio.user_vectors), _normalise(studio.state_means), _normalise(_history_mean(studio, studio.item_vectors))]
    halves = [np.hstack(view) / np.sqrt(len(view))]  # the model's view, norm 1
    within = _within_category(studio.data.items, studio.item_vectors)
    if within is not None:
        halves.append(_normalise(_history_mean(studio, within)))  # the taste, norm 1
    out = np.hstack(halves) / np.sqrt(len(halves))
    if space == "blend" and studio.text_vectors is not None:
        n = len(view) + len(halves)  # the text block weighs as one block among all of them
        out = np.hstack([out * np.sqrt((n - 1) / n), _normalise(_history_mean(studio, studio.text_vectors)) / np.sqrt(n)])
    return out.astype(np.float32)


def _within_category(items: pd.DataFrame, vectors: np.ndarray) -> np.ndarray | None:
    """Item vectors minus the mean vector of their category: (I, D), or None without categories.

    Items without a category keep a zero row (they say nothing about taste within a category).
    """
    if "category" not in items.columns:
        return None
    cats = items["category"]
    known = cats.notna().to_numpy() & (cats.astype(str).str.strip() != "").to_numpy()
    if known.sum() == 0:
        return None
    _, code = np.unique(cats[known].astype(str).to_numpy(), return_inverse=True)
    sums = np.zeros((code.max() + 1, vectors.shape[1]))
    np.add.at(sums, code, vectors[known])
    means = sums / np.bincount(code)[:, None]
    out = np.zeros_like(vectors, dtype=np.float64)
    out[known] = vectors[known] - means[code]
    return out


def _k_candidates(k_range: tuple[int, int], n: int) -> list[int]:
    lo, hi = k_range
    if lo < 2 or hi < lo:
        raise ValueError(f"k_range must be (lo, hi) with 2 <= lo <= hi, got {k_range}")
    ks = [k for k in range(lo, hi + 1) if k < n]
    if not ks:
        raise ValueError(f"{n} users are too few to form {lo} or more segments")
    return ks


def cluster_users(
    features: np.ndarray,
    method: str = "kmeans",
    k: int | None = None,
    k_range: tuple[int, int] = K_RANGE,
    random_state: int = SEED,
) -> tuple[np.ndarray, int, str, dict[int, float]]:
    """Cluster user features, choosing k when it is not given.

    Both run on the leading principal components of the features (``KMEANS_DIMS`` for k-means,
    ``GMM_DIMS`` for the mixture). k-means picks the k with the highest silhouette (mean over
    users of (b - a) / max(a, b), a the mean distance to the own cluster, b to the nearest other;
    range [-1, 1]; Rousseeuw 1987), computed on at most ``SILHOUETTE_SAMPLE`` users. The Gaussian
    mixture (diagonal covariances) picks the lowest BIC = p ln(n) - 2 ln L (Schwarz 1978).

    Args:
        features: (U, d) user features.
        method: ``"kmeans"`` or ``"gmm"``.
        k: the number of clusters, or None to choose it within ``k_range``.
        k_range: inclusive range of k searched.
        random_state: seeds k-means, the mixture and the silhouette sample.

    Returns:
        (labels (U,), k, criterion name, criterion per k tried).
    """
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA
    from sklearn.metrics import silhouette_score
    from sklearn.mixture import GaussianMixture

    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    n = len(features)
    if k is not None and not 2 <= k < n:
        raise ValueError(f"k must be between 2 and the number of users - 1 ({n - 1}), got {k}")
    if method == "kmeans":
        # Principal components keep the distances that matter and make k-means ~10x faster.
        z = PCA(min(KMEANS_DIMS, features.shape[1], n - 1), random_state=random_state).fit_transform(features)

        def fit(kk: int, n_init: int) -> np.ndarray:
            return KMeans(kk, n_init=n_init, random_state=random_state).fit_predict(z)

        if k is not None:
            return fit(k, KMEANS_INIT), k, "given", {}
        scores = {}
        for kk in _k_candidates(k_range, n):
            labels = fit(kk, KMEANS_SEARCH_INIT)
            if len(np.unique(labels)) < 2:
                continue
            scores[kk] = float(silhouette_score(z, labels, sample_size=min(n, SILHOUETTE_SAMPLE), random_state=random_state))
        best = max(scores, key=lambda kk: (scores[kk], -kk))
        return fit(best, KMEANS_INIT), best, "silhouette", scores
    z = PCA(min(GMM_DIMS, features.shape[1], n - 1), random_state=random_state).fit_transform(features)

    def gmm(kk: int) -> GaussianMixture:
        return GaussianMixture(kk, covariance_type="diag", n_init=2, reg_covar=1e-4, random_state=random_state).fit(z)

    if k is not None:
        return gmm(k).predict(z), k, "given", {}
    scores, models = {}, {}
    for kk in _k_candidates(k_range, n):
        models[kk] = gmm(kk)
        scores[kk] = float(models[kk].bic(z))
    best = min(scores, key=lambda kk: (scores[kk], kk))
    return models[best].predict(z), best, "bic", scores


# ----------------------------------------------------------------------------------------------
# Describing a group of users


def describe_members(studio: Studio, members: np.ndarray, n_keywords: int = N_KEYWORDS, n_categories: int = N_CATEGORIES) -> tuple[list[str], list[str]]:
    """Keywords and top categories of a group of users, from the items they interacted with.

    Each item weighs the number of members who interacted with it. The group's term profile is the
    weighted mean of the items' TF-IDF rows (idf over the catalogue, see :meth:`Studio.tfidf`);
    keywords are the terms whose profile weight most exceeds that of all users' interactions
    (weighted the same way), so terms every group buys do not name any group.

    Args:
        studio: the shared context.
        members: user indices.
        n_keywords: keywords returned.
        n_categories: categories returned.

    Returns:
        (keywords, top categories), best first.
    """
    members = np.asarray(members, dtype=np.int64)
    weight = np.asarray(studio.history[members].sum(axis=0)).ravel()
    keywords: list[str] = []
    tfidf, terms = studio.tfidf()
    if len(terms) and weight.sum() > 0:
        base = studio.item_user_counts.astype(np.float64)
        profile = np.asarray(tfidf.T @ weight).ravel() / weight.sum()
        overall = np.asarray(tfidf.T @ base).ravel() / max(base.sum(), 1.0)
        lift = profile - overall
        order = np.argsort(-lift, kind="stable")[:n_keywords]
        keywords = [str(terms[t]) for t in order if lift[t] > 0]
    categories: list[str] = []
    if "category" in studio.data.items.columns and weight.sum() > 0:
        by_cat = pd.Series(weight, index=studio.data.items["category"].to_numpy()).groupby(level=0).sum()
        by_cat = by_cat[by_cat > 0].sort_values(ascending=False, kind="stable")
        categories = [str(c) for c in by_cat.index[:n_categories] if str(c)]
    return keywords, categories


def _learned_name(keywords: list[str], categories: list[str]) -> str:
    cats = [c for c in categories[:2] if c]
    words = [w for w in keywords if not any(w in c.lower() for c in cats)][:2]  # not "sneaker" beside Sneakers
    head = " & ".join(cats) if cats else "Shoppers"
    return f"{head}: {', '.join(words)}" if words else head


def _unique_names(segments: list[Segment]) -> None:
    seen: dict[str, int] = {}
    for seg in segments:
        n = seen.get(seg.name, 0) + 1
        seen[seg.name] = n
        if n > 1:
            seg.name = f"{seg.name} ({n})"


def _centroid(studio: Studio, members: np.ndarray) -> np.ndarray:
    rows = studio.rows_of(members)
    return studio.user_vectors[rows[rows >= 0]].mean(axis=0)


# ----------------------------------------------------------------------------------------------
# Learned and rule segments


def attribute_agreement(studio: Studio, column: str = "taste", min_items: int = 5, space: str = "profile") -> dict | None:
    """How well k-means segments recover a known user attribute (the demo store's latent taste).

    k is the attribute's number of values. The adjusted Rand index (Hubert & Arabie 1985),
    ARI = (RI - E[RI]) / (max RI - E[RI]), is 1 for identical partitions and about 0 for chance.

    Args:
        studio: the shared context.
        column: the users.csv column holding the true group.
        min_items: the ``long`` figure is over users with at least this many distinct history items.
        space: the user representation clustered (see :func:`user_features`).

    Returns:
        ``{"k", "min_items", "all", "n_all", "long", "n_long"}`` (ARI over all users with history and
        over those with at least ``min_items``), or None when the data has no such column.
    """
    from sklearn.metrics import adjusted_rand_score

    users = studio.data.users
    if users is None or column not in users.columns:
        return None
    truth = users.set_index(USER_COL).loc[studio.data.user_ids[studio.users], column].to_numpy()
    k = len(np.unique(truth))
    labels = learned_segments(studio, "kmeans", k=k, space=space).labels
    long = np.diff(studio.history[studio.users].indptr) >= min_items
    return {"k": k, "min_items": min_items, "all": float(adjusted_rand_score(truth, labels)), "n_all": int(len(truth)),
            "long": float(adjusted_rand_score(truth[long], labels[long])), "n_long": int(long.sum())}


def learned_segments(
    studio: Studio,
    method: str = "kmeans",
    k: int | None = None,
    k_range: tuple[int, int] = K_RANGE,
    space: str = "profile",
    random_state: int = SEED,
) -> Segmentation:
    """Cluster the users with history into segments and name them.

    Args:
        studio: the shared context.
        method: ``"kmeans"`` (k by silhouette) or ``"gmm"`` (k by BIC).
        k: the number of segments, or None to choose it within ``k_range``.
        k_range: inclusive range of k searched.
        space: the user representation clustered (:func:`user_features`).
        random_state: seeds the clustering.

    Returns:
        The :class:`Segmentation`, segments largest first with ids ``<method>-1`` ...
    """
    feats = user_features(studio, space)
    labels, k_used, criterion, scores = cluster_users(feats, method, k, k_range, random_state)
    sizes = np.bincount(labels, minlength=k_used)
    order = np.argsort(-sizes, kind="stable")
    relabel = np.empty(k_used, dtype=np.int64)
    relabel[order] = np.arange(k_used)
    labels = relabel[labels]
    segments = []
    for j in range(k_used):
        members = studio.users[labels == j]
        if len(members) == 0:
            continue
        keywords, cats = describe_members(studio, members)
        segments.append(Segment(f"{method}-{j + 1}", _learned_name(keywords, cats), "learned", members, keywords, cats, _centroid(studio, members)))
    _unique_names(segments)
    return Segmentation(segments, method, space, k_used, criterion, scores, labels)


def _as_text(values: pd.Series) -> pd.Series:
    """Stripped text with missing values as "" (pandas keeps NaN through astype(str))."""
    return values.map(lambda v: "" if pd.isna(v) else str(v).strip()).astype(object)


def _truthy(values: pd.Series) -> pd.Series | None:
    """True/False for a yes/no style column, None when the column is not one."""
    text = _as_text(values).str.lower()
    levels = set(text.unique()) - {""}
    for yes, no in (("yes", "no"), ("true", "false"), ("1", "0"), ("1.0", "0.0"), ("y", "n")):
        if levels and levels <= {yes, no}:
            return text == yes
    return None


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-") or "value"


def _attribute_rules(studio: Studio) -> list[tuple[str, str, str, np.ndarray]]:
    """(id, name, rule, members) from users.csv: age bands, yes/no flags, columns with few values."""
    users = studio.data.users
    if users is None or USER_COL not in users.columns:
        return []
    uidx = users[USER_COL].astype(str).map(studio.data.user_index)
    known = uidx.notna().to_numpy()
    users = users.loc[known]
    uidx = uidx[known].astype(np.int64).to_numpy()
    has_history = studio.rows_of(uidx) >= 0
    users, uidx = users.loc[has_history], uidx[has_history]
    out = []
    for column in users.columns:
        if column == USER_COL:
            continue
        values = users[column]
        label = column.replace("_", " ")
        if "age" == column.lower() or column.lower().endswith("_age"):
            age = pd.to_numeric(values, errors="coerce").to_numpy()
            for lo, hi in AGE_BANDS:
                members = uidx[(age >= lo) & (age <= hi)]
                band = f"{lo}+" if hi >= 120 else f"{lo}-{hi}"
                out.append((f"rule:{_slug(column)}-{band}", f"{label.capitalize()} {band}", f"{column} {band}", members))
            continue
        flag = _truthy(values)
        if flag is not None:
            out.append((f"rule:{_slug(column)}", f"{label.capitalize()}: yes", f"{column} = yes", uidx[flag.to_numpy()]))
            continue
        text = _as_text(values)
        levels = [v for v in pd.unique(text) if v]
        if not 2 <= len(levels) <= MAX_LEVELS:
            continue
        for level in sorted(levels):
            out.append((f"rule:{_slug(column)}-{_slug(level)}", f"{label.capitalize()}: {level}", f"{column} = {level}", uidx[(text == level).to_numpy()]))
    return out


def _behaviour_rules(studio: Studio) -> list[tuple[str, str, str, np.ndarray]]:
    """(id, name, rule, members): new users and heavy buyers, from the training interactions."""
    inter = studio.fit.interactions
    n_users = studio.data.n_users
    counts = np.bincount(inter["uidx"].to_numpy(), minlength=n_users)
    users = studio.users
    out = [("rule:new-users", f"New users (under {NEW_USER_MAX + 1} interactions)", f"at most {NEW_USER_MAX} training interactions",
            users[counts[users] <= NEW_USER_MAX])]
    if EVENT_COL in inter.columns and (inter[EVENT_COL] == "purchase").any():
        buys = np.bincount(inter.loc[inter[EVENT_COL] == "purchase", "uidx"].to_numpy(), minlength=n_users)
        what = "purchases"
    else:
        buys, what = counts, "interactions"
    activity = buys[users]
    if activity.max(initial=0) > 0:
        threshold = max(int(np.ceil(np.quantile(activity, 1.0 - HEAVY_SHARE))), 1)
        out.append(("rule:heavy-buyers", "Heavy buyers (top 10%)", f"{what} >= {threshold} (top {HEAVY_SHARE:.0%})", users[activity >= threshold]))
    return out


def rule_segments(studio: Studio) -> list[Segment]:
    """Segments a merchandiser may already use: users.csv attributes and behaviour.

    From users.csv: age bands (18-25, 26-35, 36-45, 46-55, 56+) of an ``age`` column, the "yes"
    users of yes/no columns (``club_member``), and one segment per value of columns with 2 to
    ``MAX_LEVELS`` values (``region``). From behaviour: new users (at most ``NEW_USER_MAX``
    training interactions) and heavy buyers (top ``HEAVY_SHARE`` by purchases, or by interactions
    when the data has no purchase events). Only users with training history are members.

    Args:
        studio: the shared context.

    Returns:
        Every rule segment, small ones included (filter with :func:`visible_segments`).
    """
    segments = []
    for sid, name, rule, members in _attribute_rules(studio) + _behaviour_rules(studio):
        members = np.unique(np.asarray(members, dtype=np.int64))
        keywords, cats = describe_members(studio, members) if len(members) else ([], [])
        centroid = _centroid(studio, members) if len(members) else None
        segments.append(Segment(sid, name, "rule", members, keywords, cats, centroid, rule))
    return segments


def find_segments(
    studio: Studio,
    method: str = "kmeans",
    k: int | None = None,
    k_range: tuple[int, int] = K_RANGE,
    space: str = "profile",
    rules: bool = True,
    min_size: int = MIN_SEGMENT_SIZE,
    random_state: int = SEED,
) -> list[Segment]:
    """Learned segments, then rule segments, without those under the minimum size.

    Args:
        studio: the shared context.
        method: clustering method (``"kmeans"`` or ``"gmm"``).
        k: number of learned segments, or None to choose it.
        k_range: inclusive range of k searched.
        space: user representation clustered (:func:`user_features`).
        rules: also return rule segments.
        min_size: segments with fewer members are left out.
        random_state: seeds the clustering.

    Returns:
        The segments that may be shown.
    """
    segments = learned_segments(studio, method, k, k_range, space, random_state).segments
    if rules:
        segments = segments + rule_segments(studio)
    return visible_segments(segments, min_size)


def visible_segments(segments: list[Segment], min_size: int = MIN_SEGMENT_SIZE) -> list[Segment]:
    """The segments with at least ``min_size`` members: the only ones that may be shown."""
    return [s for s in segments if s.size >= min_size]


def check_size(segment: Segment, min_size: int = MIN_SEGMENT_SIZE) -> Segment:
    """Refuse a segment under the minimum size.

    Raises:
        ValueError: when the segment has fewer than ``min_size`` members (the message gives no
            member, only the count).
    """
    if segment.size < min_size:
        raise ValueError(f"segment {segment.id!r} has {segment.size} users, under the minimum of {min_size}: it cannot be shown or exported")
    return segment


def get_segment(segments: list[Segment], key: str, min_size: int = MIN_SEGMENT_SIZE) -> Segment:
    """A segment by id or name (case-insensitive), refused when under the minimum size.

    Raises:
        ValueError: an unknown key (listing the known ids) or a segment under the minimum size.
    """
    wanted = str(key).strip().lower()
    for seg in segments:
        if wanted in (seg.id.lower(), seg.name.lower()):
            return check_size(seg, min_size)
    known = ", ".join(s.id for s in segments if s.size >= min_size)
    raise ValueError(f"no segment {key!r}; known segments: {known}")


def segments_table(segments: list[Segment], min_size: int = MIN_SEGMENT_SIZE) -> pd.DataFrame:
    """One row per visible segment: id, name, kind, size, keywords, top categories (no members)."""
    rows = [s.to_dict() for s in visible_segments(segments, min_size)]
    frame = pd.DataFrame(rows, columns=["id", "name", "kind", "size", "keywords", "top_categories"])
    frame["keywords"] = frame["keywords"].map(lambda ks: ", ".join(ks))
    frame["top_categories"] = frame["top_categories"].map(lambda cs: ", ".join(cs))
    return frame
