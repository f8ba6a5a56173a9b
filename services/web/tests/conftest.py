"""Fixtures of the web tests: the app with fake or real model services behind it.

The stand-in weights come from the repository's conftest.py (``classifier_weights`` and
``detector_files``, written once per session).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts.launch import REPO_ROOT, free_port, run_service
from services.web.app import create_app
from services.web.tests.fakes import FakeModelServices


@pytest.fixture
def fake_services() -> FakeModelServices:
    return FakeModelServices()


@pytest.fixture
def app(fake_services):
    app = create_app({})  # defaults only, whatever this shell exports
    app.extensions["model_services"] = fake_services
    return app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def dog_jpeg(images_dir) -> bytes:
    return (images_dir / "dog.jpg").read_bytes()


@pytest.fixture(scope="module")
def closed_port_url() -> str:
    """A loopback URL whose port was free a moment ago, so nothing answers there."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture(scope="module")
def classifier_service(classifier_weights: Path, tmp_path_factory):
    """The real classifier under gunicorn on stand-in resnet18 weights (module scope, so it
    is stopped before the next module starts its own processes on the shared cores)."""
    env = {
        "CLASSIFIER_WEIGHTS": str(classifier_weights),
        "CLASSIFIER_WORKERS": "1",
        "CLASSIFIER_TORCH_THREADS": "1",
        "CLASSIFIER_DEVICE": "cpu",
    }
    with run_service("classifier", env, tmp_path_factory.mktemp("logs")) as server:
        yield server


@pytest.fixture(scope="module")
def detector_service(tmp_path_factory, request):
    """The real detector on stand-in yolov3-tiny weights, when its service exists."""
    if not (REPO_ROOT / "services" / "detector" / "app.py").is_file():
        pytest.skip("services/detector/app.py is not written yet")
    files: Path = request.getfixturevalue("detector_files")
    env = {
        "DETECTOR_CFG": str(files / "yolov3-tiny.cfg"),
        "DETECTOR_NAMES": str(files / "coco.names"),
        "DETECTOR_WEIGHTS": str(files / "yolov3-tiny.weights"),
        "DETECTOR_MODEL": "yolov3-tiny",
        # Not the default (0.5): the published OpenAPI document must show the running value.
        "DETECTOR_CONF_THRESHOLD": "0.3",
        "DETECTOR_WORKERS": "1",
        "DETECTOR_TORCH_THREADS": "1",
        "DETECTOR_DEVICE": "cpu",
    }
    with run_service("detector", env, tmp_path_factory.mktemp("logs")) as server:
        yield server
