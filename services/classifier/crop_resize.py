"""torchvision's published classification transform, resampling only the centre crop.

The preset (``ImageClassification``) resizes the whole photo, shorter side to
``resize_size``, then cuts the ``crop_size`` square out of the middle: for a 4:3 photo a third
of the resampled pixels are thrown away, and the crop, the tensor conversion and the
normalisation each make a new copy. Pillow can resample a box of the source straight to a
size (``Image.resize(box=...)``), with the same filter, scale and support window, so here the
crop's box in source pixels is resampled to the crop size, converted once and normalised in
place, in the preset's order of float operations.

It equals the preset up to Pillow's fixed-point filter weights, which it derives from the box
rather than from the whole image: on the sample photos at most a few hundred of the 150,528
input values differ, each by one 8-bit step (docs/decode.md publishes the difference on both
photo sets). ``*_DRAFT_DECODE=0`` runs the preset itself.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import functional as F
from torchvision.transforms._presets import ImageClassification


def resized_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """(width, height) after the preset's resize: shorter side to ``short_side``, the longer
    one scaled and truncated as torchvision does."""
    if width <= height:
        return short_side, int(short_side * height / width)
    return int(short_side * width / height), short_side


def centre_crop_box(
    width: int, height: int, short_side: int, crop: int
) -> tuple[float, float, float, float] | None:
    """The source box (left, top, right, bottom, in source pixels) whose resampling to
    ``crop`` x ``crop`` is the preset's resize then centre crop; None when the crop is larger
    than the resized image (the preset pads it: that case is left to the preset)."""
    new_width, new_height = resized_size(width, height, short_side)
    if crop > new_width or crop > new_height:
        return None
    top = round((new_height - crop) / 2.0)  # torchvision: banker's rounding of .5
    left = round((new_width - crop) / 2.0)
    scale_x, scale_y = width / new_width, height / new_height
    return (left * scale_x, top * scale_y, (left + crop) * scale_x, (top + crop) * scale_y)


def classification_input(image: Image.Image, preset: ImageClassification) -> torch.Tensor:
    """An RGB image -> the preset's normalised Tensor[3, crop, crop], float32."""
    crop = preset.crop_size[0]
    box = centre_crop_box(*image.size, preset.resize_size[0], crop)
    if box is None:
        return preset(image)
    resample = F.pil_modes_mapping[preset.interpolation]
    cropped = image.resize((crop, crop), resample, box=box)
    pixels = torch.from_numpy(np.asarray(cropped).copy()).permute(2, 0, 1)
    # The preset's operations, in its order: to float, / 255, - mean, / std (the first two
    # in one pass: dividing the 8-bit tensor gives float32 with the very same arithmetic).
    tensor = pixels.div(255)
    mean = torch.as_tensor(preset.mean, dtype=torch.float32).view(-1, 1, 1)
    std = torch.as_tensor(preset.std, dtype=torch.float32).view(-1, 1, 1)
    return tensor.sub_(mean).div_(std)
