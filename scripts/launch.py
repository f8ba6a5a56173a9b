"""Start real servers on free ports, wait on readiness, stop them by PID.

Shared by the tests and the benchmarks (loadtest/bench), so neither depends on the other.
Every helper here is a context manager whose exit stops what it started, also when the
caller fails.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import requests

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO_ROOT.parent / "shared" / "data").resolve()
IMAGES_DIR = SHARED_DATA / "images"
DARKNET_DIR = SHARED_DATA / "darknet"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(
    url: str, deadline_s: float, process: subprocess.Popen | None = None, expect_status: int = 200
) -> requests.Response:
    """Poll ``url`` until it answers ``expect_status``; fail at the deadline or if the
    process exits first."""
    deadline = time.monotonic() + deadline_s
    last = "no answer"
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before {url} was up")
        try:
            response = requests.get(url, timeout=2)
            if response.status_code == expect_status:
                return response
            last = f"HTTP {response.status_code}: {response.text[:200]}"
        except requests.RequestException as error:
            last = str(error)
        time.sleep(0.2)
    raise TimeoutError(f"{url} not ready within {deadline_s}s ({last})")


def stop_process(process: subprocess.Popen, timeout_s: float = 30) -> int:
    """SIGTERM, wait, then SIGKILL the process group if it does not exit in time."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
    return process.returncode


@dataclass
class Server:
    """A process started by a test, with its base URL and its log file."""

    process: subprocess.Popen
    url: str
    log_path: Path
    ready_path: str = "/readyz"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_ready(self, deadline_s: float = 120) -> None:
        try:
            wait_for_http(self.url + self.ready_path, deadline_s, self.process)
        except (RuntimeError, TimeoutError) as error:
            raise RuntimeError(f"{error}\n--- log ---\n{self.log()[-4000:]}") from None

    def stop(self) -> int:
        return stop_process(self.process)


def start_server(
    command: list[str],
    url: str,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    ready_path: str = "/readyz",
) -> Server:
    """Start ``command`` in its own process group (so a stop reaches its children)."""
    full_env = {**os.environ, **(env or {})}
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Server(process, url, log_path, ready_path)


@contextlib.contextmanager
def run_server(
    command: list[str],
    url: str,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    ready_path: str = "/readyz",
    deadline_s: float = 120,
) -> Iterator[Server]:
    """Run ``command``, wait until ``url + ready_path`` is 200, stop it on exit."""
    server = start_server(command, url, log_path, env, ready_path)
    try:
        server.wait_ready(deadline_s)
        yield server
    finally:
        server.stop()


def gunicorn_command(service: str) -> list[str]:
    return [sys.executable, "-m", "gunicorn", "-c", f"services/{service}/gunicorn.conf.py"]


def start_service(service: str, env: Mapping[str, str], log_dir: Path) -> Server:
    """Start ``services/<service>`` under real gunicorn on a free loopback port."""
    port = free_port()
    prefix = service.upper()
    service_env = {f"{prefix}_HOST": "127.0.0.1", f"{prefix}_PORT": str(port), **env}
    return start_server(
        gunicorn_command(service),
        f"http://127.0.0.1:{port}",
        log_dir / f"{service}-{port}.log",
        env=service_env,
    )


@contextlib.contextmanager
def run_service(
    service: str, env: Mapping[str, str], log_dir: Path, deadline_s: float = 180
) -> Iterator[Server]:
    """``start_service``, wait for readiness, stop on exit (also when the test fails)."""
    server = start_service(service, env, log_dir)
    try:
        server.wait_ready(deadline_s)
        yield server
    finally:
        server.stop()
