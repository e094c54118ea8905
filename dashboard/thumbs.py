"""Product pictures for the cards, shrunk: as files the server hands out (``/app/static/thumbs/``,
cached by the browser across redraws) or, where static serving is off, as data: URIs. Neither
shows a file path of the server or reaches an outside URL."""

from __future__ import annotations

import hashlib
import io
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from pathlib import Path

from dashboard.cards import image_data_uri
from engine.core.files import atomic_write_bytes

MAX_SIDE = 320  # pixels: a card shows pictures at most 164 x 180 CSS pixels (x2 for sharp screens)
PASS_THROUGH_BYTES = 48_000  # small PNG/JPEG/WEBP files go to the page as they are
_MIME = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "GIF": "image/gif"}
STATIC_DIR = Path(__file__).resolve().parent / "static" / "thumbs"  # served at /app/static/thumbs/
STATIC_URL = "/app/static/thumbs/"
STATIC_FORMATS = {"JPEG": ".jpg", "PNG": ".png"}  # passed through as they are; small drawings stay PNG


def thumbnail_bytes(path: Path | None, static: bool = False) -> tuple[bytes, str] | None:
    """A picture file shrunk for a card: (bytes, MIME type); None when missing or unreadable.

    Args:
        path: an image file already resolved inside the data directory (``Dataset.image_path``).
        static: for static serving: only JPEG and PNG pass through as they are (the types it hands
            out by extension); others become JPEG.
    """
    if path is None:
        return None
    from PIL import Image, UnidentifiedImageError

    try:
        raw = Path(path).read_bytes()
        with Image.open(io.BytesIO(raw)) as probe:
            fmt = probe.format
            probe.verify()  # catches truncated and corrupted files
        if fmt in _MIME and len(raw) <= PASS_THROUGH_BYTES and (fmt in STATIC_FORMATS or not static):
            return raw, _MIME[fmt]
        with Image.open(io.BytesIO(raw)) as image:
            image.thumbnail((MAX_SIDE, MAX_SIDE))
            if image.mode not in ("RGB", "L"):
                background = Image.new("RGB", image.size, (255, 255, 255))
                rgba = image.convert("RGBA")
                background.paste(rgba, mask=rgba.getchannel("A"))
                image = background
            buffer = io.BytesIO()
            image.save(buffer, format="JPEG", quality=82, optimize=True)
        return buffer.getvalue(), "image/jpeg"
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError):
        return None


def encode_thumbnail(path: Path | None) -> str | None:
    """A picture file as a data: URI, shrunk when large; None when missing or not a readable picture."""
    found = thumbnail_bytes(path)
    return image_data_uri(*found) if found else None


def static_thumbnail(path: Path | None, static_dir: Path = STATIC_DIR) -> str | None:
    """A picture file as a JPEG or PNG under the static folder, named by a hash of the file's path,
    size and time (so an edited picture gets a new name); returns its URL, or None when unreadable."""
    if path is None:
        return None
    try:
        stat = Path(path).stat()
    except OSError:
        return None
    stem = hashlib.sha256(f"{Path(path).resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}".encode()).hexdigest()[:32]
    for suffix in STATIC_FORMATS.values():
        if (static_dir / f"{stem}{suffix}").exists():
            return f"{STATIC_URL}{stem}{suffix}"
    found = thumbnail_bytes(path, static=True)
    if found is None:
        return None
    name = stem + (".png" if found[1] == "image/png" else ".jpg")
    atomic_write_bytes(static_dir / name, found[0])
    return STATIC_URL + name


_MISSING = object()


class Pictures:
    """The card pictures of one data set by item index, each made once and the newest ``size`` kept.

    One dictionary look-up per card: a redraw of 40 cards through a Streamlit cache call per picture
    cost about 30 ms of a slider move. Shared by every session (a lock guards the order).
    """

    def __init__(self, make: Callable[[int], str | None], size: int = 6000):
        self._make, self._size = make, size
        self._kept: OrderedDict[int, str | None] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, items: Iterable[int]) -> list[str | None]:
        """The pictures of the items, in order (None where an item has none)."""
        out = []
        for item in items:
            with self._lock:
                found = self._kept.get(item, _MISSING)
                if found is not _MISSING:
                    self._kept.move_to_end(item)
            if found is _MISSING:
                found = self._make(item)
                with self._lock:
                    self._kept[item] = found
                    while len(self._kept) > self._size:
                        self._kept.popitem(last=False)
            out.append(found)
        return out
