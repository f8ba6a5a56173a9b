"""NVIDIA PyTriton as a benchmark contender: loadtest/bench/peers/pytriton_server.py, started in
its own venv (.venv-peer-pytriton) on free loopback ports and stopped after.

Kept apart from contenders.py so the peers can be added independently; it shares that module's
Endpoint, batching limits and answer helpers, so PyTriton gets the same budget as the others.
"""

from __future__ import annotations

import contextlib
import json
import os
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path

import requests

from loadtest.bench.client import SendFn
from loadtest.bench.contenders import (
    BATCH_WAIT_MS,
    MAX_BATCH,
    PEERS_DIR,
    REQUEST_TIMEOUT_S,
    TOP_K,
    Endpoint,
    _json,
)
from loadtest.bench.peer_venv import PeerUnavailable
from loadtest.bench.process_tree import kill_leftovers, process_tree
from loadtest.photos import Photo
from scripts.launch import free_port, start_server, wait_for_http

MODEL_NAME = "resnet18"
OUTPUTS = ("PROBABILITIES", "CLASS_IDS", "LABELS")

# Asked of the peer's python, not of this one: the venv may run another Python build.
_PEER_FACTS = """
import importlib.metadata, json, sysconfig
print(json.dumps({
    "libdir": sysconfig.get_config_var("LIBDIR"),
    "soname": sysconfig.get_config_var("INSTSONAME"),
    "pytriton": importlib.metadata.version("nvidia-pytriton"),
}))
"""


def infer_request(jpeg: bytes) -> tuple[bytes, dict[str, str]]:
    """Body and headers of one Open Inference Protocol v2 request for ``jpeg``.

    Binary tensor extension: the JSON inference header, then the raw input, whose size is
    ``binary_data_size``; ``Inference-Header-Content-Length`` says where the JSON ends. A
    BYTES element is its 4-byte little-endian length followed by the bytes. The outputs are
    asked for as JSON (``binary_data`` false), so the answer is plain JSON.
    """
    element = struct.pack("<I", len(jpeg)) + jpeg
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "IMAGE",
                    "shape": [1, 1],
                    "datatype": "BYTES",
                    "parameters": {"binary_data_size": len(element)},
                }
            ],
            "outputs": [{"name": name, "parameters": {"binary_data": False}} for name in OUTPUTS],
        },
        separators=(",", ":"),
    ).encode()
    headers = {
        "Content-Type": "application/octet-stream",
        "Inference-Header-Content-Length": str(len(header)),
        "Accept": "application/json",
    }
    return header + element, headers


def check_triton_top5(response: requests.Response, _photo: Photo) -> str | None:
    """``{"outputs": [{"name": "PROBABILITIES", "data": [5 floats]}, {"name": "LABELS", ...}]}``."""
    body, problem = _json(response)
    if problem:
        return problem
    outputs = body.get("outputs") if isinstance(body, dict) else None
    if not isinstance(outputs, list):
        return "no 'outputs' list"
    data = {o.get("name"): o.get("data") for o in outputs if isinstance(o, dict)}
    probabilities = data.get("PROBABILITIES")
    if not isinstance(probabilities, list) or len(probabilities) != TOP_K:
        return "no 5 PROBABILITIES"
    if not all(isinstance(p, float | int) and 0 <= p <= 1 for p in probabilities):
        return "probabilities missing or outside [0, 1]"
    if probabilities != sorted(probabilities, reverse=True):
        return "probabilities not sorted descending"
    labels = data.get("LABELS")
    if not isinstance(labels, list) or len(labels) != TOP_K or not all(labels):
        return "no 5 LABELS"
    return None


def pytriton_sender(url: str) -> SendFn:
    def send(session: requests.Session, photo: Photo) -> requests.Response:
        body, headers = infer_request(photo.data)
        return session.post(url, data=body, headers=headers, timeout=REQUEST_TIMEOUT_S)

    return send


def _peer_facts(peer_python: Path) -> dict[str, str]:
    """The peer Python's lib folder (for LD_LIBRARY_PATH) and PyTriton's version."""
    completed = subprocess.run(
        [str(peer_python), "-c", _PEER_FACTS], capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        raise PeerUnavailable(
            f"{peer_python} cannot report its LIBDIR and nvidia-pytriton version: "
            + (completed.stderr or completed.stdout).strip()[-500:]
        )
    facts = json.loads(completed.stdout)
    libpython = Path(facts["libdir"] or "") / (facts["soname"] or "")
    if not facts["soname"] or not libpython.is_file():
        raise PeerUnavailable(
            f"{peer_python} has no shared libpython ({libpython} missing): PyTriton's Python "
            "backend stub would load another Python's and fail"
        )
    return facts


def remove_tensor_stores(pids: list[int], shm: Path = Path("/dev/shm")) -> None:
    """PyTriton's tensor store (``/dev/shm/pytrtion<pid>-...``, 40 MB, its spelling) is
    sometimes left behind when the server stops: remove those of the server's processes."""
    for pid in pids:
        for leftover in shm.glob(f"pytrtion{pid}-*"):
            leftover.unlink(missing_ok=True)


@contextlib.contextmanager
def pytriton(
    peer_python: Path, weights_dir: Path, work_dir: Path, workers: int = 2
) -> Iterator[Endpoint]:
    """PyTriton (its bundled tritonserver, Python backend) with peers/pytriton_server.py."""
    facts = _peer_facts(peer_python)
    http, grpc, metrics = free_port(), free_port(), free_port()
    home = work_dir / "pytriton"
    command = [
        str(peer_python),
        str(PEERS_DIR / "pytriton_server.py"),
        "--weights",
        str((weights_dir / "resnet18.pth").resolve()),
        "--http-port",
        str(http),
        "--grpc-port",
        str(grpc),
        "--metrics-port",
        str(metrics),
        "--work-dir",
        str(home.resolve()),
        "--workers",
        str(workers),
        "--threads",
        "1",
        "--max-batch",
        str(MAX_BATCH),
        "--batch-wait-us",
        str(BATCH_WAIT_MS * 1000),
    ]
    # The bundled stub links libpython3.11.so.1.0; without this it finds Debian's, which fails
    # inside the venv's Python ('_thread.RLock' object has no attribute '_recursion_count').
    library_path = os.pathsep.join(
        p for p in (facts["libdir"], os.environ.get("LD_LIBRARY_PATH", "")) if p
    )
    tmp = home / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    # TMPDIR: Triton's copies of the model repository, private to this run.
    env = {"LD_LIBRARY_PATH": library_path, "TMPDIR": str(tmp.resolve())}
    url = f"http://127.0.0.1:{http}"
    server = start_server(
        command, url, work_dir / "pytriton.log", env=env, ready_path="/v2/health/ready"
    )
    try:
        try:
            server.wait_ready(180)
            # Triton is ready with no model loaded yet: bind() loads it after the server is up.
            wait_for_http(f"{url}/v2/models/{MODEL_NAME}/ready", 120, server.process)
            triton_version = requests.get(f"{url}/v2", timeout=5).json().get("version", "?")
        except (RuntimeError, TimeoutError, requests.RequestException, ValueError) as error:
            raise PeerUnavailable(
                f"pytriton did not start: {error}\n--- log ---\n{server.log()[-2000:]}"
            ) from None
        yield Endpoint(
            url,
            pytriton_sender(f"{url}/v2/models/{MODEL_NAME}/infer"),
            check_triton_top5,
            {
                "processes": f"PyTriton {facts['pytriton']} (1 Python process: {workers} "
                f"inference threads, one per model instance, sharing its GIL) + tritonserver "
                f"{triton_version} (HTTP front end, default threads; gRPC and metrics ports on) "
                f"+ {workers} Python backend stubs (instance_group KIND_CPU count={workers}), "
                "relaying to the threads over shared memory and ZeroMQ",
                "torch threads": "1 per instance (torch.set_num_threads(1) in the one process)",
                "batching": f"Triton dynamic batcher: max_batch_size={MAX_BATCH}, "
                f"max_queue_delay_microseconds={BATCH_WAIT_MS * 1000}; @batch",
                "request": f"POST /v2/models/{MODEL_NAME}/infer (Open Inference Protocol v2): "
                "the JPEG as BYTES input IMAGE [1, 1] with the binary tensor extension; "
                "outputs PROBABILITIES, CLASS_IDS, LABELS as JSON",
            },
        )
    finally:
        # The Python backend stubs were seen to outlive the stop, reparented to init.
        tree = process_tree(server.process.pid)
        server.stop()
        kill_leftovers(tree)
        remove_tensor_stores([server.process.pid, *tree])
