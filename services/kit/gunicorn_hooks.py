"""gunicorn configuration shared by every service.

Each service's ``gunicorn.conf.py`` is two lines: it calls :func:`gunicorn_settings` and
puts the result into its globals. Decisions that matter with torch:
- no ``preload_app``: every worker builds its own model after fork (CUDA and torch's
  thread pools do not survive fork);
- ``gthread`` workers: the heartbeat keeps beating while the model loads in a background
  thread, so a slow load is never mistaken for a hung worker, and /healthz answers at once;
  probes get threads of their own (probe_worker), so a busy replica never looks dead;
- a private runtime directory per master for Prometheus multiprocess files and readiness
  markers, removed when the master exits.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

# Only light modules here: this runs in the master, which must not import
# prometheus_client before PROMETHEUS_MULTIPROC_DIR is set (it picks its value store once).
from services.kit.readiness import (
    EXIT_ON_LOAD_FAILURE_ENV,
    EXPECTED_WORKERS_ENV,
    READY_DIR_ENV,
    forget_worker,
)
from services.kit.settings import (
    MODEL_HTTP_THREADS,
    EnvReader,
    SettingsError,
    read_http_threads,
    read_workers,
)

RUNTIME_DIR_ENV = "VISION_RUNTIME_DIR"


def gunicorn_settings(
    prefix: str,
    default_port: int,
    app: str,
    validate,
    default_http_threads: int = MODEL_HTTP_THREADS,
) -> dict:
    """Settings for a gunicorn.conf.py. ``validate(env)`` builds the service's settings
    object; a SettingsError stops the start with one line naming the variable."""
    env = EnvReader.from_os(prefix)
    try:
        validate(env)
        host = env.string("HOST", "0.0.0.0")
        port = env.integer("PORT", default_port, 1, 65535)
        workers = read_workers(env)
        threads = read_http_threads(env, default_http_threads)
        timeout = env.integer("WORKER_TIMEOUT", 120, 10, 3600)
        graceful = env.integer("GRACEFUL_TIMEOUT", 30, 1, 3600)
    except SettingsError as error:
        print(f"{prefix.lower()}: configuration error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    os.environ["VISION_BIND_PORT"] = str(port)
    return {
        "wsgi_app": app,
        "bind": [f"{host}:{port}"],
        "workers": workers,
        "worker_class": "services.kit.probe_worker.ProbeAwareThreadWorker",
        "threads": threads,
        "timeout": timeout,
        "graceful_timeout": graceful,
        # Longer than nginx's upstream keepalive_timeout (60 s), so nginx closes idle
        # connections first and never sends on a socket gunicorn just closed.
        "keepalive": 75,
        # Above nginx's own limits (large_client_header_buffers 4 8000 in nginx.conf.j2), so
        # an oversized request line or header block gets nginx's JSON error, never
        # gunicorn's plain-text one; nginx caps each header line at 8000 bytes.
        "limit_request_line": 8190,
        "limit_request_fields": 32768,
        "limit_request_field_size": 0,
        "preload_app": False,
        "accesslog": None,  # the app logs one JSON line per request itself
        "errorlog": "-",
        "proc_name": f"vision-{prefix.lower()}",
        "worker_tmp_dir": "/dev/shm" if os.path.isdir("/dev/shm") else None,
        # No `gunicornc` control socket: every master would bind the same
        # ~/.gunicorn/gunicorn.ctl (the last one wins), and a read-only home breaks it.
        "control_socket_disable": True,
        "on_starting": on_starting,
        "child_exit": child_exit,
        "on_exit": on_exit,
    }


def on_starting(server) -> None:
    remove_dead_masters_runtime_dirs(server.proc_name)
    runtime = tempfile.mkdtemp(prefix=f"{server.proc_name}-{os.getpid()}-")
    for sub in ("metrics", "ready"):
        os.mkdir(os.path.join(runtime, sub))
    os.environ[RUNTIME_DIR_ENV] = runtime
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = os.path.join(runtime, "metrics")
    os.environ[READY_DIR_ENV] = os.path.join(runtime, "ready")
    os.environ[EXPECTED_WORKERS_ENV] = str(server.cfg.workers)
    os.environ[EXIT_ON_LOAD_FAILURE_ENV] = "1"


def remove_dead_masters_runtime_dirs(proc_name: str) -> list[str]:
    """Remove the runtime dirs of masters that died without their on_exit (a SIGKILL, a
    crash): named ``<proc_name>-<master pid>-<random>``, kept only while that pid lives."""
    removed = []
    for path in Path(tempfile.gettempdir()).glob(f"{proc_name}-*-*"):
        pid = path.name.removeprefix(f"{proc_name}-").split("-", 1)[0]
        if not pid.isdigit() or _alive(int(pid)):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path.name)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def child_exit(server, worker) -> None:
    from prometheus_client import multiprocess  # after PROMETHEUS_MULTIPROC_DIR is set

    multiprocess.mark_process_dead(worker.pid)
    forget_worker(worker.pid)


def on_exit(server) -> None:
    runtime = os.environ.get(RUNTIME_DIR_ENV)
    if runtime:
        shutil.rmtree(runtime, ignore_errors=True)
