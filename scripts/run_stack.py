"""`make run`: the whole stack on one port, under supervisord.

Starts N detector and N classifier replicas and the web service under gunicorn, nginx in
front (nginx/upstream_watch.py renders nginx/nginx.conf.j2, the template compose uses too),
waits until every replica is ready and prints the URL. supervisord restarts any process that
dies (a crashed replica is back within seconds while nginx sends its requests to the
others); on Ctrl-C it stops everything.

STACK_ROLE splits the same stack over plain hosts (docs/multi-node.md):
- ``all`` (default): everything on this host;
- ``models``: only the detector and classifier replicas, bound to STACK_BIND_HOST
  (0.0.0.0 to be reachable from the nginx host);
- ``edge``: only nginx and web; the model replicas are the host:port lists in
  NGINX_DETECTOR_UPSTREAM and NGINX_CLASSIFIER_UPSTREAM (names are re-resolved every
  NGINX_RESOLVE_INTERVAL_S seconds).

Configuration (environment): STACK_PORT (8080), DETECTOR_REPLICAS (2),
CLASSIFIER_REPLICAS (2), DETECTOR_PORT_BASE (8201), CLASSIFIER_PORT_BASE (8101),
WEB_PORT (8003), MONITORING (0; 1: Prometheus on PROMETHEUS_PORT, 9090, scraping every
replica), STACK_RUN_DIR (.run: supervisord.conf, nginx runtime), plus every service
variable (DETECTOR_*, CLASSIFIER_*, WEB_*, MAX_BODY_MB, NGINX_*).
"""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

from nginx.render import parse_upstreams
from scripts.prometheus_config import static_config
from services.kit.settings import EnvReader, SettingsError

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_RUN_DIR = REPO_ROOT / ".run"
MODEL_SERVICES = ("detector", "classifier")
ROLES = ("all", "models", "edge")


@dataclass
class Plan:
    """What this host runs: gunicorn replicas (service -> ports), and, unless the role is
    ``models``, nginx on ``public`` with its upstreams (service -> host:port list)."""

    role: str
    run_dir: Path
    bind_host: str
    public: int
    replicas: dict[str, list[int]]
    upstreams: dict[str, list[str]]
    resolve_interval_s: float
    monitoring_port: int = 0  # Prometheus on 127.0.0.1:<port> (MONITORING=1), 0: none


def plan(environ: dict[str, str]) -> Plan:
    """This host's part of the stack, from the environment."""
    env = EnvReader("", environ)
    role = env.string("STACK_ROLE", "all", ROLES)
    public = env.integer("STACK_PORT", 8080, 1, 65535)
    bind_host = env.string("STACK_BIND_HOST", "127.0.0.1")
    model_ports = {
        "detector": [
            env.integer("DETECTOR_PORT_BASE", 8201, 1, 65000) + i
            for i in range(env.integer("DETECTOR_REPLICAS", 2, 1, 32))
        ],
        "classifier": [
            env.integer("CLASSIFIER_PORT_BASE", 8101, 1, 65000) + i
            for i in range(env.integer("CLASSIFIER_REPLICAS", 2, 1, 32))
        ],
    }
    web_port = env.integer("WEB_PORT", 8003, 1, 65535)
    replicas = {} if role == "edge" else dict(model_ports)
    if role != "models":
        replicas["web"] = [web_port]
    upstreams = {
        service: [f"127.0.0.1:{port}" for port in ports] for service, ports in replicas.items()
    }
    if role == "edge":
        for service in MODEL_SERVICES:
            variable = f"NGINX_{service.upper()}_UPSTREAM"
            servers = parse_upstreams([f"{service}={environ.get(variable, '')}"])[service]
            if not servers:
                raise SettingsError(f"{variable} must list the {service} replicas (host:port,...)")
            upstreams[service] = servers
    if role == "models":
        upstreams = {}
    interval = env.number("NGINX_RESOLVE_INTERVAL_S", 5.0, 0.1, 3600)
    run_dir = Path(env.string("STACK_RUN_DIR", str(DEFAULT_RUN_DIR)))
    monitoring = env.boolean("MONITORING", False)
    prometheus_port = env.integer("PROMETHEUS_PORT", 9090, 1, 65535) if monitoring else 0
    return Plan(role, run_dir, bind_host, public, replicas, upstreams, interval, prometheus_port)


@dataclass(frozen=True)
class Program:
    """One supervised process: its name, command line and extra environment."""

    name: str
    command: list[str]
    env: dict[str, str]
    restart: bool = True  # restarted whenever it exits (a crash, a SIGKILL)


def programs(stack: Plan) -> list[Program]:
    python = sys.executable
    found = []
    for service, service_ports in stack.replicas.items():
        prefix = service.upper()
        host = "127.0.0.1" if service == "web" else stack.bind_host
        for index, port in enumerate(service_ports, start=1):
            found.append(
                Program(
                    f"{service}{index}",
                    [python, "-m", "gunicorn", "-c", f"services/{service}/gunicorn.conf.py"],
                    {f"{prefix}_HOST": host, f"{prefix}_PORT": str(port)},
                )
            )
    public = "-"
    if stack.upstreams:
        public = f"http://127.0.0.1:{stack.public}"
        services = [
            f"--service={name}={','.join(servers)}" for name, servers in stack.upstreams.items()
        ]
        command = [python, "-m", "nginx.upstream_watch", f"--listen={stack.public}"]
        command += [f"--runtime-dir={stack.run_dir / 'nginx'}"]
        command += [f"--interval={stack.resolve_interval_s:g}", *services]
        found.append(Program("nginx", command, {}))
    replica_urls = [
        f"http://{address}"
        for addresses in replica_addresses(stack).values()
        for address in addresses
    ]
    if stack.monitoring_port:
        found.append(
            Program(
                "prometheus",
                [
                    "prometheus",
                    f"--config.file={stack.run_dir / 'prometheus.yml'}",
                    f"--storage.tsdb.path={stack.run_dir / 'prometheus'}",
                    f"--web.listen-address=127.0.0.1:{stack.monitoring_port}",
                ],
                {},
            )
        )
    command = [python, "-m", "scripts.wait_ready", public, *replica_urls]
    found.append(Program("ready", command, {}, restart=False))
    return found


def replica_addresses(stack: Plan) -> dict[str, list[str]]:
    """service -> ``host:port`` where each replica of this host is reached (probed, scraped):
    a replica bound to one address there, one bound to all (and web) on loopback."""
    probe_host = "127.0.0.1" if stack.bind_host in ("0.0.0.0", "::") else stack.bind_host
    return {
        service: [f"{'127.0.0.1' if service == 'web' else probe_host}:{port}" for port in ports]
        for service, ports in stack.replicas.items()
    }


def _supervisor_value(text: str) -> str:
    return text.replace("%", "%%")  # supervisord expands %(name)s in its config


def supervisor_config(stack: Plan) -> str:
    """supervisord.conf: every program restarted when it dies, logs on stdout, all stopped
    (process groups, with the services' grace period) on Ctrl-C or SIGTERM."""
    lines = [
        "[supervisord]",
        "nodaemon=true",
        "logfile=/dev/null",
        "logfile_maxbytes=0",
        f"pidfile={_supervisor_value(str(stack.run_dir / 'supervisord.pid'))}",
        f"directory={_supervisor_value(str(REPO_ROOT))}",
        "",
    ]
    for program in programs(stack):
        environment = ",".join(
            f'{key}="{_supervisor_value(value)}"' for key, value in program.env.items()
        )
        lines += [
            f"[program:{program.name}]",
            f"command={_supervisor_value(shlex.join(program.command))}",
            f"directory={_supervisor_value(str(REPO_ROOT))}",
            *([f"environment={environment}"] if environment else []),
            f"autorestart={'true' if program.restart else 'false'}",
            "startsecs=1" if program.restart else "startsecs=0",
            "startretries=100",
            "stopasgroup=true",
            "killasgroup=true",
            "stopwaitsecs=40",  # longer than *_GRACEFUL_TIMEOUT: in-flight requests finish
            "stdout_logfile=/dev/stdout",
            "stdout_logfile_maxbytes=0",
            "redirect_stderr=true",
            "",
        ]
    return "\n".join(lines)


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def main() -> int:
    environ = dict(os.environ)
    try:
        stack = plan(environ)
    except SettingsError as error:
        print(f"run_stack: configuration error: {error}", file=sys.stderr)
        return 2
    every_port = [p for ports in stack.replicas.values() for p in ports]
    if stack.upstreams:
        every_port.append(stack.public)
    busy = [p for p in every_port if not port_is_free(p)]
    if busy:
        print(
            f"run_stack: port(s) {busy} are in use; set STACK_PORT / *_PORT_BASE / "
            "WEB_PORT to free ones",
            file=sys.stderr,
        )
        return 2
    shutil.rmtree(stack.run_dir / "nginx", ignore_errors=True)
    stack.run_dir.mkdir(parents=True, exist_ok=True)
    if stack.monitoring_port:
        targets = replica_addresses(stack)
        (stack.run_dir / "prometheus.yml").write_text(static_config(targets))
    config = stack.run_dir / "supervisord.conf"
    config.write_text(supervisor_config(stack))
    # The web service calls the models through nginx, so its calls are balanced too.
    environ.setdefault("WEB_DETECTOR_URL", f"http://127.0.0.1:{stack.public}/detector")
    environ.setdefault("WEB_CLASSIFIER_URL", f"http://127.0.0.1:{stack.public}/classifier")
    # One torch thread per replica: 2 x 2 replicas share the cores without oversubscribing.
    environ.setdefault("DETECTOR_TORCH_THREADS", "1")
    environ.setdefault("CLASSIFIER_TORCH_THREADS", "1")
    environ["PYTHONUNBUFFERED"] = "1"
    if os.path.isdir("/dev/shm"):
        # Uploads nginx spools (bodies over 64 KB) stay in memory, never on disk.
        environ.setdefault("NGINX_BODY_TEMP_DIR", f"/dev/shm/vision-nginx-{stack.public}")
    supervisord = [sys.executable, "-m", "supervisor.supervisord", "-c", str(config)]
    os.execvpe(supervisord[0], supervisord, environ)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
