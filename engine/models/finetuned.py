"""The transformer ranker and its zero-shot twin behind the same fit/score/rank contract as the baselines."""

from __future__ import annotations

import numpy as np
import torch

from engine.models.baselines import Recommender
from engine.data.splits import FitData
from engine.models.two_tower import Ranker, run_user_tower, score_users


class FineTunedRecommender(Recommender):
    """A trained :class:`Ranker` with a fixed item table; ``fit`` only remembers users' histories."""

    name = "finetuned"

    def __init__(self, model: Ranker, item_vectors: np.ndarray):
        self.model = model
        self.item_vectors = np.asarray(item_vectors, dtype=np.float32)

    @classmethod
    def from_pretrained(cls, model_dir, data=None) -> tuple["FineTunedRecommender", dict]:
        """A ready recommender from a model directory (histories not yet attached: call ``fit``),
        and its manifest. Raises ModelError as :meth:`Ranker.from_pretrained` does."""
        model = Ranker.from_pretrained(model_dir, data)
        return cls(model, model.saved_item_vectors), model.manifest

    def fit(self, data: FitData) -> "FineTunedRecommender":
        self._remember(data)
        self.sequences_ = data.sequences()
        return self

    def histories(self, users: np.ndarray) -> list[np.ndarray]:
        empty = np.zeros(0, dtype=np.int64)
        return [self.sequences_.get(int(u), empty) for u in users]

    def user_states(self, histories: list[np.ndarray], batch: int = 1024) -> tuple[np.ndarray, np.ndarray]:
        """The user tower's last state (the user vector) and its mean over the history positions.

        Args:
            histories: item index arrays, oldest first.
            batch: histories run at once.

        Returns:
            ((U, D) user vectors, (U, D) mean states), float32.
        """
        dim = self.item_vectors.shape[1]
        last, mean = np.zeros((len(histories), dim), np.float32), np.zeros((len(histories), dim), np.float32)
        for rows, vectors, means in run_user_tower(self.model, histories, torch.from_numpy(self.item_vectors), batch, with_mean=True):
            last[rows] = vectors.numpy()
            mean[rows] = means
        return last, mean

    def score(self, users: np.ndarray) -> np.ndarray:
        return score_users(self.model, self.histories(users), torch.from_numpy(self.item_vectors))

    def score_histories(self, histories: list[np.ndarray]) -> np.ndarray:
        """Scores for arbitrary histories, e.g. a hypothetical user: (U, I)."""
        return score_users(self.model, histories, torch.from_numpy(self.item_vectors))


class ZeroShot(Recommender):
    """The pretrained encoder with no training: user = mean of history text vectors, score = cosine."""

    name = "zero_shot"

    def __init__(self, text_vectors: np.ndarray):
        norms = np.linalg.norm(text_vectors, axis=1, keepdims=True)
        self.text_vectors = (text_vectors / np.maximum(norms, 1e-9)).astype(np.float32)

    def fit(self, data: FitData) -> "ZeroShot":
        self._remember(data)
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        hist = self.history_[users]
        counts = np.maximum(np.asarray(hist.sum(axis=1)), 1.0)
        user = np.asarray(hist @ self.text_vectors) / counts  # (U, H): mean of history vectors
        return (user @ self.text_vectors.T).astype(np.float32)
