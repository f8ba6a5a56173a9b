"""The stack behind nginx: balancing over replicas, failover, limits, JSON errors."""

from __future__ import annotations

import os
import signal
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from scripts.local_stack import run_stack

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def stack(stack_weights_dir, tmp_path_factory):
    with run_stack(tmp_path_factory.mktemp("stack"), stack_weights_dir, replicas=2) as running:
        yield running


def post_photo(url: str, photo: bytes, **kwargs) -> requests.Response:
    return requests.post(
        url, files={"image": ("photo.jpg", photo, "image/jpeg")}, timeout=120, **kwargs
    )


def test_requests_are_spread_over_every_replica(stack, images_dir):
    photo = (images_dir / "dog.jpg").read_bytes()
    for endpoint, service in (("/v1/classify", "classifier"), ("/v1/detect", "detector")):
        served_by = set()
        for _ in range(8):
            response = post_photo(stack.url + endpoint, photo)
            assert response.status_code == 200, response.text
            served_by.add(response.headers["X-Served-By"])
        assert len(served_by) == 2, f"{service}: {served_by}"
    entries = stack.wait_for_access_entries(lambda e: e["uri"] == "/v1/classify", 8)
    upstreams = {e["upstream_addr"] for e in entries}
    expected = {s.url.removeprefix("http://") for s in stack.replicas["classifier"]}
    assert upstreams == expected


def test_request_id_passes_through_to_the_access_log(stack, images_dir):
    photo = (images_dir / "kite.jpg").read_bytes()
    response = post_photo(
        stack.url + "/v1/classify", photo, headers={"X-Request-ID": "through-nginx-42"}
    )
    assert response.headers["X-Request-ID"] == "through-nginx-42"
    entries = stack.wait_for_access_entries(lambda e: e["request_id"] == "through-nginx-42", 1)
    assert len(entries) == 1
    assert entries[0]["upstream_addr"] and float(entries[0]["upstream_response_time"]) > 0


def test_per_service_health_is_visible(stack):
    assert requests.get(stack.url + "/healthz", timeout=5).json()["service"] == "nginx"
    for service in ("detector", "classifier", "web"):
        response = requests.get(f"{stack.url}/{service}/readyz", timeout=5)
        assert response.status_code == 200 and response.json()["service"] == service


def test_oversize_body_gets_json_413_from_nginx(stack):
    body = b"\0" * (21 * 1024 * 1024)
    response = requests.post(
        stack.url + "/v1/detect", data=body, headers={"Content-Type": "image/jpeg"}, timeout=60
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_too_many_pixels_gets_json_413_from_the_service(stack):
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("1", (9000, 9000)).save(buffer, "PNG")  # 81 MP, a few kB on the wire
    response = requests.post(
        stack.url + "/v1/classify",
        data=buffer.getvalue(),
        headers={"Content-Type": "image/png"},
        timeout=60,
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "image_too_large"


def test_unknown_path_is_a_json_404(stack):
    response = requests.get(stack.url + "/v1/nothing-here", timeout=5)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_killing_a_replica_mid_stream_fails_no_request(stack, images_dir):
    photo = (images_dir / "person.jpg").read_bytes()
    victim = stack.replicas["classifier"][0]
    survivor = stack.replicas["classifier"][1]
    done = 0
    halfway = threading.Event()
    lock = threading.Lock()

    def classify(_index: int) -> int:
        nonlocal done
        response = post_photo(stack.url + "/v1/classify", photo)
        with lock:
            done += 1
            if done >= 10:
                halfway.set()
        return response.status_code

    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(classify, i) for i in range(40)]
        assert halfway.wait(120), "the stream never got going"
        os.killpg(victim.process.pid, signal.SIGKILL)  # the whole replica: master + workers
        statuses = [f.result() for f in futures]
    assert statuses == [200] * 40
    assert victim.process.wait(10) is not None
    # Afterwards everything is served by the survivor.
    response = post_photo(stack.url + "/v1/classify", photo)
    assert response.status_code == 200
    assert response.headers["X-Served-By"].split("/")[0] == survivor_name(survivor)


def survivor_name(server) -> str:
    return requests.get(server.url + "/healthz", timeout=5).headers["X-Served-By"].split("/")[0]
