"""The benchmark's closed-loop client against a tiny local server with a known service time."""

from __future__ import annotations

import threading
import time

import pytest
from flask import Flask, jsonify, request
from werkzeug.serving import make_server

from loadtest.bench.client import run_level
from loadtest.photos import Photo

PHOTOS = [Photo(f"p{i}.jpg", b"x" * 10, "image/jpeg", 10, 10) for i in range(3)]
SERVICE_S = 0.05


@pytest.fixture(scope="module")
def server_url():
    app = Flask("sleepy")

    @app.post("/predict")
    def predict():
        time.sleep(SERVICE_S)
        name = request.files["image"].filename
        return jsonify(ok=name != "p2.jpg")  # p2 gets a wrong answer

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/predict"
    server.shutdown()


def test_throughput_latency_and_wrong_answers(server_url):
    def send(session, photo):
        return session.post(server_url, files={"image": (photo.name, photo.data)}, timeout=5)

    def check(response, photo):
        return None if response.json()["ok"] else f"wrong answer for {photo.name}"

    result = run_level(send, check, PHOTOS, concurrency=4, warmup_s=0.3, duration_s=1.5)

    assert result.window_s >= 1.5
    assert result.answers > 0 and 0 < result.failures < result.answers
    assert result.first_failure == "wrong answer for p2.jpg"
    assert SERVICE_S * 1000 <= result.p50_ms < SERVICE_S * 1000 * 4
    assert result.p50_ms <= result.p95_ms <= result.p99_ms
    right_share = 1 - result.failures / result.answers
    # Little's law: 4 clients always busy, ~50 ms each -> ~80 answers/s before overheads.
    assert 20 < result.images_per_s / right_share < 4 / SERVICE_S * 1.1


def test_slow_servers_are_measured_over_several_cycles(server_url):
    def send(session, photo):
        time.sleep(0.3)  # a slow "server": 0.35 s per answer
        return session.post(server_url, files={"image": (photo.name, photo.data)}, timeout=5)

    result = run_level(send, lambda r, p: None, PHOTOS, concurrency=2, warmup_s=0, duration_s=0.1)
    assert result.answers >= 6  # 3 answers per client, not what 0.1 s would hold
    assert result.window_s > 0.6
