"""The stack behind nginx: balancing over replicas, failover, limits, JSON errors."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from scripts.local_stack import ROOM_FOR_EVERY_CLIENT, run_stack
from tests.support.load import ClosedLoopLoad
from tests.support.procfs import children

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def stack(stack_weights_dir, tmp_path_factory):
    with run_stack(
        tmp_path_factory.mktemp("stack"), stack_weights_dir, replicas=2, env=ROOM_FOR_EVERY_CLIENT
    ) as running:
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
    assert entries[0]["upstream_addr"] and float(entries[0]["upstream_header_time"]) > 0


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


def raw_request(url: str, data: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are (requests would refuse or fix them); (status, headers, body)."""
    import socket
    from urllib.parse import urlsplit

    address = urlsplit(url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
        sock.sendall(data)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
            if b"\r\n\r\n" in answer and answer.endswith(b"}"):
                break
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), headers, body


@pytest.mark.parametrize(
    ("request_bytes", "status", "code"),
    [
        (b"TRACE / HTTP/1.1\r\nHost: x\r\n\r\n", 405, "method_not_allowed"),
        (b"GET /?" + b"q" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "uri_too_long"),
        (b"NOT HTTP AT ALL\r\n\r\n", 400, "bad_request"),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"v" * 9000 + b"\r\n\r\n", 400, None),
        (
            b"POST /v1/detect HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
            501,
            "not_implemented",
        ),
    ],
)
def test_nginx_answers_its_own_errors_in_json(stack, request_bytes, status, code):
    answered, headers, body = raw_request(stack.url, request_bytes)
    assert answered == status, body
    assert headers["Content-Type"] == "application/json"
    error = json.loads(body)["error"]
    assert error["code"] == (code or "headers_too_large") and error["message"]
    if status == 405:
        assert "GET" in headers["Allow"]


def test_a_request_id_with_control_characters_is_replaced_in_both_logs(stack, images_dir):
    photo = (images_dir / "dog.jpg").read_bytes()
    response = post_photo(
        stack.url + "/v1/classify", photo, headers={"X-Request-ID": "abc\x1b[31mRED"}
    )
    assert response.status_code == 200
    request_id = response.headers["X-Request-ID"]
    assert "\x1b" not in request_id and request_id != "abc\x1b[31mRED"
    (entry,) = stack.wait_for_access_entries(lambda e: e["request_id"] == request_id, 1)
    assert entry["uri"] == "/v1/classify"  # nginx logged the id the service used and echoed


def test_redirects_keep_the_port_the_client_used(stack):
    response = requests.get(stack.url + "/static//etc/passwd", allow_redirects=False, timeout=5)
    assert response.is_redirect  # werkzeug merges the slashes
    location = response.headers["Location"]
    assert location.startswith("/") or location.startswith(stack.url + "/"), location


def test_made_up_methods_share_one_metric_label(stack):
    for _ in range(3):
        requests.request("XABCDEFGHIJKL", stack.url + "/v1/models", timeout=10)
    (web,) = stack.replicas["web"]
    metrics = requests.get(web.url + "/metrics", timeout=10).text
    assert 'method="other"' in metrics and "XABCDEFGHIJKL" not in metrics


def test_models_show_no_host_paths(stack):
    for entry in requests.get(stack.url + "/v1/models", timeout=30).json()["models"]:
        assert "/" not in entry["weights"]["path"], entry["weights"]
        assert "/" not in entry.get("cfg", ""), entry.get("cfg")


def test_many_headers_and_a_long_query_reach_the_service(stack):
    """What nginx lets through, gunicorn takes: its limits sit above nginx's."""
    headers = {f"X-Extra-{i}": "v" * 50 for i in range(120)}
    response = requests.get(stack.url + "/classifier/healthz", headers=headers, timeout=10)
    assert response.status_code == 200 and response.json()["status"] == "alive"
    response = requests.get(stack.url + "/detector/healthz?q=" + "x" * 7000, timeout=10)
    assert response.status_code == 200, response.text


def test_metrics_are_not_on_the_public_port(stack):
    for path in ("/web/metrics", "/detector/metrics", "/classifier/metrics", "/metrics"):
        response = requests.get(stack.url + path, timeout=10)
        assert response.status_code == 404, path
        assert response.json()["error"]["code"] == "not_found"
    (web,) = stack.replicas["web"]  # the replicas themselves still serve it (Prometheus)
    assert "vision_http_requests_total" in requests.get(web.url + "/metrics", timeout=10).text


def reload_nginx(master_pid: int, deadline_s: float = 30) -> None:
    """SIGHUP, then wait until no worker from before is left (old ones finish gracefully)."""
    before = set(children(master_pid))
    os.kill(master_pid, signal.SIGHUP)
    deadline = time.monotonic() + deadline_s
    while set(children(master_pid)) & before:
        if time.monotonic() > deadline:
            raise TimeoutError(f"nginx workers {before} still running {deadline_s}s after SIGHUP")
        time.sleep(0.02)


def test_reloading_nginx_under_load_fails_no_request(stack_weights_dir, tmp_path):
    """A reload (what a changed replica set triggers under Swarm and compose) makes the old
    worker close its idle connections: none of them may be the edge's connection to the
    balancer (a kept-alive one was, and its request got a 502). A client's own reused
    connection may be reset once, as browsers expect. Cheap requests through both servers
    to a replica, as fast as they go, make the race likely within a few reloads."""
    unlimited = {"client_rate": 100_000, "client_connections": 1_000}
    with run_stack(tmp_path, stack_weights_dir, nginx_tuning=unlimited) as stack:
        url = stack.url + "/classifier/healthz"
        with ClosedLoopLoad(url, None, 8, retry_reset_once=True, max_requests=200_000) as load:
            load.wait_for_answers(100)
            for _ in range(40):
                reload_nginx(stack.nginx.process.pid)
                load.wait_for_answers(len(load.outcomes) + 50)
    assert len(load.outcomes) > 2_000
    assert load.failures() == []
