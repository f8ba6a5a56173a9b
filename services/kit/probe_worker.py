"""A gunicorn gthread worker whose health probes never wait behind inference.

gunicorn's gthread worker hands every request to one thread pool. When a replica is busy,
each of those threads sits waiting for its batch to come back from the model, so a probe
queues behind seconds of work: Swarm and Kubernetes then see a slow probe as a dead
replica and replace the busiest one. This worker looks at a request's first bytes
(``MSG_PEEK``: nothing is consumed) and sends ``GET``/``HEAD`` of the probe paths to a
small pool of their own; everything else goes to the usual pool. The probe is then handled
by the same Flask app (same readiness logic, headers, logs and metrics) on the same port,
so nginx, Docker's HEALTHCHECK and Kubernetes probes need nothing special.

A new connection's request may not have arrived when it is accepted: such a connection
waits on the worker's poller (as gthread does for slow clients) and is routed once its
first bytes are there. Relies on gthread internals of the pinned gunicorn version
(``enqueue_req``, ``pending_conns``, ``set_accept_enabled``); tests/stack/test_health_under_load.py
and test_make_run_supervision.py exercise it.
"""

from __future__ import annotations

import os
import selectors
import socket
import time
from concurrent import futures
from functools import partial

from gunicorn.workers.gthread import ThreadWorker

# Paths answered from the probe pool: liveness, readiness and Prometheus scrapes.
PROBE_PATHS = (b"/healthz", b"/readyz", b"/metrics")
PROBE_THREADS = 2
_PEEK_BYTES = 32


def is_probe_request(head: bytes) -> bool:
    """Whether the first bytes of an HTTP/1.x request are a probe's request line."""
    method, _, rest = head.partition(b" ")
    if method not in (b"GET", b"HEAD"):
        return False
    # The path ends at a space (request line) or '?' (query string).
    return any(
        rest.startswith(path) and rest[len(path) : len(path) + 1] in (b" ", b"?")
        for path in PROBE_PATHS
    )


def _peek(sock: socket.socket) -> bytes | None:
    """The bytes waiting on the socket, without consuming them; None when none are there
    yet (b"" means the peer closed)."""
    try:
        return sock.recv(_PEEK_BYTES, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return None
    except OSError:
        return b""  # let the normal path see the error and close the connection


class ProbeAwareThreadWorker(ThreadWorker):
    """gthread with a separate pool for probe requests (see the module docstring)."""

    def init_process(self):
        self.probe_pool = futures.ThreadPoolExecutor(
            max_workers=PROBE_THREADS, thread_name_prefix="probe"
        )
        super().init_process()

    def enqueue_req(self, conn):
        head = _peek(conn.sock)
        if head is None:
            self._wait_for_first_bytes(conn)
            return
        pool = self.probe_pool if is_probe_request(head) else self.tpool
        future = pool.submit(self.handle, conn)
        future.add_done_callback(
            lambda done: self.method_queue.defer(self.finish_request, conn, done)
        )

    def _wait_for_first_bytes(self, conn) -> None:
        # The same bookkeeping gthread uses for a connection it deferred: the poller calls
        # on_pending_socket_readable, which enqueues it again; murder_pending closes it
        # after the keepalive timeout if nothing comes.
        conn.sock.setblocking(False)
        conn.timeout = time.monotonic() + self.cfg.keepalive
        self.pending_conns.append(conn)
        self.poller.register(
            conn.sock, selectors.EVENT_READ, partial(self.on_pending_socket_readable, conn)
        )

    def set_accept_enabled(self, enabled):
        super().set_accept_enabled(enabled)
        if not enabled and os.getppid() != self.ppid:
            # The master died (a SIGKILL, a crash): let go of the port now, so the replica a
            # supervisor restarts in its place can bind it while this orphan finishes its
            # in-flight requests (gthread would hold it for the whole graceful timeout).
            for listener in self.sockets:
                listener.close()

    def handle_quit(self, sig, frame):
        self.probe_pool.shutdown(wait=False)
        super().handle_quit(sig, frame)

    def run(self):
        try:
            super().run()
        finally:
            self.probe_pool.shutdown(wait=False)
