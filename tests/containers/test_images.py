"""The images compose builds, inspected without running them (the compose stack test runs
them: healthy, non-root, real requests, graceful stop). They are the session's one build
(``stack_images``): no image is built twice.
"""

from __future__ import annotations

import json

import pytest

from tests.containers.engine import Engine

pytestmark = [pytest.mark.containers, pytest.mark.slow, pytest.mark.timeout(1800)]

# Images without torch must stay small: torch (or a CUDA library) leaking into them would
# show as gigabytes. Measured: web ~300 MB, nginx ~190 MB on the local base.
SMALL_IMAGES_MAX_MB = {"web": 500, "nginx": 400}


def inspect(engine: Engine, image: str) -> dict:
    return json.loads(engine.docker("image", "inspect", image))[0]


def test_model_images_share_the_torch_layer(docker_engine: Engine, stack_images) -> None:
    """The multi-GB torch layer is stored once: the images built FROM the model base contain
    its layers unchanged."""
    layers = {
        service: inspect(docker_engine, stack_images[service])["RootFS"]["Layers"]
        for service in ("model-base", "classifier", "detector", "weights")
    }
    base = layers.pop("model-base")
    for service, found in layers.items():
        assert found[: len(base)] == base, f"{service} does not start with the model base"


def test_images_without_torch_stay_small(docker_engine: Engine, stack_images) -> None:
    for service, limit_mb in SMALL_IMAGES_MAX_MB.items():
        size_mb = inspect(docker_engine, stack_images[service])["Size"] / 1e6
        assert size_mb < limit_mb, f"{service} is {size_mb:.0f} MB (limit {limit_mb} MB)"


@pytest.mark.parametrize("service", ["classifier", "detector", "web", "nginx", "weights"])
def test_image_runs_as_the_service_user(docker_engine: Engine, stack_images, service) -> None:
    config = inspect(docker_engine, stack_images[service])["Config"]
    assert config["User"] == "app"
    if service != "weights":  # a one-shot job has no healthcheck
        assert config["Healthcheck"]["Test"][0] == "CMD"
