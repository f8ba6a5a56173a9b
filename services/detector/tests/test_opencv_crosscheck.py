"""Cross-check against an independent darknet implementation: OpenCV's dnn importer.

Both read the same cfg and the same ``.weights`` file written by our writer, and run on the same
input tensor. Agreement proves the cfg semantics, the weights order and the yolo decoding.

Two known, documented differences are neutralised, not hidden:

* Batch norm: darknet (and our model) divides by ``sqrt(var) + 1e-6``, OpenCV by
  ``sqrt(var + 1e-6)``. For the check, the torch model's variances are adjusted so that both
  divide by the same number; the file OpenCV reads is the untouched one.
* OpenCV's yolo layer outputs ``objectness * class probability``, zeroes scores under the
  ``thresh`` key and runs NMS when ``nms_threshold`` > 0; its cfg copy sets both to 0.

OpenCV's Winograd convolutions are turned off: they are accurate to ~1e-5 per layer only, which
75 layers amplify past the tolerance.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from services.detector.darknet.cfg import parse_cfg
from services.detector.darknet.model import (
    DARKNET_BN_EPSILON,
    DarknetBatchNorm,
    DarknetModel,
    build_model,
)
from services.detector.darknet.standin import calibrate, random_init
from services.detector.darknet.weights import load_darknet_weights, write_darknet_weights
from services.detector.yolo import letterbox

cv2 = pytest.importorskip("cv2")

TOLERANCE = 1e-3

# A small network using every supported layer type and option, including the awkward ones:
# tiny's size-2 stride-1 pool (asymmetric padding) and an SPP block, on a 3x3 final grid.
MINI_CFG = """
[net]
width=96
height=96
channels=3

[convolutional]
batch_normalize=1
filters=8
size=3
stride=1
pad=1
activation=leaky

[maxpool]
size=2
stride=2

[convolutional]
batch_normalize=1
filters=16
size=3
stride=2
pad=1
activation=leaky

[convolutional]
batch_normalize=1
filters=8
size=1
stride=1
pad=1
activation=leaky

[convolutional]
batch_normalize=1
filters=16
size=3
stride=1
pad=1
activation=leaky

[shortcut]
from=-3
activation=linear

[maxpool]
size=2
stride=2

[convolutional]
batch_normalize=1
filters=32
size=3
stride=2
pad=1
activation=leaky

[maxpool]
size=2
stride=2

[maxpool]
size=2
stride=1

[maxpool]
stride=1
size=5

[route]
layers=-2

[maxpool]
stride=1
size=9

[route]
layers=-4

[maxpool]
stride=1
size=13

[route]
layers=-1,-3,-5,-6

[convolutional]
batch_normalize=1
filters=32
size=1
stride=1
pad=1
activation=leaky

[convolutional]
size=1
stride=1
pad=1
filters=24
activation=linear

[yolo]
mask = 3,4,5
anchors = 10,14,  23,27,  37,58,  81,82,  135,169,  344,319
classes=3
num=6

[route]
layers = -4

[convolutional]
batch_normalize=1
filters=16
size=1
stride=1
pad=1
activation=logistic

[upsample]
stride=2

[route]
layers = -1, 7

[convolutional]
batch_normalize=1
filters=32
size=3
stride=1
pad=1
activation=leaky

[convolutional]
size=1
stride=1
pad=1
filters=24
activation=linear

[yolo]
mask = 0,1,2
anchors = 10,14,  23,27,  37,58,  81,82,  135,169,  344,319
classes=3
num=6
"""


def opencv_cfg_text(cfg_text: str) -> str:
    """The same cfg with OpenCV's yolo score threshold and NMS disabled."""
    return re.sub(r"^\[yolo\]\s*$", "[yolo]\nthresh=0\nnms_threshold=0", cfg_text, flags=re.M)


def random_informative_model(cfg_path: Path, images: torch.Tensor, seed: int) -> DarknetModel:
    """Random weights with random batch-norm affine terms, scaled so outputs are not saturated."""
    model = build_model(parse_cfg(cfg_path))
    random_init(model, seed)
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for bn in model.modules():
            if isinstance(bn, DarknetBatchNorm):
                bn.weight.mul_(0.5 + torch.rand(bn.weight.shape, generator=generator))
                bn.bias.add_(0.1 * torch.randn(bn.bias.shape, generator=generator))
    calibrate(model, images=images)  # statistics of this very input: informative logits
    return model


def use_opencv_batchnorm(model: DarknetModel) -> None:
    """Adjust variances so darknet's sqrt(v) + eps equals OpenCV's sqrt(var + eps)."""
    with torch.no_grad():
        for bn in model.modules():
            if isinstance(bn, DarknetBatchNorm):
                var = bn.running_var.double()
                adjusted = ((var + DARKNET_BN_EPSILON).sqrt() - DARKNET_BN_EPSILON) ** 2
                bn.running_var.copy_(adjusted)


def run_both(cfg_path: Path, blob: torch.Tensor, tmp_path: Path, seed: int):
    """(ours, opencv) raw head logits and yolo outputs, in OpenCV's layout and units."""
    weights_path = tmp_path / f"{cfg_path.stem}.weights"
    write_darknet_weights(random_informative_model(cfg_path, blob, seed), weights_path)

    ours = build_model(parse_cfg(cfg_path))
    load_darknet_weights(ours, weights_path)
    use_opencv_batchnorm(ours)
    height, width = blob.shape[2:]
    with torch.inference_mode():
        logits = ours.forward_raw(blob)
        our_heads = [head(raw, height, width) for head, raw in zip(ours.heads, logits, strict=True)]
    our_raw = [r[0].numpy() for r in logits]

    cv_cfg = tmp_path / f"{cfg_path.stem}-opencv.cfg"
    cv_cfg.write_text(opencv_cfg_text(cfg_path.read_text()))
    net = cv2.dnn.readNetFromDarknet(str(cv_cfg), str(weights_path))
    net.enableWinograd(False)
    net.setInput(blob.numpy())
    conv_names = [f"conv_{head.layer_index - 1}" for head in ours.heads]
    yolo_names = [f"yolo_{head.layer_index}" for head in ours.heads]
    assert sorted(net.getUnconnectedOutLayersNames()) == sorted(yolo_names)
    outputs = net.forward(conv_names + yolo_names)
    cv_raw = [o[0] for o in outputs[: len(conv_names)]]
    cv_yolo = list(outputs[len(conv_names) :])

    our_yolo = []
    for head in our_heads:
        # [1, A, h, w, 5+C] -> OpenCV's rows ordered (row, column, anchor); box in input fractions;
        # class scores multiplied by objectness.
        rows = head[0].permute(1, 2, 0, 3).reshape(-1, head.shape[-1]).clone()
        rows[:, [0, 2]] /= width
        rows[:, [1, 3]] /= height
        rows[:, 5:] *= rows[:, 4:5]
        our_yolo.append(rows.numpy())
    return our_raw, cv_raw, our_yolo, cv_yolo


def assert_agree(ours, theirs, what: str) -> None:
    for index, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        assert a.shape == b.shape, f"{what} {index}: shape {a.shape} != {b.shape}"
        difference = float(np.abs(a - b).max())
        assert difference < TOLERANCE, f"{what} {index}: max abs difference {difference:.2e}"


def assert_informative(yolo_rows: list[np.ndarray]) -> None:
    """Values spread out, neither constant nor saturated, so agreement means something."""
    rows = np.concatenate(yolo_rows)
    objectness, scores = rows[:, 4], rows[:, 5:]
    assert np.isfinite(rows).all()
    assert objectness.std() > 0.01 and 0.05 < objectness.max() < 0.9999
    assert (scores > 0.999).mean() < 0.01 and (scores < 1e-6).mean() < 0.5
    assert 0.01 < np.median(rows[:, 2]) < 1.0  # widths: fractions of the input, not overflowed


@pytest.fixture(scope="module")
def dog_blob(dog_image) -> torch.Tensor:
    tensor, _ = letterbox(dog_image, 416)
    return tensor[None].contiguous()  # [1, 3, 416, 416] RGB in [0, 1], fed as is to both


@pytest.mark.parametrize(
    "cfg_name", ["yolov3-tiny.cfg", pytest.param("yolov3.cfg", marks=pytest.mark.slow)]
)
def test_official_cfg_matches_opencv(darknet_dir, dog_blob, tmp_path, cfg_name):
    our_raw, cv_raw, our_yolo, cv_yolo = run_both(darknet_dir / cfg_name, dog_blob, tmp_path, 7)
    assert_informative(cv_yolo)
    assert_agree(our_raw, cv_raw, "head logits")
    assert_agree(our_yolo, cv_yolo, "yolo output")


@pytest.mark.parametrize("size", [(96, 96), (128, 160)])
def test_every_layer_type_matches_opencv(tmp_path, dog_image, size):
    cfg_path = tmp_path / "mini.cfg"
    cfg_path.write_text(MINI_CFG)
    blob = torch.nn.functional.interpolate(
        letterbox(dog_image, max(size))[0][None], size=size, mode="bilinear"
    )
    our_raw, cv_raw, our_yolo, cv_yolo = run_both(cfg_path, blob, tmp_path, 3)
    assert_informative(cv_yolo)
    assert_agree(our_raw, cv_raw, "head logits")
    assert_agree(our_yolo, cv_yolo, "yolo output")
