"""Fixtures shared by every test folder: stand-in weights and the shared sample data."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.processes import DARKNET_DIR, IMAGES_DIR


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
