"""The shared context of segments, pages and their evaluation: one model, one split stage, computed once."""

from __future__ import annotations

import contextlib
import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from engine.evaluation import metrics as M
from engine.core.constants import HEAD_SHARE, SEED, TIME_COL
from engine.core.files import cache_key, cached_array, cached_file
from engine.data.tables import Dataset
from engine.data.colours import ColourFeatures
from engine.data.splits import FitData, Split
from engine.models.baselines import Recommender
from engine.models.finetuned import FineTunedRecommender
from engine.models.two_stage import TwoStage

_THREADS = None  # a threadpoolctl controller, made on first use

MAX_RELEVANCE_MEMBERS = 2_000  # a segment's members whose final scores make its relevance, at most
RELEVANCE_BATCH = 500  # members scored at once
KEPT_PER_KIND = 64  # files of one kind a studio keeps in its cache folder (a segment's relevance is one)

NEW_DAYS = 21  # an item created within this many days of the latest training event is "new"
# Users the studio holds at most: a seeded random sample of a shop's users above it. Segments are
# learned from the sample and pages judged on its held-out members, so the first page of a
# million-user shop costs what a 100,000-user one does (user vectors: about 30 s on 2 cores).
STUDIO_MAX_USERS = 100_000


@dataclass
class Studio:
    """Everything segments, re-ranking and evaluation share, for one split stage.

    Segments are built from the stage's training data (``split.fit_data(stage)``) and pages are
    judged on its held-out interactions (``split.targets(stage)``), so nothing a page is judged on
    was seen while building it.

    Attributes:
        data: the data directory.
        split: the held-out split.
        stage: ``"test"`` (train + valid seen, test held out) or ``"valid"``.
        fit: the stage's training data.
        users: (U,) user indices with at least one training interaction, ascending (a seeded sample
            of :data:`STUDIO_MAX_USERS` when there are more).
        user_vectors: (U, D) the model's user vectors of those users (the user tower's state after
            the last history item).
        state_means: (U, D) the mean of the user tower's states over every history position: a
            longer-term view of the same user.
        item_vectors: (I, D) the model's item vectors; score(u, i) = user_vectors[u] . item_vectors[i].
        history: (n_users, I) binary csr matrix of training interactions.
        item_counts: (I,) training interactions per item.
        item_user_counts: (I,) distinct training users per item.
        n_train_users: users with a training interaction (all of them, also when ``users`` is a sample).
        sampled_from: users with history before sampling, when ``users`` is a sample (else None).
        is_tail: (I,) long-tail items (``metrics.head_tail_split`` at ``HEAD_SHARE``).
        is_new: (I,) created within ``NEW_DAYS`` of the latest training event, or never interacted with.
        eval_users: (E,) held-out users, ascending; eval_targets: their held-out items.
        text_vectors: (I, H) pretrained text vectors (intra-list diversity), or None.
        colours: picture colour features, or None.
        rec: the fitted recommender.
    """

    data: Dataset
    split: Split
    stage: str
    fit: FitData
    users: np.ndarray
    user_vectors: np.ndarray = field(repr=False)
    state_means: np.ndarray = field(repr=False)
    item_vectors: np.ndarray = field(repr=False)
    history: sp.csr_matrix = field(repr=False)
    item_counts: np.ndarray = field(repr=False)
    item_user_counts: np.ndarray = field(repr=False)
    n_train_users: int
    is_tail: np.ndarray = field(repr=False)
    is_new: np.ndarray = field(repr=False)
    eval_users: np.ndarray = field(repr=False)
    eval_targets: list[np.ndarray] = field(repr=False)
    text_vectors: np.ndarray | None = field(default=None, repr=False)
    colours: ColourFeatures | None = field(default=None, repr=False)
    rec: FineTunedRecommender | None = field(default=None, repr=False)
    final: Recommender | None = field(default=None, repr=False)  # both stages, when the model kept its second
    build_seconds: float = 0.0
    sampled_from: int | None = None
    cache: tuple[Path, str] | None = None  # (cache folder, model key): where what is computed from this studio may be kept
    _row: np.ndarray | None = field(default=None, repr=False)
    _target_row: np.ndarray | None = field(default=None, repr=False)
    _tfidf: tuple | None = field(default=None, repr=False)
    _relevance: dict = field(default_factory=dict, repr=False)
    _made: dict = field(default_factory=dict, repr=False)  # what a page needs and computes once per studio (see made())

    @classmethod
    def build(
        cls,
        data: Dataset,
        rec: FineTunedRecommender,
        split: Split,
        stage: str = "test",
        text_vectors: np.ndarray | None = None,
        colours: ColourFeatures | None = None,
        final: Recommender | None = None,
        max_users: int | None = STUDIO_MAX_USERS,
        cache: tuple[Path, str] | None = None,
    ) -> "Studio":
        """Fit the recommender's histories on the stage's training data and compute user vectors.

        Args:
            data: the data directory the model was trained on.
            rec: a loaded :class:`FineTunedRecommender` (``fit`` is called here).
            split: the held-out split.
            stage: ``"test"`` or ``"valid"``.
            text_vectors: optional (I, H) pretrained text vectors for intra-list diversity.
            colours: optional picture colour features for visual diversity.
            final: the model's two stages when it kept its second (``engine.models.final``); pages
                and personalised lists then rank by its scores, segments stay in ``rec``'s user space.
            max_users: users with history held at most (a seeded random sample above it); None: all.
            cache: (folder, model key) to keep the user vectors in ``folder`` (a data directory's
                ``.cache``), keyed by the model key and the users' histories; None: computed here.

        Returns:
            The ready context.
        """
        start = time.perf_counter()
        fit = split.fit_data(stage)
        users = np.flatnonzero(np.bincount(fit.interactions["uidx"].to_numpy(), minlength=fit.n_users)).astype(np.int64)
        n_with_history, sampled_from = len(users), None
        if max_users is not None and len(users) > max_users:
            sampled_from = len(users)
            users = np.sort(np.random.default_rng(SEED).choice(users, max_users, replace=False))
        rec.fit(fit)
        if final is not None and final is not rec:
            # Every final score the studio asks for is a held user's: stage 2's per-user tables for them alone.
            final.fit(fit, users=users) if isinstance(final, TwoStage) else final.fit(fit)
        else:
            final = None
        seqs = fit.sequences()
        histories = [seqs[int(u)] for u in users]
        vectors, means = _user_states(rec, histories, cache)
        counts = fit.item_counts()
        eval_users, targets = split.targets(stage)
        return cls(
            data=data, split=split, stage=stage, fit=fit, users=users, user_vectors=vectors, state_means=means,
            item_vectors=np.asarray(rec.item_vectors, dtype=np.float32), history=fit.matrix(binary=True),
            item_counts=counts, item_user_counts=fit.item_user_counts(),
            n_train_users=n_with_history, sampled_from=sampled_from, is_tail=M.head_tail_split(counts, HEAD_SHARE),
            is_new=new_items(data.items, fit.interactions, counts), eval_users=eval_users, eval_targets=targets,
            text_vectors=text_vectors, colours=colours, rec=rec, final=final, build_seconds=time.perf_counter() - start,
            cache=cache,
        )

    @property
    def n_items(self) -> int:
        return self.data.n_items

    def rows_of(self, users: np.ndarray) -> np.ndarray:
        """Row positions in ``users`` / ``user_vectors`` of the given user indices (-1 if absent)."""
        if self._row is None:
            row = np.full(self.data.n_users, -1, dtype=np.int64)
            row[self.users] = np.arange(len(self.users))
            self._row = row
        return self._row[np.asarray(users, dtype=np.int64)]

    def held_out(self, users: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """The held-out users among ``users`` (ascending) and their held-out items (made once per
        user set: a page is judged again on every slider move). Read-only."""
        users = np.asarray(users, dtype=np.int64)

        def build() -> tuple[np.ndarray, list[np.ndarray]]:
            if self._target_row is None:
                row = np.full(self.data.n_users, -1, dtype=np.int64)
                row[self.eval_users] = np.arange(len(self.eval_users))
                self._target_row = row
            rows = self._target_row[np.unique(users)]
            rows = rows[rows >= 0]
            return self.eval_users[rows], [self.eval_targets[r] for r in rows]

        return self.made(("held_out", digest(users)), build)

    def scores(self, users: np.ndarray) -> np.ndarray:
        """The final model's scores of every item for users with history: (n, I) float32."""
        rows = self.rows_of(users)
        if (rows < 0).any():
            raise ValueError(f"user index {int(np.asarray(users)[rows < 0][0])} has no training history in this stage")
        if self.final is not None:
            return self.final.score(np.asarray(users, dtype=np.int64))
        return self.user_vectors[rows] @ self.item_vectors.T

    def member_relevance(self, members: np.ndarray) -> np.ndarray | None:
        """With two stages: every item's mean final score over a segment's members, computed once
        per member set; None with the fine-tuned model alone (its relevance is linear, see
        ``engine.page.rerank.segment_relevance``).

        Each member's scores over their candidates are shifted so the lowest candidate scores 0,
        the items outside their candidates count 0, and the mean runs over members (at most
        :data:`MAX_RELEVANCE_MEMBERS`, a seeded sample of larger segments).
        """
        if self.final is None or not hasattr(self.final, "candidate_scores"):
            return None
        members = np.asarray(members, dtype=np.int64)
        given = digest(members)  # the member array as given: a slider move skips the unique below
        if given in self._relevance:
            return self._relevance[given]
        members = np.unique(members)
        members = members[self.rows_of(members) >= 0]
        key = digest(members)
        if key not in self._relevance:
            self._relevance[key] = self.kept("relevance", (self.stage, members), lambda: self._mean_relevance(members),
                                             lambda a: a.shape == (self.n_items,) and a.dtype == np.float64)
        self._relevance[given] = self._relevance[key]
        return self._relevance[key]

    def _mean_relevance(self, members: np.ndarray) -> np.ndarray:
        if len(members) > MAX_RELEVANCE_MEMBERS:
            members = np.sort(np.random.default_rng(0).choice(members, MAX_RELEVANCE_MEMBERS, replace=False))
        total = np.zeros(self.n_items, dtype=np.float64)
        for start in range(0, len(members), RELEVANCE_BATCH):
            rows, items, scores = self.final.candidate_scores(members[start:start + RELEVANCE_BATCH])
            if len(rows):
                lowest = pd.Series(scores).groupby(rows).transform("min").to_numpy()
                np.add.at(total, items, scores - lowest)
        return total / max(len(members), 1)

    def cache_place(self, *parts, by_model: bool = True) -> tuple[Path, str] | None:
        """Where a value computed from this studio may be kept: (cache folder, key of the model
        unless ``by_model`` is False, the data set's files and ``parts``); None when the studio has
        no cache or its data set no files."""
        if self.cache is None or self.data.source is None:
            return None
        folder, model = self.cache
        return folder, cache_key(*((model,) if by_model else ()), self.data.source, *parts)

    def kept(self, kind: str, parts: tuple, compute, valid, keep: int = KEPT_PER_KIND):
        """``compute()``, an array, kept at :meth:`cache_place` under ``kind`` (computed here when the
        studio has no cache)."""
        place = self.cache_place(*parts)
        return compute() if place is None else cached_array(place[0], kind, place[1], compute, valid, keep=keep)

    def made(self, key, build):
        """``build()``, computed once per studio and key (a slider move must not repeat catalogue-wide work)."""
        if key not in self._made:
            self._made[key] = build()
        return self._made[key]

    def made_for(self, owner, key, build):
        """``build()``, computed once per key and ``owner`` object (kept alive here, so its identity
        cannot be recycled by another object): for what is computed from a list handed out once."""
        found = self._made.get((key, id(owner)))
        if found is None or found[0] is not owner:
            found = self._made[key, id(owner)] = (owner, build())
        return found[1]

    def tfidf(self):
        """TF-IDF of every item's text over the catalogue: ((I, V) csr, (V,) terms), built once.

        Terms are words of two or more letters, English stop words and terms in a single item left
        out; idf = ln((1 + I) / (1 + df)) + 1 and rows are L2-normalised (scikit-learn's defaults).
        """
        if self._tfidf is None:
            self._tfidf = self._kept_tfidf()
        return self._tfidf

    def _kept_tfidf(self):
        def save(value, tmp: Path) -> None:
            matrix, terms = value
            with open(tmp, "wb") as handle:  # a handle, so numpy adds no suffix of its own
                np.savez(handle, data=matrix.data, indices=matrix.indices, indptr=matrix.indptr,
                         shape=np.asarray(matrix.shape), terms=np.asarray(terms, dtype=str))

        def load(path: Path):
            with np.load(path, allow_pickle=False) as f:
                matrix = sp.csr_matrix((f["data"], f["indices"], f["indptr"]), shape=tuple(f["shape"]))
                return matrix, f["terms"].astype(object)

        place = self.cache_place(_TFIDF_FORMAT, by_model=False)  # the catalogue's text alone: whatever the model
        if place is None:
            return _tfidf(self.data.items)
        return cached_file(place[0], "tfidf", ".npz", place[1], lambda: _tfidf(self.data.items), load, save,
                           valid=lambda v: v[0].shape[0] == self.n_items)


_TFIDF_FORMAT = "1"


def _tfidf(items: pd.DataFrame):
    from sklearn.feature_extraction.text import TfidfVectorizer

    from engine.models.text_encoder import item_texts

    texts = item_texts(items)
    vec = TfidfVectorizer(stop_words="english", token_pattern=r"(?u)\b[^\W\d_]{2,}\b", min_df=2, sublinear_tf=True)
    try:
        matrix = vec.fit_transform(texts).tocsr().astype(np.float32)
        terms = vec.get_feature_names_out()
    except ValueError:  # no term in two items (placeholder titles): no keywords
        matrix, terms = sp.csr_matrix((len(texts), 0), dtype=np.float32), np.array([], dtype=object)
    return matrix, terms


def digest(array: np.ndarray) -> str:
    """A key of an array's bytes for the studio's memos (a segment's members, a user list)."""
    return hashlib.sha1(np.asarray(array).tobytes()).hexdigest()


def _user_states(rec: FineTunedRecommender, histories: list[np.ndarray], cache: tuple[Path, str] | None) -> tuple[np.ndarray, np.ndarray]:
    """``rec.user_states(histories)``, kept in the cache folder when one is given (a shop's 100,000
    sampled users take minutes through the encoder on 2 cores, a read takes well under a second)."""
    if cache is None or not histories:
        return rec.user_states(histories)
    folder, key = cache
    dim = rec.item_vectors.shape[1]
    lengths = np.asarray([len(h) for h in histories], dtype=np.int64)
    both = cached_array(folder, "user_states", cache_key(key, lengths, np.concatenate(histories).astype(np.int64)),
                        lambda: np.hstack(rec.user_states(histories)), lambda a: a.shape == (len(histories), 2 * dim) and a.dtype == np.float32)
    return both[:, :dim], both[:, dim:]


def model_key(model_dir: str | Path) -> str:
    """What identifies a saved model's weights for caches: its folder, and the size and time of
    every file in it (a model directory is written once, by staging and renaming)."""
    folder = Path(model_dir).resolve()
    parts = [str(folder)] + [f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in sorted(folder.iterdir()) if p.is_file()]
    return hashlib.sha1("\n".join(parts).encode()).hexdigest()


def single_thread():
    """A context with one BLAS / OpenMP thread.

    Re-ranking and judging one page are many small matrix products: extra threads only add
    hand-off latency, and on a shared CPU they wait for cores (3-4x slower pages measured here).

    Returns:
        A context manager (a no-op where threadpoolctl is missing).
    """
    global _THREADS
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # scikit-learn brings it; without it nothing is limited
        return contextlib.nullcontext()
    if _THREADS is None:
        _THREADS = ThreadpoolController()
    return _THREADS.limit(limits=1)


def new_items(items: pd.DataFrame, interactions: pd.DataFrame, item_counts: np.ndarray, days: int = NEW_DAYS) -> np.ndarray:
    """New arrivals: created within ``days`` of the latest training event, or with no training interaction.

    Args:
        items: the catalogue (``created_at`` optional).
        interactions: the training interactions (their latest timestamp is "now").
        item_counts: (I,) training interactions per item.
        days: the window.

    Returns:
        (I,) bool.
    """
    new = np.asarray(item_counts) == 0
    if "created_at" in items.columns and len(interactions):
        now = interactions[TIME_COL].max()
        created = pd.to_datetime(items["created_at"])
        recent = (created > now - pd.Timedelta(days=days)).fillna(False).to_numpy(dtype=bool)
        new |= recent
    return new


def load_studio(
    data: Dataset | str | Path,
    model_dir: str | Path | None = None,
    *,
    protocol: str | None = None,
    test_days: int | None = None,
    stage: str = "test",
    text: bool = True,
    images: bool = True,
) -> Studio:
    """Load a data directory and a trained model and build the :class:`Studio`.

    Args:
        data: a loaded :class:`Dataset` or its directory.
        model_dir: the model directory (default: the newest under ``DIR/models``).
        protocol: held-out protocol (default: the one the model was trained with).
        test_days: temporal protocol's test days (default: the model's).
        stage: ``"test"`` or ``"valid"``.
        text: load pretrained text vectors (for intra-list diversity) where items have real text.
        images: compute picture colour features (cached in ``DIR/.cache``).

    Returns:
        The ready context.
    """
    from engine.core.constants import DEFAULT_TEST_DAYS
    from engine.data.tables import load_dataset
    from engine.models.store import newest_model
    from engine.data.splits import make_split

    if not isinstance(data, Dataset):
        data = load_dataset(data)
    model_dir = Path(model_dir) if model_dir else newest_model(data.root)
    from engine.models.final import load_final

    key = model_key(model_dir)  # before the weights are read: a model replaced meanwhile is not cached under the new key
    final, rec, manifest = load_final(model_dir, data)
    protocol = protocol or manifest.get("protocol", "loo")
    test_days = test_days or manifest.get("test_days") or DEFAULT_TEST_DAYS
    split = make_split(data, protocol, test_days)
    text_vectors = None
    if text and data.has_text():
        from engine.models.text_encoder import cached_item_vectors, default_encoder_path

        default = Path(default_encoder_path()).name
        loaded = getattr(final, "text_vectors", None)  # stage 2's text features, when it has them
        same = Path(rec.model.config.encoder_path or default).name == default
        text_vectors = loaded if loaded is not None and same else cached_item_vectors(data.root, data.items)
    colours = None
    if images:
        from engine.data.colours import colour_features

        colours = colour_features(data)
    return Studio.build(data, rec, split, stage, text_vectors, colours, final=final, cache=(data.root / ".cache", key))
