"""Health and readiness stay fast while every replica is saturated with inference.

Swarm and Kubernetes replace a task whose probe times out, so a busy replica must never
look dead. Two detector replicas (yolov3-tiny, 1 torch thread, 4 HTTP threads each) get
32 closed-loop clients through nginx, far more than their threads; meanwhile the probes are
sent as the orchestrators send them: through nginx's per-service prefix (on nginx's kept-alive
upstream connections, which also carry inference) and straight to each replica on a new
connection, as docker/healthcheck.py does. Each must answer 200 within the healthcheck
timeout. The figures (probe latencies against a non-probe request on the same replicas) are
printed and written to test-artifacts/health-under-load.json for docs/multi-node.md.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import requests

from scripts.local_stack import run_stack
from services.kit.probe_worker import is_probe_request
from tests.support.load import ClosedLoopLoad

pytestmark = pytest.mark.slow

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
HEALTHCHECK_TIMEOUT_S = 2.0  # docker/healthcheck.py's default, the probes' timeout
CLIENTS = 32
HTTP_THREADS = 4
PROBE_ROUNDS = 15
CONTROL_ROUNDS = 4  # the non-probe request queues behind inference: a few samples do


def test_probe_request_lines_are_recognised():
    assert is_probe_request(b"GET /healthz HTTP/1.1\r\nHost: x")
    assert is_probe_request(b"GET /readyz?verbose=1 HTTP/1.1")
    assert is_probe_request(b"HEAD /metrics HTTP/1.0\r\n")
    assert not is_probe_request(b"POST /healthz HTTP/1.1")
    assert not is_probe_request(b"GET /healthzz HTTP/1.1")
    assert not is_probe_request(b"GET /v1/models HTTP/1.1")
    assert not is_probe_request(b"GET /heal")  # a partial line goes the normal way
    assert not is_probe_request(b"")


def timed_get(url: str) -> tuple[float, int]:
    started = time.monotonic()
    response = requests.get(url, timeout=30)  # a new connection every time
    return (time.monotonic() - started) * 1000, response.status_code


def test_health_answers_fast_while_every_replica_is_saturated(
    stack_weights_dir, tmp_path, images_dir
):
    env = {"DETECTOR_HTTP_THREADS": str(HTTP_THREADS)}
    photo = (images_dir / "dog.jpg").read_bytes()
    # All 32 clients and the probes come from 127.0.0.1: above nginx's default per-client
    # in-flight limit (32), which would answer some with 429 (tests/stack/test_abuse_limits.py).
    tuning = {"client_connections": 4 * CLIENTS}
    with run_stack(tmp_path, stack_weights_dir, replicas=2, env=env, nginx_tuning=tuning) as stack:
        replicas = [server.url for server in stack.replicas["detector"]]
        probes = {
            "nginx /detector/healthz": [stack.url + "/detector/healthz"],
            "nginx /detector/readyz": [stack.url + "/detector/readyz"],
            "replica /healthz": [url + "/healthz" for url in replicas],
            "replica /readyz": [url + "/readyz" for url in replicas],
        }
        control = {"replica /v1/models (not a probe)": [url + "/v1/models" for url in replicas]}
        samples: dict[str, list[float]] = {name: [] for name in [*probes, *control]}
        in_flight: list[int] = []
        with ClosedLoopLoad(stack.url + "/v1/detect", photo, clients=CLIENTS) as load:
            load.wait_for_answers(CLIENTS)  # every client has had one answer: saturated
            for round_ in range(PROBE_ROUNDS):
                in_flight.append(load.in_flight)
                targets = {**probes, **control} if round_ < CONTROL_ROUNDS else probes
                for name, urls in targets.items():
                    for url in urls:
                        ms, status = timed_get(url)
                        assert status == 200, f"{name}: {url} answered {status}"
                        samples[name].append(ms)
            answered = len(load.outcomes)
        # More clients than the replicas admit: the rest are refused at once (admission
        # control), and nothing fails otherwise.
        refused = [o for o in load.failures() if o.status == 503 and '"overloaded"' in o.error]
        assert len(refused) == len(load.failures()), load.failures()[:3]

    summary = {
        name: {
            "p50_ms": round(float(np.percentile(values, 50)), 1),
            "p95_ms": round(float(np.percentile(values, 95)), 1),
            "max_ms": round(max(values), 1),
            "samples": len(values),
        }
        for name, values in samples.items()
    }
    record = {
        "clients": CLIENTS,
        "replicas": 2,
        "http_threads_per_replica": HTTP_THREADS,
        "median_requests_in_flight_during_probes": float(np.median(in_flight)),
        "detect_requests_answered": answered,
        "latency": summary,
    }
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "health-under-load.json").write_text(json.dumps(record, indent=2))
    print("\nhealth under saturation:", json.dumps(record, indent=2))
    # Saturated for real: far more requests outstanding than the replicas have threads.
    assert np.median(in_flight) >= 2 * 2 * HTTP_THREADS, in_flight
    for name in probes:
        assert summary[name]["max_ms"] < HEALTHCHECK_TIMEOUT_S * 1000, (name, summary[name])
