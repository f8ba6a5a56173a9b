from __future__ import annotations

import pytest

from services.detector import official
from services.kit.weights import sha256_file


@pytest.mark.parametrize(
    "file", [official.YOLOV3_CFG, official.YOLOV3_TINY_CFG, official.COCO_NAMES]
)
def test_shared_copies_are_the_official_files(darknet_dir, file):
    path = darknet_dir / file.name
    assert sha256_file(path) == file.sha256
    assert official.matches_official(path, file)


def test_pins_are_complete():
    for cfg, weights in official.MODELS.values():
        for file in (cfg, weights):
            assert file.url.startswith("https://") and file.url.endswith(file.name)
            assert file.sha256 is not None and len(file.sha256) == 64


def test_mismatch_is_detected(tmp_path):
    path = tmp_path / "coco.names"
    path.write_bytes(b"x" * official.COCO_NAMES.size)
    assert not official.matches_official(path, official.COCO_NAMES)
    path.write_bytes(b"x")
    assert not official.matches_official(path, official.COCO_NAMES)


def test_official_checksums_map_weights_sha256_to_url():
    checksums = official.official_checksums()
    assert checksums == {
        official.YOLOV3_WEIGHTS.sha256: official.YOLOV3_WEIGHTS.url,
        official.YOLOV3_TINY_WEIGHTS.sha256: official.YOLOV3_TINY_WEIGHTS.url,
    }
