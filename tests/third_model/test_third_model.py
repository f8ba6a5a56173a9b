"""The README's promise: a third model is one folder with one declaration, no core edits.

tests/third_model/brightness/ declares a toy model (mean brightness, a 1x1 convolution with
weights from a state_dict file) exactly as services/detector and services/classifier do.
Served under real gunicorn, it gets everything the core gives every model: its route with
validated parameters, the JSON envelope, /v1/models with its declared parameters and the
running defaults, its own /openapi.json, readiness and the probes, JSON errors, metrics.
"""

from __future__ import annotations

import sys

import pytest
import requests
import torch

from scripts.launch import REPO_ROOT, run_server
from tests.third_model.brightness.model import luma_network

pytestmark = pytest.mark.slow

FOLDER = REPO_ROOT / "tests/third_model/brightness"


@pytest.fixture(scope="module")
def brightness(tmp_path_factory):
    directory = tmp_path_factory.mktemp("brightness")
    network = luma_network()
    with torch.no_grad():
        network[0].weight.copy_(torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1))
    torch.save(network.state_dict(), directory / "brightness.pt")
    from scripts.launch import free_port

    port = free_port()
    env = {
        "BRIGHTNESS_HOST": "127.0.0.1",
        "BRIGHTNESS_PORT": str(port),
        "BRIGHTNESS_WEIGHTS": str(directory / "brightness.pt"),
        "BRIGHTNESS_DECIMALS": "2",  # not the declared default (3): the documents must show it
        "BRIGHTNESS_TORCH_THREADS": "1",
    }
    command = [sys.executable, "-m", "gunicorn", "-c", str(FOLDER / "gunicorn.conf.py")]
    with run_server(command, f"http://127.0.0.1:{port}", directory / "log", env) as server:
        yield server


def post(url: str, photo: bytes, **kwargs) -> requests.Response:
    return requests.post(url, files={"image": ("p.jpg", photo, "image/jpeg")}, timeout=60, **kwargs)


def test_the_new_model_is_served_with_the_cores_envelope(brightness, images_dir):
    photo = (images_dir / "dog.jpg").read_bytes()
    response = post(brightness.url + "/v1/brightness", photo)
    assert response.status_code == 200, response.text
    body = response.json()
    assert 0.0 < body["brightness"] < 1.0 and round(body["brightness"], 2) == body["brightness"]
    assert body["image"] == {"width": 768, "height": 576}
    assert body["model"] == {
        "name": "brightness",
        "trained": True,
        "weights": "user-supplied",
        "dtype": "float32",
    }
    assert {"decode", "preprocess", "inference", "postprocess", "total"} <= set(body["timings_ms"])
    several = requests.post(
        brightness.url + "/v1/brightness?decimals=4",
        files=[("image", ("a.jpg", photo, "image/jpeg"))] * 2,
        timeout=60,
    ).json()
    assert [len(str(r["brightness"]).split(".")[1]) <= 4 for r in several["results"]] == [True] * 2


def test_its_parameters_are_validated_before_the_body_is_read(brightness):
    response = requests.post(brightness.url + "/v1/brightness?decimals=9", timeout=10)
    assert response.status_code == 400  # no body at all: the parameter is refused first
    assert response.json()["error"]["code"] == "invalid_parameter"
    assert "decimals" in response.json()["error"]["message"]


def test_it_is_listed_and_documented_with_its_running_defaults(brightness):
    (entry,) = requests.get(brightness.url + "/v1/models", timeout=10).json()["models"]
    assert entry["service"] == "brightness" and entry["task"] == "brightness"
    (decimals,) = entry["endpoint"]["parameters"]
    assert decimals["name"] == "decimals" and decimals["default"] == 2
    document = requests.get(brightness.url + "/openapi.json", timeout=10).json()
    operation = document["paths"]["/v1/brightness"]["post"]
    assert operation["parameters"][0]["schema"] == {
        "type": "integer",
        "default": 2,
        "minimum": 0,
        "maximum": 6,
    }
    assert "render" not in {p["name"] for p in operation["parameters"]}  # it does not render


def test_it_gets_probes_errors_and_metrics_from_the_core(brightness):
    assert requests.get(brightness.url + "/healthz", timeout=5).json()["status"] == "alive"
    assert requests.get(brightness.url + "/readyz", timeout=5).json()["status"] == "ready"
    response = requests.get(brightness.url + "/v1/brightness", timeout=5)
    assert response.status_code == 405 and response.json()["error"]["code"]
    metrics = requests.get(brightness.url + "/metrics", timeout=5).text
    assert 'vision_stage_duration_seconds_count{service="brightness",stage="inference"}' in metrics


def test_the_core_knows_nothing_of_any_model():
    for part in ("core", "kit"):
        for path in (REPO_ROOT / "services" / part).rglob("*.py"):
            if "tests" in path.parts:
                continue
            text = path.read_text()
            name = path.relative_to(REPO_ROOT)
            for package in ("services.detector", "services.classifier", "services.web"):
                assert package not in text, f"{name} imports {package}"
            if part == "core":
                for word in ("yolo", "darknet", "resnet", "detect", "classif", "brightness"):
                    assert word not in text.lower(), f"{name} mentions {word}"
