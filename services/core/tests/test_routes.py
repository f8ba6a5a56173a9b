"""The core's picture encoding (moved here from the detector with encode_picture)."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from services.core.routes import encode_picture


@pytest.fixture
def grey_image() -> Image.Image:
    return Image.new("RGB", (640, 480), (128, 128, 128))


@pytest.mark.parametrize(
    ("mime_type", "magic"), [("image/jpeg", b"\xff\xd8"), ("image/png", b"\x89PNG")]
)
def test_encode_picture(grey_image, mime_type, magic):
    data = encode_picture(grey_image.convert("RGBA"), mime_type)
    assert data.startswith(magic)
    with Image.open(io.BytesIO(data)) as decoded:
        assert decoded.size == (640, 480)


def test_encode_picture_rejects_unknown_types(grey_image):
    with pytest.raises(ValueError, match="unsupported picture type 'image/gif'"):
        encode_picture(grey_image, "image/gif")
