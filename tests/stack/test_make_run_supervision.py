"""`make run` keeps serving when a replica crashes: supervisord restarts it.

The stack is started exactly as `make run` starts it (`python -m scripts.run_stack`, which
execs supervisord) on free ports, with two classifier replicas. Under 8 closed-loop
clients, one replica's gunicorn master is SIGKILLed, then one of its workers: no client
request fails (nginx sends them to the other replica), and the replica is back and ready.
The seconds until it is ready again are printed (not asserted beyond a generous deadline).
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from pathlib import Path

import pytest
import requests

from scripts.launch import free_port, start_server, wait_for_http
from scripts.local_stack import ROOM_FOR_EVERY_CLIENT, model_env
from tests.support.load import ClosedLoopLoad
from tests.support.procfs import children

pytestmark = pytest.mark.slow

CLIENTS = 8


def two_free_ports() -> int:
    """A port p with p and p + 1 free (the classifier replicas' ports)."""
    for _ in range(50):
        port = free_port()
        try:
            with socket.create_server(("127.0.0.1", port + 1)):
                return port
        except OSError:
            continue
    raise RuntimeError("no two consecutive free ports")


def gunicorn_master(supervisord: int, port: int) -> int:
    """The gunicorn master supervisord runs for the replica on ``port``."""
    for pid in children(supervisord):
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        if f"CLASSIFIER_PORT={port}".encode() in environ:
            return pid
    raise LookupError(f"no classifier master on port {port}")


def ready_again(url: str, old_pids: set[int], deadline_s: float) -> float:
    """Seconds until ``url``/readyz answers 200 from a process not in ``old_pids``."""
    started = time.monotonic()
    while time.monotonic() - started < deadline_s:
        try:
            response = requests.get(url + "/readyz", timeout=2)
            served_by = response.headers.get("X-Served-By", "")
            pid = int(served_by.rsplit("/", 1)[1]) if "/" in served_by else 0
            if response.status_code == 200 and pid not in old_pids:
                return round(time.monotonic() - started, 1)
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} not ready again within {deadline_s}s")


def test_a_crashed_replica_is_restarted_and_no_request_fails(
    stack_weights_dir, tmp_path, images_dir
):
    public, classifier_base = free_port(), two_free_ports()
    env = {
        **model_env(stack_weights_dir),
        **ROOM_FOR_EVERY_CLIENT,
        "STACK_PORT": str(public),
        "STACK_RUN_DIR": str(tmp_path / "run"),
        "DETECTOR_REPLICAS": "1",
        "DETECTOR_PORT_BASE": str(free_port()),
        "CLASSIFIER_REPLICAS": "2",
        "CLASSIFIER_PORT_BASE": str(classifier_base),
        "WEB_PORT": str(free_port()),
        "NGINX_FAIL_TIMEOUT_S": "2",
    }
    url = f"http://127.0.0.1:{public}"
    stack = start_server(
        [sys.executable, "-m", "scripts.run_stack"], url, tmp_path / "run.log", env, "/healthz"
    )
    victim_url = f"http://127.0.0.1:{classifier_base}"
    try:
        for path in ("/healthz", "/classifier/readyz", "/detector/readyz", "/web/readyz"):
            wait_for_http(url + path, 240, stack.process)
        wait_for_http(f"http://127.0.0.1:{classifier_base + 1}/readyz", 240, stack.process)
        wait_for_http(victim_url + "/readyz", 240, stack.process)
        photo = (images_dir / "dog.jpg").read_bytes()
        figures = {}
        with ClosedLoopLoad(url + "/v1/classify", photo, clients=CLIENTS) as load:
            load.wait_for_answers(2 * CLIENTS)
            master = gunicorn_master(stack.process.pid, classifier_base)
            workers = children(master)
            os.kill(master, signal.SIGKILL)
            figures["master_killed_ready_again_s"] = ready_again(
                victim_url, {master, *workers}, 120
            )
            new_master = gunicorn_master(stack.process.pid, classifier_base)
            assert new_master != master  # supervisord started a new one
            (worker,) = children(new_master)
            os.kill(worker, signal.SIGKILL)
            figures["worker_killed_ready_again_s"] = ready_again(victim_url, {worker}, 120)
            count = len(load.outcomes)
            load.wait_for_answers(count + 2 * CLIENTS)
        figures["answered"] = len(load.outcomes)
        figures["failed"] = len(load.failures())
        print("\nmake run supervision:", figures)
        assert load.failures() == [], load.failures()[:3]
        assert stack.process.poll() is None  # supervisord itself never stopped
    except BaseException:
        print(stack.log()[-4000:])
        raise
    finally:
        stack.stop()
