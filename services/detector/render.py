"""Drawing detections on images with Pillow (the core encodes the picture).

Detections are the dicts from :func:`services.detector.yolo.postprocess` with a ``"label"`` key
added by the caller; boxes are in the image's own pixels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from services.kit.colours import class_colour_rgb

BANNER_FILL = (200, 0, 0)
BANNER_TEXT = (255, 255, 255)


def contrasting_text_colour(background: tuple[int, int, int]) -> tuple[int, int, int]:
    """Black or white, whichever contrasts more with ``background`` (WCAG relative luminance)."""

    def linear(channel: int) -> float:
        c = channel / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    red, green, blue = (linear(c) for c in background)
    luminance = 0.2126 * red + 0.7152 * green + 0.0722 * blue
    return (0, 0, 0) if luminance > 0.179 else (255, 255, 255)


def _line_width(image_size: tuple[int, int]) -> int:
    return max(2, round(sum(image_size) / 2 * 0.004))


def _font_size(image_size: tuple[int, int]) -> int:
    return max(12, round(sum(image_size) / 2 * 0.025))


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def render_detections(
    image: Image.Image,
    detections: Sequence[Mapping[str, Any]],
    banner: str | None = None,
) -> Image.Image:
    """Return an RGB copy of ``image`` with labelled boxes and an optional top banner.

    Args:
        image: the original image (not modified).
        detections: dicts with ``class_id``, ``confidence``, ``label`` and ``box`` (``x1``,
            ``y1``, ``x2``, ``y2`` in ``image`` pixels).
        banner: text for a strip across the top, e.g. ``"UNTRAINED STAND-IN WEIGHTS"``.

    Returns:
        A new RGB image of the same size.
    """
    canvas = image.convert("RGB")  # always a copy
    draw = ImageDraw.Draw(canvas)
    line_width = _line_width(canvas.size)
    font = _font(_font_size(canvas.size))
    # Lowest confidence first so the most confident boxes end up on top.
    for detection in sorted(detections, key=lambda d: d["confidence"]):
        _draw_detection(draw, detection, canvas.size, line_width, font)
    if banner:
        _draw_banner(draw, banner, canvas.size)
    return canvas


def _draw_detection(
    draw: ImageDraw.ImageDraw,
    detection: Mapping[str, Any],
    image_size: tuple[int, int],
    line_width: int,
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
) -> None:
    box = detection["box"]
    x1, y1, x2, y2 = box["x1"], box["y1"], box["x2"], box["y2"]
    colour = class_colour_rgb(int(detection["class_id"]))
    draw.rectangle((x1, y1, x2, y2), outline=colour, width=line_width)

    text = f"{detection.get('label', detection['class_id'])} {detection['confidence']:.2f}"
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    margin = max(2, line_width)
    label_w, label_h = right - left + 2 * margin, bottom - top + 2 * margin
    # Above the box when there is room, else just inside its top edge; never off the image.
    label_x = min(max(0, x1), max(0, image_size[0] - label_w))
    label_y = y1 - label_h if y1 - label_h >= 0 else max(0, y1)
    label_y = min(label_y, max(0, image_size[1] - label_h))
    draw.rectangle((label_x, label_y, label_x + label_w, label_y + label_h), fill=colour)
    draw.text(
        (label_x + margin - left, label_y + margin - top),
        text,
        fill=contrasting_text_colour(colour),
        font=font,
    )


def _draw_banner(draw: ImageDraw.ImageDraw, text: str, image_size: tuple[int, int]) -> None:
    width, height = image_size
    font = _font(max(12, round(_font_size(image_size) * 1.4)))
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    # Shrink the text until it fits the width (long banners on narrow images).
    while right - left > width * 0.95 and getattr(font, "size", 12) > 8:
        font = _font(int(font.size * 0.85))
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    strip_h = min(height, round((bottom - top) * 1.8))
    draw.rectangle((0, 0, width, strip_h), fill=BANNER_FILL)
    text_x = (width - (right - left)) / 2 - left
    text_y = (strip_h - (bottom - top)) / 2 - top
    draw.text((text_x, text_y), text, fill=BANNER_TEXT, font=font)
