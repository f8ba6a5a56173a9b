"""Prometheus metrics that stay correct under several gunicorn workers.

When ``PROMETHEUS_MULTIPROC_DIR`` is set (the gunicorn hooks set it before any worker
forks), every worker writes its samples to files there and ``/metrics`` aggregates them,
so a scrape counts the requests of all workers, not just of the one that answered.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

_LATENCY_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip

REQUESTS = Counter(
    "vision_http_requests_total",
    "HTTP requests answered, by endpoint and status code.",
    ["service", "endpoint", "method", "status"],
)
REQUEST_SECONDS = Histogram(
    "vision_http_request_duration_seconds",
    "Wall time from request start to response, by endpoint.",
    ["service", "endpoint"],
    buckets=_LATENCY_BUCKETS,
)
STAGE_SECONDS = Histogram(
    "vision_stage_duration_seconds",
    "Time per processing stage of a request (decode, preprocess, queue, inference, "
    "postprocess, encode).",
    ["service", "stage"],
    buckets=_LATENCY_BUCKETS,
)
IMAGES = Counter(
    "vision_images_processed_total",
    "Images that went through the model.",
    ["service"],
)
BATCH_SIZE = Histogram(
    "vision_inference_batch_size",
    "Images per model call (dynamic batching).",
    ["service"],
    buckets=(1, 2, 4, 8, 16, 32, 64),
)
IN_FLIGHT = Gauge(
    "vision_http_requests_in_flight",
    "Requests being processed right now, summed over live workers.",
    ["service"],
    multiprocess_mode="livesum",
)
QUEUE_DEPTH = Gauge(
    "vision_queue_depth",
    "Requests admitted and not yet answered (decoding, waiting for a batch or in the "
    "model), summed over live workers.",
    ["service"],
    multiprocess_mode="livesum",
)
QUEUE_LIMIT = Gauge(
    "vision_queue_limit",
    "Requests the replica admits at once (admission control), summed over live workers.",
    ["service"],
    multiprocess_mode="livesum",
)
REFUSED = Counter(
    "vision_requests_refused_total",
    "Requests refused at once with 503 because the replica was full, by reason.",
    ["service", "reason"],
)


def render_metrics() -> tuple[bytes, str]:
    """The exposition text for a scrape, aggregated over workers in multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def record_stage_timings(service: str, timings_ms: dict[str, float]) -> None:
    for stage, milliseconds in timings_ms.items():
        if stage != "total":
            STAGE_SECONDS.labels(service, stage).observe(milliseconds / 1000.0)
