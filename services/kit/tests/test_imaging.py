"""Decoding and limits with generated images of every accepted format and mode."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from services.kit.errors import ApiError
from services.kit.imaging import decode_image, to_rgb

LIMIT = 40_000_000


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def gradient(width: int = 64, height: int = 48) -> Image.Image:
    x = np.linspace(0, 255, width, dtype=np.uint8)
    y = np.linspace(0, 255, height, dtype=np.uint8)
    rgb = np.stack(
        np.broadcast_arrays(x[None, :], y[:, None], 128 * np.ones((1, 1), np.uint8)), axis=-1
    )
    return Image.fromarray(np.ascontiguousarray(rgb), "RGB")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "BMP", "WEBP", "GIF", "TIFF"])
def test_every_format_decodes_to_rgb_of_the_same_size(fmt):
    decoded = decode_image(encode(gradient(), fmt), LIMIT)
    assert decoded.mode == "RGB"
    assert decoded.size == (64, 48)


@pytest.mark.parametrize("mode", ["L", "LA", "P", "RGBA", "CMYK", "I", "F", "1"])
def test_every_mode_converts_to_rgb(mode):
    # (I;16 has its own test below: it needs values that use the 16-bit range.)
    source = (
        gradient().convert("L").convert(mode) if mode in {"I", "F"} else (gradient().convert(mode))
    )
    fmt = "TIFF" if mode in {"CMYK", "I", "F"} else "PNG"
    decoded = decode_image(encode(source, fmt), LIMIT)
    assert decoded.mode == "RGB"
    assert decoded.size == (64, 48)
    # The gradient survives the conversion: the image is not flat.
    assert np.asarray(decoded).std() > 10


def test_sixteen_bit_greyscale_keeps_its_range():
    values = np.linspace(0, 65535, 64 * 48).reshape(48, 64).astype(np.uint16)
    image = Image.fromarray(values)
    assert image.mode == "I;16"
    pixels = np.asarray(decode_image(encode(image, "PNG"), LIMIT))
    assert pixels.min() <= 1 and pixels.max() >= 254


def test_transparency_is_composited_on_white():
    transparent = Image.new("RGBA", (10, 10), (255, 0, 0, 0))
    assert to_rgb(transparent).getpixel((5, 5)) == (255, 255, 255)


def test_palette_transparency_is_composited_on_white():
    image = Image.new("P", (10, 10), 0)
    image.putpalette([0, 0, 0] * 256)
    decoded = decode_image(encode(image, "GIF", transparency=0), LIMIT)
    assert decoded.getpixel((5, 5)) == (255, 255, 255)


def test_animated_gif_gives_the_first_frame():
    frames = [Image.new("RGB", (20, 10), colour) for colour in ("red", "blue")]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    red, _green, blue = decode_image(data, LIMIT).getpixel((5, 5))
    assert red > 200 and blue < 50


def test_multipage_tiff_gives_the_first_page():
    pages = [Image.new("RGB", (20, 10), colour) for colour in ("green", "blue")]
    data = encode(pages[0], "TIFF", save_all=True, append_images=pages[1:])
    _red, green, blue = decode_image(data, LIMIT).getpixel((5, 5))
    assert green > 100 and blue < 50


@pytest.mark.parametrize(
    ("orientation", "expected_size"), [(1, (60, 40)), (3, (60, 40)), (6, (40, 60)), (8, (40, 60))]
)
def test_exif_orientation_is_applied(orientation, expected_size):
    image = Image.new("RGB", (60, 40), "black")
    image.paste((255, 0, 0), (0, 0, 10, 10))  # a red mark in the stored top-left corner
    exif = Image.Exif()
    exif[0x0112] = orientation
    decoded = decode_image(encode(image, "JPEG", exif=exif.tobytes(), quality=95), LIMIT)
    assert decoded.size == expected_size
    corners = {
        1: (2, 2),  # unchanged
        3: (57, 37),  # rotated 180 degrees: mark at bottom-right
        6: (37, 2),  # rotated 90 cw for display: mark at top-right
        8: (2, 57),  # rotated 90 ccw for display: mark at bottom-left
    }
    assert decoded.getpixel(corners[orientation])[0] > 200


def test_real_photo_with_exif_decodes(images_dir):
    for path in sorted(images_dir.glob("*.jpg")):
        decoded = decode_image(path.read_bytes(), LIMIT)
        assert decoded.mode == "RGB" and min(decoded.size) > 100


def expect_error(data: bytes, status: int, code: str, limit: int = LIMIT) -> ApiError:
    with pytest.raises(ApiError) as caught:
        decode_image(data, limit)
    assert (caught.value.status, caught.value.code) == (status, code)
    assert caught.value.message.endswith(".")
    return caught.value


def test_empty_upload_is_400():
    expect_error(b"", 400, "empty_image")


def test_text_file_is_400():
    expect_error(b"hello, this is not a picture\n" * 10, 400, "invalid_image")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_file_is_400(fmt):
    data = encode(gradient(256, 256), fmt)
    expect_error(data[: len(data) // 2], 400, "invalid_image")


def test_decompression_bomb_is_refused_before_decoding():
    # A 1-bit PNG of 30000 x 30000 pixels compresses to a few kB but would need 900 MB
    # decoded: the header alone must be enough to refuse it.
    bomb = encode(Image.new("1", (30000, 30000)), "PNG")
    assert len(bomb) < 200_000
    error = expect_error(bomb, 413, "image_too_large")
    assert "30000x30000" in error.message


def test_pixel_limit_is_configurable():
    expect_error(encode(gradient(100, 100), "PNG"), 413, "image_too_large", limit=9_999)
    assert decode_image(encode(gradient(100, 100), "PNG"), 10_000).size == (100, 100)


def test_formats_outside_the_list_are_415():
    expect_error(encode(gradient(), "ICO"), 415, "unsupported_image_format")


def _jpeg(width: int, height: int, orientation: int | None = None) -> bytes:
    import io

    from PIL import Image

    exif = Image.Exif()
    if orientation:
        exif[0x0112] = orientation
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (90, 140, 200)).save(
        buffer, "JPEG", quality=90, exif=exif.tobytes()
    )
    return buffer.getvalue()


def needs_256(width: int, height: int) -> tuple[int, int]:
    """A classifier's need: both sides at least 256 pixels."""
    return 256, 256


def test_draft_decoding_keeps_the_needed_side_and_reports_the_size_as_sent():
    from services.kit.imaging import decode_photo

    image, size = decode_photo(_jpeg(4032, 3024), 40_000_000, needs_256)
    assert size == (4032, 3024)
    assert min(image.size) >= 256 and image.size == (504, 378)  # 1/8 DCT scale
    full, _ = decode_photo(_jpeg(4032, 3024), 40_000_000)
    assert full.size == (4032, 3024)


def test_draft_decoding_of_a_sideways_phone_photo_is_upright():
    from services.kit.imaging import decode_photo

    image, size = decode_photo(_jpeg(4032, 3024, orientation=6), 40_000_000, needs_256)
    assert size == (3024, 4032)  # upright, as the services report it
    assert image.size == (378, 504)


def test_draft_decoding_leaves_other_formats_and_small_photos_whole():
    import io

    from PIL import Image

    from services.kit.imaging import decode_photo

    buffer = io.BytesIO()
    Image.new("RGB", (1200, 900)).save(buffer, "PNG")
    assert decode_photo(buffer.getvalue(), 40_000_000, needs_256)[0].size == (1200, 900)
    assert decode_photo(_jpeg(300, 260), 40_000_000, needs_256)[0].size == (300, 260)
    assert decode_photo(_jpeg(4032, 3024), 40_000_000, lambda w, h: None)[0].size == (4032, 3024)
