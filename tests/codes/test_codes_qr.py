"""QR images of codes survive the camera: rotated, scaled, re-compressed, then parsed."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from collections.abc import Callable

import pytest
from PIL import Image

from o2oloop.codes.codec import derive_batch_code, new_code, parse
from o2oloop.codes.qr import UnreadableImage, decode_image, qr_png, qr_svg

KEY = bytes(range(32))
Transform = Callable[[Image.Image], Image.Image]


def png_bytes(image: Image.Image, kind: str = "PNG", **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=kind, **options)
    return buffer.getvalue()


def rotate(degrees: float) -> Transform:
    return lambda im: im.rotate(
        degrees, expand=True, fillcolor=255, resample=Image.Resampling.BICUBIC
    )


def scale(factor: float) -> Transform:
    return lambda im: im.resize(
        (round(im.width * factor), round(im.height * factor)), Image.Resampling.LANCZOS
    )


@pytest.fixture(scope="module")
def payload() -> str:
    return new_code(KEY).payload


def test_png_decodes_to_the_payload_and_parses(payload: str) -> None:
    data = qr_png(payload)
    assert data.startswith(b"\x89PNG")
    assert decode_image(data) == [payload]
    assert parse(decode_image(data)[0], KEY).payload == payload


def test_batch_code_payload_round_trips() -> None:
    parsed = parse(derive_batch_code(KEY, 123, 456), KEY)
    (text,) = decode_image(qr_png(parsed.payload, scale=4))
    assert parse(text, KEY) == parsed


def test_svg_is_well_formed(payload: str) -> None:
    root = ET.fromstring(qr_svg(payload))
    assert root.tag.endswith("svg")
    assert int(root.get("width", "0")) > 0


@pytest.mark.parametrize(
    "transform",
    [rotate(90), rotate(17), rotate(180), rotate(-33), scale(0.5), scale(2), scale(0.6)],
    ids=["rot90", "rot17", "rot180", "rot-33", "half", "double", "0.6x"],
)
def test_transformed_image_still_decodes(payload: str, transform: Transform) -> None:
    image = Image.open(io.BytesIO(qr_png(payload))).convert("L")
    assert decode_image(png_bytes(transform(image))) == [payload]


def test_rotated_scaled_jpeg_still_decodes(payload: str) -> None:
    image = Image.open(io.BytesIO(qr_png(payload))).convert("RGB")
    image = scale(0.75)(image.rotate(17, expand=True, fillcolor=(255, 255, 255)))
    assert decode_image(png_bytes(image, "JPEG", quality=50)) == [payload]


def test_image_without_a_code_decodes_to_nothing() -> None:
    assert decode_image(png_bytes(Image.new("L", (200, 200), 255))) == []


def test_garbage_is_unreadable() -> None:
    with pytest.raises(UnreadableImage):
        decode_image(b"not an image at all")


def test_oversized_image_is_refused_before_decoding() -> None:
    huge = png_bytes(Image.new("1", (6000, 5000), 1))
    with pytest.raises(UnreadableImage):
        decode_image(huge)
