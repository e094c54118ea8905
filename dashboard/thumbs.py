"""Product pictures as small data: URIs for the cards (no file path or outside URL reaches the page)."""

from __future__ import annotations

import io
from pathlib import Path

from dashboard.cards import image_data_uri

MAX_SIDE = 320  # pixels: a card shows pictures at most 164 x 180 CSS pixels (x2 for sharp screens)
PASS_THROUGH_BYTES = 48_000  # small PNG/JPEG/WEBP files go to the page as they are
_MIME = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "GIF": "image/gif"}


def encode_thumbnail(path: Path | None) -> str | None:
    """A picture file as a data: URI, shrunk when large; None when missing or not a readable picture.

    Args:
        path: an image file already resolved inside the data directory (``Dataset.image_path``).

    Returns:
        ``data:image/...;base64,...`` or None (the card then shows its placeholder).
    """
    if path is None:
        return None
    from PIL import Image, UnidentifiedImageError

    try:
        raw = Path(path).read_bytes()
        with Image.open(io.BytesIO(raw)) as probe:
            fmt = probe.format
            probe.verify()  # catches truncated and corrupted files
        if fmt in _MIME and len(raw) <= PASS_THROUGH_BYTES:
            return image_data_uri(raw, _MIME[fmt])
        with Image.open(io.BytesIO(raw)) as image:
            image.thumbnail((MAX_SIDE, MAX_SIDE))
            if image.mode not in ("RGB", "L"):
                background = Image.new("RGB", image.size, (255, 255, 255))
                rgba = image.convert("RGBA")
                background.paste(rgba, mask=rgba.getchannel("A"))
                image = background
            buffer = io.BytesIO()
            image.save(buffer, format="JPEG", quality=82, optimize=True)
        return image_data_uri(buffer.getvalue(), "image/jpeg")
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError):
        return None
