"""Model lifecycle in a worker (loading, ready, failed) and readiness across workers.

Each gunicorn worker loads its model in a background thread after fork, so ``/healthz``
and ``/readyz`` answer from the first second. A worker that finished loading and warming
up drops a marker file named by its pid into ``VISION_READY_DIR``; ``/readyz`` says ready
only when every expected worker has one, so a replica never reports ready while part of it
still loads. The gunicorn master removes a dead worker's marker (see gunicorn_hooks).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

READY_DIR_ENV = "VISION_READY_DIR"
EXPECTED_WORKERS_ENV = "VISION_EXPECTED_WORKERS"
# Set by the gunicorn hooks: a worker whose model fails to load exits with code 3, which
# makes the gunicorn master stop with "Worker failed to boot" instead of respawning forever.
EXIT_ON_LOAD_FAILURE_ENV = "VISION_EXIT_ON_LOAD_FAILURE"


class ModelLifecycle:
    """Tracks one worker's model: ``loading`` -> ``ready`` or ``failed``."""

    def __init__(self, on_failure: Callable[[BaseException], None] | None = None):
        self.state = "loading"
        self.error: str | None = None
        self._on_failure = on_failure
        self._done = threading.Event()

    def start(self, load_and_warm_up: Callable[[], None], background: bool = True) -> None:
        if background:
            threading.Thread(
                target=self._load, args=(load_and_warm_up,), name="model-loader", daemon=True
            ).start()
        else:
            self._load(load_and_warm_up)

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    @property
    def ready(self) -> bool:
        return self.state == "ready"

    def _load(self, load_and_warm_up: Callable[[], None]) -> None:
        try:
            load_and_warm_up()
        except BaseException as error:
            self.state, self.error = "failed", f"{type(error).__name__}: {error}"
            log.error("model failed to load", extra={"fields": {"error": self.error}})
            self._done.set()
            if self._on_failure:
                self._on_failure(error)
            return
        self.state = "ready"
        mark_worker_ready()
        self._done.set()


def _ready_dir() -> Path | None:
    value = os.environ.get(READY_DIR_ENV)
    return Path(value) if value else None


def mark_worker_ready() -> None:
    directory = _ready_dir()
    if directory is not None:
        (directory / str(os.getpid())).touch()


def forget_worker(pid: int) -> None:
    directory = _ready_dir()
    if directory is not None:
        (directory / str(pid)).unlink(missing_ok=True)


def workers_ready() -> tuple[int, int]:
    """(ready workers, expected workers) of this replica; (1, 1) outside gunicorn."""
    directory = _ready_dir()
    if directory is None:
        return 1, 1
    expected = int(os.environ.get(EXPECTED_WORKERS_ENV, "1"))
    return len(list(directory.iterdir())), expected
