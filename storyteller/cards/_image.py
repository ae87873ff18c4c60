"""Pillow helpers: turn another image format into PNG, draw a placeholder avatar.

Pillow is only used when pixels really are needed (a CHARX icon in JPEG/WebP written out as a
PNG card, or a card without any image). Its decompression-bomb check is made strict: the
image size is checked against :attr:`Limits.max_image_pixels` before any pixel is decoded.
"""

from __future__ import annotations

import hashlib
import io
import warnings

from PIL import Image, ImageDraw, UnidentifiedImageError

from storyteller.cards.limits import Limits
from storyteller.errors import FormatError, LimitExceededError

__all__ = ["placeholder_png", "to_png"]


def to_png(data: bytes, limits: Limits) -> bytes:
    """Re-encode an image as PNG, refusing decompression bombs.

    Raises:
        LimitExceededError: The image has more pixels than allowed.
        FormatError: Pillow cannot read the image.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
                if width * height > limits.max_image_pixels:
                    raise LimitExceededError(
                        f"the image is {width}x{height} pixels, more than the limit of"
                        f" {limits.max_image_pixels}; re-save it smaller"
                    )
                image.load()
                converted = image.convert("RGBA") if image.mode not in ("RGB", "RGBA") else image
                out = io.BytesIO()
                converted.save(out, format="PNG")
                return out.getvalue()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise LimitExceededError(f"the image is too large to decode safely ({exc})") from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise FormatError(f"the image cannot be read ({exc})") from exc


def placeholder_png(name: str, size: int = 256) -> bytes:
    """A simple avatar for a card without an image: a coloured disc on a dark square."""
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    colour = (64 + digest[0] % 160, 64 + digest[1] % 160, 64 + digest[2] % 160)
    image = Image.new("RGB", (size, size), (24, 26, 32))
    draw = ImageDraw.Draw(image)
    margin = size // 8
    draw.ellipse((margin, margin, size - margin, size - margin), fill=colour)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()
