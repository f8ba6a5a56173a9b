"""Fixtures shared by every test folder: stand-in weights and the shared sample data."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts.launch import DARKNET_DIR, IMAGES_DIR


@pytest.fixture(scope="session")
def images_dir() -> Path:
    if not IMAGES_DIR.is_dir():
        pytest.fail(f"sample photos not found at {IMAGES_DIR} (../shared/data beside the repo)")
    return IMAGES_DIR


@pytest.fixture(scope="session")
def darknet_dir() -> Path:
    if not DARKNET_DIR.is_dir():
        pytest.fail(f"darknet files not found at {DARKNET_DIR} (../shared/data beside the repo)")
    return DARKNET_DIR


@pytest.fixture(scope="session")
def classifier_weights(tmp_path_factory) -> Path:
    """A stand-in resnet18 state_dict, written once per test session."""
    from services.classifier.standin import write_standin_state_dict

    return write_standin_state_dict(
        "resnet18", tmp_path_factory.mktemp("weights") / "resnet18.pth", seed=1
    )


@pytest.fixture(scope="session")
def detector_files(tmp_path_factory, darknet_dir) -> Path:
    """A weights directory with yolov3-tiny: official cfg and names, stand-in weights."""
    import shutil

    from services.detector.darknet.standin import write_standin_weights

    directory = tmp_path_factory.mktemp("detector-files")
    for name in ("yolov3-tiny.cfg", "coco.names"):
        shutil.copyfile(darknet_dir / name, directory / name)
    weights = directory / "yolov3-tiny.weights"
    write_standin_weights(directory / "yolov3-tiny.cfg", weights, seed=1)  # marked stand-in
    return directory


@pytest.fixture(scope="session")
def stack_weights_dir(detector_files, classifier_weights) -> Path:
    """One WEIGHTS_DIR holding every model file of the stack (stand-ins, tiny detector)."""
    import shutil

    for path in (classifier_weights, classifier_weights.with_name("resnet18.pth.standin.json")):
        shutil.copyfile(path, detector_files / path.name)
    return detector_files
