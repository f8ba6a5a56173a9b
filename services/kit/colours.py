"""One colour per class, the same in the rendered JPEG (detector) and on the demo page (web).

Golden-angle hue steps spread neighbouring class ids far apart on the colour wheel, and the
colour depends on nothing but the id, so a class looks the same in every photo and in both
places. With 80 classes some hues must lie close together, so odd and even ids also differ
in lightness. ``services/web/static/app.js`` (``classColour``) computes the same CSS colour
for results it draws in the browser; services/web/tests/test_boxes.py keeps them in step.
"""

from __future__ import annotations

import colorsys

GOLDEN_ANGLE_DEG = 137.508
SATURATION_PERCENT = 80


def class_hsl(class_id: int) -> tuple[float, int, int]:
    """(hue in degrees, saturation %, lightness %) of a class id."""
    lightness = 44 if class_id % 2 else 32
    return round((class_id * GOLDEN_ANGLE_DEG) % 360, 1), SATURATION_PERCENT, lightness


def class_colour_css(class_id: int) -> str:
    hue, saturation, lightness = class_hsl(class_id)
    return f"hsl({hue:.1f} {saturation}% {lightness}%)"


def class_colour_rgb(class_id: int) -> tuple[int, int, int]:
    """The same colour as :func:`class_colour_css`, as 8-bit RGB (for Pillow)."""
    hue, saturation, lightness = class_hsl(class_id)
    red, green, blue = colorsys.hls_to_rgb(hue / 360, lightness / 100, saturation / 100)
    return round(red * 255), round(green * 255), round(blue * 255)
