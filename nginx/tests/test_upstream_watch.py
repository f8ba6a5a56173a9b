"""The DNS-following nginx supervisor used in the nginx container."""

from __future__ import annotations

import signal
import sys

import requests

from nginx.upstream_watch import NO_REPLICA, resolve, resolve_all
from scripts.launch import free_port, start_server


def test_resolve_gives_every_address_with_the_port():
    assert resolve("localhost:8002") == ["127.0.0.1:8002"]
    assert resolve("no-such-host.invalid:80") == []


def test_a_service_without_replicas_gets_a_down_placeholder():
    upstreams = resolve_all({"web": ["localhost:1"], "detector": ["no-such-host.invalid:1"]})
    assert upstreams == {"web": ["127.0.0.1:1"], "detector": [NO_REPLICA]}


def test_a_lookup_that_got_no_answer_keeps_the_servers_nginx_has():
    previous = {"detector": ["10.0.0.5:8002", "10.0.0.6:8002"], "web": ["10.0.0.7:8003"]}
    answers = {"detector:8002": None, "web:8003": ["10.0.0.8:8003"]}
    services = {"detector": ["detector:8002"], "web": ["web:8003"]}
    upstreams = resolve_all(services, previous, answers.get)
    assert upstreams == {"detector": previous["detector"], "web": ["10.0.0.8:8003"]}
    # At start there is nothing to keep: no answer counts as no replica.
    assert resolve_all(services, None, answers.get)["detector"] == [NO_REPLICA]


def test_nginx_runs_under_the_supervisor_and_stops_gracefully(tmp_path):
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "nginx.upstream_watch",
        "--listen",
        f"127.0.0.1:{port}",
        "--runtime-dir",
        str(tmp_path / "nginx"),
        "--interval",
        "0.5",
        "--service",
        "detector=localhost:9",
        "--service",
        "classifier=no-such-host.invalid:9",
        "--service",
        "web=localhost:9",
    ]
    server = start_server(
        command, f"http://127.0.0.1:{port}", tmp_path / "log", ready_path="/healthz"
    )
    try:
        server.wait_ready(30)
        response = requests.post(server.url + "/v1/classify", data=b"x", timeout=10)
        assert response.status_code == 502
        assert response.json()["error"]["code"] == "bad_gateway"
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(20) == 0
    finally:
        server.stop()
