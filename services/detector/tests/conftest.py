"""Detector fixtures on top of the root conftest's ``darknet_dir`` and ``images_dir``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from PIL import Image

from services.detector.darknet.cfg import DarknetCfg, parse_cfg

# The SPP block of darknet's yolov3-spp.cfg, which sits after the third conv of the first head
# (layer 77) and is followed by one more 1x1 conv; the rest of yolov3-spp.cfg equals yolov3.cfg.
SPP_BLOCK = """
### SPP ###
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
### End SPP ###

[convolutional]
batch_normalize=1
filters=512
size=1
stride=1
pad=1
activation=leaky

"""


def make_yolov3_spp_cfg_text(yolov3_text: str) -> str:
    """yolov3-spp.cfg rebuilt from yolov3.cfg: the SPP block inserted after layer 77."""
    headers = [m.start() for m in re.finditer(r"^\[", yolov3_text, flags=re.MULTILINE)]
    insert_at = headers[1 + 78]  # section 0 is [net]; insert before layer 78
    return yolov3_text[:insert_at] + SPP_BLOCK.lstrip("\n") + yolov3_text[insert_at:]


@pytest.fixture(scope="session")
def yolov3_cfg_path(darknet_dir: Path) -> Path:
    return darknet_dir / "yolov3.cfg"


@pytest.fixture(scope="session")
def yolov3_tiny_cfg_path(darknet_dir: Path) -> Path:
    return darknet_dir / "yolov3-tiny.cfg"


@pytest.fixture(scope="session")
def coco_names_path(darknet_dir: Path) -> Path:
    return darknet_dir / "coco.names"


@pytest.fixture(scope="session")
def yolov3_cfg(yolov3_cfg_path: Path) -> DarknetCfg:
    return parse_cfg(yolov3_cfg_path)


@pytest.fixture(scope="session")
def yolov3_tiny_cfg(yolov3_tiny_cfg_path: Path) -> DarknetCfg:
    return parse_cfg(yolov3_tiny_cfg_path)


@pytest.fixture(scope="session")
def yolov3_spp_cfg_path(yolov3_cfg_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cfg") / "yolov3-spp.cfg"
    path.write_text(make_yolov3_spp_cfg_text(yolov3_cfg_path.read_text()))
    return path


@pytest.fixture(scope="session")
def dog_image(images_dir: Path) -> Image.Image:
    """darknet's dog.jpg (768 x 576 RGB): a dog, a bicycle and a truck."""
    with Image.open(images_dir / "dog.jpg") as image:
        return image.convert("RGB")
