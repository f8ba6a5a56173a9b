"""Each service image, run alone with `docker run`: it becomes healthy through its own
HEALTHCHECK, serves as the unprivileged user, and stops cleanly on `docker stop` (SIGTERM
reaches gunicorn / nginx as PID 1). The assembled stack is tested with compose separately.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Iterator

import pytest
import requests

from tests.containers.engine import IMAGES, Engine
from tests.support.processes import DARKNET_DIR, wait_for_http

pytestmark = [pytest.mark.containers, pytest.mark.slow]

# service -> (port in the container, environment)
SERVICES = {
    "classifier": (8001, {}),
    "detector": (8002, {"DETECTOR_MODEL": "yolov3-tiny"}),
    "web": (
        8003,
        {
            "WEB_DETECTOR_URL": "http://detector:8002",
            "WEB_CLASSIFIER_URL": "http://classifier:8001",
        },
    ),
}


@contextlib.contextmanager
def scratch(engine: Engine) -> Iterator[dict[str, str]]:
    """A network and a weights volume with unique names, removed afterwards with whatever
    containers the test started on them."""
    suffix = uuid.uuid4().hex[:8]
    names = {
        "network": f"vs-net-{suffix}",
        "volume": f"vs-weights-{suffix}",
        "prefix": f"vs-{suffix}",
    }
    engine.docker("network", "create", names["network"])
    engine.docker("volume", "create", names["volume"])
    try:
        yield names
    finally:
        ids = engine.docker("ps", "-aq", "--filter", f"name={names['prefix']}").split()
        if ids:
            engine.docker("rm", "-f", *ids)
        engine.docker("network", "rm", names["network"])
        engine.docker("volume", "rm", names["volume"])


def fill_weights(engine: Engine, volume: str, service: str) -> None:
    """Stand-in weights for ``service``'s model, written by the weights image as the service
    user (the darknet cfg/names are copied from the shared data: there is no network)."""
    engine.docker(
        "run", "--rm",
        "-v", f"{volume}:/weights",
        "-v", f"{DARKNET_DIR}:/darknet:ro",
        IMAGES["weights"][1],
        "--allow-standin", "--only", service,
        "--darknet-dir", "/darknet", "--detector-models", "yolov3-tiny",
        timeout_s=300,
    )  # fmt: skip


def health(engine: Engine, container: str) -> str:
    state = json.loads(engine.docker("inspect", "-f", "{{json .State}}", container))
    return state.get("Health", {}).get("Status", "none")


def wait_healthy(engine: Engine, container: str, deadline_s: float) -> None:
    deadline = time.monotonic() + deadline_s
    while (status := health(engine, container)) != "healthy":
        if status == "unhealthy" or time.monotonic() > deadline:
            logs = engine.docker("logs", "--tail", "40", container)
            pytest.fail(f"{container} is {status} after {deadline_s}s:\n{logs}")
        time.sleep(1)


@pytest.mark.parametrize("service", list(SERVICES))
def test_service_image(docker_engine: Engine, built_images, service: str, images_dir) -> None:
    port, env = SERVICES[service]
    image = IMAGES[service][1]
    with scratch(docker_engine) as names:
        if service in ("classifier", "detector"):
            fill_weights(docker_engine, names["volume"], service)
        container = f"{names['prefix']}-{service}"
        env_args = [arg for key, value in env.items() for arg in ("-e", f"{key}={value}")]
        docker_engine.docker(
            "run", "-d", "--name", container, "--network", names["network"],
            "-v", f"{names['volume']}:/weights:ro", "-p", f"127.0.0.1::{port}",
            *env_args, image,
        )  # fmt: skip
        published = docker_engine.docker("port", container, f"{port}/tcp").splitlines()[0]
        url = f"http://{published}"
        try:
            wait_for_http(url + "/readyz", deadline_s=240)
        except (RuntimeError, TimeoutError) as error:
            pytest.fail(f"{error}\n{docker_engine.docker('logs', '--tail', '40', container)}")
        wait_healthy(docker_engine, container, deadline_s=60)

        assert docker_engine.docker("exec", container, "id", "-u") == "10001"
        if service != "web":
            endpoint = {"classifier": "/v1/classify", "detector": "/v1/detect"}[service]
            with open(images_dir / "dog.jpg", "rb") as photo:
                reply = requests.post(
                    url + endpoint, files={"image": ("dog.jpg", photo)}, timeout=120
                )
            assert reply.status_code == 200, reply.text[:500]

        started = time.monotonic()
        docker_engine.docker("stop", "-t", "30", container, timeout_s=60)
        assert time.monotonic() - started < 25, "SIGTERM did not stop the server promptly"
        exit_code = docker_engine.docker("inspect", "-f", "{{.State.ExitCode}}", container)
        assert exit_code == "0", docker_engine.docker("logs", "--tail", "40", container)


def test_nginx_image_renders_config_and_stops(docker_engine: Engine, built_images) -> None:
    """nginx renders its config from the environment at start; upstream names must resolve,
    so point all three at one tiny container standing in for the services."""
    image = IMAGES["nginx"][1]
    with scratch(docker_engine) as names:
        upstream = f"{names['prefix']}-upstream"
        docker_engine.docker(
            "run", "-d", "--name", upstream, "--network", names["network"],
            "--entrypoint", "python3", image, "-m", "http.server", "8000",
        )  # fmt: skip
        container = f"{names['prefix']}-nginx"
        server = f"{upstream}:8000"
        docker_engine.docker(
            "run", "-d", "--name", container, "--network", names["network"],
            "-p", "127.0.0.1::8080",
            "-e", f"NGINX_DETECTOR_UPSTREAM={server}", "-e", f"NGINX_CLASSIFIER_UPSTREAM={server}",
            "-e", f"NGINX_WEB_UPSTREAM={server}", "-e", "MAX_BODY_MB=1", image,
        )  # fmt: skip
        url = "http://" + docker_engine.docker("port", container, "8080/tcp").splitlines()[0]
        wait_for_http(url + "/healthz", deadline_s=60)
        wait_healthy(docker_engine, container, deadline_s=60)
        assert docker_engine.docker("exec", container, "id", "-u") == "10001"
        # proxied to the stand-in upstream's directory listing
        assert requests.get(url + "/", timeout=10).status_code == 200
        # the body limit came from MAX_BODY_MB
        too_big = requests.post(url + "/v1/detect", data=b"x" * (2 * 1024 * 1024), timeout=10)
        assert too_big.status_code == 413
        docker_engine.docker("stop", "-t", "20", container, timeout_s=60)
        assert docker_engine.docker("inspect", "-f", "{{.State.ExitCode}}", container) == "0"


def test_model_images_share_the_torch_layer(docker_engine: Engine, built_images) -> None:
    """The multi-GB torch layer is stored once: both model images contain the model base's
    layers unchanged."""
    layers = {
        name: json.loads(
            docker_engine.docker(
                "image", "inspect", "-f", "{{json .RootFS.Layers}}", IMAGES[name][1]
            )
        )
        for name in ("model-base", "classifier", "detector")
    }
    base = layers["model-base"]
    assert layers["classifier"][: len(base)] == base
    assert layers["detector"][: len(base)] == base
