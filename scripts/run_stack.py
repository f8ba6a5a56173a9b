"""`make run`: the whole stack on one port, under honcho (a Procfile process manager).

Starts N detector and N classifier replicas and the web service under gunicorn, nginx in
front (config rendered from nginx/nginx.conf.j2, the template compose uses too), waits
until every replica is ready, prints the URL, and on Ctrl-C honcho stops everything.

Configuration (environment): STACK_PORT (8080), DETECTOR_REPLICAS (2),
CLASSIFIER_REPLICAS (2), DETECTOR_PORT_BASE (8201), CLASSIFIER_PORT_BASE (8101),
WEB_PORT (8003), plus every service variable (DETECTOR_*, CLASSIFIER_*, WEB_*, MAX_BODY_MB).
"""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
import sys
from pathlib import Path

from nginx.render import NginxConfig, max_body_mb_from_env, render
from services.common.settings import EnvReader, SettingsError

REPO_ROOT = Path(__file__).resolve().parents[1]
RUN_DIR = REPO_ROOT / ".run"


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def plan(environ: dict[str, str]) -> tuple[int, dict[str, list[int]]]:
    """(public port, service -> replica ports) from the environment."""
    env = EnvReader("", environ)
    public = env.integer("STACK_PORT", 8080, 1, 65535)
    ports = {
        "detector": [
            env.integer("DETECTOR_PORT_BASE", 8201, 1, 65000) + i
            for i in range(env.integer("DETECTOR_REPLICAS", 2, 1, 32))
        ],
        "classifier": [
            env.integer("CLASSIFIER_PORT_BASE", 8101, 1, 65000) + i
            for i in range(env.integer("CLASSIFIER_REPLICAS", 2, 1, 32))
        ],
        "web": [env.integer("WEB_PORT", 8003, 1, 65535)],
    }
    return public, ports


def procfile(public: int, ports: dict[str, list[int]], nginx_conf: Path) -> str:
    python = shlex.quote(sys.executable)
    lines = []
    for service, service_ports in ports.items():
        prefix = service.upper()
        for index, port in enumerate(service_ports, start=1):
            lines.append(
                f"{service}{index}: env {prefix}_HOST=127.0.0.1 {prefix}_PORT={port} "
                f"{python} -m gunicorn -c services/{service}/gunicorn.conf.py"
            )
    lines.append(f"nginx: nginx -p {nginx_conf.parent} -c {nginx_conf}")
    replica_urls = " ".join(
        f"http://127.0.0.1:{port}" for service_ports in ports.values() for port in service_ports
    )
    lines.append(f"ready: {python} -m scripts.wait_ready http://127.0.0.1:{public} {replica_urls}")
    return "\n".join(lines) + "\n"


def main() -> int:
    environ = dict(os.environ)
    try:
        public, ports = plan(environ)
    except SettingsError as error:
        print(f"run_stack: configuration error: {error}", file=sys.stderr)
        return 2
    every_port = [public, *(p for service_ports in ports.values() for p in service_ports)]
    busy = [p for p in every_port if not port_is_free(p)]
    if busy:
        print(
            f"run_stack: port(s) {busy} are in use; set STACK_PORT / *_PORT_BASE / "
            "WEB_PORT to free ones",
            file=sys.stderr,
        )
        return 2
    nginx_dir = RUN_DIR / "nginx"
    shutil.rmtree(nginx_dir, ignore_errors=True)
    nginx_dir.mkdir(parents=True)
    nginx_conf = nginx_dir / "nginx.conf"
    nginx_conf.write_text(
        render(
            NginxConfig(
                listen=str(public),
                upstreams={
                    s: [f"127.0.0.1:{p}" for p in service_ports]
                    for s, service_ports in ports.items()
                },
                runtime_dir=str(nginx_dir),
                max_body_mb=max_body_mb_from_env(),
            )
        )
    )
    subprocess.run(["nginx", "-t", "-q", "-p", str(nginx_dir), "-c", str(nginx_conf)], check=True)
    (RUN_DIR / "Procfile").write_text(procfile(public, ports, nginx_conf))
    # The web service calls the models through nginx, so its calls are balanced too.
    environ.setdefault("WEB_DETECTOR_URL", f"http://127.0.0.1:{public}/detector")
    environ.setdefault("WEB_CLASSIFIER_URL", f"http://127.0.0.1:{public}/classifier")
    # One torch thread per replica: 2 x 2 replicas share the cores without oversubscribing.
    environ.setdefault("DETECTOR_TORCH_THREADS", "1")
    environ.setdefault("CLASSIFIER_TORCH_THREADS", "1")
    environ["PYTHONUNBUFFERED"] = "1"
    honcho = [
        sys.executable,
        "-m",
        "honcho",
        "-f",
        str(RUN_DIR / "Procfile"),
        "-d",
        str(REPO_ROOT),
        "start",
    ]
    os.execvpe(honcho[0], honcho, environ)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
