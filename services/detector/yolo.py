"""Pre- and post-processing around a YOLO network: letterbox in, detections out.

Coordinate systems:

* *original*: pixels of the caller's image, origin top-left, x right, y down.
* *letterboxed*: pixels of the square network input; the original is scaled by
  ``LetterboxInfo.scale`` and pasted at ``(pad_x, pad_y)``, the rest is grey.

Boxes are ``xyxy`` (x1, y1, x2, y2) unless a name says ``xywh`` (centre x, centre y, w, h).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TypedDict

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torchvision.ops import batched_nms

PAD_VALUE = 0.5  # darknet fills the letterbox border with 0.5 grey


@dataclass(frozen=True)
class LetterboxInfo:
    """How an original image was placed in the letterboxed input.

    ``letterboxed = original * scale + (pad_x, pad_y)``, all in pixels.
    """

    scale: float
    pad_x: int
    pad_y: int
    orig_w: int
    orig_h: int


class Box(TypedDict):
    x1: float
    y1: float
    x2: float
    y2: float


class Detection(TypedDict):
    class_id: int
    confidence: float
    box: Box


def letterbox(
    image: Image.Image, size: int, photo_size: tuple[int, int] | None = None
) -> tuple[Tensor, LetterboxInfo]:
    """Resize ``image`` to fit a ``size`` x ``size`` square keeping aspect ratio, centred on grey.

    Args:
        image: any PIL image; converted to RGB (apply EXIF orientation before calling).
        size: side of the square network input in pixels.
        photo_size: the photo's size when ``image`` is a reduced decode of it (draft): the
            placement then maps the photo's pixels, so boxes come back in them.

    Returns:
        ``Tensor[3, size, size]`` float32 RGB in [0, 1] (border = 0.5) and the placement.
    """
    image = image.convert("RGB") if image.mode != "RGB" else image
    orig_w, orig_h = image.size
    scale = min(size / orig_w, size / orig_h)
    new_w = min(size, max(1, round(orig_w * scale)))
    new_h = min(size, max(1, round(orig_h * scale)))
    pad_x, pad_y = (size - new_w) // 2, (size - new_h) // 2

    resized = image.resize((new_w, new_h), Image.Resampling.BILINEAR)
    pixels = torch.from_numpy(np.asarray(resized, dtype=np.float32) / 255.0).permute(2, 0, 1)
    canvas = torch.full((3, size, size), PAD_VALUE, dtype=torch.float32)
    canvas[:, pad_y : pad_y + new_h, pad_x : pad_x + new_w] = pixels
    if photo_size is not None:
        # The picture spans new_w letterboxed pixels whatever scale it was decoded at.
        photo_w, photo_h = photo_size
        return canvas, LetterboxInfo(new_w / photo_w, pad_x, pad_y, photo_w, photo_h)
    return canvas, LetterboxInfo(scale, pad_x, pad_y, orig_w, orig_h)


def letterbox_decode_size(width: int, height: int, size: int) -> tuple[int, int] | None:
    """The smallest picture of a ``width`` x ``height`` photo that :func:`letterbox` to
    ``size`` needs without enlarging it: its longer side at ``size``. None: no smaller."""
    scale = size / max(width, height)
    if scale >= 1:
        return None
    return max(1, math.ceil(width * scale)), max(1, math.ceil(height * scale))


def scale_boxes(boxes_xyxy: Tensor, info: LetterboxInfo) -> Tensor:
    """Map ``Tensor[N, 4]`` xyxy boxes from letterboxed to original pixels, clipped to the image.

    Returns a new float tensor ``[N, 4]``; the input is not modified.
    """
    boxes = boxes_xyxy.float().clone()
    boxes[:, [0, 2]] = ((boxes[:, [0, 2]] - info.pad_x) / info.scale).clamp(0, info.orig_w)
    boxes[:, [1, 3]] = ((boxes[:, [1, 3]] - info.pad_y) / info.scale).clamp(0, info.orig_h)
    return boxes


def xywh_to_xyxy(boxes_xywh: Tensor) -> Tensor:
    """``Tensor[N, 4]`` (cx, cy, w, h) -> ``Tensor[N, 4]`` (x1, y1, x2, y2), same units."""
    centre, half = boxes_xywh[:, :2], boxes_xywh[:, 2:4] / 2
    return torch.cat([centre - half, centre + half], dim=1)


def postprocess(
    pred: Tensor,
    info: LetterboxInfo,
    *,
    conf_threshold: float,
    iou_threshold: float,
    max_detections: int,
) -> list[Detection]:
    """Turn one image's decoded network rows into final detections in original pixels.

    Args:
        pred: ``Tensor[N, 5 + C]`` rows from ``DarknetModel.forward(x)[i]``: cx, cy, w, h in
            letterboxed pixels, objectness, C class probabilities (any dtype/device).
        info: the letterbox placement of this image.
        conf_threshold: keep boxes whose score = objectness * best class probability exceeds it.
        iou_threshold: per-class NMS suppresses same-class boxes overlapping more than this.
        max_detections: keep at most this many, highest scores first.

    Returns:
        Detections sorted by confidence, descending: ``{"class_id": int, "confidence": float
        (4 decimals), "box": {"x1", "y1", "x2", "y2"} (original pixels, 2 decimals)}``; empty
        boxes (entirely in the grey border) are dropped.
    """
    pred = pred.detach().float()
    class_probs, class_ids = pred[:, 5:].max(dim=1)
    scores = pred[:, 4] * class_probs
    keep = scores > conf_threshold  # NaN rows compare False and drop out here
    boxes = scale_boxes(xywh_to_xyxy(pred[keep, :4]), info)
    scores, class_ids = scores[keep], class_ids[keep]

    non_empty = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    boxes, scores, class_ids = boxes[non_empty], scores[non_empty], class_ids[non_empty]
    kept = batched_nms(boxes, scores, class_ids, iou_threshold)[:max_detections]

    detections: list[Detection] = []
    for box, score, class_id in zip(
        boxes[kept].tolist(), scores[kept].tolist(), class_ids[kept].tolist(), strict=True
    ):
        x1, y1, x2, y2 = (round(v, 2) for v in box)
        detections.append(
            {
                "class_id": int(class_id),
                "confidence": round(score, 4),
                "box": {"x1": x1, "y1": y1, "x2": x2, "y2": y2},
            }
        )
    return detections
