"""User segments: clusters of the model's user vectors and rules on user attributes, named from item text."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from engine.core.constants import EVENT_COL, SEED, USER_COL
from engine.core.files import cached_file
from engine.studio.context import Studio

MIN_SEGMENT_SIZE = 20  # a segment with fewer users is never shown or exported (privacy)
K_RANGE = (4, 12)  # k searched when k is not given
METHODS = ("kmeans", "gmm")
SPACES = ("profile", "model", "blend")
SILHOUETTE_SAMPLE = 3000  # users the silhouette is computed on (it is quadratic in users)
KMEANS_INIT = 10  # k-means restarts of the final clustering (the best inertia is kept)
KMEANS_SEARCH_INIT = 3  # restarts per k while k is searched
KMEANS_DIMS = 32  # principal components k-means runs on
MINIBATCH_ABOVE = 50_000  # more users than this: MiniBatchKMeans (batches of MINIBATCH_SIZE), not full k-means
MINIBATCH_SIZE = 4096
GMM_DIMS = 16  # principal components the Gaussian mixture is fitted on (diagonal covariances)
NEW_USER_MAX = 2  # "new users" have at most this many training interactions
HEAVY_SHARE = 0.10  # "heavy buyers" are the top 10% by purchases (by interactions without events)
AGE_BANDS = ((18, 25), (26, 35), (36, 45), (46, 55), (56, 120))
MAX_LEVELS = 12  # a users.csv column with more distinct values (postal codes, ids) makes no segments
N_KEYWORDS = 8
N_CATEGORIES = 3
MIN_SUPPORT = 0.10  # a term or category describes a group only when this share of its members bought it...
MIN_SUPPORT_USERS = 3  # ...and at least this many members
MIN_LIFT = 1.1  # and its share among the members is at least 10% above the shop's
MIN_TERM_CHARS = 3  # shorter tokens ("hw", "ed") are fragments, not words
FILLER_SHARE = 0.30  # words in more than this share of the item texts say nothing about a group
NAME_CATEGORY_POOL = 4  # categories and keywords a name may draw on when its best one is taken
NAME_KEYWORD_POOL = 5
# Words of product copy that describe no taste; the field labels of imported texts ("product
# group:", "colour:") are dropped by _FIELD_LABEL before any word is counted.
CATALOGUE_FILLER = frozenset({
    "appearance", "article", "articles", "colour", "color", "contain", "containing", "contains", "department",
    "details", "feature", "features", "featuring", "garment", "garments", "group", "include", "includes",
    "including", "item", "items", "product", "products", "quality", "range", "section", "size", "sizes",
    "style", "styles", "type", "types", "version",
})
_FIELD_LABEL = re.compile(r"(^|[.;|])\s*[^\W\d_]+(?:\s+[^\W\d_]+){0,2}\s*:")  # "; product group:"


@dataclass
class Segment:
    """A group of users that share one page.

    Attributes:
        id: stable identifier (``kmeans-3``, ``rule:age-18-25``).
        name: readable name for the page.
        kind: ``"learned"`` (clustered) or ``"rule"`` (from attributes or behaviour).
        members: user indices; internal only, never in :meth:`to_dict`.
        keywords: terms of the members' items they buy more of than the shop (see
            :func:`describe_groups`), best first.
        top_categories: the categories they buy more of than the shop, best first.
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
    ``GMM_DIMS`` for the mixture); above ``MINIBATCH_ABOVE`` users k-means is MiniBatchKMeans
    (Sculley 2010). k-means picks the k with the highest silhouette (mean over
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
    from sklearn.cluster import KMeans, MiniBatchKMeans
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
            if n > MINIBATCH_ABOVE:  # a shop's million users: each step reads one batch, not every user
                return MiniBatchKMeans(kk, n_init=n_init, batch_size=MINIBATCH_SIZE, random_state=random_state).fit_predict(z)
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
# Describing a group of users: what its members buy more of than the whole shop


@dataclass(frozen=True)
class Description:
    """What sets a group of users apart, and its name.

    Attributes:
        keywords: terms of the members' items they over-index on (lift against the shop), best first.
        top_categories: categories they over-index on, best first; their most bought categories
            when they over-index on none.
        name: a short name, ``"Category & Category: keyword, keyword"``, distinct within the groups
            described together.
    """

    keywords: list[str]
    top_categories: list[str]
    name: str


@dataclass
class _Vocabulary:
    """The words and categories of the catalogue that may name a group.

    ``presence`` (I, V) is 1 where an item's text holds a term; ``category_of`` (I,) is the code of
    the item's category in ``categories``, -1 without one.
    """

    terms: np.ndarray
    presence: sp.csr_matrix
    categories: np.ndarray
    category_of: np.ndarray


def _vocabulary(items: pd.DataFrame) -> _Vocabulary:
    """Naming terms and categories of a catalogue (see :func:`describe_groups` for what is left out)."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer

    from engine.models.text_encoder import item_texts

    texts = [_FIELD_LABEL.sub(r"\1 ", text) for text in item_texts(items)]
    vec = CountVectorizer(binary=True, lowercase=True, token_pattern=rf"(?u)\b[^\W\d_]{{{MIN_TERM_CHARS},}}\b",
                          stop_words=sorted(ENGLISH_STOP_WORDS | CATALOGUE_FILLER), min_df=2, max_df=FILLER_SHARE)
    try:
        presence = vec.fit_transform(texts).tocsr().astype(np.float64)
        terms = vec.get_feature_names_out()
    except ValueError:  # no term in two items, or every term is filler: no keywords
        presence, terms = sp.csr_matrix((len(texts), 0)), np.array([], dtype=object)
    category_of = np.full(len(items), -1, dtype=np.int64)
    categories = np.array([], dtype=object)
    if "category" in items.columns:
        text = _as_text(items["category"])
        known = (text != "").to_numpy()
        if known.any():
            categories, category_of[known] = np.unique(text[known].to_numpy().astype(str), return_inverse=True)
    return _Vocabulary(terms, presence, categories, category_of)


def _stem(word: str) -> str:
    """A crude singular ("pockets" -> "pocket", "dresses" -> "dress"), to skip near-repeats."""
    if word.endswith(("sses", "shes", "ches", "xes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith("ss") and len(word) > MIN_TERM_CHARS:
        return word[:-1]
    return word


class _Describer:
    """Lift of each term and category of a group's histories against those of every user."""

    def __init__(self, items: pd.DataFrame, history: sp.csr_matrix, users: np.ndarray) -> None:
        self.vocab = _vocabulary(items)
        self.history = history.tocsr()
        base = np.asarray(self.history[np.asarray(users, dtype=np.int64)].sum(axis=0), dtype=np.float64).ravel()
        self.base_terms = self._shares(base @ self.vocab.presence, base)
        self.base_categories = self._shares(self._by_category(base), base)

    @staticmethod
    def _shares(amounts: np.ndarray, weight: np.ndarray) -> np.ndarray:
        return np.asarray(amounts, dtype=np.float64).ravel() / max(float(weight.sum()), 1.0)

    def _by_category(self, weight: np.ndarray) -> np.ndarray:
        known = self.vocab.category_of >= 0
        return np.bincount(self.vocab.category_of[known], weights=weight[known], minlength=len(self.vocab.categories))

    @staticmethod
    def _over_indexed(share: np.ndarray, base: np.ndarray, support: np.ndarray, min_support: float) -> np.ndarray:
        """Positions with lift of at least ``MIN_LIFT`` and enough support, best first (see :func:`describe_groups`)."""
        lift = np.where(base > 0, share / np.maximum(base, 1e-12), 0.0)
        ok = np.flatnonzero((lift >= MIN_LIFT) & (support >= min_support))
        score = share[ok] * np.log(lift[ok])
        return ok[np.lexsort((-lift[ok], -score))]

    def rank(self, members: np.ndarray) -> tuple[list[str], list[str]]:
        """(every over-indexed keyword, every over-indexed category) of a group, best first.

        A keyword whose singular repeats a better one's is left out. Without any over-indexed
        category, the members' most bought categories stand in.
        """
        members = np.asarray(members, dtype=np.int64)
        hist = self.history[members]
        weight = np.asarray(hist.sum(axis=0), dtype=np.float64).ravel()
        if weight.sum() <= 0:
            return [], []
        min_support = max(float(MIN_SUPPORT_USERS), MIN_SUPPORT * len(members))
        keywords: list[str] = []
        if len(self.vocab.terms):
            per_user = hist @ self.vocab.presence
            share = self._shares(per_user.sum(axis=0), weight)
            support = np.asarray((per_user > 0).sum(axis=0)).ravel()
            seen: set[str] = set()
            for t in self._over_indexed(share, self.base_terms, support, min_support):
                word = str(self.vocab.terms[t])
                if _stem(word) not in seen:
                    seen.add(_stem(word))
                    keywords.append(word)
        categories: list[str] = []
        if len(self.vocab.categories):
            codes = self.vocab.category_of
            rows, cols = hist.nonzero()
            known = codes[cols] >= 0
            pairs = np.unique(rows[known] * len(self.vocab.categories) + codes[cols[known]])
            support = np.bincount(pairs % len(self.vocab.categories), minlength=len(self.vocab.categories))
            share = self._shares(self._by_category(weight), weight)
            order = self._over_indexed(share, self.base_categories, support, min_support)
            if not len(order):
                order = np.lexsort((np.arange(len(share)), -share))
                order = order[share[order] > 0]
            categories = [str(self.vocab.categories[c]) for c in order]
        return keywords, categories


def _name_candidates(keywords: list[str], categories: list[str]) -> list[tuple[str, frozenset, frozenset]]:
    """(name, its categories, all it says) in order of preference: the best category and keyword pairs first.

    Later candidates swap in lower-ranked keywords, then lower-ranked categories, so a group whose
    best name is taken still gets a name of its own terms. A keyword inside a named category
    ("sneaker" beside Sneakers) is skipped.
    """
    cats = categories[:NAME_CATEGORY_POOL]
    pairs = sorted(combinations(range(len(cats)), min(2, len(cats))), key=lambda p: (sum(p), p))
    out = []
    for pair in pairs:
        chosen = [cats[i] for i in pair]
        words = [w for w in keywords if not any(_stem(w) in c.lower() for c in chosen)][:NAME_KEYWORD_POOL]
        picks = sorted(combinations(range(len(words)), min(2, len(words))), key=lambda p: (sum(p), p))
        head = " & ".join(chosen) if chosen else "Shoppers"
        said = frozenset(c.lower() for c in chosen)
        for pick in picks:
            picked = [words[i] for i in pick]
            out.append((f"{head}: {', '.join(picked)}" if picked else head, said, said | frozenset(picked)))
    return out


def _distinct_names(candidates: list[list[tuple[str, frozenset, frozenset]]]) -> list[str]:
    """One name per group, no two alike: earlier groups (the larger) choose first.

    A group takes its first candidate whose categories no earlier name has, so names differ at a
    glance; failing that, its first candidate that says other categories or keywords than every
    earlier name (in any order); failing that, its first candidate with a number, ``"… (2)"``.
    """
    heads: set[frozenset] = set()
    said: set[frozenset] = set()
    texts: set[str] = set()
    names = []
    for options in candidates:
        options = options or [("Shoppers", frozenset(), frozenset({"shoppers"}))]
        free = (next((o for o in options if o[1] not in heads and o[2] not in said and o[0] not in texts), None)
                or next((o for o in options if o[2] not in said and o[0] not in texts), None))
        if free is None:
            n = 2
            while f"{options[0][0]} ({n})" in texts:
                n += 1
            free = (f"{options[0][0]} ({n})", options[0][1], frozenset({f"{options[0][0]} ({n})"}))
        heads.add(free[1])
        said.add(free[2])
        texts.add(free[0])
        names.append(free[0])
    return names


def describe_groups(
    items: pd.DataFrame,
    history: sp.csr_matrix,
    groups: list[np.ndarray],
    users: np.ndarray | None = None,
    n_keywords: int = N_KEYWORDS,
    n_categories: int = N_CATEGORIES,
) -> list[Description]:
    """Keywords, categories and distinct names of groups of users, by what they buy more of than the shop.

    Each item counts once per member who interacted with it. A category's share is the part of
    the members' interactions in it, a keyword's the part whose item text holds it; the lift is
    that share over the same share of every user's interactions. Only terms and categories with a
    lift of at least ``MIN_LIFT`` that at least ``MIN_SUPPORT`` of the members (and
    ``MIN_SUPPORT_USERS``) bought may describe a group, so neither the shop's best sellers nor one
    odd purchase name it. They rank by share x ln(lift), their part of the Kullback-Leibler
    divergence of the group's shares from the shop's: a term in half the members' purchases at
    twice the shop's rate beats a title word in a tenth of them at five times. Terms are words of
    ``MIN_TERM_CHARS`` or more letters of the item texts, without English stop words, field labels
    (``colour:``), generic catalogue words (``CATALOGUE_FILLER``) and words in more than
    ``FILLER_SHARE`` of the items.

    Args:
        items: the catalogue (text columns and ``category`` when present).
        history: (n_users, I) binary matrix of training interactions.
        groups: user indices of each group, in order of precedence (larger groups first: when two
            groups' best names coincide, the earlier keeps it).
        users: the users the shop-wide shares are computed over (default: every row of ``history``).
        n_keywords: keywords returned per group.
        n_categories: categories returned per group.

    Returns:
        One :class:`Description` per group, names distinct.
    """
    users = np.arange(history.shape[0]) if users is None else np.asarray(users, dtype=np.int64)
    return _describe(_Describer(items, history, users), groups, n_keywords, n_categories)


def _describe(describer: _Describer, groups: list[np.ndarray], n_keywords: int = N_KEYWORDS,
              n_categories: int = N_CATEGORIES) -> list[Description]:
    ranked = [describer.rank(members) if len(members) else ([], []) for members in groups]
    names = _distinct_names([_name_candidates(keywords, cats) for keywords, cats in ranked])
    return [Description(keywords[:n_keywords], cats[:n_categories], name) for (keywords, cats), name in zip(ranked, names)]


def _describer(studio: Studio) -> _Describer:
    return _Describer(studio.data.items, studio.history, studio.users)


def describe_members(studio: Studio, members: np.ndarray, n_keywords: int = N_KEYWORDS, n_categories: int = N_CATEGORIES) -> tuple[list[str], list[str]]:
    """Keywords and top categories of one group of users (see :func:`describe_groups`).

    Args:
        studio: the shared context.
        members: user indices.
        n_keywords: keywords returned.
        n_categories: categories returned.

    Returns:
        (keywords, top categories), best first.
    """
    found = _describe(_describer(studio), [members], n_keywords, n_categories)[0]
    return found.keywords, found.top_categories


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
    return _learned(studio, method, k, k_range, space, random_state, None)


def _learned(studio: Studio, method: str, k: int | None, k_range: tuple[int, int], space: str, random_state: int,
             describer: _Describer | None) -> Segmentation:
    feats = user_features(studio, space)
    labels, k_used, criterion, scores = cluster_users(feats, method, k, k_range, random_state)
    sizes = np.bincount(labels, minlength=k_used)
    order = np.argsort(-sizes, kind="stable")
    relabel = np.empty(k_used, dtype=np.int64)
    relabel[order] = np.arange(k_used)
    labels = relabel[labels]
    groups = [(j, studio.users[labels == j]) for j in range(k_used)]
    groups = [(j, members) for j, members in groups if len(members)]
    found = _describe(describer or _describer(studio), [members for _, members in groups])
    segments = [Segment(f"{method}-{j + 1}", d.name, "learned", members, d.keywords, d.top_categories, _centroid(studio, members))
                for (j, members), d in zip(groups, found)]
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
    return _rules(studio, None)


def _rules(studio: Studio, describer: _Describer | None) -> list[Segment]:
    defined = [(sid, name, rule, np.unique(np.asarray(members, dtype=np.int64)))
               for sid, name, rule, members in _attribute_rules(studio) + _behaviour_rules(studio)]
    found = _describe(describer or _describer(studio), [members for *_, members in defined])
    return [Segment(sid, name, "rule", members, d.keywords, d.top_categories, _centroid(studio, members) if len(members) else None, rule)
            for (sid, name, rule, members), d in zip(defined, found)]


@dataclass(frozen=True)
class SegmentCatalogue:
    """Every segment of one clustering: the learned ones, then the rule ones.

    Attributes:
        learned: the clustering, or None when it was not asked for.
        rules: every rule segment, small ones included.
        min_size: segments under this size are never shown.
    """

    learned: Segmentation | None
    rules: list[Segment]
    min_size: int = MIN_SEGMENT_SIZE

    @property
    def segments(self) -> list[Segment]:
        """Learned segments (largest first), then rule segments, small ones included."""
        return (self.learned.segments if self.learned is not None else []) + list(self.rules)

    @property
    def visible(self) -> list[Segment]:
        """The segments that may be shown: learned then rule, at least ``min_size`` members."""
        return visible_segments(self.segments, self.min_size)

    def get(self, key: str) -> Segment:
        """A segment by id or name (case-insensitive), refused when under the minimum size (see :func:`get_segment`)."""
        return get_segment(self.segments, key, self.min_size)


def segment_catalogue(
    studio: Studio,
    method: str = "kmeans",
    k: int | None = None,
    *,
    k_range: tuple[int, int] = K_RANGE,
    space: str = "profile",
    learned: bool = True,
    rules: bool = True,
    min_size: int = MIN_SEGMENT_SIZE,
    random_state: int = SEED,
) -> SegmentCatalogue:
    """The segments a page can be built for: learned segments, then rule segments.

    The one place the list of segments is put together (command line, dashboard, benchmarks).
    Item texts are read once for the names and keywords of both kinds.

    Args:
        studio: the shared context.
        method: clustering method (``"kmeans"`` or ``"gmm"``).
        k: number of learned segments, or None to choose it within ``k_range``.
        k_range: inclusive range of k searched.
        space: user representation clustered (:func:`user_features`).
        learned: cluster the users (False: rule segments only, e.g. to look up a ``rule:`` id fast).
        rules: also build the rule segments.
        min_size: segments with fewer members are never shown nor returned by ``get``.
        random_state: seeds the clustering.

    Returns:
        The :class:`SegmentCatalogue`; its ``visible`` list is what may be shown.
    """
    def build() -> SegmentCatalogue:
        describer = _describer(studio)
        found = _learned(studio, method, k, k_range, space, random_state, describer) if learned else None
        return SegmentCatalogue(found, _rules(studio, describer) if rules else [], min_size)

    place = studio.cache_place(_CATALOGUE_FORMAT, studio.stage, method, str(k), str(k_range), space, str(learned), str(rules),
                               str(min_size), str(random_state), studio.users)
    return build() if place is None else cached_file(place[0], "segments", ".npz", place[1], build, _read_catalogue, _write_catalogue)


# A studio's segments are kept in its cache folder, keyed by the model, the data set's files, the
# stage, the settings and the sampled users: at a million users they take 20 s to learn, name and
# describe, and `homepage train` computes them once for the first page. One .npz per catalogue:
# the description as JSON text (a uint8 array) beside the members, centroids and labels.
_CATALOGUE_FORMAT = "1"


def _write_catalogue(catalogue: SegmentCatalogue, path: Path) -> None:
    segments = catalogue.segments
    learned = catalogue.learned
    centroids = [s.centroid for s in segments if s.centroid is not None]
    meta = {
        "min_size": catalogue.min_size,
        "learned": None if learned is None else {"method": learned.method, "space": learned.space, "k": learned.k, "criterion": learned.criterion,
                                                 "scores": [[int(kk), float(v)] for kk, v in learned.scores.items()], "n": len(learned.segments)},
        "segments": [{"id": s.id, "name": s.name, "kind": s.kind, "keywords": list(s.keywords), "top_categories": list(s.top_categories),
                      "rule": s.rule, "centroid": s.centroid is not None} for s in segments],
    }
    with open(path, "wb") as handle:  # a handle, so numpy adds no suffix of its own
        np.savez(
            handle, meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
            members=np.concatenate([s.members for s in segments]).astype(np.int64) if segments else np.zeros(0, np.int64),
            sizes=np.asarray([s.size for s in segments], dtype=np.int64),
            centroids=np.stack(centroids) if centroids else np.zeros((0, 0), np.float32),
            labels=learned.labels if learned is not None else np.zeros(0, np.int64),
        )


def _read_catalogue(path: Path) -> SegmentCatalogue:
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(z["meta"].tobytes().decode())
        members = np.split(z["members"], np.cumsum(z["sizes"])[:-1]) if len(z["sizes"]) else []
        centroids, labels = z["centroids"], z["labels"]
    segments, row = [], 0
    for entry, own in zip(meta["segments"], members, strict=True):
        centroid = None
        if entry["centroid"]:
            centroid, row = centroids[row], row + 1
        segments.append(Segment(entry["id"], entry["name"], entry["kind"], own, entry["keywords"], entry["top_categories"], centroid, entry["rule"]))
    info = meta["learned"]
    learned = None
    if info is not None:
        learned = Segmentation(segments[:info["n"]], info["method"], info["space"], info["k"], info["criterion"],
                               {int(kk): v for kk, v in info["scores"]}, labels)
        segments = segments[info["n"]:]
    return SegmentCatalogue(learned, segments, meta["min_size"])


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
