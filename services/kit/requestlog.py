"""Request ids, one structured (JSON) log line per request, and the request metrics."""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import time
import uuid

from flask import Flask, g, request

from services.kit import metrics
from services.kit.request_ids import is_sane_request_id

REQUEST_ID_HEADER = "X-Request-ID"
# Names the replica and worker that answered: lets people and tests see load balancing.
SERVED_BY_HEADER = "X-Served-By"
# Methods counted by name in the metrics; any other token is "other", so made-up methods
# cannot grow the label set without bound.
METRIC_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})

_PROBES = {"/metrics", "/healthz", "/readyz"}

access_log = logging.getLogger("vision.access")


class JsonFormatter(logging.Formatter):
    """Formats records as one JSON object per line; ``extra={"fields": {...}}`` is merged."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(getattr(record, "fields", {}))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure_logging(level: str) -> None:
    """Send every logger to stdout as JSON lines (containers collect stdout)."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def request_id_from(header_value: str | None) -> str:
    """Keep a caller's request id when it is sane, otherwise make a new one."""
    if is_sane_request_id(header_value):
        return header_value
    return uuid.uuid4().hex


def replica_name(mode: str = "replica") -> str:
    """``replica``: hostname:port/pid (replica and worker); ``host``: the hostname only."""
    host = socket.gethostname()
    if mode == "host":
        return host
    return f"{host}:{os.environ.get('VISION_BIND_PORT', '-')}/{os.getpid()}"


def install_request_logging(app: Flask, service: str, served_by_mode: str = "replica") -> None:
    """Attach request ids, the per-request log line and request metrics to ``app``;
    ``served_by_mode`` is settings.served_by_mode's value."""
    served_by = None if served_by_mode == "off" else replica_name(served_by_mode)

    @app.before_request
    def _start():
        g.request_id = request_id_from(request.headers.get(REQUEST_ID_HEADER))
        g.started = time.perf_counter()
        g.timings_ms = {}
        g.log_fields = {}
        metrics.IN_FLIGHT.labels(service).inc()

    @app.after_request
    def _finish(response):
        if not hasattr(g, "started"):
            return response
        elapsed = time.perf_counter() - g.started
        endpoint = request.url_rule.rule if request.url_rule else "unmatched"
        response.headers[REQUEST_ID_HEADER] = g.request_id
        if served_by:
            response.headers[SERVED_BY_HEADER] = served_by
        method = request.method if request.method in METRIC_METHODS else "other"
        metrics.REQUESTS.labels(service, endpoint, method, response.status_code).inc()
        if endpoint not in _PROBES:
            metrics.REQUEST_SECONDS.labels(service, endpoint).observe(elapsed)
        fields = {
            "request_id": g.request_id,
            "service": service,
            "method": request.method,
            "path": request.path,
            "status": response.status_code,
            "duration_ms": round(elapsed * 1000, 2),
            "timings_ms": {stage: round(ms, 2) for stage, ms in g.timings_ms.items()},
            "remote_addr": request.remote_addr,
            "bytes_in": request.content_length or 0,
        }
        fields.update(g.log_fields)
        # Probes and scrapes arrive every few seconds: keep them out of the log unless they
        # fail or debug logging is on.
        quiet = endpoint in _PROBES and response.status_code < 400
        access_log.log(
            logging.DEBUG if quiet else logging.INFO, "request", extra={"fields": fields}
        )
        return response

    @app.teardown_request
    def _teardown(_exc):
        if hasattr(g, "started"):
            metrics.IN_FLIGHT.labels(service).dec()
