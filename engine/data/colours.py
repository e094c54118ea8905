"""Colour features of product pictures (pillow + numpy): a coarse hue/grey histogram per item, cached."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.core.files import atomic_save_npz, read_cache
from engine.data.tables import Dataset

HUE_BINS = 12  # 30-degree hue sectors for coloured pixels
GREY_BINS = 3  # dark / mid / light for pixels with little saturation
N_BINS = HUE_BINS + GREY_BINS
THUMB = 48  # pictures are shrunk to at most THUMB x THUMB pixels before counting
GREY_SAT = 0.18  # HSV saturation below which a pixel counts as grey
BACKGROUND_DIST = 18.0  # RGB distance to the border colour under which a pixel is background
_VERSION = "1"  # bump when the feature definition changes (invalidates the cache)


@dataclass
class ColourFeatures:
    """Per-item colour histograms.

    Attributes:
        hist: (I, N_BINS) float32; each row sums to 1 for items with a readable picture, else all 0.
            Bins 0..11 are hue sectors of coloured pixels (red at 0), 12..14 grey pixels (dark, mid,
            light). Background pixels (close to the picture's border colour) are not counted.
        mean_rgb: (I, 3) uint8 mean colour of the counted pixels (a swatch for the page).
        available: (I,) bool, True where a local picture was read.
    """

    hist: np.ndarray
    mean_rgb: np.ndarray
    available: np.ndarray

    def similarity(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Bhattacharyya coefficient between items: BC(p, q) = sum_b sqrt(p_b q_b).

        Range [0, 1]: 1 for identical colour distributions, 0 for disjoint ones or a missing picture.

        Args:
            a: (n,) item indices.
            b: (m,) item indices.

        Returns:
            (n, m) float32 similarities.
        """
        root = np.sqrt(self.hist)
        return root[np.asarray(a)] @ root[np.asarray(b)].T


def _rgb_to_hsv(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hue in [0, 1), saturation and value in [0, 1] for (N, 3) floats in [0, 1]."""
    mx = rgb.max(axis=1)
    mn = rgb.min(axis=1)
    delta = mx - mn
    sat = np.where(mx > 0, delta / np.maximum(mx, 1e-9), 0.0)
    r, g, b = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    safe = np.maximum(delta, 1e-9)
    hue = np.where(mx == r, ((g - b) / safe) % 6.0, np.where(mx == g, (b - r) / safe + 2.0, (r - g) / safe + 4.0))
    hue = np.where(delta > 0, hue / 6.0, 0.0)
    return hue % 1.0, sat, mx


def picture_histogram(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Colour histogram and mean colour of one picture.

    The background is the median colour of the border pixels; pixels within ``BACKGROUND_DIST``
    (Euclidean RGB distance) of it are not counted, so product shots on white count the product.
    A coloured pixel (saturation >= ``GREY_SAT``) goes to its 30-degree hue sector, a grey one to
    dark (value < 1/3), mid or light.

    Args:
        pixels: (H, W, 3) uint8 RGB.

    Returns:
        (N_BINS,) float32 histogram summing to 1, and the (3,) uint8 mean colour of counted pixels.
    """
    img = pixels.astype(np.float32)
    border = np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]])
    background = np.median(border, axis=0)
    flat = img.reshape(-1, 3)
    keep = np.linalg.norm(flat - background, axis=1) > BACKGROUND_DIST
    if keep.sum() < 0.01 * len(flat):  # nothing stands out: the whole picture is the product
        keep[:] = True
    fg = flat[keep] / 255.0
    hue, sat, val = _rgb_to_hsv(fg)
    grey = sat < GREY_SAT
    bins = np.where(grey, HUE_BINS + np.minimum((val * GREY_BINS).astype(np.int64), GREY_BINS - 1),
                    np.minimum(((hue + 0.5 / HUE_BINS) % 1.0 * HUE_BINS).astype(np.int64), HUE_BINS - 1))
    hist = np.bincount(bins, minlength=N_BINS).astype(np.float32)
    hist /= hist.sum()
    return hist, np.round(fg.mean(axis=0) * 255).astype(np.uint8)


def _read_picture(path: Path) -> np.ndarray | None:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.draft("RGB", (THUMB * 2, THUMB * 2))  # JPEG: decode at reduced size, much faster
            im = im.convert("RGB")
            im.thumbnail((THUMB, THUMB))
            return np.asarray(im)
    except (OSError, UnidentifiedImageError, ValueError):
        return None


def _cache_key(data: Dataset) -> str:
    h = hashlib.sha256(_VERSION.encode())
    if "image" in data.items.columns:
        h.update("\x1f".join(data.items["item_id"].astype(str)).encode())
        h.update("\x1f".join(data.items["image"].fillna("").astype(str)).encode())
    return h.hexdigest()[:16]


def _load_features(path: Path) -> ColourFeatures:
    with np.load(path, allow_pickle=False) as z:
        return ColourFeatures(z["hist"], z["mean_rgb"], z["available"])


def colour_features(data: Dataset, use_cache: bool = True) -> ColourFeatures | None:
    """Colour histograms of every item's local picture, cached under ``DIR/.cache``.

    Only pictures inside the data directory are read (through :meth:`Dataset.image_path`); remote
    URLs and missing files leave the item without features.

    Args:
        data: the loaded data directory.
        use_cache: read and write ``DIR/.cache/colours-<key>.npz``.

    Returns:
        The features, or None when no item has a readable local picture.
    """
    if "image" not in data.items.columns:
        return None
    cache = Path(data.root) / ".cache" / f"colours-{_cache_key(data)}.npz"
    feats = read_cache(cache, _load_features, lambda f: len(f.hist) == data.n_items) if use_cache else None
    if feats is not None:
        return feats if feats.available.any() else None
    n = data.n_items
    hist = np.zeros((n, N_BINS), dtype=np.float32)
    mean_rgb = np.zeros((n, 3), dtype=np.uint8)
    available = np.zeros(n, dtype=bool)
    read: dict[Path, tuple[np.ndarray, np.ndarray] | None] = {}  # a picture shared by items is read once
    for i in range(n):
        path = data.image_path(i)
        if path is None:
            continue
        if path not in read:
            pixels = _read_picture(path)
            read[path] = None if pixels is None or pixels.size == 0 else picture_histogram(pixels)
        if read[path] is None:
            continue
        hist[i], mean_rgb[i] = read[path]
        available[i] = True
    if use_cache:
        try:
            atomic_save_npz(cache, hist=hist, mean_rgb=mean_rgb, available=available)
        except OSError:
            pass  # a read-only data directory just means no cache
    return ColourFeatures(hist, mean_rgb, available) if available.any() else None
