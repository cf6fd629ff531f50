"""Review photos: only real JPEG, PNG or WebP images of bounded size, re-encoded from their
pixels so no metadata (EXIF location, camera serials, ICC comments) survives."""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from o2oloop.errors import InvalidInput

MAX_PHOTOS = 4
MAX_BYTES = 5 * 1024 * 1024
MAX_PIXELS = 40_000_000
MAX_SIDE = 2048
ACCEPTED = {"JPEG", "PNG", "WEBP"}


@dataclass(frozen=True)
class CleanPhoto:
    media_type: str
    data: bytes
    width: int
    height: int

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def clean_photo(data: bytes, *, position: int = 0) -> CleanPhoto:
    """The photo re-encoded without metadata, at most MAX_SIDE pixels on its long side."""
    field = f"photos.{position}"
    if len(data) > MAX_BYTES:
        raise InvalidInput(f"a photo may be at most {MAX_BYTES // (1024 * 1024)} MB", field=field)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            if image.format not in ACCEPTED:
                raise InvalidInput("a photo must be a JPEG, PNG or WebP image", field=field)
            if image.width * image.height > MAX_PIXELS:
                raise InvalidInput("a photo has too many pixels", field=field)
            image = ImageOps.exif_transpose(image)
            image.load()
    except InvalidInput:
        raise
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as error:
        raise InvalidInput("a photo is not a readable image", field=field) from error
    except Image.DecompressionBombWarning as error:
        raise InvalidInput("a photo has too many pixels", field=field) from error
    alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    image = image.convert("RGBA" if alpha else "RGB")
    image.thumbnail((MAX_SIDE, MAX_SIDE))
    # A new image from the bare pixels: nothing of the original's info dict comes along.
    bare = Image.frombytes(image.mode, image.size, image.tobytes())
    out = io.BytesIO()
    if alpha:
        bare.save(out, format="PNG", optimize=True)
        media_type = "image/png"
    else:
        bare.save(out, format="JPEG", quality=85)
        media_type = "image/jpeg"
    return CleanPhoto(media_type, out.getvalue(), bare.width, bare.height)
