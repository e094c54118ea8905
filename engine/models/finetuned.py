"""The transformer ranker and its zero-shot twin behind the same fit/score/rank contract as the baselines."""

from __future__ import annotations

import numpy as np
import torch

from engine.models.baselines import Recommender
from engine.data.splits import FitData
from engine.models.two_tower import Ranker, score_users


class FineTunedRecommender(Recommender):
    """A trained :class:`Ranker` with a fixed item table; ``fit`` only remembers users' histories."""

    name = "finetuned"

    def __init__(self, model: Ranker, item_vectors: np.ndarray):
        self.model = model
        self.item_vectors = np.asarray(item_vectors, dtype=np.float32)

    def fit(self, data: FitData) -> "FineTunedRecommender":
        self._remember(data)
        self.sequences_ = data.sequences()
        return self

    def histories(self, users: np.ndarray) -> list[np.ndarray]:
        empty = np.zeros(0, dtype=np.int64)
        return [self.sequences_.get(int(u), empty) for u in users]

    def user_vectors(self, histories: list[np.ndarray]) -> np.ndarray:
        """User vectors from explicit histories (item index arrays, oldest first): (U, D)."""
        from engine.models.two_tower import pad_sequences

        self.model.eval()
        table = torch.from_numpy(self.item_vectors)
        with torch.no_grad():
            seqs, lengths = pad_sequences(histories, self.model.config.max_len, self.model.config.collapse_repeats)
            return self.model.user_vectors(torch.from_numpy(seqs), torch.from_numpy(lengths), table).numpy()

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
