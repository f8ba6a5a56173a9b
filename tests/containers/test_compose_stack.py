"""`docker compose up` works: the stack as users start it, end to end, in a private engine.

compose.yaml + tests/containers/compose.ci.yaml (stand-in weights, yolov3-tiny, the darknet
files from the shared data, nginx re-resolving every second) under a unique project name on
a free port. `up -d --build --wait` builds through compose itself, so compose's build order
(the model base before the images FROM it) is what is tested; then every request goes
through nginx on 127.0.0.1:STACK_PORT. The tests run in file order on one stack: requests
first, then the scale-up, then a graceful stop; `down -v --remove-orphans` always follows.
A failing test carries `docker compose ps -a` and `logs --tail 100` in its message
(conftest.py). Times and image sizes go to test-artifacts/compose-stack.json.
"""

from __future__ import annotations

import io
import json
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

import pytest
import requests
from PIL import Image

from scripts.launch import IMAGES_DIR, free_port
from tests.containers.conftest import ARTIFACTS
from tests.containers.engine import IMAGES, CommandError, ComposeProject, Engine, compose_project

pytestmark = [pytest.mark.containers, pytest.mark.slow, pytest.mark.timeout(1800)]

PHOTO = IMAGES_DIR / "dog.jpg"
PHOTO_SIZE = (768, 576)
SERVICE_UID = "10001"
MAX_BODY_MB = 8  # not the default (20): shows MAX_BODY_MB reaches nginx through compose
# compose.yaml's defaults: 2 replicas per model service; model-base is build-only (scale 0)
RUNNING = {"classifier": 2, "detector": 2, "web": 1, "nginx": 1}
SCALED_DETECTORS = 3


@dataclass
class Stack:
    project: ComposeProject
    url: str
    started_at: float  # time.time() when `up` was started
    record: dict = field(default_factory=dict)  # -> test-artifacts/compose-stack.json

    def post_photo(self, path: str, **kwargs) -> requests.Response:
        with open(PHOTO, "rb") as photo:
            files = {"image": ("dog.jpg", photo, "image/jpeg")}
            return requests.post(self.url + path, files=files, timeout=120, **kwargs)

    def get(self, path: str, **kwargs) -> requests.Response:
        return requests.get(self.url + path, timeout=60, **kwargs)

    def containers(self, service: str | None = None, include_stopped: bool = False) -> list[dict]:
        return self.project.inspect(self.project.container_ids(service, include_stopped))


def service_of(container: dict) -> str:
    return container["Config"]["Labels"]["com.docker.compose.service"]


def replica_of(response: requests.Response) -> str:
    """X-Served-By is ``<hostname>:<port>/<pid>``; a container's hostname is its short id."""
    return response.headers["X-Served-By"].split(":", 1)[0]


def timestamp(value: str) -> float:
    """Docker's RFC 3339 time with nanoseconds -> epoch seconds."""
    value = re.sub(r"(\.\d{6})\d+", r"\1", value).replace("Z", "+00:00")
    return datetime.fromisoformat(value).timestamp()


def image_facts(engine: Engine, started_at: float) -> dict[str, dict]:
    """Size and build time (seconds after `up` started; negative: built before) per image."""
    facts = {}
    for service, (_dockerfile, tag) in IMAGES.items():
        image = json.loads(engine.docker("image", "inspect", tag))[0]
        facts[service] = {
            "image": tag,
            "size_mb": round(image["Size"] / 1e6),
            "layers": len(image["RootFS"]["Layers"]),
            "created_s_after_up": round(timestamp(image["Created"]) - started_at, 1),
        }
    return facts


def container_facts(stack: Stack) -> dict[str, dict]:
    """When each container started (and the weights job finished), seconds after `up`."""
    facts = {}
    for container in stack.containers(include_stopped=True):
        state = container["State"]
        entry = {"started_s_after_up": round(timestamp(state["StartedAt"]) - stack.started_at, 1)}
        if state["Status"] == "exited":
            entry["finished_s_after_up"] = round(
                timestamp(state["FinishedAt"]) - stack.started_at, 1
            )
        facts[container["Name"].lstrip("/")] = entry
    return facts


@pytest.fixture(scope="module")
def compose_stack(
    docker_engine: Engine, stack_compose_env: dict[str, str], compose_build_state: dict
) -> Iterator[Stack]:
    port = free_port()
    variables = {**stack_compose_env, "STACK_PORT": str(port), "MAX_BODY_MB": str(MAX_BODY_MB)}
    name = f"vs-ci-{uuid.uuid4().hex[:8]}"
    record: dict = {"project": name, "stack_port": port}
    down_started = None
    try:
        with compose_project(docker_engine, name, variables) as project:
            stack = Stack(project, f"http://127.0.0.1:{port}", time.time(), record)
            started = time.monotonic()
            try:
                result = project.run(
                    "up", "-d", "--build", "--wait", "--wait-timeout", "900", timeout_s=1500
                )
            except CommandError as error:
                pytest.fail(f"{error}\n\n{project.describe_state()}", pytrace=False)
            record["up_build_wait_s"] = round(time.monotonic() - started, 1)
            compose_build_state["built"] = True
            ARTIFACTS.mkdir(exist_ok=True)
            (ARTIFACTS / "compose-up.log").write_text(result.stdout + result.stderr)
            record["images"] = image_facts(docker_engine, stack.started_at)
            record["containers"] = container_facts(stack)
            record["docker_image_ls"] = docker_engine.docker(
                "image", "ls", "--format", "{{.Repository}}:{{.Tag}} {{.Size}}"
            ).splitlines()
            record["docker_system_df"] = docker_engine.docker("system", "df").splitlines()
            yield stack
            down_started = time.monotonic()
    finally:
        if down_started is not None:
            record["down_s"] = round(time.monotonic() - down_started, 1)
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "compose-stack.json").write_text(json.dumps(record, indent=2) + "\n")


def test_compose_built_the_model_base_first_and_started_every_service(compose_stack: Stack):
    images = compose_stack.record["images"]
    for service in ("weights", "classifier", "detector"):
        assert images[service]["created_s_after_up"] > images["model-base"]["created_s_after_up"]

    containers = compose_stack.containers(include_stopped=True)
    by_service: dict[str, list[dict]] = {}
    for container in containers:
        by_service.setdefault(service_of(container), []).append(container)
    assert "model-base" not in by_service, "the build-only model-base service ran"
    (weights,) = by_service.pop("weights")
    assert weights["State"]["Status"] == "exited" and weights["State"]["ExitCode"] == 0
    assert {service: len(found) for service, found in by_service.items()} == RUNNING
    for container in containers:
        if container is weights:
            continue
        name, state = container["Name"], container["State"]
        assert state["Status"] == "running", f"{name}: {state['Status']}"
        assert state["Health"]["Status"] == "healthy", f"{name}: {state['Health']}"
        assert container["RestartCount"] == 0, f"{name} restarted"
        assert container["Config"]["User"] == "app", name
        # Every process of the container (PID 1, workers, nginx's master and workers).
        top = compose_stack.project.engine.docker("top", container["Id"], "-eo", "pid,uid,args")
        processes = [line.split(None, 2) for line in top.splitlines()[1:]]
        assert processes and all(uid == SERVICE_UID for _pid, uid, _args in processes), top


def test_classify_through_nginx(compose_stack: Stack):
    response = compose_stack.post_photo("/v1/classify")
    assert response.status_code == 200, response.text[:500]
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.headers["X-Request-ID"] and response.headers["X-Served-By"]
    body = response.json()
    assert len(body["predictions"]) == 5
    assert all({"label", "class_id", "confidence"} <= set(p) for p in body["predictions"]), body[
        "predictions"
    ]
    assert body["image"] == {"width": PHOTO_SIZE[0], "height": PHOTO_SIZE[1]}
    assert body["model"]["trained"] is False and body["model"]["weights"] == "stand-in"
    assert body["warning"]


def test_detect_json_and_rendered_jpeg_through_nginx(compose_stack: Stack):
    response = compose_stack.post_photo("/v1/detect")
    assert response.status_code == 200, response.text[:500]
    body = response.json()
    assert isinstance(body["detections"], list)
    for detection in body["detections"]:
        assert {"label", "class_id", "confidence", "box"} <= set(detection), detection
    assert body["image"] == {"width": PHOTO_SIZE[0], "height": PHOTO_SIZE[1]}
    assert body["model"]["name"] == "yolov3-tiny" and body["model"]["trained"] is False
    assert body["warning"]

    rendered = compose_stack.post_photo("/v1/detect?render=1")
    assert rendered.status_code == 200, rendered.text[:500]
    assert rendered.headers["Content-Type"] == "image/jpeg"
    assert rendered.headers["X-Model-Trained"] == "false"
    picture = Image.open(io.BytesIO(rendered.content))
    assert picture.format == "JPEG" and picture.size == PHOTO_SIZE


def test_web_page_models_and_no_js_upload_through_nginx(compose_stack: Stack):
    page = compose_stack.get("/")
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert 'id="upload-form"' in page.text and 'action="/upload"' in page.text

    models = compose_stack.get("/v1/models")
    assert models.status_code == 200, models.text[:500]
    entries = {entry["service"]: entry for entry in models.json()["models"]}
    assert set(entries) == {"detector", "classifier"}, entries
    for entry in entries.values():
        assert "error" not in entry, entry
        assert entry["weights"]["source"] == "stand-in" and entry["weights"]["trained"] is False
        # Each replica's torch threads follow its CPU limit (compose: cpus 1), not the host.
        assert entry["runtime"]["torch_threads"] == 1, entry["runtime"]
    assert entries["detector"]["name"] == "yolov3-tiny"

    # The web service calls both models back through nginx (compose service names).
    upload = compose_stack.post_photo("/upload", headers={"Accept": "application/json"})
    assert upload.status_code == 200, upload.text[:500]
    results = upload.json()
    assert set(results) == {"detection", "classification"}
    for part in results.values():
        assert "error" not in part, part
    assert len(results["classification"]["predictions"]) == 5


def test_health_limits_and_errors_through_nginx(compose_stack: Stack):
    assert compose_stack.get("/healthz").json()["service"] == "nginx"
    for service in ("detector", "classifier", "web"):
        ready = compose_stack.get(f"/{service}/readyz")
        assert ready.status_code == 200, ready.text[:500]
        assert ready.json()["service"] == service and ready.json()["status"] == "ready"
    too_big = requests.post(
        compose_stack.url + "/v1/detect",
        data=b"\0" * ((MAX_BODY_MB + 1) * 1024 * 1024),
        headers={"Content-Type": "image/jpeg"},
        timeout=60,
    )
    assert too_big.status_code == 413
    error = too_big.json()["error"]
    assert error["code"] == "payload_too_large" and f"{MAX_BODY_MB} MB" in error["message"]
    missing = compose_stack.get("/v1/nothing-here")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def replicas_answering(
    stack: Stack, path: str, expected: set[str], max_requests: int, deadline_s: float
) -> tuple[set[str], int]:
    """Send requests until every expected replica answered (or the bounds are reached);
    returns the replicas seen and the number of requests sent."""
    seen: set[str] = set()
    deadline = time.monotonic() + deadline_s
    sent = 0
    while seen != expected and sent < max_requests and time.monotonic() < deadline:
        response = stack.post_photo(path)
        sent += 1
        assert response.status_code == 200, response.text[:500]
        seen.add(replica_of(response))
    return seen, sent


def test_both_classifier_replicas_answer(compose_stack: Stack):
    expected = {c["Id"][:12] for c in compose_stack.containers("classifier")}
    seen, sent = replicas_answering(compose_stack, "/v1/classify", expected, 20, 120)
    assert seen == expected, f"{sent} requests reached {seen}, replicas are {expected}"


def test_scale_up_detector_is_balanced_without_restarting_nginx(compose_stack: Stack):
    project = compose_stack.project
    (nginx_before,) = project.container_ids("nginx")
    started = time.monotonic()
    project.run(
        "up", "-d", "--scale", f"detector={SCALED_DETECTORS}", "--no-recreate",
        "--wait", "--wait-timeout", "300",
        timeout_s=600,
    )  # fmt: skip
    compose_stack.record["scale_up_wait_s"] = round(time.monotonic() - started, 1)
    detectors = compose_stack.containers("detector")
    assert len(detectors) == SCALED_DETECTORS
    assert all(c["State"]["Health"]["Status"] == "healthy" for c in detectors)
    assert project.container_ids("nginx") == [nginx_before], "nginx was recreated"

    # nginx/upstream_watch.py re-resolves `detector` every NGINX_RESOLVE_INTERVAL_S (1 s here)
    expected = {c["Id"][:12] for c in detectors}
    started = time.monotonic()
    seen, sent = replicas_answering(compose_stack, "/v1/detect", expected, 60, 60)
    compose_stack.record["scale_all_replicas_answering"] = {
        "seconds_after_wait": round(time.monotonic() - started, 1),
        "requests": sent,
    }
    assert seen == expected, f"{sent} requests reached {seen}, replicas are {expected}"
    assert "replicas changed; reloading nginx" in project.compose("logs", "--no-color", "nginx")


def test_stop_is_graceful(compose_stack: Stack):
    """SIGTERM reaches gunicorn and SIGQUIT nginx (through its supervisor): every service
    exits 0, quickly, well within its stop_grace_period."""
    running = compose_stack.project.container_ids()
    assert {service_of(c) for c in compose_stack.project.inspect(running)} == set(RUNNING)
    started = time.monotonic()
    compose_stack.project.run("stop", timeout_s=300)
    elapsed = time.monotonic() - started
    compose_stack.record["stop_s"] = round(elapsed, 1)
    for container in compose_stack.project.inspect(running):
        name, state = container["Name"], container["State"]
        assert state["Status"] == "exited", f"{name}: {state['Status']}"
        assert state["ExitCode"] == 0 and not state["OOMKilled"], f"{name}: {state}"
    assert elapsed < 60, f"docker compose stop took {elapsed:.0f}s"
