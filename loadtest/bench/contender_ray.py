"""Ray Serve as a benchmark contender (loadtest/bench/peers/ray_serve_server.py, .venv-peer-ray).

Stopping it differs from the other peers: Ray's GCS, raylet and agents share the driver's
process group, so the group-wide SIGTERM of ``Server.stop`` would kill them under the
driver's ``serve.shutdown()`` (which then waits 30 s on a controller it can no longer
reach, while the replicas, each in a process group of its own, linger). The driver alone
gets SIGTERM first and shuts Serve and Ray down itself; what it leaves is killed after.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from loadtest.bench.contenders import (
    BATCH_WAIT_MS,
    MAX_BATCH,
    PEERS_DIR,
    Endpoint,
    check_top5_list,
    multipart_sender,
)
from loadtest.bench.peer_catalog import PEERS
from loadtest.bench.peer_venv import PeerUnavailable
from scripts.launch import Server, free_port, start_server

READY_PATH = "/health"
# ray.init, the Serve controller and proxy, then every replica loading and warming ResNet18
# (about 15 s here once the files are cached; far longer on a cold disk).
START_DEADLINE_S = 240
# serve.shutdown waits up to 30 s for the controller, then ray.shutdown stops the processes.
SHUTDOWN_DEADLINE_S = 60


def _stop(server: Server) -> None:
    process = server.process
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(SHUTDOWN_DEADLINE_S)
    # Whatever is left of the group (GCS, raylet, agents) when the driver could not shut Ray
    # down in time; the replicas and Serve's actors exit by themselves once the raylet is gone.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    if process.poll() is None:
        process.wait(10)


@contextlib.contextmanager
def ray_serve(
    peer_python: Path, weights_dir: Path, work_dir: Path, workers: int = 2
) -> Iterator[Endpoint]:
    """Ray Serve with one ResNet18 deployment of ``workers`` replicas, on a free port."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # Short on purpose, not under work_dir: Ray's unix socket paths under it must stay below
    # 108 characters. The driver's log (work_dir/ray-serve.log) carries the replicas' output.
    ray_tmp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))
    command = [
        str(peer_python),
        str(PEERS_DIR / "ray_serve_server.py"),
        "--weights",
        str((weights_dir / "resnet18.pth").resolve()),
        "--port",
        str(port),
        "--tmp-dir",
        str(ray_tmp),
        "--cpus",
        "2",
        "--workers",
        str(workers),
        "--threads",
        "1",
        "--max-batch",
        str(MAX_BATCH),
        "--batch-timeout-s",
        str(BATCH_WAIT_MS / 1000),
    ]
    server = start_server(command, url, work_dir / "ray-serve.log", ready_path=READY_PATH)
    try:
        try:
            server.wait_ready(START_DEADLINE_S)
        except RuntimeError as error:
            raise PeerUnavailable(f"ray serve did not start: {error}") from None
        yield Endpoint(
            url,
            multipart_sender(f"{url}/predict", "image"),
            check_top5_list,
            {
                "processes": f"Ray {PEERS['rayserve'].version} local instance (GCS, raylet, "
                "agents; no dashboard UI) + Serve controller + 1 HTTP proxy actor (uvicorn) + "
                f"{workers} replica actors (num_cpus=1 each, ray.init(num_cpus=2)); the "
                "replica reads the form and decodes the JPEG",
                "torch threads": "1 per replica (torch.set_num_threads in __init__)",
                "batching": f"@serve.batch(max_batch_size={MAX_BATCH}, "
                f"batch_wait_timeout_s={BATCH_WAIT_MS / 1000}), "
                f"max_ongoing_requests={2 * MAX_BATCH} per replica, more wait in the proxy",
                "request": "POST /predict, multipart field image",
            },
        )
    finally:
        _stop(server)
        shutil.rmtree(ray_tmp, ignore_errors=True)
