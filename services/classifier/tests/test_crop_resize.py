"""Resampling only the centre crop gives the published preset's input, within one 8-bit step."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.models import ResNet18_Weights
from torchvision.transforms import functional as F
from torchvision.transforms._presets import ImageClassification

from services.classifier.crop_resize import centre_crop_box, classification_input, resized_size
from services.kit.imaging import decode_photo

PRESET = ResNet18_Weights.IMAGENET1K_V1.transforms()
# One 8-bit step in the normalised input's units, at the smallest std (the largest step).
ONE_STEP = 1 / 255 / min(PRESET.std) + 1e-6


def noise_image(width: int, height: int, seed: int) -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


@pytest.mark.parametrize("size", [(224, 224), (225, 1000), (1000, 225), (773, 512), (4032, 3024)])
def test_resized_size_is_torchvision_s(size):
    image = Image.new("L", size)
    assert resized_size(*size, 256) == F.resize(image, [256]).size


def test_sample_photos_stay_within_one_step_of_the_preset(images_dir):
    photos = sorted(images_dir.glob("*.jpg"))
    assert photos
    for path in photos:
        image, _ = decode_photo(path.read_bytes(), 50_000_000, lambda w, h: (256, 256))
        expected, served = PRESET(image), classification_input(image, PRESET)
        assert served.shape == expected.shape == (3, 224, 224)
        assert served.dtype == torch.float32
        assert (served - expected).abs().max() <= ONE_STEP, path.name
        # Pillow's weights differ in their last fixed-point bit at a few positions only.
        assert (served != expected).float().mean() < 0.01, path.name


@pytest.mark.parametrize("seed", range(12))
def test_any_size_stays_within_one_step(seed):
    # Noise makes any misplaced box show: a box one pixel off differs by far more than a step.
    rng = np.random.default_rng(seed)
    width, height = (int(side) for side in rng.integers(160, 1600, 2))
    image = noise_image(width, height, seed)
    expected, served = PRESET(image), classification_input(image, PRESET)
    assert (served - expected).abs().max() <= ONE_STEP, (width, height)


def test_a_crop_larger_than_the_resized_image_is_left_to_the_preset():
    preset = ImageClassification(crop_size=300, resize_size=256)
    image = noise_image(400, 300, 1)
    assert centre_crop_box(400, 300, 256, 300) is None
    assert torch.equal(classification_input(image, preset), preset(image))
