from __future__ import annotations

import pytest
import torch

from services.detector.darknet.cfg import CfgError, parse_cfg, parse_cfg_text
from services.detector.darknet.model import DarknetModel, build_model
from services.detector.darknet.standin import initialise_standin

requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture(scope="module")
def tiny_model(yolov3_tiny_cfg) -> DarknetModel:
    model = build_model(yolov3_tiny_cfg)
    initialise_standin(model, seed=0)
    return model


def test_attributes(yolov3_cfg, yolov3_tiny_cfg):
    model = build_model(yolov3_cfg)
    assert model.input_size == 608 and model.size_multiple == 32 and model.num_classes == 80
    assert model.anchors[2] == [(10, 13), (16, 30), (33, 23)]
    assert build_model(yolov3_cfg, input_size=416).input_size == 416
    tiny = build_model(yolov3_tiny_cfg)
    assert tiny.input_size == 416 and len(tiny.anchors) == 2
    with pytest.raises(ValueError, match="multiple of 32"):
        build_model(yolov3_tiny_cfg, input_size=400)


def test_yolov3_spp_builds(yolov3_spp_cfg_path):
    model = build_model(parse_cfg(yolov3_spp_cfg_path))
    assert model.size_multiple == 32 and len(model.heads) == 3


@torch.inference_mode()
def test_output_shapes_default_and_non_square(tiny_model):
    rows = tiny_model(torch.rand(2, 3, 416, 416))
    assert rows.shape == (2, 3 * (13 * 13 + 26 * 26), 85)
    heads = tiny_model.forward_heads(torch.rand(1, 3, 64, 96))
    assert [tuple(h.shape) for h in heads] == [(1, 3, 2, 3, 85), (1, 3, 4, 6, 85)]
    raw = tiny_model.forward_raw(torch.rand(1, 3, 64, 96))
    assert [tuple(r.shape) for r in raw] == [(1, 255, 2, 3), (1, 255, 4, 6)]


@torch.inference_mode()
def test_decoding_matches_darknet_formula(tiny_model):
    x = torch.rand(1, 3, 64, 96)
    raw = tiny_model.forward_raw(x)[1].view(3, 85, 4, 6)  # head 2: 4 x 6 cells, stride 16
    decoded = tiny_model.forward_heads(x)[1][0]
    anchor, row, col = 2, 3, 5
    t = raw[anchor, :, row, col]
    anchor_w, anchor_h = tiny_model.anchors[1][anchor]
    expected = torch.cat(
        [
            torch.stack(
                [
                    (col + torch.sigmoid(t[0])) * 16,
                    (row + torch.sigmoid(t[1])) * 16,
                    torch.exp(t[2]) * anchor_w,
                    torch.exp(t[3]) * anchor_h,
                ]
            ),
            torch.sigmoid(t[4:]),
        ]
    )
    torch.testing.assert_close(decoded[anchor, row, col], expected)
    # forward() = all heads flattened anchor-major, then row, then column.
    rows = tiny_model(x)[0]
    torch.testing.assert_close(rows[3 * 2 * 3 + (anchor * 4 + row) * 6 + col], expected)


@torch.inference_mode()
def test_grid_cache_follows_input_size(tiny_model):
    for size in (64, 96, 64):
        heads = tiny_model.forward_heads(torch.zeros(1, 3, size, size))
        centres = heads[0][0, 0, :, :, :2]  # logits are not 0, so compare spacing only
        cells = size // 32
        assert centres.shape[:2] == (cells, cells)
        assert (centres[0, -1, 0] - centres[0, 0, 0]).item() == pytest.approx(
            32 * (cells - 1), abs=32
        )


def test_rejects_bad_input(tiny_model):
    with pytest.raises(ValueError, match="multiples of 32"):
        tiny_model(torch.rand(1, 3, 64, 70))
    with pytest.raises(ValueError, match="expected input"):
        tiny_model(torch.rand(1, 1, 64, 64))


@pytest.mark.parametrize(
    ("layers", "message"),
    [
        (
            "[convolutional]\nfilters=20\nsize=1\n[yolo]\nmask=0\nanchors=1,1\nclasses=2\nnum=1\n",
            "test.cfg line 8: [yolo] needs 7 input channels",
        ),
        (
            "[convolutional]\nfilters=4\nsize=1\n[convolutional]\nfilters=8\nsize=1\n"
            "[shortcut]\nfrom=-2\n",
            "test.cfg line 11: shortcut from layer 0 (4 channels",
        ),
        (
            "[convolutional]\nfilters=4\nsize=1\n[convolutional]\nfilters=4\nsize=3\nstride=2\n"
            "pad=1\n[route]\nlayers=-1,-2\n",
            "test.cfg line 13: routed layers (1, 0) differ in size",
        ),
        ("[convolutional]\nfilters=4\nsize=3\n", "test.cfg line 5: size/stride/padding"),
        ("[convolutional]\nfilters=7\nsize=1\n", "test.cfg line 1: the network has no [yolo]"),
    ],
)
def test_structural_errors_name_the_line(layers, message):
    cfg = parse_cfg_text("[net]\nwidth=32\nheight=32\nchannels=3\n" + layers, "test.cfg")
    with pytest.raises(CfgError) as error:
        build_model(cfg)
    assert message in str(error.value)


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")
@torch.inference_mode()
def test_torchscript_matches_eager(tiny_model):
    x = torch.rand(1, 3, 64, 96)
    scripted = torch.jit.script(tiny_model)
    torch.testing.assert_close(scripted(x), tiny_model(x))
    torch.testing.assert_close(scripted.forward_raw(x), tiny_model.forward_raw(x))


def test_torch_export_matches_eager(tiny_model):
    x = torch.rand(1, 3, 64, 64)
    with torch.inference_mode():
        expected = tiny_model(x)  # fills the grid cache under inference mode first
    exported = torch.export.export(tiny_model, (x,))
    with torch.no_grad():
        torch.testing.assert_close(exported.module()(x), expected)
        torch.testing.assert_close(tiny_model(x), expected)  # cache not polluted by export


def test_float16_on_cpu_close_to_float32(tiny_model, yolov3_tiny_cfg):
    half = build_model(yolov3_tiny_cfg).half()
    half.load_state_dict(tiny_model.state_dict())
    x = torch.rand(1, 3, 64, 64)
    with torch.inference_mode():
        expected, actual = tiny_model(x), half(x.half())
    assert actual.dtype == torch.float32  # decoded in float32 to avoid exp() overflow
    assert half.forward_raw(x.half())[0].dtype == torch.float16
    torch.testing.assert_close(actual[..., 4:].float(), expected[..., 4:], atol=2e-2, rtol=0)
    torch.testing.assert_close(actual[..., :4].float(), expected[..., :4], atol=1.0, rtol=1e-2)


@requires_cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_cuda_matches_cpu(tiny_model, yolov3_tiny_cfg, dtype):
    cuda = build_model(yolov3_tiny_cfg).to("cuda", dtype)
    cuda.load_state_dict(tiny_model.state_dict())
    x = torch.rand(2, 3, 416, 416)
    with torch.inference_mode():
        expected, actual = tiny_model(x), cuda(x.to("cuda", dtype)).float().cpu()
    atol = 1e-3 if dtype == torch.float32 else 2e-2
    torch.testing.assert_close(actual[..., 4:], expected[..., 4:], atol=atol, rtol=0)
    torch.testing.assert_close(actual[..., :4], expected[..., :4], atol=100 * atol, rtol=1e-2)
