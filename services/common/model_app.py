"""The Flask app every model service shares: health, readiness, models, metrics, errors.

A service calls :func:`create_model_app` with its model and then adds its own prediction
route(s), which use ``app.extensions["pipeline"]`` and :func:`json_result`.
"""

from __future__ import annotations

import os

from flask import Flask, g, jsonify, request

from services.common.errors import ApiError
from services.common.metrics import record_stage_timings
from services.common.model_service import (
    UNTRAINED_WARNING,
    InferencePipeline,
    PipelineResult,
    VisionModel,
)
from services.common.readiness import EXIT_ON_LOAD_FAILURE_ENV, workers_ready
from services.common.service_app import create_service_app
from services.common.settings import ServingSettings
from services.common.uploads import read_uploaded_images

_WORKER_BOOT_ERROR = 3  # gunicorn's code for "Worker failed to boot": the master stops


def _exit_worker(_error: BaseException) -> None:
    os._exit(_WORKER_BOOT_ERROR)


def create_model_app(
    service: str,
    model: VisionModel,
    settings: ServingSettings,
    load_in_background: bool = True,
) -> Flask:
    """Build the app and start loading the model (in a thread unless told otherwise)."""
    app = create_service_app(service, service, settings.max_body_bytes, settings.log_level)

    pipeline = InferencePipeline(service, model, settings)
    app.extensions["pipeline"] = pipeline
    on_failure = _exit_worker if os.environ.get(EXIT_ON_LOAD_FAILURE_ENV) else None
    pipeline.start(background=load_in_background, on_failure=on_failure)

    @app.get("/readyz")
    def readyz():
        ready_workers, expected = workers_ready()
        body = {
            "service": service,
            "model": pipeline.lifecycle.state,
            "workers_ready": ready_workers,
            "workers": expected,
        }
        if pipeline.lifecycle.error:
            body["error"] = pipeline.lifecycle.error
        ready = pipeline.lifecycle.ready and ready_workers >= expected
        body["status"] = "ready" if ready else "not_ready"
        response = jsonify(body)
        response.status_code = 200 if ready else 503
        return response

    @app.get("/v1/models")
    def models():
        pipeline.require_ready()
        entry = {"service": service, **model.describe(), "weights": model.weights.as_dict()}
        entry["runtime"] = {
            "torch_threads": settings.torch_threads,
            "max_batch": settings.max_batch,
            "batch_wait_ms": settings.batch_wait_ms,
        }
        return jsonify(models=[entry])

    return app


def run_uploaded_images(app: Flask) -> PipelineResult:
    """Read the request's images and run them through this app's pipeline."""
    pipeline: InferencePipeline = app.extensions["pipeline"]
    pipeline.require_ready()
    blobs = read_uploaded_images(request, pipeline.settings.max_images)
    result = pipeline.run(blobs)
    g.timings_ms = result.timings_ms
    g.log_fields["images"] = len(result.images)
    return result


def json_result(app: Flask, per_image: list[dict], timings_ms: dict[str, float]):
    """The response envelope: one image -> its result at top level; several -> ``results``.

    Every response names the model and, for stand-in weights, carries a plain warning.
    """
    pipeline: InferencePipeline = app.extensions["pipeline"]
    timings_ms["total"] = sum(timings_ms.values())
    rounded = {stage: round(ms, 2) for stage, ms in timings_ms.items()}
    record_stage_timings(pipeline.service, timings_ms)
    body: dict = dict(per_image[0]) if len(per_image) == 1 else {"results": per_image}
    body["model"] = pipeline.model.model_summary()
    body["timings_ms"] = rounded
    if not pipeline.model.weights.trained:
        body["warning"] = UNTRAINED_WARNING
    return jsonify(body)


_KIND_NAMES = {int: "an integer", float: "a number"}


def query_number(name: str, default: float, minimum: float, maximum: float, kind=float):
    """A query parameter within bounds, else 400 ``invalid_parameter`` naming it."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ApiError(
            400, "invalid_parameter", f"Query parameter {name}={raw!r} is not {_KIND_NAMES[kind]}."
        ) from None
    if not minimum <= value <= maximum:
        raise ApiError(
            400,
            "invalid_parameter",
            f"Query parameter {name}={raw!r} is out of range [{minimum}, {maximum}].",
        )
    return value
