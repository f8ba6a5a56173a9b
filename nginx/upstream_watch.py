"""Run nginx with upstreams that follow DNS: `docker compose up --scale detector=4` just works.

nginx resolves the names in an ``upstream`` block once, when it loads its config (only
nginx >= 1.27.3 can re-resolve them itself, and Debian ships 1.22). This supervisor resolves
each service name (Docker's DNS answers with every replica's address), renders nginx.conf
from the one template, runs nginx in the foreground, and every ``--interval`` seconds
resolves again: when the set of replicas changed, it re-renders and reloads nginx (SIGHUP:
new workers take over, in-flight requests finish on the old ones).

    python3 -m nginx.upstream_watch --listen 8080 --runtime-dir /tmp/nginx \
        --service detector=detector:8002 --service classifier=classifier:8001 \
        --service web=web:8003

SIGTERM/SIGINT/SIGQUIT are passed on to nginx as SIGQUIT (graceful shutdown).
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from nginx.render import (
    NginxConfig,
    parse_upstreams,
    remove_stale_balancer_socket,
    tuning_from_env,
    write_runtime_config,
)

# An upstream needs at least one server; while a service has no replica, requests get
# nginx's JSON 502 instead of nginx refusing to start.
NO_REPLICA = "127.0.0.1:1 down"
# getaddrinfo errors that say "no answer now", not "no such name".
TEMPORARY_LOOKUP_ERRORS = {socket.EAI_AGAIN, socket.EAI_FAIL}


def log(message: str, **fields) -> None:
    print(json.dumps({"logger": "nginx.upstream_watch", "message": message, **fields}), flush=True)


def resolve(address: str) -> list[str] | None:
    """``host:port`` -> sorted ``ip:port`` of every address the name has (IPv4); ``[]`` when
    the name does not exist (a service scaled to zero), ``None`` when DNS did not answer."""
    host, _, port = address.rpartition(":")
    try:
        infos = socket.getaddrinfo(host, int(port), socket.AF_INET, socket.SOCK_STREAM)
    except socket.gaierror as error:
        return None if error.errno in TEMPORARY_LOOKUP_ERRORS else []
    return sorted({f"{info[4][0]}:{info[4][1]}" for info in infos})


def resolve_all(
    services: dict[str, list[str]],
    previous: dict[str, list[str]] | None = None,
    lookup: Callable[[str], list[str] | None] = resolve,
) -> dict[str, list[str]]:
    """Every service's servers; a service whose lookup failed for now keeps ``previous``
    (a DNS hiccup must not take every replica out of nginx)."""
    resolved = {}
    for name, addresses in services.items():
        found = [lookup(address) for address in addresses]
        if previous and name in previous and any(servers is None for servers in found):
            resolved[name] = previous[name]
            continue
        servers = sorted({server for servers in found for server in servers or []})
        resolved[name] = servers or [NO_REPLICA]
    return resolved


def write_config(args, upstreams: dict[str, list[str]]) -> Path:
    return write_runtime_config(
        NginxConfig(
            listen=args.listen,
            upstreams=upstreams,
            runtime_dir=args.runtime_dir,
            **tuning_from_env(),
        )
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="nginx whose upstreams follow DNS")
    parser.add_argument("--listen", default="8080")
    parser.add_argument("--runtime-dir", required=True)
    parser.add_argument("--service", action="append", default=[], metavar="NAME=HOST:PORT,...")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between lookups")
    parser.add_argument("--nginx", default="nginx")
    args = parser.parse_args(argv)
    services = parse_upstreams(args.service)

    upstreams = resolve_all(services)
    config = write_config(args, upstreams)
    if remove_stale_balancer_socket(args.runtime_dir):
        log("removed the balancer socket of an nginx that was killed")
    log("starting nginx", upstreams=upstreams)
    nginx = subprocess.Popen(
        [args.nginx, "-e", "stderr", "-p", args.runtime_dir, "-c", str(config)]
    )

    def stop(_signum, _frame):
        nginx.send_signal(signal.SIGQUIT)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
        signal.signal(signum, stop)

    try:
        return supervise(args, services, upstreams, config, nginx)
    finally:
        # Request bodies are spooled outside the runtime dir when NGINX_BODY_TEMP_DIR points
        # at a tmpfs; leave nothing there once nginx is gone.
        body_dir = tuning_from_env()["body_temp_dir"]
        if nginx.poll() is not None:
            remove_stale_balancer_socket(args.runtime_dir)
            if body_dir:
                shutil.rmtree(body_dir, ignore_errors=True)


def supervise(args, services, upstreams, config: Path, nginx: subprocess.Popen) -> int:
    """Re-resolve every ``--interval`` seconds and reload nginx on a change, until it exits."""
    while True:
        try:
            return nginx.wait(timeout=args.interval)
        except subprocess.TimeoutExpired:
            pass
        current = resolve_all(services, upstreams)
        if current == upstreams:
            continue
        write_config(args, current)
        check = subprocess.run(
            [args.nginx, "-t", "-q", "-e", "stderr", "-p", args.runtime_dir, "-c", str(config)],
            capture_output=True,
            text=True,
        )
        if check.returncode != 0:
            log("new config rejected; keeping the running one", error=check.stderr.strip())
            write_config(args, upstreams)
            continue
        log("replicas changed; reloading nginx", before=upstreams, after=current)
        upstreams = current
        nginx.send_signal(signal.SIGHUP)


if __name__ == "__main__":
    sys.exit(main())
