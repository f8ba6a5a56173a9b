"""Admission control: each worker admits a bounded number of requests, refuses the rest.

Without a bound, every request a replica accepts waits in its queues however long they
get: under overload all clients see the latency grow without limit, and nothing tells the
load balancer to send work elsewhere. A worker here admits at most ``limit`` requests at
once (decoding, waiting for a batch or in the model); one more is refused at once, before
its body is read, with a JSON 503 and ``Retry-After``. nginx then tries another replica
(without counting the refusal as a failure, see nginx/nginx.conf.j2), and a client sees
the 503 only when every replica is full.

The default limit comes from a latency budget: as many images as the model runs in
``QUEUE_BUDGET_MS`` at its measured single-image speed, at most the request threads minus
two, which stay free to answer refusals quickly.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from services.kit import metrics
from services.kit.errors import ApiError

REFUSAL_THREADS = 2  # request threads kept free to refuse quickly


MIN_ADMITTED = 2  # one request in the model while the next one decodes


def auto_queue_limit(budget_ms: float, image_ms: float, threads: int) -> int:
    """Requests one worker admits: the images the model runs within ``budget_ms`` at
    ``image_ms`` each, at least MIN_ADMITTED, at most ``threads - REFUSAL_THREADS``. (Not
    raised to a full batch: on a CPU a full batch can take longer than the budget, and
    batching gains little there; on a GPU the budget holds many batches anyway.)"""
    fits = int(budget_ms // max(image_ms, 1e-3))
    return effective_queue_limit(max(MIN_ADMITTED, fits), threads)


def effective_queue_limit(configured: int, threads: int) -> int:
    """A configured limit, capped so refusals always find a free request thread."""
    return max(1, min(configured, threads - REFUSAL_THREADS))


class Admission:
    """Counts one worker's admitted requests against its limit (0: not set yet, when the
    model is not ready and readiness refuses requests anyway)."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.limit = 0
        self._admitted = 0
        self._lock = threading.Lock()

    def set_limit(self, limit: int) -> None:
        with self._lock:
            previous, self.limit = self.limit, limit
        metrics.QUEUE_LIMIT.labels(self.service).inc(limit - previous)

    @property
    def admitted(self) -> int:
        return self._admitted

    @contextmanager
    def admit(self) -> Iterator[None]:
        """Hold a place for the request's whole processing; raise the 503 when full."""
        with self._lock:
            full = self.limit and self._admitted >= self.limit
            if not full:
                self._admitted += 1
        if full:
            metrics.REFUSED.labels(self.service, "queue_full").inc()
            raise ApiError(
                503,
                "overloaded",
                f"This replica is at its limit of {self.limit} requests in progress; "
                "retry in a moment.",
                headers={"Retry-After": "1"},
            )
        metrics.QUEUE_DEPTH.labels(self.service).inc()
        try:
            yield
        finally:
            with self._lock:
                self._admitted -= 1
            metrics.QUEUE_DEPTH.labels(self.service).dec()
