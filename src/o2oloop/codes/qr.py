"""QR images for redemption codes, and reading them back from a photo or screenshot."""

from __future__ import annotations

import io

import segno
import zxingcpp
from PIL import Image, UnidentifiedImageError

# Quartile error correction: a code on a cracked phone screen or a creased print still scans.
ERROR_LEVEL = "q"
# Refuse images larger than this before decoding pixels (a decompression bomb is a few KB).
MAX_PIXELS = 25_000_000


class UnreadableImage(ValueError):
    """The uploaded bytes are not an image we are willing to decode."""


def _symbol(payload: str) -> segno.QRCode:
    # No boosting: the same payload always gives the same symbol, which keeps images cacheable.
    return segno.make_qr(payload, error=ERROR_LEVEL, boost_error=False)


def qr_png(payload: str, scale: int = 8, border: int = 4) -> bytes:
    """A black-on-white PNG; ``scale`` pixels per module, ``border`` modules of quiet zone."""
    buffer = io.BytesIO()
    _symbol(payload).save(buffer, kind="png", scale=scale, border=border)
    return buffer.getvalue()


def qr_svg(payload: str, scale: int = 8, border: int = 4) -> bytes:
    """An SVG that stays sharp at any size, for printed campaign material."""
    buffer = io.BytesIO()
    _symbol(payload).save(buffer, kind="svg", scale=scale, border=border, xmldecl=False)
    return buffer.getvalue()


def decode_image(data: bytes) -> list[str]:
    """The texts of every QR symbol found in an image (PNG, JPEG, ...); empty if there is none."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.width * image.height > MAX_PIXELS:
                raise UnreadableImage("image too large")
            image.load()
            grey = image.convert("L")
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise UnreadableImage("not a readable image") from exc
    found = zxingcpp.read_barcodes(grey, formats=zxingcpp.BarcodeFormat.QRCode)
    return [barcode.text for barcode in found]
