from __future__ import annotations

import pytest
from PIL import Image

from services.detector.render import (
    BANNER_FILL,
    contrasting_text_colour,
    render_detections,
)
from services.kit.colours import class_colour_rgb as class_colour


def detection(class_id: int, x1: float, y1: float, x2: float, y2: float, confidence=0.9):
    return {
        "class_id": class_id,
        "label": f"class{class_id}",
        "confidence": confidence,
        "box": {"x1": x1, "y1": y1, "x2": x2, "y2": y2},
    }


@pytest.fixture
def grey_image() -> Image.Image:
    return Image.new("RGB", (640, 480), (128, 128, 128))


def test_output_is_an_rgb_copy_of_the_same_size(grey_image):
    rgba = grey_image.convert("RGBA")
    out = render_detections(rgba, [detection(3, 100, 100, 300, 200)])
    assert out.size == (640, 480) and out.mode == "RGB"
    assert rgba.getpixel((100, 150)) == (128, 128, 128, 255)  # input untouched


def test_box_and_label_are_drawn_in_the_class_colour(grey_image):
    out = render_detections(grey_image, [detection(3, 100, 100, 300, 200)])
    colour = class_colour(3)
    assert out.getpixel((100, 150)) == colour  # left edge
    assert out.getpixel((200, 200)) == colour  # bottom edge
    assert out.getpixel((200, 150)) == (128, 128, 128)  # inside untouched
    label = out.crop((100, 70, 180, 100))  # the label sits above the box
    colours = {c for _, c in label.getcolors(maxcolors=10_000)}
    assert colour in colours and contrasting_text_colour(colour) in colours


def test_label_stays_inside_the_image(grey_image):
    out = render_detections(grey_image, [detection(5, 600, 0, 640, 40)])
    colour = class_colour(5)
    # No room above: the label goes inside the box's top edge, shifted left to fit.
    assert out.getpixel((636, 2)) == colour
    assert sum(1 for x in range(500, 640) if out.getpixel((x, 1)) == colour) > 60


def test_banner_strip_across_the_top(grey_image):
    plain = render_detections(grey_image, [])
    assert plain.tobytes() == grey_image.tobytes()
    out = render_detections(grey_image, [], banner="UNTRAINED STAND-IN WEIGHTS")
    assert out.getpixel((2, 2)) == BANNER_FILL and out.getpixel((637, 2)) == BANNER_FILL
    strip = out.crop((0, 0, 640, 20))
    assert (255, 255, 255) in {c for _, c in strip.getcolors(maxcolors=10_000)}  # text
    assert out.getpixel((320, 300)) == (128, 128, 128)  # only a strip


def test_small_image_and_long_banner():
    image = Image.new("RGB", (40, 30), (0, 0, 0))
    out = render_detections(image, [detection(0, 5, 5, 35, 25)], banner="A VERY LONG BANNER")
    assert out.size == (40, 30)


def test_colours_are_stable_distinct_and_readable():
    colours = [class_colour(i) for i in range(80)]
    assert colours == [class_colour(i) for i in range(80)]
    assert len(set(colours)) == 80
    assert contrasting_text_colour((0, 0, 128)) == (255, 255, 255)
    assert contrasting_text_colour((255, 230, 0)) == (0, 0, 0)
