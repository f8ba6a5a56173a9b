"""upstream.ModelServices against a stub HTTP server: every failure becomes an error body."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from services.web.photos import Photo
from services.web.upstream import ModelServices

PHOTO = Photo(b"\xff\xd8 not really a jpeg", "dog.jpg", "image/jpeg")


class StubHandler(BaseHTTPRequestHandler):
    """Answers by path with a canned (status, content type, body); a path under /slow
    answers the same a second late."""

    answers: ClassVar[dict[str, tuple[int, str, bytes]]] = {}
    seen: ClassVar[list[tuple[str, str | None, bytes]]] = []

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        StubHandler.seen.append((self.path, self.headers.get("X-Request-ID"), body))
        path = self.path.split("?")[0]
        if path.startswith("/slow/"):
            time.sleep(1.0)
            path = path.removeprefix("/slow")
        status, content_type, payload = self.answers.get(path, (404, "text/plain", b"no"))
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the slow answer's caller has timed out and gone, as intended

    do_GET = do_POST = _answer

    def log_message(self, *args) -> None:  # keep test output clean
        pass


@pytest.fixture(scope="module")
def stub_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), StubHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def as_json(body: dict) -> tuple[int, str, bytes]:
    return 200, "application/json", json.dumps(body).encode()


def services(detector: str, classifier: str, timeout_s: float = 5.0) -> ModelServices:
    return ModelServices(detector, classifier, timeout_s)


def test_answers_pass_through_and_carry_the_request_id(stub_url):
    StubHandler.answers = {
        "/v1/detect": as_json({"detections": [], "image": {"width": 1, "height": 1}}),
        "/v1/classify": as_json({"predictions": []}),
    }
    StubHandler.seen = []
    results = services(stub_url, stub_url).analyse(PHOTO, "req-7", conf_threshold=0.3)
    assert results["detection"]["detections"] == []
    assert results["classification"]["predictions"] == []
    assert {(path, request_id) for path, request_id, _ in StubHandler.seen} == {
        ("/v1/detect?conf_threshold=0.3", "req-7"),
        ("/v1/classify?top_k=5", "req-7"),
    }
    assert all(b'name="image"; filename="dog.jpg"' in body for _, _, body in StubHandler.seen)


def test_service_error_bodies_keep_their_code_and_status(stub_url):
    error = {"error": {"code": "model_not_ready", "message": "loading"}}
    StubHandler.answers = {"/v1/detect": (503, "application/json", json.dumps(error).encode())}
    detection = services(stub_url, stub_url).analyse(PHOTO, "r")["detection"]
    assert detection == {**error, "status": 503}


def test_non_json_answers_become_bad_gateway(stub_url):
    StubHandler.answers = {
        "/v1/detect": (502, "text/html", b"<html>Bad Gateway</html>"),
        "/v1/classify": (200, "text/plain", b"ok"),
    }
    results = services(stub_url, stub_url).analyse(PHOTO, "r")
    assert results["detection"]["error"]["code"] == "bad_gateway"
    assert "HTTP 502" in results["detection"]["error"]["message"]
    assert results["classification"]["error"]["code"] == "bad_gateway"


def test_unreachable_and_slow_services_become_unavailable_and_timeout(stub_url, closed_port_url):
    StubHandler.answers = {"/v1/models": as_json({"models": []})}
    client = ModelServices(closed_port_url, stub_url + "/slow", timeout_s=0.3)
    started = time.monotonic()
    detector, classifier = client.list_models("r")
    assert time.monotonic() - started < 3
    assert detector["error"]["code"] == "unavailable"
    assert classifier["error"]["code"] == "gateway_timeout"
    assert "0.3 s" in classifier["error"]["message"]


def test_model_list_merges_services_and_marks_the_one_that_is_down(stub_url, closed_port_url):
    entry = {"service": "classifier", "name": "resnet18", "weights": {"trained": False}}
    StubHandler.answers = {"/v1/models": as_json({"models": [entry]})}
    models = services(closed_port_url, stub_url).list_models("r")
    assert models[0]["service"] == "detector"
    assert models[0]["error"]["code"] == "unavailable"
    assert models[1] == entry


def test_model_list_without_a_list_is_an_error_entry(stub_url):
    StubHandler.answers = {"/v1/models": as_json({"unexpected": True})}
    models = services(stub_url, stub_url).list_models("r")
    assert [m["error"]["code"] for m in models] == ["bad_gateway", "bad_gateway"]
