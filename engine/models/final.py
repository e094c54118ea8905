"""The model a page, ``homepage recommend`` and ``homepage evaluate`` use: a model directory's two
stages when its second stage was kept at training time, else the fine-tuned model alone."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.data.tables import Dataset
from engine.models.baselines import Recommender
from engine.models.finetuned import FineTunedRecommender
from engine.models.two_stage import has_two_stage, load_two_stage


def uses_two_stage(manifest: dict) -> bool:
    return manifest.get("final_model") == "two_stage"


def load_final(model_dir: str | Path, data: Dataset, text_vectors: np.ndarray | None = None
               ) -> tuple[Recommender, FineTunedRecommender, dict]:
    """(the final recommender, the fine-tuned model inside it, the manifest); fit before scoring.

    Args:
        model_dir: the model directory.
        data: the data set it was trained on (checked by fingerprint).
        text_vectors: the pretrained item text vectors when already loaded; read from the cache
            when stage 2 needs them and none are given.

    Raises:
        ModelError: a damaged or foreign model directory, naming the file.
    """
    finetuned, manifest = FineTunedRecommender.from_pretrained(model_dir, data)
    if not uses_two_stage(manifest):
        return finetuned, finetuned, manifest
    from engine.core.errors import ModelError

    if not has_two_stage(model_dir):
        raise ModelError(f"{model_dir}: the manifest names a second stage but stage2.json is missing; train a new model with `homepage train DIR`")
    if text_vectors is None and manifest.get("text"):  # stage 2 was trained with text features
        from engine.models.text_encoder import cached_item_vectors

        text_vectors = cached_item_vectors(data.root, data.items, finetuned.model.config.encoder_path)
    final = load_two_stage(model_dir, {"finetuned": finetuned}, data.items, text_vectors).use_cache(data.root / ".cache")
    return final, finetuned, manifest
