"""The Open Inference Protocol (KServe v2 / Triton HTTP) routes of a model service.

The model's v2 name is its service's name, version ``1``, so nginx can route
``/v2/models/<service>/...`` without knowing the architecture:

- ``GET /v2/models/<service>[/versions/1]``: metadata (inputs, outputs, shapes; -1 variable);
- ``GET /v2/models/<service>[/versions/1]/ready``: 200 when ready, else 503 (like /readyz,
  so nginx asks another replica; the spec says only "not 200");
- ``POST /v2/models/<service>[/versions/1]/infer``: encoded images as ``IMAGE`` (BYTES, shape
  [N]) or pixels as ``IMAGE_RAW`` (UINT8 0-255 or FP32 0-1, [H, W, 3] or [N, H, W, 3], RGB),
  the model's parameters (thresholds, top_k) as request parameters, JSON or binary tensors.

Everything /v1 has carries over: the same pipeline (batching, admission control, limits),
request ids, metrics, and the untrained-weights warning as the response parameter
``warning``. Errors are ``{"error": "<message>"}`` with the right 4xx status.
"""

from __future__ import annotations

import numpy as np
from flask import Blueprint, Flask, Response, jsonify, request
from PIL import Image
from werkzeug.exceptions import HTTPException

from services.core.declaration import UNTRAINED_WARNING, VisionModel
from services.core.pipeline import InferencePipeline
from services.kit.errors import ApiError, error_response
from services.kit.inference_protocol import (
    HEADER_LENGTH,
    InferRequest,
    Tensor,
    bad_request,
    build_infer_response,
    parse_infer_request,
    ranked_label_strings,
    requested_top_k,
)
from services.kit.settings import ServingSettings

VERSION = "1"
ENCODED_INPUT = "IMAGE"
RAW_INPUT = "IMAGE_RAW"
RAW_DATATYPES = ("UINT8", "FP32")


def register_v2_routes(
    app: Flask,
    service: str,
    model: VisionModel,
    pipeline: InferencePipeline,
    settings: ServingSettings,
) -> None:
    """Add the v2 routes for ``model`` (served as ``service``) to ``app``."""
    v2 = Blueprint("v2", __name__)
    parameters = model.parameters()

    @v2.errorhandler(ApiError)
    def _api_error(error: ApiError):
        return error_response(error, {"error": error.message})  # the protocol's shape

    @v2.errorhandler(HTTPException)
    def _http_error(error: HTTPException):
        return _api_error(ApiError(error.code or 400, "http_error", error.description or ""))

    def known(name: str, version: str | None) -> None:
        if name != service:
            raise ApiError(404, "not_found", f"Unknown model {name!r}: this is {service!r}.")
        if version is not None and version != VERSION:
            raise ApiError(404, "not_found", f"Model {name} has version {VERSION} only.")

    def metadata(name: str, version: str | None = None):
        known(name, version)
        return jsonify(
            name=service,
            versions=[VERSION],
            platform="pytorch",
            inputs=[
                {"name": ENCODED_INPUT, "datatype": "BYTES", "shape": [-1]},
                {"name": RAW_INPUT, "datatype": "UINT8", "shape": [-1, -1, -1, 3]},
            ],
            outputs=[
                {"name": spec.name, "datatype": spec.datatype, "shape": list(spec.shape)}
                for spec in model.v2_outputs()
            ],
            parameters={
                "architecture": model.name,
                "dtype": str(model.dtype).removeprefix("torch."),
                "max_images": settings.max_images,
                "request_parameters": [p.describe() for p in parameters],
            },
        )

    def ready(name: str, version: str | None = None):
        known(name, version)
        pipeline.require_ready()
        return jsonify(name=service, ready=True)

    def infer(name: str, version: str | None = None):
        known(name, version)
        with pipeline.admitted():
            inference = parse_infer_request(request.get_data(), request.headers.get(HEADER_LENGTH))
            values = {p.name: p.parse(_raw(inference.parameters.get(p.name))) for p in parameters}
            images = read_images(inference, settings)
            result = pipeline.run(images)
            results = [
                {
                    **model.postprocess(item.output, item.meta, values),
                    "image": {"width": item.width, "height": item.height},
                }
                for item in result.images
            ]
            arrays = model.v2_tensors([item.output for item in result.images], results)
            outputs = select_outputs(model, inference, arrays)
        extra = {} if model.weights.trained else {"warning": UNTRAINED_WARNING}
        body, headers = build_infer_response(service, VERSION, inference, outputs, extra)
        return Response(body, headers=headers)

    for prefix in ("/v2/models/<name>", "/v2/models/<name>/versions/<version>"):
        v2.add_url_rule(prefix, f"metadata{prefix.count('<')}", metadata, methods=["GET"])
        v2.add_url_rule(f"{prefix}/ready", f"ready{prefix.count('<')}", ready, methods=["GET"])
        v2.add_url_rule(f"{prefix}/infer", f"infer{prefix.count('<')}", infer, methods=["POST"])
    app.register_blueprint(v2)


def _raw(value) -> str | None:
    """A request parameter as the string the model's Parameter parses."""
    return None if value is None else str(value)


def read_images(inference: InferRequest, settings: ServingSettings) -> list[bytes | Image.Image]:
    """The images of the one image input: encoded bytes, or RGB pictures from pixels."""
    if len(inference.inputs) != 1 or inference.inputs[0].name not in (ENCODED_INPUT, RAW_INPUT):
        raise bad_request(f"Send exactly one input, {ENCODED_INPUT} (BYTES) or {RAW_INPUT}.")
    tensor = inference.inputs[0]
    if tensor.name == ENCODED_INPUT:
        if tensor.datatype != "BYTES" or tensor.array.ndim != 1:
            raise bad_request(f"{ENCODED_INPUT} is BYTES with shape [N]: one encoded image each.")
        images: list = list(tensor.array)
    else:
        images = raw_pictures(tensor, settings.max_pixels)
    if not images:
        raise ApiError(400, "missing_image", "The input holds no image.")
    if len(images) > settings.max_images:
        raise ApiError(
            400,
            "too_many_images",
            f"{len(images)} images were sent; at most {settings.max_images} are accepted.",
        )
    return images


def raw_pictures(tensor: Tensor, max_pixels: int) -> list[Image.Image]:
    """[H, W, 3] or [N, H, W, 3] RGB pixels (UINT8 0-255, FP32 0-1) as pictures."""
    if tensor.datatype not in RAW_DATATYPES:
        raise bad_request(f"{RAW_INPUT} is UINT8 (0-255) or FP32 (0-1), not {tensor.datatype}.")
    pixels = tensor.array[np.newaxis] if tensor.array.ndim == 3 else tensor.array
    if pixels.ndim != 4 or pixels.shape[3] != 3 or 0 in pixels.shape[1:3]:
        raise bad_request(f"{RAW_INPUT} has shape [H, W, 3] or [N, H, W, 3] (RGB).")
    if pixels.shape[1] * pixels.shape[2] > max_pixels:
        raise ApiError(
            413,
            "image_too_large",
            f"The image is {pixels.shape[2]}x{pixels.shape[1]} pixels; the limit is "
            f"{max_pixels / 1e6:g} megapixels.",
        )
    if tensor.datatype == "FP32":
        if not np.isfinite(pixels).all():
            raise bad_request(f"{RAW_INPUT} holds NaN or infinite values.")
        pixels = np.clip(np.rint(pixels * 255.0), 0, 255)
    return [Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8), "RGB") for image in pixels]


def select_outputs(model: VisionModel, inference: InferRequest, arrays: dict) -> list[Tensor]:
    """The outputs asked for (all when none are named), the top-k extension applied where
    asked."""
    specs = {spec.name: spec for spec in model.v2_outputs()}
    wanted = inference.outputs or [{"name": name} for name in specs]
    outputs = []
    for entry in wanted:
        spec = specs.get(entry.get("name"))
        if spec is None:
            raise bad_request(
                f"Unknown output {entry.get('name')!r}: the outputs are {', '.join(specs)}."
            )
        k = requested_top_k(entry)
        if k is None:
            outputs.append(Tensor(spec.name, spec.datatype, arrays[spec.name]))
            continue
        if not spec.labelled:
            raise bad_request(f"Output {spec.name} has no per-label values to rank.")
        strings = ranked_label_strings(arrays[spec.name], model.v2_labels(), k)
        outputs.append(Tensor(spec.name, "BYTES", strings))
    return outputs
