"""One abusive client address cannot take the public port from the others, nor nginx's memory.

From 127.0.0.2 (loopback too): 2,000 idle connections and 200 uploads that declare 20 MB,
send 2 MB and then hold. Meanwhile requests from 127.0.0.1 must all be answered. nginx
keeps 64 KB of a body in memory and spools the rest (here to its runtime dir), so its
resident memory must stay bounded; the per-client in-flight limit turns the abuser's
excess uploads into fast JSON 429s. Figures: stdout and test-artifacts/abuse-limits.json.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest
import requests

from scripts.local_stack import run_stack

pytestmark = pytest.mark.slow

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
ABUSER = "127.0.0.2"
IDLE_CONNECTIONS = 2000
SLOW_UPLOADS = 200
DECLARED_BYTES = 20 * 1024 * 1024 - 1024
SENT_BYTES = 2 * 1024 * 1024


def nginx_rss_mb(master_pid: int) -> float:
    """Resident memory of the nginx master and its workers, MB."""
    pids = [master_pid]
    for task in Path(f"/proc/{master_pid}/task").iterdir():
        pids += [int(p) for p in (task / "children").read_text().split()]
    total_kb = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total_kb += int(line.split()[1])
    return round(total_kb / 1024, 1)


def connect_from(address: str, port: int) -> socket.socket:
    sock = socket.socket()
    sock.bind((address, 0))
    sock.connect(("127.0.0.1", port))
    return sock


def test_one_abusive_address_does_not_stop_the_others(stack_weights_dir, tmp_path, images_dir):
    photo = (images_dir / "dog.jpg").read_bytes()
    held: list[socket.socket] = []
    with run_stack(tmp_path, stack_weights_dir, replicas=1) as stack:
        port = int(stack.url.rsplit(":", 1)[1])
        master = stack.nginx.process.pid
        before_mb = nginx_rss_mb(master)
        try:
            for _ in range(IDLE_CONNECTIONS):
                held.append(connect_from(ABUSER, port))
            refused_fast = 0
            head = (
                "POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
                f"Content-Length: {DECLARED_BYTES}\r\n\r\n"
            ).encode()
            chunk = b"\0" * SENT_BYTES
            for _ in range(SLOW_UPLOADS):
                sock = connect_from(ABUSER, port)
                held.append(sock)
                try:
                    sock.sendall(head)
                    sock.settimeout(0.05)
                    try:
                        if sock.recv(64).startswith(b"HTTP/1.1 429"):
                            refused_fast += 1  # over the per-client limit: refused at once
                            continue
                    except TimeoutError:
                        pass
                    sock.sendall(chunk)
                except OSError:
                    refused_fast += 1
            time.sleep(0.5)  # let nginx write what it received (a measurement, not a wait)
            during_mb = nginx_rss_mb(master)
            latencies = []
            for _ in range(10):
                started = time.monotonic()
                response = requests.post(
                    stack.url + "/v1/classify",
                    files={"image": ("dog.jpg", photo, "image/jpeg")},
                    timeout=60,
                )
                latencies.append(round((time.monotonic() - started) * 1000, 1))
                assert response.status_code == 200, response.text
            assert requests.get(stack.url + "/healthz", timeout=5).status_code == 200
        finally:
            for sock in held:
                sock.close()
    record = {
        "idle_connections": IDLE_CONNECTIONS,
        "slow_uploads": SLOW_UPLOADS,
        "slow_uploads_refused_fast_429": refused_fast,
        "nginx_rss_mb_before": before_mb,
        "nginx_rss_mb_during": during_mb,
        "normal_request_ms": latencies,
    }
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "abuse-limits.json").write_text(json.dumps(record, indent=2))
    print("\nabuse limits:", json.dumps(record))
    assert refused_fast >= SLOW_UPLOADS - 32  # NGINX_CLIENT_CONNECTIONS (32) admitted at most
    assert during_mb - before_mb < 64, record  # not 20 MB per upload: bodies are spooled
