"""The official YOLOv3 files published by the darknet author, pinned by size and sha256.

Checksum provenance:

* ``yolov3.cfg``, ``yolov3-tiny.cfg``, ``coco.names``: ``sha256sum`` of the copies in
  ``shared/data/darknet/`` (pjreddie/darknet commit f6afaab, folders ``cfg/`` and ``data/``).
* ``yolov3.weights``, ``yolov3-tiny.weights``: pjreddie.com publishes no checksums. The values
  below are the ones recorded by several independent public projects that pin these downloads
  (e.g. OpenVINO Open Model Zoo, TensorFlow Model Garden's YOLO download helper, AUR
  zmeventnotification PKGBUILD); the same records give the cfg checksums above, which match
  the shared copies byte for byte. They could not be verified by download here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from services.kit.weights import sha256_file


@dataclass(frozen=True)
class OfficialFile:
    name: str
    url: str
    size: int  # bytes
    sha256: str | None  # None: no trustworthy published checksum


YOLOV3_CFG = OfficialFile(
    "yolov3.cfg",
    "https://raw.githubusercontent.com/pjreddie/darknet/master/cfg/yolov3.cfg",
    8342,
    "22489ea38575dfa36c67a90048e8759576416a79d32dc11e15d2217777b9a953",
)
YOLOV3_TINY_CFG = OfficialFile(
    "yolov3-tiny.cfg",
    "https://raw.githubusercontent.com/pjreddie/darknet/master/cfg/yolov3-tiny.cfg",
    1915,
    "84eb7a675ef87c906019ff5a6e0effe275d175adb75100dcb47f0727917dc2c7",
)
COCO_NAMES = OfficialFile(
    "coco.names",
    "https://raw.githubusercontent.com/pjreddie/darknet/master/data/coco.names",
    625,
    "634a1132eb33f8091d60f2c346ababe8b905ae08387037aed883953b7329af84",
)
YOLOV3_WEIGHTS = OfficialFile(
    "yolov3.weights",
    "https://pjreddie.com/media/files/yolov3.weights",
    248_007_048,
    "523e4e69e1d015393a1b0a441cef1d9c7659e3eb2d7e15f793f060a21b32f297",
)
YOLOV3_TINY_WEIGHTS = OfficialFile(
    "yolov3-tiny.weights",
    "https://pjreddie.com/media/files/yolov3-tiny.weights",
    35_434_956,
    "dccea06f59b781ec1234ddf8d1e94b9519a97f4245748a7d4db75d5b7080a42c",
)

# Model name -> (cfg, weights); both share COCO_NAMES.
MODELS: dict[str, tuple[OfficialFile, OfficialFile]] = {
    "yolov3": (YOLOV3_CFG, YOLOV3_WEIGHTS),
    "yolov3-tiny": (YOLOV3_TINY_CFG, YOLOV3_TINY_WEIGHTS),
}


def official_checksums() -> dict[str, str]:
    """Pinned sha256 -> download URL of the official weights files."""
    weights = (YOLOV3_WEIGHTS, YOLOV3_TINY_WEIGHTS)
    return {file.sha256: file.url for file in weights if file.sha256 is not None}


OFFICIAL_FILES: dict[str, OfficialFile] = {
    file.name: file
    for file in (YOLOV3_CFG, YOLOV3_TINY_CFG, COCO_NAMES, YOLOV3_WEIGHTS, YOLOV3_TINY_WEIGHTS)
}


def matches_official(path: str | Path, official: OfficialFile) -> bool:
    """True when the file at ``path`` has the official size and (when pinned) sha256."""
    path = Path(path)
    if path.stat().st_size != official.size:
        return False
    return official.sha256 is None or sha256_file(path) == official.sha256
