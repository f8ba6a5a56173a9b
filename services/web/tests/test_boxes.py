from services.kit.colours import class_colour_css as class_colour
from services.web.boxes import label_font_size, overlay_boxes


def detection(x1, y1, x2, y2, class_id=16, label="dog", confidence=0.9):
    box = {"x1": x1, "y1": y1, "x2": x2, "y2": y2}
    return {"label": label, "class_id": class_id, "confidence": confidence, "box": box}


def test_box_keeps_image_pixel_coordinates():
    [box] = overlay_boxes([detection(100, 200, 300, 500)], 768, 576)
    assert (box.x, box.y, box.width, box.height) == (100, 200, 200, 300)
    assert box.caption == "dog 90%"


def test_caption_sits_above_the_box_or_inside_it_at_the_top_edge():
    [above] = overlay_boxes([detection(100, 200, 300, 500)], 768, 576)
    assert above.caption_y == 200 - above.caption_height
    [inside] = overlay_boxes([detection(100, 2, 300, 500)], 768, 576)
    assert inside.caption_y == 2


def test_boxes_and_captions_are_clipped_to_the_image():
    [box] = overlay_boxes([detection(-20, -5, 900, 700)], 768, 576)
    assert (box.x, box.y, box.width, box.height) == (0, 0, 768, 576)
    [right_edge] = overlay_boxes([detection(760, 100, 768, 200, label="traffic light")], 768, 576)
    assert right_edge.caption_x + right_edge.caption_width <= 768


def test_labels_scale_with_the_image_so_they_look_alike_on_screen():
    assert label_font_size(5600, 3000) == 10 * label_font_size(560, 300) == 200
    assert label_font_size(100, 50) == 10  # never unreadably small


def test_each_class_has_one_stable_colour_distinct_from_its_neighbours():
    assert class_colour(16) == class_colour(16)
    assert len({class_colour(class_id) for class_id in range(80)}) == 80
    [first, second] = overlay_boxes(
        [detection(0, 0, 10, 10, class_id=3), detection(5, 5, 20, 20, class_id=3)], 100, 100
    )
    assert first.colour == second.colour == class_colour(3)


def test_the_page_and_the_rendered_jpeg_colour_a_class_alike():
    import colorsys
    import re

    from services.kit.colours import class_colour_rgb

    for class_id in (0, 1, 16, 79):
        hue, saturation, lightness = map(
            float, re.fullmatch(r"hsl\(([\d.]+) (\d+)% (\d+)%\)", class_colour(class_id)).groups()
        )
        rgb = colorsys.hls_to_rgb(hue / 360, lightness / 100, saturation / 100)
        assert class_colour_rgb(class_id) == tuple(round(c * 255) for c in rgb)


def test_app_js_uses_the_same_class_colour_formula():
    from scripts.launch import REPO_ROOT
    from services.kit.colours import GOLDEN_ANGLE_DEG, SATURATION_PERCENT

    script = (REPO_ROOT / "services/web/static/app.js").read_text()
    assert f"classId * {GOLDEN_ANGLE_DEG}" in script and f"{SATURATION_PERCENT}%" in script
