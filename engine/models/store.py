"""A trained model as a directory (config, safetensors weights, item index and vectors, manifest):
``save_pretrained`` writes it whole, ``from_pretrained`` reads back everything it wrote."""

from __future__ import annotations

import json
import platform
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from engine.core.constants import ITEM_COL
from engine.core.errors import ModelError
from engine.core.files import staged_directory
from engine.core.jsonio import json_text
from engine.data.tables import Dataset

FILES = ("config.json", "model.safetensors", "item_index.parquet", "item_vectors.npy", "manifest.json")
FORMAT = 2  # 1: also held the fine-tuned encoder layers (never read back; ignored when loading)
LEGACY_PREFIX = "encoder."  # format 1's encoder tensors
RETRAIN = "train a new model with `homepage train DIR`"


def models_root(data_dir: str | Path) -> Path:
    return Path(data_dir) / "models"


def new_model_dir(data_dir: str | Path) -> Path:
    """``DIR/models/<UTC timestamp>/`` for a model trained without ``--out``."""
    return models_root(data_dir) / datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def newest_model(data_dir: str | Path) -> Path:
    """The most recent complete model under ``DIR/models``."""
    root = models_root(data_dir)
    found = sorted(p for p in root.glob("*") if p.is_dir() and not p.name.startswith(".") and (p / "manifest.json").exists()) if root.exists() else []
    if not found:
        raise ModelError(f"{root}: no trained model; run `homepage train {data_dir}` first or pass --model")
    return found[-1]


def _versions() -> dict:
    import transformers

    return {"torch": torch.__version__, "transformers": transformers.__version__, "numpy": np.__version__, "python": platform.python_version()}


def read_manifest(model_dir: str | Path) -> dict:
    path = Path(model_dir) / "manifest.json"
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ModelError(f"{model_dir}: not a model directory (no manifest.json)") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path}: corrupted manifest ({exc})") from exc
    if not isinstance(manifest, dict):
        raise ModelError(f"{path}: corrupted manifest (a JSON object expected, got {type(manifest).__name__})")
    return manifest


class Pretrained:
    """``save_pretrained`` / ``from_pretrained`` for a torch module whose ``config`` is a frozen
    dataclass (``config_class``) and that is built as ``cls(config, n_items, text_dim=...)``.

    The directory holds what inference needs and nothing else: the config, every parameter and
    buffer of the module (the text table holds the fine-tuned encoder's vectors of every item, so
    the encoder itself is not saved), the item index, the item vectors and a manifest.
    """

    config_class: type

    def save_pretrained(self, out_dir: str | Path, data: Dataset, manifest: dict | None = None,
                        extra: Callable[[Path], None] | None = None) -> Path:
        """Write the model directory whole (staged beside it, then renamed into place).

        Args:
            out_dir: the model directory (replaced whole if it exists).
            data: the data set trained on (item index and fingerprint).
            manifest: what else to record (protocol, metrics, training summary).
            extra: writes further files into the staged directory (the second stage's booster).

        Returns:
            ``out_dir``.
        """
        out_dir = Path(out_dir)
        with staged_directory(out_dir) as stage:
            save_file({k: v.detach().contiguous() for k, v in self.state_dict().items()}, str(stage / "model.safetensors"))
            (stage / "config.json").write_text(json_text(asdict(self.config)))
            pd.DataFrame({ITEM_COL: data.item_ids.astype(str)}).to_parquet(stage / "item_index.parquet", index=False)
            with torch.no_grad():
                np.save(stage / "item_vectors.npy", self.item_vectors().numpy().astype(np.float32))
            record = {
                **(manifest or {}),
                "data_fingerprint": data.fingerprint(),
                "dataset": data.name,
                "n_items": data.n_items,
                "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "versions": _versions(),
                "format": FORMAT,
            }
            if extra is not None:
                extra(stage)
            (stage / "manifest.json").write_text(json_text(record, fallback=str))
        return out_dir

    @classmethod
    def from_pretrained(cls, model_dir: str | Path, data: Dataset | None = None):
        """Load a model directory, checking it is whole and (when data is given) trained on that data.

        Returns:
            The model in eval mode, with ``manifest`` (dict) and ``saved_item_vectors`` ((I, D)
            array, as saved) attached.

        Raises:
            ModelError: a missing or damaged file, a directory of an unknown format, or a data
                fingerprint that does not match; the message names the file and how to retrain.
        """
        model_dir = Path(model_dir)
        if not model_dir.is_dir():
            raise ModelError(f"{model_dir}: no such model directory")
        missing = [f for f in FILES if not (model_dir / f).exists()]
        if missing:
            raise ModelError(f"{model_dir}: incomplete model directory, missing {', '.join(missing)}")
        manifest = read_manifest(model_dir)
        fmt = manifest.get("format", 1)
        if not isinstance(fmt, int) or isinstance(fmt, bool) or not 1 <= fmt <= FORMAT:
            raise ModelError(f"{model_dir / 'manifest.json'}: model format {fmt!r} is not one this version reads (1 to {FORMAT}); {RETRAIN}")
        if data is not None and manifest.get("data_fingerprint") != data.fingerprint():
            raise ModelError(
                f"{model_dir}: trained on data with fingerprint {manifest.get('data_fingerprint')} "
                f"({manifest.get('dataset')}), but {data.root} has fingerprint {data.fingerprint()}; "
                f"train a model on this data with `homepage train {data.root}`"
            )
        n_items = manifest.get("n_items")
        if not isinstance(n_items, int) or isinstance(n_items, bool) or n_items < 1:
            raise ModelError(f"{model_dir / 'manifest.json'}: corrupted manifest (n_items is {n_items!r}, not a positive integer)")
        try:
            values = json.loads((model_dir / "config.json").read_text())
            if not isinstance(values, dict):
                raise TypeError(f"a JSON object expected, got {type(values).__name__}")
            config = cls.config_class.from_dict(values)
        except (json.JSONDecodeError, OSError, TypeError, ValueError) as exc:
            raise ModelError(f"{model_dir / 'config.json'}: corrupted config ({exc}); {RETRAIN}") from exc
        try:
            tensors = load_file(str(model_dir / "model.safetensors"))
        except (SafetensorError, OSError, ValueError) as exc:
            raise ModelError(f"{model_dir / 'model.safetensors'}: corrupted weights ({exc})") from exc
        state = {k: v for k, v in tensors.items() if not k.startswith(LEGACY_PREFIX)}
        text_dim = state["text_table"].shape[1] if "text_table" in state else 1
        try:
            model = cls(config, n_items, text_dim=text_dim)
            model.load_state_dict(state)
        except (RuntimeError, ValueError) as exc:
            detail = " ".join(str(exc).split("\n")[:2]).strip()  # the first mismatches, not a page of them
            raise ModelError(f"{model_dir}: model.safetensors does not fit config.json ({detail}); {RETRAIN}") from exc
        try:
            vectors = np.load(model_dir / "item_vectors.npy", allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise ModelError(f"{model_dir / 'item_vectors.npy'}: corrupted item vectors ({exc})") from exc
        try:
            index = pd.read_parquet(model_dir / "item_index.parquet")[ITEM_COL].astype(str).to_numpy()
        except Exception as exc:  # pyarrow raises several types for broken files
            raise ModelError(f"{model_dir / 'item_index.parquet'}: corrupted item index ({exc})") from exc
        if len(index) != n_items or (data is not None and not np.array_equal(index, data.item_ids.astype(str))):
            raise ModelError(f"{model_dir / 'item_index.parquet'}: the item index does not match the manifest or the data's catalogue")
        if vectors.shape != (n_items, config.dim):
            raise ModelError(f"{model_dir}: item_vectors.npy has shape {vectors.shape}, expected ({n_items}, {config.dim})")
        if not np.isfinite(vectors).all():
            raise ModelError(f"{model_dir / 'item_vectors.npy'}: the item vectors hold NaN or infinite values; {RETRAIN}")
        model.eval()
        model.manifest, model.saved_item_vectors = manifest, vectors
        return model
