from __future__ import annotations

import pytest
import torch
from PIL import Image

from services.detector import official
from services.detector.darknet.model import build_model
from services.detector.darknet.standin import main, write_standin_weights
from services.detector.darknet.weights import load_darknet_weights, parse_header
from services.detector.yolo import letterbox, postprocess
from services.kit.weights import inspect_weights


@pytest.fixture(scope="module")
def standin_path(yolov3_tiny_cfg_path, tmp_path_factory):
    path = tmp_path_factory.mktemp("standin") / "yolov3-tiny.weights"
    write_standin_weights(yolov3_tiny_cfg_path, path, seed=0)
    return path


def test_is_a_real_darknet_file(standin_path, yolov3_tiny_cfg):
    data = standin_path.read_bytes()
    assert len(data) == official.YOLOV3_TINY_WEIGHTS.size
    assert parse_header(data).seen == 0
    load_darknet_weights(build_model(yolov3_tiny_cfg), standin_path)


def test_is_marked_untrained(standin_path):
    info = inspect_weights(standin_path, official.official_checksums())
    assert not info.trained and info.source == "stand-in"


def test_deterministic_per_seed(standin_path, yolov3_tiny_cfg_path, tmp_path):
    again, other = tmp_path / "again.weights", tmp_path / "other.weights"
    main([str(yolov3_tiny_cfg_path), str(again), "--seed", "0"])
    write_standin_weights(yolov3_tiny_cfg_path, other, seed=1)
    assert again.read_bytes() == standin_path.read_bytes()
    assert other.read_bytes() != standin_path.read_bytes()


def test_outputs_are_not_degenerate(standin_path, yolov3_tiny_cfg, images_dir):
    model = build_model(yolov3_tiny_cfg)
    load_darknet_weights(model, standin_path)
    counts = []
    for path in sorted(images_dir.glob("*.jpg")):
        with Image.open(path) as image:
            tensor, info = letterbox(image, model.input_size)
        with torch.inference_mode():
            rows = model(tensor[None])[0]
        assert torch.isfinite(rows).all()
        assert rows[:, 4].std() > 0.01  # objectness varies across anchors
        assert (rows[:, 2:4] < 10 * model.input_size).all()  # no overflowing widths/heights
        counts.append(
            len(
                postprocess(rows, info, conf_threshold=0.25, iou_threshold=0.45, max_detections=100)
            )
        )
    # Random weights: a few boxes on some photos, never a flood of confident ones.
    assert sum(counts) >= 1 and max(counts) < 50, counts
