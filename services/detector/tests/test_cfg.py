from __future__ import annotations

from collections import Counter

import pytest

from services.detector.darknet.cfg import (
    CfgError,
    ConvolutionalSection,
    MaxpoolSection,
    RouteSection,
    ShortcutSection,
    UpsampleSection,
    YoloSection,
    parse_cfg,
    parse_cfg_text,
)

NET = "[net]\nwidth=64\nheight=64\nchannels=3\n"
CONV = "[convolutional]\nbatch_normalize=1\nfilters=8\nsize=3\nstride=1\npad=1\nactivation=leaky\n"


def kinds(cfg) -> Counter:
    return Counter(type(section).__name__ for section in cfg.layers)


def test_yolov3_structure(yolov3_cfg):
    assert (yolov3_cfg.net.width, yolov3_cfg.net.height, yolov3_cfg.net.channels) == (608, 608, 3)
    assert len(yolov3_cfg.layers) == 107
    assert kinds(yolov3_cfg) == {
        "ConvolutionalSection": 75,
        "ShortcutSection": 23,
        "RouteSection": 4,
        "UpsampleSection": 2,
        "YoloSection": 3,
    }
    yolos = [s for s in yolov3_cfg.layers if isinstance(s, YoloSection)]
    assert [s.mask for s in yolos] == [(6, 7, 8), (3, 4, 5), (0, 1, 2)]
    assert yolos[0].masked_anchors == ((116, 90), (156, 198), (373, 326))
    assert all(s.classes == 80 and len(s.anchors) == 9 for s in yolos)


def test_yolov3_references_are_resolved_to_absolute_indexes(yolov3_cfg):
    layers = yolov3_cfg.layers
    assert isinstance(layers[4], ShortcutSection) and layers[4].source == 1  # from=-3
    assert layers[83] == RouteSection(line=layers[83].line, sources=(79,))  # layers=-4
    assert layers[86].sources == (85, 61)  # layers=-1, 61
    assert layers[98].sources == (97, 36)  # layers=-1, 36
    first = layers[0]
    assert first == ConvolutionalSection(
        line=25, filters=32, size=3, stride=1, padding=1, batch_normalize=True, activation="leaky"
    )
    head_conv = layers[81]
    assert (head_conv.filters, head_conv.batch_normalize, head_conv.activation) == (
        255,
        False,
        "linear",
    )
    assert isinstance(layers[85], UpsampleSection) and layers[85].stride == 2


def test_yolov3_tiny_structure(yolov3_tiny_cfg):
    assert (yolov3_tiny_cfg.net.width, yolov3_tiny_cfg.net.height) == (416, 416)
    assert len(yolov3_tiny_cfg.layers) == 24
    assert kinds(yolov3_tiny_cfg) == {
        "ConvolutionalSection": 13,
        "MaxpoolSection": 6,
        "RouteSection": 2,
        "UpsampleSection": 1,
        "YoloSection": 2,
    }
    # The last pool keeps 13x13 by padding one pixel after only (darknet's padding = size - 1).
    assert yolov3_tiny_cfg.layers[11] == MaxpoolSection(
        line=yolov3_tiny_cfg.layers[11].line, size=2, stride=1, padding=1
    )
    assert yolov3_tiny_cfg.layers[20].sources == (19, 8)


def test_yolov3_spp_structure(yolov3_spp_cfg_path):
    cfg = parse_cfg(yolov3_spp_cfg_path)
    assert len(cfg.layers) == 114
    assert kinds(cfg)["YoloSection"] == 3 and kinds(cfg)["MaxpoolSection"] == 3
    pools = [cfg.layers[i] for i in (78, 80, 82)]
    assert [(p.size, p.stride, p.padding) for p in pools] == [(5, 1, 4), (9, 1, 8), (13, 1, 12)]
    assert cfg.layers[83].sources == (82, 80, 78, 77)
    assert cfg.layers[90].sources == (86,)  # the head's route -4 now lands on layer 86


def test_comments_blank_lines_and_spacing():
    cfg = parse_cfg_text(
        "# comment\n\n[net]\n; other comment\n width = 32 \nheight=32\n\n"
        "[convolutional]\nfilters=255\nsize=1\nactivation=linear\n"
        "[yolo]\nmask = 0, 1,2\nanchors = 10,13,  16,30,33,23\nclasses=80\nnum=3\njitter=.3\n"
    )
    assert cfg.net.line == 3 and cfg.net.width == 32 and cfg.net.channels == 3
    assert cfg.layers[1].mask == (0, 1, 2)
    assert cfg.layers[1].anchors == ((10, 13), (16, 30), (33, 23))
    assert cfg.layers[0].line == 8


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (NET + CONV + "[foo]\nbar=1\n", "test.cfg line 12: unknown section [foo]"),
        (NET + CONV.replace("filters=8", "filters=eight"), "test.cfg line 7: bad value 'eight'"),
        (NET + CONV.replace("activation=leaky", "activation=mish"), "line 11: bad value 'mish'"),
        (NET + CONV.replace("pad=1", "dilation=2"), "test.cfg line 10: unknown key 'dilation'"),
        (NET + CONV + "[route]\nlayers=-2\n", "test.cfg line 13: 'layers' refers to layer -2"),
        (NET + CONV + "[route]\nlayers=-1, 5\n", "test.cfg line 13: 'layers' refers to layer 5"),
        (NET + CONV + "[shortcut]\nfrom=1\n", "test.cfg line 13: 'from' refers to layer 1"),
        (CONV, "test.cfg line 1: missing [net] section"),
        ("", "test.cfg line 1: missing [net] section"),
        (NET + CONV + "filters\n", "test.cfg line 12: expected 'key=value'"),
        (NET + "[convolutional\n", "test.cfg line 5: malformed section header"),
        (NET.replace("width=64", "width=0") + CONV, "test.cfg line 2: 'width' must be positive"),
        (NET + CONV + "[route]\n", "test.cfg line 12: [route] needs 'layers'"),
        (NET + CONV + "filters=9\n", "test.cfg line 12: duplicate key 'filters'"),
        ("width=3\n" + NET, "test.cfg line 1: option 'width' before any [section]"),
        (NET, "test.cfg line 1: the network has no layers"),
        (NET + CONV + NET, "test.cfg line 12: [net] may only be the first section"),
        (
            NET + "[yolo]\nmask=0,3\nanchors=1,2,3,4\nclasses=2\nnum=2\n",
            "test.cfg line 6: 'mask' indexes must lie in 0..1",
        ),
        (
            NET + "[yolo]\nmask=0\nanchors=1,2,3\nclasses=2\nnum=2\n",
            "test.cfg line 7: 'anchors' has 3 numbers, expected 2 * num = 4",
        ),
    ],
)
def test_errors_name_the_line(text, message):
    with pytest.raises(CfgError) as error:
        parse_cfg_text(text, source="test.cfg")
    assert message in str(error.value)


def test_error_names_the_file(tmp_path):
    path = tmp_path / "broken.cfg"
    path.write_text(NET + "[foo]\n")
    with pytest.raises(CfgError, match=r"^broken\.cfg line 5: unknown section \[foo\]$"):
        parse_cfg(path)
