from __future__ import annotations

import io

import pytest
import torch
from PIL import Image

from services.detector.yolo import (
    LetterboxInfo,
    letterbox,
    letterbox_decode_size,
    postprocess,
    scale_boxes,
    xywh_to_xyxy,
)
from services.kit.imaging import decode_photo

# Thresholds these tests were written for (postprocess itself has no defaults: the
# service passes its configured ones).
LOOSE = {"conf_threshold": 0.25, "iou_threshold": 0.45, "max_detections": 100}

SIZES = [(640, 480), (480, 640), (500, 500), (1352, 900), (33, 417), (417, 33), (7, 5)]


def to_letterboxed(boxes: torch.Tensor, info: LetterboxInfo) -> torch.Tensor:
    """The forward mapping the letterbox applies: original -> letterboxed pixels."""
    offset = torch.tensor([info.pad_x, info.pad_y, info.pad_x, info.pad_y], dtype=torch.float32)
    return boxes * info.scale + offset


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_letterbox_places_image_centred_on_grey(width, height):
    image = Image.new("RGB", (width, height), (255, 0, 0))
    tensor, info = letterbox(image, 416)
    assert tensor.shape == (3, 416, 416) and tensor.dtype == torch.float32
    assert (info.orig_w, info.orig_h) == (width, height)
    assert info.scale == pytest.approx(min(416 / width, 416 / height))
    assert min(info.pad_x, info.pad_y) == 0  # touches two opposite sides
    red = (tensor[0] == 1) & (tensor[1] == 0)
    rows, cols = red.nonzero(as_tuple=True)
    assert (rows.min(), cols.min()) == (info.pad_y, info.pad_x)
    new_h, new_w = rows.max() + 1 - rows.min(), cols.max() + 1 - cols.min()
    assert red.sum() == new_h * new_w  # one solid rectangle
    assert abs(new_w - width * info.scale) <= 0.5 and abs(new_h - height * info.scale) <= 0.5
    assert abs((rows.max() + 1 + rows.min()) - 416) <= 1  # centred, within a pixel
    assert abs((cols.max() + 1 + cols.min()) - 416) <= 1
    grey = ~red
    assert torch.all(tensor[:, grey] == 0.5)


def test_letterbox_converts_mode_and_keeps_values():
    image = Image.new("L", (32, 32), 51)
    tensor, info = letterbox(image, 32)
    assert info == LetterboxInfo(1.0, 0, 0, 32, 32)
    assert torch.allclose(tensor, torch.full((3, 32, 32), 0.2))


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_scale_boxes_inverts_letterbox(width, height):
    _, info = letterbox(Image.new("RGB", (width, height)), 416)
    generator = torch.Generator().manual_seed(width * height)
    corners = torch.rand(50, 2, 2, generator=generator) * torch.tensor([width, height])
    boxes = torch.cat([corners.min(dim=1).values, corners.max(dim=1).values], dim=1)
    back = scale_boxes(to_letterboxed(boxes, info), info)
    assert torch.allclose(back, boxes, atol=1.0)


def test_scale_boxes_clips_to_the_image():
    info = LetterboxInfo(scale=0.5, pad_x=0, pad_y=52, orig_w=832, orig_h=624)
    boxes = torch.tensor([[-10.0, 0.0, 500.0, 400.0], [100.0, 60.0, 200.0, 160.0]])
    original = boxes.clone()
    expected = torch.tensor([[0.0, 0.0, 832.0, 624.0], [200.0, 16.0, 400.0, 216.0]])
    assert torch.equal(scale_boxes(boxes, info), expected)
    assert torch.equal(boxes, original)  # not modified in place


def test_xywh_to_xyxy():
    assert xywh_to_xyxy(torch.tensor([[10.0, 20.0, 4.0, 6.0]])).tolist() == [[8, 17, 12, 23]]


IDENTITY = LetterboxInfo(scale=1.0, pad_x=0, pad_y=0, orig_w=416, orig_h=416)


def rows(*specs: tuple[float, float, float, float, float, int, float], classes: int = 3):
    """Network rows from (cx, cy, w, h, objectness, class_id, class_prob)."""
    out = torch.zeros(len(specs), 5 + classes)
    for index, (cx, cy, w, h, objectness, class_id, prob) in enumerate(specs):
        out[index, :5] = torch.tensor([cx, cy, w, h, objectness])
        out[index, 5 + class_id] = prob
    return out


def test_postprocess_nms_is_per_class():
    pred = rows(
        (100, 100, 50, 50, 0.9, 0, 1.0),  # kept
        (102, 101, 50, 50, 0.8, 0, 1.0),  # same class, IoU ~0.9 with the first: suppressed
        (101, 100, 50, 50, 0.7, 1, 1.0),  # other class, same place: kept
        (300, 300, 40, 40, 0.6, 0, 1.0),  # same class, far away: kept
    )
    detections = postprocess(pred, IDENTITY, **LOOSE)
    assert [(d["class_id"], d["confidence"]) for d in detections] == [
        (0, 0.9),
        (1, 0.7),
        (0, 0.6),
    ]
    assert detections[0]["box"] == {"x1": 75.0, "y1": 75.0, "x2": 125.0, "y2": 125.0}


def test_postprocess_score_is_objectness_times_class_probability():
    pred = rows((100, 100, 20, 20, 0.5, 2, 0.6), (200, 200, 20, 20, 0.9, 1, 0.2))
    detections = postprocess(pred, IDENTITY, **LOOSE)
    assert [(d["class_id"], d["confidence"]) for d in detections] == [(2, 0.3)]  # 0.18 dropped


def test_postprocess_respects_max_detections_and_sorts():
    pred = rows(*[(20 + 30 * i, 50, 20, 20, 0.3 + 0.05 * i, 0, 1.0) for i in range(10)])
    detections = postprocess(pred, IDENTITY, **{**LOOSE, "max_detections": 4})
    assert [d["confidence"] for d in detections] == [0.75, 0.7, 0.65, 0.6]


def test_postprocess_maps_to_original_pixels_and_rounds():
    info = LetterboxInfo(scale=0.5, pad_x=0, pad_y=52, orig_w=832, orig_h=624)
    pred = rows((100.123, 152.0, 40.0, 20.0, 0.987654, 1, 1.0))
    (detection,) = postprocess(pred, info, **LOOSE)
    assert detection == {
        "class_id": 1,
        "confidence": 0.9877,
        "box": {"x1": 160.25, "y1": 180.0, "x2": 240.25, "y2": 220.0},
    }
    assert isinstance(detection["class_id"], int) and isinstance(detection["confidence"], float)


def test_postprocess_drops_boxes_in_the_border_and_nan_rows():
    info = LetterboxInfo(scale=0.5, pad_x=0, pad_y=52, orig_w=832, orig_h=624)
    pred = rows((100, 20, 40, 20, 0.9, 0, 1.0), (100, 200, 40, 20, 0.9, 0, 1.0))
    pred = torch.cat([pred, torch.full((1, 8), float("nan"))])
    detections = postprocess(pred, info, **LOOSE)
    assert len(detections) == 1 and detections[0]["box"]["y1"] == 276.0


def test_postprocess_accepts_half_precision_and_empty_input():
    pred = rows((100, 100, 20, 20, 0.9, 0, 1.0)).half()
    assert len(postprocess(pred, IDENTITY, **LOOSE)) == 1
    assert postprocess(torch.zeros(0, 85), IDENTITY, **LOOSE) == []


@pytest.mark.parametrize(
    ("width", "height", "needed"),
    [
        (4032, 3024, (416, 312)),  # a phone photo: its longer side at the input size
        (3024, 4032, (312, 416)),
        (833, 500, (416, 250)),
        (416, 300, None),  # no smaller picture covers the letterbox
        (300, 200, None),
    ],
)
def test_the_decode_size_covers_the_letterbox_with_the_longer_side(width, height, needed):
    assert letterbox_decode_size(width, height, 416) == needed


@pytest.mark.parametrize("orientation", [1, 6])
def test_a_draft_decoded_photo_maps_back_to_the_photos_own_pixels(orientation):
    # A 4032x3024 JPEG with a white rectangle at a known place (upright coordinates).
    upright = Image.new("RGB", (3024, 4032) if orientation == 6 else (4032, 3024), (40, 90, 60))
    rect = (1000, 700, 2200, 1900)
    upright.paste((255, 255, 255), rect)
    stored = upright.transpose(Image.Transpose.ROTATE_90) if orientation == 6 else upright
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    stored.save(buffer, "JPEG", quality=92, exif=exif.tobytes())
    data = buffer.getvalue()

    def needed(w, h):
        return letterbox_decode_size(w, h, 416)

    full_image, photo_size = decode_photo(data, 40_000_000)
    draft_image, same_size = decode_photo(data, 40_000_000, needed)
    assert photo_size == same_size == upright.size
    assert draft_image.size == (upright.width // 8, upright.height // 8)  # the 1/8 scale
    full, full_info = letterbox(full_image, 416)
    draft, draft_info = letterbox(draft_image, 416, photo_size)
    assert (draft_info.orig_w, draft_info.orig_h) == upright.size
    assert (draft_info.pad_x, draft_info.pad_y) == (full_info.pad_x, full_info.pad_y)
    assert draft_info.scale == pytest.approx(full_info.scale, rel=1e-3)
    assert float((full - draft).abs().mean()) < 2 / 255

    # The rectangle found in each input maps back to where it is in the photo.
    for tensor, info in ((full, full_info), (draft, draft_info)):
        ys, xs = torch.nonzero(tensor.min(dim=0).values > 0.9, as_tuple=True)
        found = torch.tensor([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], dtype=torch.float)
        mapped = scale_boxes(found, info)[0].tolist()
        one_input_pixel = 1 / info.scale  # about 10 photo pixels
        assert mapped == pytest.approx(list(rect), abs=2 * one_input_pixel)
