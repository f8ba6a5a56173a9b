"""Decode uploaded bytes into an upright RGB image, enforcing limits before full decode.

Pure with respect to the request: bytes in, ``PIL.Image`` (mode RGB) out, or an
:class:`ApiError` with a stable code. Nothing touches the disk.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from services.kit.errors import ApiError

# (stored width, height) -> the smallest picture a model needs from it, or None: full size.
DecodeSize = Callable[[int, int], tuple[int, int] | None]

# Formats a browser or camera produces; anything else Pillow can read is refused with 415.
SUPPORTED_FORMATS = {"JPEG", "PNG", "BMP", "WEBP", "GIF", "TIFF", "MPO"}
# Pillow format -> the MIME type a photo of that format is sent or shown as.
FORMAT_MIMETYPES = {
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",
    "PNG": "image/png",
    "BMP": "image/bmp",
    "WEBP": "image/webp",
    "GIF": "image/gif",
    "TIFF": "image/tiff",
}
# What a model that renders answers with (?render=1 or Accept: image/...).
PICTURE_TYPES = ("image/jpeg", "image/png")
SUPPORTED_CONTENT_TYPES = {
    "image/jpeg",
    "image/jpg",
    "image/pjpeg",
    "image/png",
    "image/bmp",
    "image/x-bmp",
    "image/x-ms-bmp",
    "image/webp",
    "image/gif",
    "image/tiff",
}

# We enforce our own pixel limit before decoding; Pillow's global guard would otherwise
# raise its own error type (or only warn) at a different threshold.
Image.MAX_IMAGE_PIXELS = None

_WHITE = (255, 255, 255)


def require_supported_format(image_format: str | None) -> None:
    """415 ``unsupported_image_format`` unless Pillow's format name is one we take."""
    if image_format not in SUPPORTED_FORMATS:
        raise ApiError(
            415,
            "unsupported_image_format",
            f"Image format {image_format} is not supported; "
            "send JPEG, PNG, BMP, WebP, GIF or TIFF.",
        )


def decode_image(data: bytes, max_pixels: int) -> Image.Image:
    """Decode ``data`` into an RGB image with EXIF orientation applied.

    Raises ApiError: 400 ``empty_image``/``invalid_image``, 413 ``image_too_large``
    (checked from the header, before pixels are decoded), 415 ``unsupported_image_format``.
    """
    return decode_photo(data, max_pixels)[0]


# EXIF orientations that turn the picture a quarter: the upright size swaps width and height.
_QUARTER_TURNS = {5, 6, 7, 8}
_ORIENTATION_TAG = 0x0112


def decode_photo(
    data: bytes, max_pixels: int, needed: DecodeSize | None = None
) -> tuple[Image.Image, tuple[int, int]]:
    """Like :func:`decode_image`, plus the photo's upright size as sent.

    ``needed(width, height)``: the smallest picture the model needs from a photo of that
    stored size; a JPEG is then decoded at the smallest DCT scale (1/2, 1/4, 1/8: Pillow's
    ``draft``) still holding it, a fraction of the work of a full decode of a phone photo,
    and the image is smaller than the size returned. Other formats are always decoded in full.
    """
    if not data:
        raise ApiError(400, "empty_image", "The uploaded image is empty.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise ApiError(400, "invalid_image", "The upload is not a readable image.") from None
    except Exception:
        raise ApiError(400, "invalid_image", "The upload is not a readable image.") from None
    require_supported_format(image.format)
    width, height = image.size
    if width * height > max_pixels:
        raise ApiError(
            413,
            "image_too_large",
            f"The image is {width}x{height} pixels; the limit is {max_pixels / 1e6:g} megapixels.",
        )
    try:
        image.seek(0)  # first frame of an animated GIF or a multi-page TIFF
        orientation = _orientation(image)
        upright = (height, width) if orientation in _QUARTER_TURNS else (width, height)
        wanted = needed(width, height) if needed and image.format in ("JPEG", "MPO") else None
        if wanted:
            image.draft("RGB", wanted)
        image.load()
        if orientation != 1:  # exif_transpose copies even an upright picture (0.26 ms)
            image = ImageOps.exif_transpose(image)
        return to_rgb(image), upright
    except ApiError:
        raise
    except Exception:
        # Truncated or corrupt data surfaces here, once the pixels are actually read.
        raise ApiError(400, "invalid_image", "The image data is truncated or corrupt.") from None


def _orientation(image: Image.Image) -> int:
    try:
        return int(image.getexif().get(_ORIENTATION_TAG, 1))
    except Exception:  # a malformed EXIF block: exif_transpose leaves such an image as is
        return 1


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB; transparency is composited on white."""
    if image.mode == "RGB":
        return image
    if image.mode in {"I", "I;16", "I;16B", "I;16L", "I;16N", "F"}:
        return _high_depth_to_rgb(image)
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in {"RGBA", "LA", "PA", "RGBa", "La"}:
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, _WHITE)
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


def _high_depth_to_rgb(image: Image.Image) -> Image.Image:
    """Scale 16/32-bit greyscale to 8 bits by the value range its mode can hold."""
    values = np.asarray(image, dtype=np.float64)
    if image.mode == "F":
        low, high = float(np.nanmin(values)), float(np.nanmax(values))
    elif image.mode.startswith("I;16"):
        low, high = 0.0, 65535.0
    else:
        low, high = float(values.min()), float(values.max())
    scale = 255.0 / (high - low) if high > low else 0.0
    eight_bit = np.clip((values - low) * scale, 0, 255).astype(np.uint8)
    return Image.fromarray(eight_bit, mode="L").convert("RGB")
