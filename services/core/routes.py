"""The Flask app of every model service, derived from its one declaration (VisionModel).

:func:`create_model_app` registers ``/readyz``, ``/v1/models``, ``/openapi.json`` (the
service's own document, from the declaration) and the model's own POST route. The route
validates the model's parameters (before the body is read), reads the images, runs the
pipeline, calls ``postprocess`` per image, and answers with the JSON envelope or, for a
model that renders, the encoded picture; stage metrics are recorded in one place for both.
"""

from __future__ import annotations

import io
import os

from flask import Flask, Response, g, jsonify, request
from PIL import Image

from services.core.declaration import UNTRAINED_WARNING, VisionModel
from services.core.pipeline import InferencePipeline, PipelineResult
from services.core.v2 import register_v2_routes
from services.kit.errors import ApiError
from services.kit.flask_app import create_service_app
from services.kit.imaging import PICTURE_TYPES
from services.kit.metrics import record_stage_timings
from services.kit.openapi import service_document
from services.kit.readiness import EXIT_ON_LOAD_FAILURE_ENV, workers_ready
from services.kit.settings import ServingSettings
from services.kit.timing import timed
from services.kit.uploads import read_uploaded_images

_WORKER_BOOT_ERROR = 3  # gunicorn's code for "Worker failed to boot": the master stops
UNTRAINED_HEADER = '199 - "untrained stand-in weights: results are meaningless"'


def _exit_worker(_error: BaseException) -> None:
    os._exit(_WORKER_BOOT_ERROR)


def create_model_app(
    service: str,
    model: VisionModel,
    settings: ServingSettings,
    load_in_background: bool = True,
) -> Flask:
    """Build the app and start loading the model (in a thread unless told otherwise)."""
    app = create_service_app(
        service, service, settings.max_body_bytes, settings.log_level, settings.served_by
    )

    pipeline = InferencePipeline(service, model, settings)
    app.extensions["pipeline"] = pipeline
    on_failure = _exit_worker if os.environ.get(EXIT_ON_LOAD_FAILURE_ENV) else None
    pipeline.start(background=load_in_background, on_failure=on_failure)
    parameters = model.parameters()

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

    endpoint = {
        "path": model.route,
        "renders": model.renders,
        "parameters": [parameter.describe() for parameter in parameters],
    }

    @app.get("/openapi.json")
    def openapi_document():
        return jsonify(service_document(service, model.name, endpoint))

    @app.get("/v1/models")
    def models():
        pipeline.require_ready()
        entry = {"service": service, **model.describe(), "weights": model.weights.as_dict()}
        entry["endpoint"] = endpoint
        entry["runtime"] = {
            "torch_threads": settings.torch_threads,
            "max_batch": settings.max_batch,
            "batch_wait_ms": settings.batch_wait_ms,
            "queue_limit": pipeline.admission.limit,
        }
        return jsonify(models=[entry])

    def predict():
        # Everything the query string can get wrong is refused before the body is read.
        values = {p.name: p.parse(request.args.get(p.name)) for p in parameters}
        picture_type = wanted_picture_type() if model.renders else None
        with pipeline.admitted():  # refused at once, before the body is read, when full
            return answer(values, picture_type)

    def answer(values: dict, picture_type: str | None):
        blobs = read_uploaded_images(request, settings.max_images)
        if picture_type and len(blobs) > 1:
            raise ApiError(
                400,
                "render_single_image",
                "Rendering returns one picture: send one image with render=1.",
            )
        result = pipeline.run(blobs, full_decode=picture_type is not None)
        g.timings_ms = result.timings_ms
        g.log_fields["images"] = len(result.images)
        with timed(result.timings_ms, "postprocess"):
            per_image = [
                {
                    **model.postprocess(item.output, item.meta, values),
                    "image": {"width": item.width, "height": item.height},
                }
                for item in result.images
            ]
        if picture_type:
            response = picture_response(model, result, per_image[0], picture_type)
        else:
            response = json_response(model, per_image, result.timings_ms)
        record_stage_timings(service, result.timings_ms)
        return response

    app.add_url_rule(model.route, endpoint="predict", view_func=predict, methods=["POST"])
    register_v2_routes(app, service, model, pipeline, settings)
    return app


def wanted_picture_type() -> str | None:
    """``render=1`` or an Accept header preferring an image -> the MIME type to render."""
    render_flag = request.args.get("render", "")
    if render_flag not in {"", "0", "1", "true", "false"}:
        raise ApiError(
            400, "invalid_parameter", f"Query parameter render={render_flag!r} must be 0 or 1."
        )
    best = request.accept_mimetypes.best_match(["application/json", *PICTURE_TYPES])
    if best in PICTURE_TYPES:
        return best
    if render_flag in {"1", "true"}:
        return "image/jpeg"
    return None


def json_response(model: VisionModel, per_image: list[dict], timings_ms: dict[str, float]):
    """The envelope: one image -> its result at top level; several -> ``results``.

    Every response names the model and, for stand-in weights, carries a plain warning.
    """
    timings_ms["total"] = sum(timings_ms.values())
    body: dict = dict(per_image[0]) if len(per_image) == 1 else {"results": per_image}
    body["model"] = model.model_summary()
    body["timings_ms"] = {stage: round(ms, 2) for stage, ms in timings_ms.items()}
    if not model.weights.trained:
        body["warning"] = UNTRAINED_WARNING
    return jsonify(body)


def encode_picture(picture: Image.Image, mime_type: str, quality: int = 90) -> bytes:
    """``picture`` as JPEG (RGB, ``quality``) or PNG file bytes."""
    if mime_type not in PICTURE_TYPES:
        raise ValueError(f"unsupported picture type {mime_type!r}: use {sorted(PICTURE_TYPES)}")
    buffer = io.BytesIO()
    if mime_type == "image/png":
        picture.save(buffer, format="PNG")
    else:
        picture.convert("RGB").save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def picture_response(model: VisionModel, result: PipelineResult, answer: dict, mime_type: str):
    """The drawn picture; what a JSON body would carry goes in headers."""
    timings = result.timings_ms
    with timed(timings, "render"):
        rendered = model.render(result.images[0].meta, answer)
    with timed(timings, "encode"):
        body = encode_picture(rendered.picture, mime_type, model.jpeg_quality)
    response = Response(body, mimetype=mime_type)
    response.headers.update(rendered.headers)
    response.headers["X-Model"] = model.name
    response.headers["X-Model-Trained"] = "true" if model.weights.trained else "false"
    if not model.weights.trained:
        response.headers["Warning"] = UNTRAINED_HEADER
    response.headers["Server-Timing"] = ", ".join(
        f"{stage};dur={ms:.2f}" for stage, ms in timings.items()
    )
    return response
