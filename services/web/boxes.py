"""Box overlay geometry for drawing detections over a photo, as a pure function.

The overlay is an SVG whose ``viewBox`` is the original image's pixel grid, laid over the
displayed ``<img>``: boxes stay in the detector's coordinates and the browser scales them
to whatever size the photo is shown at. ``static/app.js`` (``overlayBoxes``) computes the
same geometry for results it gets from the API; keep the two in step.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from services.kit.colours import class_colour_css


def label_font_size(image_width: float, image_height: float) -> float:
    """Label height in image pixels: about 1/28 of the long side, so labels look alike
    on screen whatever the photo's resolution."""
    return round(max(10.0, max(image_width, image_height) / 28), 1)


@dataclass(frozen=True)
class OverlayBox:
    """One box and its caption, in image pixels (origin top-left, y down)."""

    x: float
    y: float
    width: float
    height: float
    colour: str
    caption: str
    caption_x: float
    caption_y: float  # top of the caption's background
    caption_width: float
    caption_height: float
    font_size: float


def caption_of(detection: dict) -> str:
    return f"{detection['label']} {detection['confidence'] * 100:.0f}%"


def overlay_boxes(
    detections: Iterable[dict], image_width: float, image_height: float
) -> list[OverlayBox]:
    """Detections as the API returns them (``box`` = x1, y1, x2, y2 in pixels of the
    original image) -> boxes clipped to the image, each with a caption that sits above the
    box, or inside its top edge when there is no room above."""
    font_size = label_font_size(image_width, image_height)
    caption_height = round(font_size * 1.3, 1)
    boxes = []
    for detection in detections:
        box = detection["box"]
        x1 = min(max(box["x1"], 0.0), image_width)
        y1 = min(max(box["y1"], 0.0), image_height)
        x2 = min(max(box["x2"], x1), image_width)
        y2 = min(max(box["y2"], y1), image_height)
        caption = caption_of(detection)
        # Width estimated from the character count: the server cannot measure text, and
        # the same estimate in JS keeps both renderings identical.
        caption_width = round(min(len(caption) * font_size * 0.6 + font_size * 0.6, image_width), 1)
        caption_x = min(x1, image_width - caption_width)
        caption_y = y1 - caption_height if y1 >= caption_height else y1
        boxes.append(
            OverlayBox(
                x=round(x1, 1),
                y=round(y1, 1),
                width=round(x2 - x1, 1),
                height=round(y2 - y1, 1),
                colour=class_colour_css(int(detection["class_id"])),
                caption=caption,
                caption_x=round(caption_x, 1),
                caption_y=round(caption_y, 1),
                caption_width=caption_width,
                caption_height=caption_height,
                font_size=font_size,
            )
        )
    return boxes
