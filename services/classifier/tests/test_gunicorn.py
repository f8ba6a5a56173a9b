"""The classifier under real gunicorn: several workers, metrics, shutdown, config errors."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from PIL import Image

from scripts.launch import free_port, gunicorn_command, run_service
from scripts.local_stack import ROOM_FOR_EVERY_CLIENT

pytestmark = pytest.mark.slow


def metric_value(text: str, name: str, labels: dict[str, str]) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.fixture(scope="module")
def server(classifier_weights, tmp_path_factory):
    env = {
        "CLASSIFIER_WEIGHTS": str(classifier_weights),
        "CLASSIFIER_WORKERS": "2",
        "CLASSIFIER_TORCH_THREADS": "1",
        "CLASSIFIER_MAX_BATCH": "1",
        # Room for all 8 clients in either worker: this is about workers, not admission.
        "CLASSIFIER_QUEUE_LIMIT": ROOM_FOR_EVERY_CLIENT["CLASSIFIER_QUEUE_LIMIT"],
    }
    with run_service("classifier", env, tmp_path_factory.mktemp("logs")) as running:
        yield running


def test_two_workers_serve_concurrent_requests_and_metrics_count_all(server, images_dir):
    photos = [p.read_bytes() for p in sorted(images_dir.glob("*.jpg"))]
    ready = requests.get(server.url + "/readyz", timeout=5).json()
    assert ready["workers"] == 2 and ready["workers_ready"] == 2

    def classify(index: int) -> requests.Response:
        photo = photos[index % len(photos)]
        return requests.post(
            server.url + "/v1/classify", files={"image": ("p.jpg", photo)}, timeout=60
        )

    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(classify, range(24)))
    assert [r.status_code for r in responses] == [200] * 24
    served_by = {r.headers["X-Served-By"] for r in responses}
    assert len(served_by) == 2, f"both workers should answer, got {served_by}"

    text = requests.get(server.url + "/metrics", timeout=5).text
    labels = {"endpoint": "/v1/classify", "method": "POST", "status": "200"}
    assert metric_value(text, "vision_http_requests_total", labels) == 24
    assert metric_value(text, "vision_images_processed_total", {"service": "classifier"}) == 24


def test_one_json_log_line_per_request_with_stage_timings(server):
    image = io.BytesIO()
    Image.new("RGB", (50, 50)).save(image, "PNG")
    response = requests.post(
        server.url + "/v1/classify",
        data=image.getvalue(),
        headers={"Content-Type": "image/png", "X-Request-ID": "log-me-1"},
        timeout=30,
    )
    assert response.status_code == 200
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        lines = [line for line in server.log().splitlines() if '"log-me-1"' in line]
        if lines:
            break
        time.sleep(0.1)
    assert len(lines) == 1
    assert re.search(r'"timings_ms": \{"decode": [0-9.]+, "preprocess"', lines[0])


def test_sigterm_lets_the_request_in_flight_finish(classifier_weights, tmp_path, images_dir):
    env = {
        "CLASSIFIER_WEIGHTS": str(classifier_weights),
        "CLASSIFIER_WORKERS": "1",
        "CLASSIFIER_TORCH_THREADS": "1",
        "CLASSIFIER_MAX_BATCH": "1",
        # Room for all 8 clients in either worker: this is about workers, not admission.
        "CLASSIFIER_QUEUE_LIMIT": ROOM_FOR_EVERY_CLIENT["CLASSIFIER_QUEUE_LIMIT"],
    }
    photo = (images_dir / "horses.jpg").read_bytes()
    with run_service("classifier", env, tmp_path) as server:
        result = {}

        def slow_request():
            files = [("image", (f"{i}.jpg", photo)) for i in range(12)]  # ~12 model calls
            result["response"] = requests.post(
                server.url + "/v1/classify", files=files, timeout=120
            )

        client = threading.Thread(target=slow_request)
        client.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # wait until the request is inside the worker
            text = requests.get(server.url + "/metrics", timeout=5).text
            if metric_value(text, "vision_http_requests_in_flight", {}) >= 2:  # it + /metrics
                break
            time.sleep(0.05)
        else:
            pytest.fail("the request never showed up as in flight")
        os.kill(server.process.pid, signal.SIGTERM)
        client.join(120)
        assert server.process.wait(60) == 0
        assert result["response"].status_code == 200
        assert len(result["response"].json()["results"]) == 12


def start_and_fail(env: dict[str, str]) -> subprocess.CompletedProcess:
    full_env = {
        **os.environ,
        "CLASSIFIER_HOST": "127.0.0.1",
        "CLASSIFIER_PORT": str(free_port()),
        **env,
    }
    return subprocess.run(
        gunicorn_command("classifier"),
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
        start_new_session=True,
    )


def test_bad_setting_stops_the_start_with_one_line_naming_it(classifier_weights):
    done = start_and_fail(
        {"CLASSIFIER_WEIGHTS": str(classifier_weights), "CLASSIFIER_TOP_K": "lots"}
    )
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "classifier: configuration error: CLASSIFIER_TOP_K='lots' is not an integer"
    )


def test_missing_weights_file_is_named(tmp_path):
    done = start_and_fail({"CLASSIFIER_WEIGHTS": str(tmp_path / "nope.pth")})
    assert done.returncode == 2
    assert "CLASSIFIER_WEIGHTS=" in done.stderr and "no such file" in done.stderr


def test_corrupt_weights_stop_the_service_instead_of_looping(tmp_path):
    broken = tmp_path / "broken.pth"
    broken.write_bytes(b"this is not a checkpoint")
    done = start_and_fail({"CLASSIFIER_WEIGHTS": str(broken)})
    assert done.returncode != 0
    assert "not a readable PyTorch state dict" in done.stdout + done.stderr
    assert "Worker failed to boot" in done.stderr
