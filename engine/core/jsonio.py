"""Strict JSON for reports and manifests: NaN and infinities become null, numpy values plain numbers."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from engine.core.files import atomic_write_text


def write_json(obj: dict, path: str | Path) -> None:
    """Write ``obj`` as strict JSON to ``path``, atomically."""
    atomic_write_text(path, json_text(obj))


def json_text(obj, fallback: Callable | None = None) -> str:
    """Strict JSON (indented): a NaN or infinite number, such as the loss of the untrained epoch 0
    or the validation NDCG of a refit epoch, is written as null, which every JSON reader accepts.
    numpy values become plain numbers; any other value goes through ``fallback`` (None: TypeError)."""

    def default(value):
        if isinstance(value, (np.generic, np.ndarray)):
            return _finite(value.tolist())
        if fallback is not None:
            return fallback(value)
        raise TypeError(f"not JSON serialisable: {type(value)}")

    return json.dumps(_finite(obj), indent=2, default=default, allow_nan=False)


def _finite(value):
    """``value`` with every NaN or infinite float (in dicts and lists too) replaced by None."""
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
