"""Render nginx.conf from the one template, for the local run and for compose alike.

    python -m nginx.render --listen 8080 --runtime-dir .run/nginx \
        --upstream detector=127.0.0.1:8201,127.0.0.1:8202 \
        --upstream classifier=127.0.0.1:8101 --upstream web=127.0.0.1:8003 > nginx.conf

The body limit comes from the stack-wide MAX_BODY_MB, the same variable the services read;
NGINX_READ_TIMEOUT_S, NGINX_CONNECT_TIMEOUT_S and NGINX_FAIL_TIMEOUT_S tune failover
(see tuning_from_env).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import socket
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import jinja2

from services.kit.api_keys import API_KEY_HEADER, read_api_keys
from services.kit.request_ids import REQUEST_ID_PATTERN
from services.kit.settings import EnvReader, SettingsError, max_body_mb

TEMPLATE = Path(__file__).with_name("nginx.conf.j2")
SERVICES = ("detector", "classifier", "web")
# (status, code, message) of every answer nginx itself gives, all JSON like the services'.
NGINX_ERRORS = (
    (400, "bad_request", "The request is malformed."),
    (
        401,
        "unauthorized",
        "A valid API key is required: send it as X-API-Key or as a Bearer token.",
    ),
    (404, "not_found", "No such endpoint."),
    (405, "method_not_allowed", "This method is not allowed here."),
    (408, "request_timeout", "The request was not received in time."),
    (429, "too_many_requests", "Too many requests from this client at once; retry in a moment."),
    (413, "payload_too_large", "The request body is larger than the limit of {max_body_mb} MB."),
    (414, "uri_too_long", "The request line (path and query) is too long."),
    (494, "headers_too_large", "A request header, or all of them together, is too large."),
    (500, "internal_error", "nginx failed to handle the request."),
    (501, "not_implemented", "This method or transfer encoding is not supported."),
    (502, "bad_gateway", "No replica of this service could answer; retry in a moment."),
    (503, "unavailable", "The service is not available right now; retry in a moment."),
    (504, "gateway_timeout", "The service took too long to answer."),
)

# Headers the balancer server adds for the edge's access log: (header, nginx variable);
# the header time, since the response time is known only after the headers are sent.
BALANCER_HEADERS = (
    ("X-Vision-Upstream-Addr", "upstream_addr"),
    ("X-Vision-Upstream-Status", "upstream_status"),
    ("X-Vision-Upstream-Connect-Time", "upstream_connect_time"),
    ("X-Vision-Upstream-Header-Time", "upstream_header_time"),
)


@dataclass
class NginxConfig:
    """Everything the template needs; addresses are ``host:port`` strings."""

    listen: str
    upstreams: dict[str, list[str]]
    runtime_dir: str
    max_body_mb: float = 20.0
    read_timeout_s: int = 300
    connect_timeout_s: int = 5
    fail_timeout_s: int = 10
    next_upstream_tries: int = 3
    worker_processes: int = 1
    # Abuse limits (docs/limits.md): idle sockets are cheap, one client cannot hog the rest.
    worker_connections: int = 16384
    client_connections: int = 32  # requests in flight per client address
    client_rate: int = 200  # requests per second per client address (burst: twice that)
    max_uploads: int = 128  # requests in flight in all; bounds the spooled bodies
    header_timeout_s: int = 10
    body_timeout_s: int = 30
    body_temp_dir: str = ""  # where bodies over 64 KB are spooled; "" = <runtime_dir>/bodies
    public_metrics: bool = False  # /<service>/metrics on the public port (else 404)
    api_keys: tuple[str, ...] = ()  # none: the API is open (services/kit/api_keys.py)
    daemon: bool = False
    access_log: str = "/dev/stdout"
    error_log: str = "/dev/stderr"
    extra: dict = field(default_factory=dict)


def render(config: NginxConfig) -> str:
    missing = [name for name in SERVICES if not config.upstreams.get(name)]
    if missing:
        raise ValueError(f"no servers for upstream(s): {', '.join(missing)}")
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE.parent),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    max_body = f"{config.max_body_mb:g}"
    most_replicas = max(len(servers) for servers in config.upstreams.values())
    values = {
        **config.__dict__,
        "balancer_socket": balancer_socket(config.runtime_dir),
        "balancer_headers": BALANCER_HEADERS,
        "api_key_header": API_KEY_HEADER.lower().replace("-", "_"),
        # The edge waits for the balancer's every try: the tries, then one per spill replica.
        "balancer_timeout_s": (config.connect_timeout_s + config.read_timeout_s)
        * (config.next_upstream_tries + most_replicas)
        + 10,
        "body_temp_dir": config.body_temp_dir or f"{config.runtime_dir}/bodies",
        "max_body_mb": max_body,
        "request_id_pattern": REQUEST_ID_PATTERN,
        "nginx_errors": [
            (status, code, message.format(max_body_mb=max_body))
            for status, code, message in NGINX_ERRORS
        ],
        # nginx sizes are integers: kilobytes keep fractional MB limits exact enough, and
        # match the services' limit (MAX_BODY_MB x 1024 x 1024 bytes) to the kilobyte.
        "max_body_kb": int(config.max_body_mb * 1024),
    }
    return environment.get_template(TEMPLATE.name).render(**values)


def balancer_socket(runtime_dir: str) -> str:
    """The balancer server's unix socket, named after the runtime dir, in a directory that
    nginx's unprivileged workers can always reach (a runtime dir under a private temp dir
    may not be) and short enough for a socket path: tmpfs where there is one."""
    base = "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()
    digest = hashlib.sha256(os.path.abspath(runtime_dir).encode()).hexdigest()[:16]
    return f"{base}/vision-balancer-{digest}.sock"


def remove_stale_balancer_socket(runtime_dir: str) -> bool:
    """Before starting nginx: a socket file left by an nginx that was killed makes the new
    one fail to bind, so remove it, unless an nginx still answers on it."""
    path = balancer_socket(runtime_dir)
    if not os.path.exists(path):
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(path)
            return False  # alive: leave it to the nginx that owns it
        except OSError:
            pass
    os.unlink(path)
    return True


def write_private(path: Path, text: str) -> None:
    """Write nginx.conf readable by its owner only: it may hold the API keys."""
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(text)


def write_runtime_config(config: NginxConfig) -> Path:
    """Render ``config`` into ``<runtime_dir>/nginx.conf`` (made if missing); its path."""
    runtime = Path(config.runtime_dir)
    runtime.mkdir(parents=True, exist_ok=True)
    path = runtime / "nginx.conf"
    write_private(path, render(config))
    return path


def tuning_from_env(environ: Mapping[str, str] | None = None) -> dict:
    """NginxConfig keyword arguments from the environment; a bad value stops the start with
    one line naming the variable. MAX_BODY_MB is the services' own stack-wide limit."""
    env = EnvReader("", dict(os.environ if environ is None else environ))
    try:
        return {
            "max_body_mb": max_body_mb(env),
            "read_timeout_s": env.integer("NGINX_READ_TIMEOUT_S", 300, 1, 86400),
            "connect_timeout_s": env.integer("NGINX_CONNECT_TIMEOUT_S", 5, 1, 600),
            "fail_timeout_s": env.integer("NGINX_FAIL_TIMEOUT_S", 10, 1, 3600),
            "worker_connections": env.integer("NGINX_WORKER_CONNECTIONS", 16384, 64, 1 << 20),
            "client_connections": env.integer("NGINX_CLIENT_CONNECTIONS", 32, 1, 1 << 20),
            "client_rate": env.integer("NGINX_CLIENT_RATE", 200, 1, 1 << 20),
            "max_uploads": env.integer("NGINX_MAX_UPLOADS", 128, 1, 1 << 20),
            "header_timeout_s": env.integer("NGINX_HEADER_TIMEOUT_S", 10, 1, 3600),
            "body_timeout_s": env.integer("NGINX_BODY_TIMEOUT_S", 30, 1, 3600),
            "body_temp_dir": env.string("NGINX_BODY_TEMP_DIR", ""),
            "public_metrics": env.boolean("NGINX_PUBLIC_METRICS", False),
            "api_keys": read_api_keys(env),
        }
    except SettingsError as error:
        raise SystemExit(f"nginx.render: {error}") from None


def parse_upstreams(items: list[str]) -> dict[str, list[str]]:
    upstreams: dict[str, list[str]] = {}
    for item in items:
        name, _, servers = item.partition("=")
        upstreams[name] = [s for s in servers.split(",") if s]
    return upstreams


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Render nginx.conf for the vision stack.")
    parser.add_argument("--listen", default="8080", help="address:port or port to listen on")
    parser.add_argument("--runtime-dir", required=True, help="pid file and temp paths go here")
    parser.add_argument("--upstream", action="append", default=[], metavar="NAME=HOST:PORT,...")
    parser.add_argument("--access-log", default="/dev/stdout")
    parser.add_argument("--error-log", default="/dev/stderr")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    text = render(
        NginxConfig(
            listen=args.listen,
            upstreams=parse_upstreams(args.upstream),
            runtime_dir=args.runtime_dir,
            access_log=args.access_log,
            error_log=args.error_log,
            **tuning_from_env(),
        )
    )
    if args.output:
        write_private(args.output, text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
