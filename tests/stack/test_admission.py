"""Admission control: a full replica refuses at once, nginx sends the request to another
replica without taking the full one out of rotation, and a client sees the 503 only when
every replica is full.

Two classifier replicas, each admitting QUEUE_LIMIT=2 requests. Timings are printed for the
record (docs/limits.md has the benchmark's figures); the tests assert behaviour only.
"""

from __future__ import annotations

import re
import threading

import pytest
import requests

from scripts.local_stack import run_stack
from tests.support.load import ClosedLoopLoad

pytestmark = pytest.mark.slow

QUEUE_LIMIT = 2
ENV = {"CLASSIFIER_QUEUE_LIMIT": str(QUEUE_LIMIT), "CLASSIFIER_HTTP_THREADS": "8"}


def metric(text: str, name: str) -> float:
    """The sum of every sample of ``name`` in a Prometheus exposition."""
    pattern = re.compile(rf"^{name}(?:{{[^}}]*}})? (\S+)$", re.M)
    return sum(float(value) for value in pattern.findall(text))


def burst(url: str, photo: bytes, count: int) -> list[requests.Response]:
    """``count`` requests sent at the same moment, each on its own connection."""
    barrier = threading.Barrier(count)
    responses: list[requests.Response] = []
    lock = threading.Lock()

    def send() -> None:
        barrier.wait()
        response = requests.post(
            url, files={"image": ("photo.jpg", photo, "image/jpeg")}, timeout=60
        )
        with lock:
            responses.append(response)

    threads = [threading.Thread(target=send) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)
    return responses


@pytest.fixture(scope="module")
def stack(tmp_path_factory, stack_weights_dir):
    with run_stack(tmp_path_factory.mktemp("admission"), stack_weights_dir, 2, ENV) as stack:
        yield stack


def test_a_full_replica_refuses_at_once_with_json_503(stack, images_dir):
    replica = stack.replicas["classifier"][0].url
    photo = (images_dir / "dog.jpg").read_bytes()
    models = requests.get(replica + "/v1/models", timeout=10).json()["models"][0]
    assert models["runtime"]["queue_limit"] == QUEUE_LIMIT

    responses = burst(replica + "/v1/classify", photo, 12)
    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) == {200, 503}, statuses
    assert statuses.count(200) >= QUEUE_LIMIT
    for refused in (r for r in responses if r.status_code == 503):
        assert refused.json()["error"]["code"] == "overloaded"
        assert refused.headers["Retry-After"] == "1"
    refused_ms = sorted(r.elapsed.total_seconds() * 1000 for r in responses if r.status_code == 503)
    admitted_ms = sorted(r.elapsed.total_seconds() * 1000 for r in responses if r.ok)
    print(
        f"direct burst of 12: refused in {refused_ms[0]:.0f}-{refused_ms[-1]:.0f} ms, "
        f"admitted in {admitted_ms[0]:.0f}-{admitted_ms[-1]:.0f} ms"
    )

    scrape = requests.get(replica + "/metrics", timeout=10).text
    assert metric(scrape, "vision_queue_limit") == QUEUE_LIMIT
    assert metric(scrape, "vision_requests_refused_total") == statuses.count(503)
    assert metric(scrape, "vision_queue_depth") == 0  # every admitted request has left


def test_nginx_spills_to_a_replica_with_room_and_keeps_the_full_one(stack, images_dir):
    """Four clients, room for four: whichever replica a request meets first, it is answered."""
    photo = (images_dir / "dog.jpg").read_bytes()
    with ClosedLoopLoad(stack.url + "/v1/classify", photo, clients=4, max_requests=160) as load:
        load.wait_for_answers(160)
    assert not load.failures(), load.failures()[:3]
    assert len(load.served_by()) == 2
    error_log = (stack.access_log.parent / "error.log").read_text()
    assert "temporarily disabled" not in error_log


def test_only_when_every_replica_is_full_does_the_client_get_the_503(stack, images_dir):
    photo = (images_dir / "dog.jpg").read_bytes()
    with ClosedLoopLoad(stack.url + "/v1/classify", photo, clients=16, max_requests=240) as load:
        load.wait_for_answers(240)
    statuses = {o.status for o in load.outcomes}
    assert statuses == {200, 503}, statuses  # nothing else: no 502, no timeout
    refused = [o for o in load.outcomes if o.status == 503]
    assert all('"overloaded"' in o.error for o in refused)
    entries = stack.access_entries()
    # "503 : 200": refused by the first replica, then (after nginx's internal redirect to
    # the spill group, the " : ") answered by another.
    spilled = [e for e in entries if e["upstream_status"].startswith("503 : ")]
    assert spilled, "no request was sent on to a second replica"
    error_log = (stack.access_log.parent / "error.log").read_text()
    assert "temporarily disabled" not in error_log
    # The burst is over: every request is admitted again, on both replicas.
    with ClosedLoopLoad(stack.url + "/v1/classify", photo, clients=2, max_requests=40) as load:
        load.wait_for_answers(40)
    assert not load.failures()
    assert len(load.served_by()) == 2
    print(f"16 clients on room for 4: {len(refused)} of 240 answers were refusals")
