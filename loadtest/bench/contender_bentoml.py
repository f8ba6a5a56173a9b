"""BentoML as a benchmark peer: ``bentoml serve`` of loadtest/bench/peers/bentoml_service.py.

Runs with the peer's own venv (.venv-peer-bentoml, loadtest/requirements-peer-bentoml.txt).
BentoML's arbiter (circus) starts every worker in a session of its own, so stopping the
arbiter's process group does not reach them: :func:`bentoml` records the workers and makes
sure none outlives it.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

from loadtest.bench.contenders import (
    MAX_BATCH,
    PEERS_DIR,
    Endpoint,
    check_top5_list,
    multipart_sender,
)
from loadtest.bench.peer_venv import PeerUnavailable
from loadtest.bench.process_tree import kill_leftovers, process_tree
from scripts.launch import Server, free_port, start_server

SERVICE = "bentoml_service:ResNet18"
# Logged once per worker when its Service instance exists (the model Service's after the
# weights are loaded and a warm-up batch has run): /readyz answers as soon as *one* worker
# of each Service is up, these lines say when all of them are.
_INITIALIZED = ("Service ResNet18Model initialized", "Service ResNet18 initialized")
_STARTUP_FAILED = "Application startup failed"
_EXCEPTION_LINE = re.compile(r"^[\w.]*(?:Error|Exception|Exit)\b.*$", re.MULTILINE)
LOAD_DEADLINE_S = 180


def _failure(log: str) -> str:
    """The last exception a worker logged (its traceback's final line), else the log's end."""
    lines = _EXCEPTION_LINE.findall(log)
    return lines[-1] if lines else " | ".join(log.strip().splitlines()[-5:])


def _wait_loaded(server: Server, workers: int, deadline_s: float) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        log = server.log()
        if _STARTUP_FAILED in log or server.process.poll() is not None:
            raise PeerUnavailable(
                f"bentoml serve could not start {SERVICE}: {_failure(log)} (log: {server.log_path})"
            )
        if all(log.count(line) >= workers for line in _INITIALIZED):
            return
        time.sleep(0.5)
    raise PeerUnavailable(
        f"bentoml serve: not all {workers} workers of each Service loaded within "
        f"{deadline_s:.0f}s: {_failure(server.log())} (log: {server.log_path})"
    )


@contextlib.contextmanager
def bentoml(
    peer_python: Path, weights_dir: Path, work_dir: Path, workers: int = 2
) -> Iterator[Endpoint]:
    """BentoML: ``bentoml serve`` of peers/bentoml_service.py on a free port."""
    executable = peer_python.parent / "bentoml"
    weights = (weights_dir / "resnet18.pth").resolve()
    if not executable.is_file():
        raise PeerUnavailable(f"{executable} is missing: .venv-peer-bentoml is not installed")
    if not weights.is_file():
        raise PeerUnavailable(f"{weights} is missing")
    home = work_dir / "bentoml-home"  # not ~/bentoml
    # Its Prometheus files are per worker pid; a previous run's would add to this one's.
    shutil.rmtree(home, ignore_errors=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        "BENTOML_HOME": str(home),
        "BENTOML_DO_NOT_TRACK": "True",  # no usage reports (and no network here)
        "BENCH_RESNET18_WEIGHTS": str(weights),
        "BENCH_BENTOML_WORKERS": str(workers),
        "BENCH_BENTOML_MAX_BATCH": str(MAX_BATCH),
        "OMP_NUM_THREADS": "1",  # as torch.set_num_threads(1) in every worker
    }
    command = [
        str(executable),
        "serve",
        SERVICE,
        "--working-dir",
        str(PEERS_DIR),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    server = start_server(command, url, work_dir / "bentoml.log", env=env)
    try:
        _wait_loaded(server, workers, LOAD_DEADLINE_S)
        try:
            server.wait_ready(60)
        except RuntimeError as error:
            raise PeerUnavailable(f"bentoml serve did not get ready: {error}") from None
        yield Endpoint(
            url,
            multipart_sender(f"{url}/predict", "image"),
            check_top5_list,
            {
                "processes": f"bentoml serve: circus arbiter + {workers} workers of the "
                f"ResNet18 Service (HTTP, decode, preprocessing) + {workers} workers of "
                "the ResNet18Model Service (batched inference), joined by bentoml.depends "
                "over a Unix socket (pickled tensors)",
                "torch threads": "1 per worker (torch.set_num_threads in __init__, "
                "OMP_NUM_THREADS=1)",
                "batching": f"adaptive: @bentoml.api(batchable=True, max_batch_size="
                f"{MAX_BATCH}, max_latency_ms=60000); BentoML has no fixed wait, its "
                "dispatcher learns one from the traffic (max_latency_ms is a deadline that "
                "answers 503, kept at BentoML's default so every request is admitted)",
                "request": "POST /predict, multipart field image (PIL.Image.Image); access "
                "log off, BentoML's Prometheus metrics on (default)",
            },
        )
    finally:
        # SIGTERM lets the arbiter stop its workers (about 3 s). Entry workers were once seen
        # to linger for minutes after /readyz probes had queued up during a slow load; then
        # stop() kills the arbiter after 30 s and the recorded workers are killed here.
        workers_tree = process_tree(server.process.pid)
        server.stop()
        kill_leftovers(workers_tree)
