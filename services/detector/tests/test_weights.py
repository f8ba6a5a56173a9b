from __future__ import annotations

import struct

import pytest
import torch

from services.core.state_dict import load_state_dict_file
from services.detector import official
from services.detector.darknet.model import DarknetModel, build_model
from services.detector.darknet.weights import (
    WeightsError,
    darknet_parameter_count,
    load_darknet_weights,
    save_state_dict,
    write_darknet_weights,
)


def load_darknet_state_dict(model: DarknetModel, path) -> None:
    """The service's state_dict loader, naming the model by its cfg as the detector does."""
    load_state_dict_file(model, path, model.cfg.source)


def randomised(model: DarknetModel, seed: int) -> DarknetModel:
    """Every parameter and buffer random (positive variances), so any misplaced float shows."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for tensor in model.state_dict().values():
            tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.1)
    return model


def assert_same_parameters(a: DarknetModel, b: DarknetModel) -> None:
    state_a, state_b = a.state_dict(), b.state_dict()
    assert state_a.keys() == state_b.keys()
    for key in state_a:
        assert torch.equal(state_a[key].float(), state_b[key].float()), key


@pytest.fixture(scope="module")
def tiny_source(yolov3_tiny_cfg) -> DarknetModel:
    return randomised(build_model(yolov3_tiny_cfg), seed=1)


@pytest.mark.parametrize(
    ("cfg_fixture", "weights"),
    [("yolov3_cfg", official.YOLOV3_WEIGHTS), ("yolov3_tiny_cfg", official.YOLOV3_TINY_WEIGHTS)],
)
def test_parameter_counts_match_official_file_sizes(request, cfg_fixture, weights):
    model = build_model(request.getfixturevalue(cfg_fixture))
    assert 20 + 4 * darknet_parameter_count(model) == weights.size


def test_round_trip(tiny_source, yolov3_tiny_cfg, tmp_path):
    path = tmp_path / "tiny.weights"
    header = write_darknet_weights(tiny_source, path, seen=123_456_789_012)
    assert path.stat().st_size == official.YOLOV3_TINY_WEIGHTS.size
    loaded = build_model(yolov3_tiny_cfg)
    assert load_darknet_weights(loaded, path) == header
    assert header.seen == 123_456_789_012 and header.size == 20
    assert_same_parameters(loaded, tiny_source)


def test_file_layout_is_darknet_order(tiny_source, tmp_path):
    """First conv has batch norm: bias, weight, mean, var, then conv weights, after 20 bytes."""
    path = tmp_path / "tiny.weights"
    write_darknet_weights(tiny_source, path)
    data = path.read_bytes()
    assert struct.unpack_from("<iiiq", data) == (0, 2, 0, 0)
    first = tiny_source.layers[0]
    expected = torch.cat(
        [
            first.bn.bias,
            first.bn.weight,
            first.bn.running_mean,
            first.bn.running_var,
            first.conv.weight.flatten(),
        ]
    )
    stored = torch.frombuffer(bytearray(data[20 : 20 + 4 * expected.numel()]), dtype=torch.float32)
    assert torch.equal(stored, expected.detach())


def test_32_bit_seen_header(tiny_source, yolov3_tiny_cfg, tmp_path):
    path = tmp_path / "old.weights"
    header = write_darknet_weights(tiny_source, path, seen=64_000, version=(0, 1, 0))
    assert header.size == 16 and not header.seen_is_64_bit
    assert path.stat().st_size == official.YOLOV3_TINY_WEIGHTS.size - 4
    loaded = build_model(yolov3_tiny_cfg)
    assert load_darknet_weights(loaded, path).seen == 64_000
    assert_same_parameters(loaded, tiny_source)


@pytest.mark.parametrize(("extra_bytes", "word"), [(-4, "too short"), (4, "too long")])
def test_wrong_length_is_refused(tiny_source, yolov3_tiny_cfg, tmp_path, extra_bytes, word):
    path = tmp_path / "bad.weights"
    write_darknet_weights(tiny_source, path)
    data = path.read_bytes()
    path.write_bytes(data[:extra_bytes] if extra_bytes < 0 else data + b"\0" * extra_bytes)
    expected_floats = darknet_parameter_count(tiny_source)
    with pytest.raises(WeightsError) as error:
        load_darknet_weights(build_model(yolov3_tiny_cfg), path)
    message = str(error.value)
    assert f"needs {expected_floats} float32 parameters" in message
    assert f"holds {expected_floats + extra_bytes // 4} floats" in message
    assert word in message and "bad.weights" in message


def test_weights_of_another_cfg_are_refused(tiny_source, yolov3_cfg, tmp_path):
    path = tmp_path / "tiny.weights"
    write_darknet_weights(tiny_source, path)
    with pytest.raises(WeightsError, match=r"model yolov3\.cfg needs 62001757 float32"):
        load_darknet_weights(build_model(yolov3_cfg), path)


def test_truncated_header(yolov3_tiny_cfg, tmp_path):
    path = tmp_path / "stub.weights"
    path.write_bytes(b"\0" * 10)
    with pytest.raises(WeightsError, match="too short for a darknet header"):
        load_darknet_weights(build_model(yolov3_tiny_cfg), path)


def test_loads_into_half_precision_model(tiny_source, yolov3_tiny_cfg, tmp_path):
    path = tmp_path / "tiny.weights"
    write_darknet_weights(tiny_source, path)
    half = build_model(yolov3_tiny_cfg).half()
    load_darknet_weights(half, path)
    assert half.layers[0].conv.weight.dtype == torch.float16
    torch.testing.assert_close(
        half.layers[0].conv.weight.float(), tiny_source.layers[0].conv.weight, atol=1e-3, rtol=0
    )


def test_state_dict_round_trip(tiny_source, yolov3_tiny_cfg, tmp_path):
    path = tmp_path / "tiny.pt"
    save_state_dict(tiny_source, path)
    loaded = build_model(yolov3_tiny_cfg)
    load_state_dict_file(loaded, path, loaded.cfg.source)
    assert_same_parameters(loaded, tiny_source)


def test_state_dict_of_another_cfg_is_refused(tiny_source, yolov3_cfg, tmp_path):
    path = tmp_path / "tiny.pt"
    save_state_dict(tiny_source, path)
    with pytest.raises(WeightsError) as error:
        load_darknet_state_dict(build_model(yolov3_cfg), path)
    message = str(error.value)
    assert message.startswith("tiny.pt does not match model yolov3.cfg: ")
    assert "missing keys (layers.1.conv.weight" in message  # tiny layer 1 is a maxpool
    assert "unexpected keys (" in message
    assert "shape mismatches (layers.0.conv.weight (16, 3, 3, 3) != (32, 3, 3, 3)" in message


def test_state_dict_file_that_is_not_one(yolov3_tiny_cfg, tmp_path):
    path = tmp_path / "junk.pt"
    path.write_bytes(b"not a torch file")
    with pytest.raises(WeightsError, match=r"junk\.pt: not a readable PyTorch state dict"):
        load_darknet_state_dict(build_model(yolov3_tiny_cfg), path)
    torch.save({"weights": [1, 2, 3]}, path)
    with pytest.raises(WeightsError, match="expected a mapping of parameter names to tensors"):
        load_darknet_state_dict(build_model(yolov3_tiny_cfg), path)
