"""Real Prometheus scrapes every replica on its own and sums a service correctly.

Through nginx each scrape would reach another replica (the counters jump between replicas'
values); the config from scripts/prometheus_config.py (what `MONITORING=1 make run` uses)
names every replica. Prometheus (Debian's) is started on a free port; the test waits until
it reports every target up, sends requests through nginx, and checks that
``sum(vision_http_requests_total{job="classifier", endpoint="/v1/classify"})`` counts exactly
those requests, from both replicas.
"""

from __future__ import annotations

import time

import pytest
import requests

from scripts.launch import free_port, run_server
from scripts.local_stack import run_stack
from scripts.prometheus_config import static_config

pytestmark = pytest.mark.slow

PROMETHEUS = "/usr/bin/prometheus"
REQUESTS = 8


def query(url: str, promql: str) -> list[dict]:
    answer = requests.get(url + "/api/v1/query", params={"query": promql}, timeout=10).json()
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


def wait_until(what: str, check, deadline_s: float):
    deadline = time.monotonic() + deadline_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not within {deadline_s}s")
        time.sleep(0.5)


def test_prometheus_scrapes_every_replica_and_sums_them(stack_weights_dir, tmp_path, images_dir):
    with run_stack(tmp_path / "stack", stack_weights_dir, replicas=2) as stack:
        targets = {
            service: [server.url.removeprefix("http://") for server in servers]
            for service, servers in stack.replicas.items()
        }
        config = tmp_path / "prometheus.yml"
        config.write_text(static_config(targets, interval_s=1))
        port = free_port()
        command = [
            PROMETHEUS,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ]
        url = f"http://127.0.0.1:{port}"
        with run_server(command, url, tmp_path / "prometheus.log", ready_path="/-/ready"):

            def all_up():
                active = requests.get(url + "/api/v1/targets", timeout=10).json()["data"]
                health = [t["health"] for t in active["activeTargets"]]
                return len(health) == 5 and set(health) == {"up"}

            wait_until("every replica's target up", all_up, 60)
            photo = (images_dir / "dog.jpg").read_bytes()
            for _ in range(REQUESTS):
                response = requests.post(
                    stack.url + "/v1/classify",
                    files={"image": ("dog.jpg", photo, "image/jpeg")},
                    timeout=60,
                )
                assert response.status_code == 200
            selector = 'vision_http_requests_total{job="classifier",endpoint="/v1/classify"}'

            def counted():
                result = query(url, f"sum({selector})")
                return result and float(result[0]["value"][1]) == REQUESTS

            wait_until(f"the sum to reach {REQUESTS}", counted, 30)
            per_replica = query(url, f"sum by (instance) ({selector})")
            assert len(per_replica) == 2  # both replicas answered some, each scraped itself
            assert sum(float(r["value"][1]) for r in per_replica) == REQUESTS
