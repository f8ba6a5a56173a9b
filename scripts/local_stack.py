"""The whole stack for tests and benchmarks: model replicas and web under gunicorn, nginx in
front.

Started the same way as ``make run`` (same nginx template, same variables), but on free
ports and with each process reachable, so tests can kill one replica.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from nginx.render import NginxConfig, remove_stale_balancer_socket, write_runtime_config
from scripts.launch import Server, free_port, start_server, start_service
from services.kit.admission import REFUSAL_THREADS
from services.kit.settings import MODEL_HTTP_THREADS

NGINX = "/usr/sbin/nginx"

# For tests of failover and benchmarks of speed, not of admission control: room for every
# client on one replica (every request thread but the ones kept to refuse), so a dead
# replica's clients are absorbed instead of answered 503 overloaded.
ROOM_FOR_EVERY_CLIENT = {
    f"{service}_QUEUE_LIMIT": str(MODEL_HTTP_THREADS - REFUSAL_THREADS)
    for service in ("DETECTOR", "CLASSIFIER")
}


@dataclass
class Stack:
    url: str
    nginx: Server
    access_log: Path
    replicas: dict[str, list[Server]] = field(default_factory=dict)

    def access_entries(self) -> list[dict]:
        lines = self.access_log.read_text().splitlines() if self.access_log.exists() else []
        return [json.loads(line) for line in lines if line.startswith("{")]

    def wait_for_access_entries(
        self, predicate: Callable[[dict], bool], count: int, deadline_s: float = 10
    ) -> list[dict]:
        """nginx writes a request's log line after the response has gone out: poll for it."""
        deadline = time.monotonic() + deadline_s
        while True:
            entries = [e for e in self.access_entries() if predicate(e)]
            if len(entries) >= count or time.monotonic() > deadline:
                return entries
            time.sleep(0.05)


def model_env(weights_dir: Path) -> dict[str, str]:
    """Variables that point both model services at a weights directory made by a fixture."""
    return {
        "WEIGHTS_DIR": str(weights_dir),
        "DETECTOR_MODEL": "yolov3-tiny",
        "CLASSIFIER_TORCH_THREADS": "1",
        "DETECTOR_TORCH_THREADS": "1",
    }


def body_temp_dir(port: int) -> Path:
    """Where nginx spools request bodies, as with `make run`: tmpfs, and reachable by
    nginx's unprivileged workers whatever the test's own directory permissions."""
    return Path("/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()) / (
        f"vision-nginx-{port}"
    )


def render_nginx(stack_dir: Path, port: int, upstreams: dict[str, list[str]], **tuning) -> Path:
    runtime = stack_dir / "nginx"
    return write_runtime_config(
        NginxConfig(
            listen=f"127.0.0.1:{port}",
            upstreams=upstreams,
            runtime_dir=str(runtime),
            access_log=str(runtime / "access.log"),
            error_log=str(runtime / "error.log"),
            body_temp_dir=str(body_temp_dir(port)),
            **tuning,
        )
    )


@contextlib.contextmanager
def run_stack(
    tmp_path: Path,
    weights_dir: Path,
    replicas: int = 1,
    env: Mapping[str, str] | None = None,
    deadline_s: float = 240,
    nginx_tuning: Mapping[str, int] | None = None,
) -> Iterator[Stack]:
    """Start ``replicas`` detectors and classifiers, one web and nginx; stop all on exit.
    ``nginx_tuning``: NginxConfig fields to change (e.g. the per-client limits)."""
    tmp_path = tmp_path.resolve()  # nginx -p and -c: a relative path would be taken twice
    env = {**model_env(weights_dir), **(env or {})}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # The web service calls the models through nginx's per-service prefixes.
    env.setdefault("WEB_DETECTOR_URL", f"{url}/detector")
    env.setdefault("WEB_CLASSIFIER_URL", f"{url}/classifier")
    logs = tmp_path / "logs"
    started: list[Server] = []
    try:
        servers = {
            name: [start_service(name, env, logs) for _ in range(count)]
            for name, count in (("detector", replicas), ("classifier", replicas), ("web", 1))
        }
        started.extend(s for group in servers.values() for s in group)
        upstreams = {
            name: [s.url.removeprefix("http://") for s in group] for name, group in servers.items()
        }
        config = render_nginx(tmp_path, port, upstreams, **(nginx_tuning or {}))
        nginx = start_server(
            [NGINX, "-p", str(config.parent), "-c", str(config)],
            url,
            logs / "nginx.log",
            ready_path="/healthz",
        )
        started.append(nginx)
        for server in started:
            server.wait_ready(deadline_s)
        yield Stack(url, nginx, config.parent / "access.log", servers)
    finally:
        for server in reversed(started):
            server.stop()
        shutil.rmtree(body_temp_dir(port), ignore_errors=True)
        remove_stale_balancer_socket(str(tmp_path / "nginx"))
