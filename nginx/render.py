"""Render nginx.conf from the one template, for the local run and for compose alike.

    python -m nginx.render --listen 8080 --runtime-dir .run/nginx \
        --upstream detector=127.0.0.1:8201,127.0.0.1:8202 \
        --upstream classifier=127.0.0.1:8101 --upstream web=127.0.0.1:8003 > nginx.conf

The body limit comes from the stack-wide MAX_BODY_MB, the same variable the services read;
NGINX_READ_TIMEOUT_S, NGINX_CONNECT_TIMEOUT_S and NGINX_FAIL_TIMEOUT_S tune failover
(see ENV_TUNING).
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import jinja2

TEMPLATE = Path(__file__).with_name("nginx.conf.j2")
SERVICES = ("detector", "classifier", "web")


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
    values = {
        **config.__dict__,
        "max_body_mb": f"{config.max_body_mb:g}",
        # nginx sizes are integers: kilobytes keep fractional MB limits exact enough, and
        # match the services' limit (MAX_BODY_MB x 1024 x 1024 bytes) to the kilobyte.
        "max_body_kb": int(config.max_body_mb * 1024),
    }
    return environment.get_template(TEMPLATE.name).render(**values)


# Variables of the nginx part: (NginxConfig field, variable, default, minimum, maximum).
# MAX_BODY_MB is the stack-wide body limit the services read too.
ENV_TUNING = (
    ("max_body_mb", "MAX_BODY_MB", 20.0, 0.001, 1024),
    ("read_timeout_s", "NGINX_READ_TIMEOUT_S", 300, 1, 86400),
    ("connect_timeout_s", "NGINX_CONNECT_TIMEOUT_S", 5, 1, 600),
    ("fail_timeout_s", "NGINX_FAIL_TIMEOUT_S", 10, 1, 3600),
)


def tuning_from_env(environ: dict[str, str] | None = None) -> dict[str, float | int]:
    """NginxConfig keyword arguments from the environment; a bad value stops with one line
    naming the variable (nginx's container has no services package: parsed here)."""
    environ = os.environ if environ is None else environ
    tuning: dict[str, float | int] = {}
    for field_name, variable, default, minimum, maximum in ENV_TUNING:
        value = environ.get(variable, "")
        kind = type(default)
        try:
            parsed = kind(value) if value else default
        except ValueError:
            noun = "an integer" if kind is int else "a number"
            raise SystemExit(f"nginx.render: {variable}={value!r} is not {noun}") from None
        if not minimum <= parsed <= maximum:
            raise SystemExit(
                f"nginx.render: {variable}={value!r} is out of range [{minimum}, {maximum}]"
            )
        tuning[field_name] = parsed
    return tuning


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
        args.output.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
