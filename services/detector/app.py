"""HTTP API of the detector: ``POST /v1/detect`` plus the serving core's endpoints."""

from __future__ import annotations

from collections.abc import Mapping

from flask import Flask, Response, request

from services.common.errors import ApiError
from services.common.model_app import (
    create_model_app,
    json_result,
    query_number,
    run_uploaded_images,
)
from services.common.model_service import timed
from services.detector.model import Detector
from services.detector.render import encode_image, render_detections
from services.detector.settings import DetectorSettings
from services.detector.yolo import postprocess

SERVICE = "detector"
UNTRAINED_BANNER = "UNTRAINED STAND-IN WEIGHTS - detections are meaningless"
_IMAGE_TYPES = {"image/jpeg": "jpeg", "image/png": "png"}


def wanted_image_type() -> str | None:
    """``render=1`` or an Accept header preferring an image -> the MIME type to render."""
    render_flag = request.args.get("render", "")
    if render_flag not in {"", "0", "1", "true", "false"}:
        raise ApiError(
            400, "invalid_parameter", f"Query parameter render={render_flag!r} must be 0 or 1."
        )
    best = request.accept_mimetypes.best_match(["application/json", *_IMAGE_TYPES])
    if best in _IMAGE_TYPES:
        return best
    if render_flag in {"1", "true"}:
        return "image/jpeg"
    return None


def create_app(environ: Mapping[str, str] | None = None, load_in_background: bool = True) -> Flask:
    """App factory. ``environ`` overrides the process environment (tests use it)."""
    settings = DetectorSettings.from_env(environ)
    model = Detector(settings)
    app = create_model_app(SERVICE, model, settings.serving, load_in_background)

    @app.post("/v1/detect")
    def detect():
        conf = query_number("conf_threshold", settings.conf_threshold, 0.0, 1.0)
        iou = query_number("iou_threshold", settings.iou_threshold, 0.0, 1.0)
        limit = query_number("max_detections", settings.max_detections, 1, 10000, int)
        image_type = wanted_image_type()
        result = run_uploaded_images(app)
        if image_type and len(result.images) > 1:
            raise ApiError(
                400,
                "render_single_image",
                "Rendering returns one picture: send one image with render=1.",
            )
        per_image = []
        with timed(result.timings_ms, "postprocess"):
            for item in result.images:
                detections = postprocess(item.output, item.meta.letterbox, conf, iou, limit)
                per_image.append(
                    {
                        # The label first: it is what people read in the JSON.
                        "detections": [
                            {"label": model.class_names[d["class_id"]], **d} for d in detections
                        ],
                        "image": {"width": item.width, "height": item.height},
                    }
                )
        if image_type:
            return rendered_response(app, model, result, per_image[0], image_type)
        return json_result(app, per_image, result.timings_ms)

    return app


def rendered_response(app, model: Detector, result, detections: dict, image_type: str):
    """The photo with its boxes drawn; the facts a JSON body would carry go in headers."""
    timings = result.timings_ms
    with timed(timings, "render"):
        banner = None if model.weights.trained else UNTRAINED_BANNER
        picture = render_detections(result.images[0].meta.image, detections["detections"], banner)
    with timed(timings, "encode"):
        body = encode_image(picture, _IMAGE_TYPES[image_type], quality=model.settings.jpeg_quality)
    response = Response(body, mimetype=image_type)
    response.headers["X-Detections"] = str(len(detections["detections"]))
    response.headers["X-Model"] = model.name
    response.headers["X-Model-Trained"] = "true" if model.weights.trained else "false"
    if not model.weights.trained:
        response.headers["Warning"] = (
            '199 - "untrained stand-in weights: detections are meaningless"'
        )
    response.headers["Server-Timing"] = ", ".join(
        f"{stage};dur={ms:.2f}" for stage, ms in timings.items()
    )
    return response
