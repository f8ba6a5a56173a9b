"""The OpenAPI 3.1 document of the whole stack as seen through nginx, and the error codes.

One source for ``/openapi.json`` and the ``/docs`` page: the page lists these paths, their
summaries and their ``x-codeSamples`` (curl), and the error table below.
"""

from __future__ import annotations

import copy

from services.kit.openapi import IMAGES_REQUEST_BODY, operation_parameters

EXAMPLE_BASE_URL = "http://localhost:8080"

# (status, code, meaning): every error code a client can meet through nginx.
ERROR_CODES: list[tuple[int, str, str]] = [
    (400, "missing_image", "No image (no `image`/`file` field, empty body, unreadable form)."),
    (400, "empty_image", "An image field or body holds zero bytes."),
    (400, "invalid_image", "The bytes are not a readable image, or are truncated or corrupt."),
    (400, "too_many_images", "More images in one request than the service accepts."),
    (400, "invalid_parameter", "A query parameter is not a number or is out of its range."),
    (400, "render_single_image", "`render=1` with several images: rendering returns one."),
    (400, "bad_request", "The request is malformed (e.g. a broken multipart body)."),
    (404, "not_found", "No such endpoint."),
    (408, "request_timeout", "nginx: the request (headers or body) did not arrive in time."),
    (414, "uri_too_long", "nginx: the request line (path and query) is too long."),
    (429, "too_many_requests", "nginx: too many requests in flight or per second from you."),
    (405, "method_not_allowed", "The endpoint exists but not for this method (see `Allow`)."),
    (413, "payload_too_large", "The request body is over MAX_BODY_MB."),
    (413, "image_too_large", "The image has more pixels than the service's megapixel limit."),
    (413, "too_many_form_parts", "A form with more parts (fields, files) than the services take."),
    (415, "unsupported_media_type", "The Content-Type is not multipart/form-data or an image."),
    (415, "unsupported_image_format", "An image, but not JPEG, PNG, BMP, WebP, GIF or TIFF."),
    (400, "headers_too_large", "nginx: a request header, or all together, is too large."),
    (500, "internal_error", "The service failed; the details are in its log, not the answer."),
    (501, "not_implemented", "nginx: a method or transfer encoding it does not support."),
    (502, "bad_gateway", "nginx: no replica answered properly."),
    (503, "model_not_ready", "The model is still loading; retry after `Retry-After` seconds."),
    (503, "unavailable", "nginx: the service has no live replica."),
    (504, "gateway_timeout", "nginx: the replica did not answer in time."),
    (508, "upstream_loop", "In a `/v1/models` entry: the web service's URL for that model "
     "service leads back to itself (misconfiguration)."),
]  # fmt: skip


def _curl(*lines: str) -> list[dict]:
    return [{"lang": "Shell", "label": "curl", "source": line} for line in lines]


def _ref(kind: str, name: str) -> dict:
    return {"$ref": f"#/components/{kind}/{name}"}


def _json(schema_name: str, description: str) -> dict:
    return {
        "description": description,
        "content": {"application/json": {"schema": _ref("schemas", schema_name)}},
    }


def _errors(*names: str) -> dict:
    """Shared error responses by status, for an operation's ``responses``."""
    statuses = {
        "BadRequest": "400",
        "MethodNotAllowed": "405",
        "PayloadTooLarge": "413",
        "UnsupportedMediaType": "415",
        "InternalError": "500",
        "BadGateway": "502",
        "Unavailable": "503",
        "GatewayTimeout": "504",
    }
    return {statuses[name]: _ref("responses", name) for name in names}


_MODEL_ERRORS = _errors(
    "BadRequest",
    "MethodNotAllowed",
    "PayloadTooLarge",
    "UnsupportedMediaType",
    "InternalError",
    "BadGateway",
    "Unavailable",
    "GatewayTimeout",
)

_NUMBER = {"type": "number"}
_BOX = {
    "type": "object",
    "description": "Corners in pixels of the original (EXIF-upright) image; origin top-left.",
    "required": ["x1", "y1", "x2", "y2"],
    "properties": {key: _NUMBER for key in ("x1", "y1", "x2", "y2")},
}

SCHEMAS: dict[str, dict] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string", "enum": sorted({c for _, c, _ in ERROR_CODES})},
                    "message": {"type": "string", "description": "A sentence for people."},
                },
            }
        },
    },
    "ImageSize": {
        "type": "object",
        "required": ["width", "height"],
        "properties": {"width": {"type": "integer"}, "height": {"type": "integer"}},
    },
    "ModelSummary": {
        "type": "object",
        "required": ["name", "trained", "weights"],
        "properties": {
            "name": {"type": "string"},
            "trained": {"type": "boolean", "description": "false for stand-in weights."},
            "weights": {"type": "string", "enum": ["official", "stand-in", "user-supplied"]},
        },
    },
    "Timings": {
        "type": "object",
        "description": "Milliseconds per stage.",
        "properties": {
            stage: _NUMBER
            for stage in ("decode", "preprocess", "queue", "inference", "postprocess", "total")
        },
    },
    "Warning": {
        "type": "string",
        "description": "Present when the model runs on untrained stand-in weights.",
    },
    "Box": _BOX,
    "Detection": {
        "type": "object",
        "required": ["label", "class_id", "confidence", "box"],
        "properties": {
            "label": {"type": "string"},
            "class_id": {"type": "integer"},
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
            "box": _ref("schemas", "Box"),
        },
    },
    "DetectionResult": {
        "type": "object",
        "required": ["detections", "image"],
        "properties": {
            "detections": {"type": "array", "items": _ref("schemas", "Detection")},
            "image": _ref("schemas", "ImageSize"),
        },
    },
    "DetectResponse": {
        "description": "One image: its result at the top level. Several: `results`.",
        "oneOf": [
            {
                "allOf": [
                    _ref("schemas", "DetectionResult"),
                    _ref("schemas", "ResponseCommon"),
                ]
            },
            {
                "allOf": [
                    {
                        "type": "object",
                        "required": ["results"],
                        "properties": {
                            "results": {
                                "type": "array",
                                "items": _ref("schemas", "DetectionResult"),
                            }
                        },
                    },
                    _ref("schemas", "ResponseCommon"),
                ]
            },
        ],
    },
    "Prediction": {
        "type": "object",
        "required": ["label", "class_id", "confidence"],
        "properties": {
            "label": {"type": "string"},
            "class_id": {"type": "integer"},
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        },
    },
    "ClassificationResult": {
        "type": "object",
        "required": ["predictions", "image"],
        "properties": {
            "predictions": {"type": "array", "items": _ref("schemas", "Prediction")},
            "image": _ref("schemas", "ImageSize"),
        },
    },
    "ClassifyResponse": {
        "description": "One image: its result at the top level. Several: `results`.",
        "oneOf": [
            {
                "allOf": [
                    _ref("schemas", "ClassificationResult"),
                    _ref("schemas", "ResponseCommon"),
                ]
            },
            {
                "allOf": [
                    {
                        "type": "object",
                        "required": ["results"],
                        "properties": {
                            "results": {
                                "type": "array",
                                "items": _ref("schemas", "ClassificationResult"),
                            }
                        },
                    },
                    _ref("schemas", "ResponseCommon"),
                ]
            },
        ],
    },
    "ResponseCommon": {
        "type": "object",
        "required": ["model", "timings_ms"],
        "properties": {
            "model": _ref("schemas", "ModelSummary"),
            "timings_ms": _ref("schemas", "Timings"),
            "warning": _ref("schemas", "Warning"),
        },
    },
    "ModelEntry": {
        "type": "object",
        "description": "One model; an unreachable service gives `{service, error}` instead.",
        "required": ["service"],
        "properties": {
            "service": {"type": "string", "enum": ["detector", "classifier"]},
            "name": {"type": "string"},
            "task": {"type": "string"},
            "weights": {
                "type": "object",
                "properties": {
                    "trained": {"type": "boolean"},
                    "source": {"type": "string"},
                    "sha256": {"type": "string"},
                },
            },
            "error": {"$ref": "#/components/schemas/Error/properties/error"},
        },
    },
    "Models": {
        "type": "object",
        "required": ["models"],
        "properties": {"models": {"type": "array", "items": _ref("schemas", "ModelEntry")}},
    },
    "Health": {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"type": "string", "examples": ["alive"]}},
    },
    "Readiness": {
        "type": "object",
        "required": ["status"],
        "properties": {
            "status": {"type": "string", "enum": ["ready", "not_ready"]},
            "service": {"type": "string"},
        },
    },
    "UploadResult": {
        "type": "object",
        "description": "Each part is that service's answer, or its error body plus `status`.",
        "required": ["detection", "classification"],
        "properties": {
            "detection": {"oneOf": [_ref("schemas", "DetectResponse"), _ref("schemas", "Error")]},
            "classification": {
                "oneOf": [_ref("schemas", "ClassifyResponse"), _ref("schemas", "Error")]
            },
        },
    },
}

_BINARY = {"type": "string", "contentMediaType": "application/octet-stream"}

REQUEST_BODIES = {"Images": IMAGES_REQUEST_BODY}


def _error_response(description: str, headers: dict | None = None) -> dict:
    response = _json("Error", description)
    if headers:
        response["headers"] = headers
    return response


RESPONSES = {
    "BadRequest": _error_response(
        "missing_image, empty_image, invalid_image, too_many_images, invalid_parameter, "
        "render_single_image, bad_request."
    ),
    "PayloadTooLarge": _error_response("payload_too_large or image_too_large."),
    "UnsupportedMediaType": _error_response("unsupported_media_type, unsupported_image_format."),
    "InternalError": _error_response("internal_error."),
    "BadGateway": _error_response("bad_gateway (nginx)."),
    "MethodNotAllowed": _error_response(
        "method_not_allowed.", headers={"Allow": {"schema": {"type": "string"}}}
    ),
    "Unavailable": _error_response(
        "model_not_ready (the model is loading) or unavailable (nginx: no live replica).",
        headers={"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds."}},
    ),
    "GatewayTimeout": _error_response("gateway_timeout (nginx)."),
}


_RENDERED = {
    "image/jpeg": {"schema": {"type": "string", "contentMediaType": "image/jpeg"}},
    "image/png": {"schema": {"type": "string", "contentMediaType": "image/png"}},
}
_RENDER_HEADERS = {
    "X-Detections": {
        "description": "Boxes drawn (rendered answers).",
        "schema": {"type": "integer"},
    },
    "X-Model-Trained": {
        "description": "`false` for stand-in weights (rendered answers; the picture also "
        "carries a banner).",
        "schema": {"type": "string", "enum": ["true", "false"]},
    },
}


_SERVICE_NAMES = {"detector": "detector", "classifier": "classifier", "web": "web demo"}


def _healthz(service: str) -> dict:
    return {
        "get": {
            "tags": ["health"],
            "summary": f"Liveness of a {_SERVICE_NAMES[service]} replica (answers while a "
            "model still loads).",
            "responses": {"200": _json("Health", "Alive.")},
            "x-codeSamples": _curl(f"curl {EXAMPLE_BASE_URL}/{service}/healthz"),
        }
    }


def _readyz(service: str) -> dict:
    return {
        "get": {
            "tags": ["health"],
            "summary": f"Readiness of the {_SERVICE_NAMES[service]}: 200 when ready to serve, "
            "else 503.",
            "responses": {
                "200": _json("Readiness", "Ready."),
                "503": _json("Readiness", "Not ready (a model still loading)."),
            },
            "x-codeSamples": _curl(f"curl {EXAMPLE_BASE_URL}/{service}/readyz"),
        }
    }


def _metrics(service: str) -> dict:
    return {
        "get": {
            "tags": ["health"],
            "summary": f"Prometheus metrics of the {_SERVICE_NAMES[service]}, summed over its "
            "workers.",
            "description": "Published on the public port only with NGINX_PUBLIC_METRICS=1 "
            "(each scrape would reach another replica); Prometheus scrapes every replica's "
            "own /metrics (MONITORING=1 make run).",
            "responses": {
                "200": {
                    "description": "Prometheus text exposition format.",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                },
                "404": _error_response("not_found: not published (NGINX_PUBLIC_METRICS=0)."),
            },
            "x-codeSamples": _curl(f"curl {EXAMPLE_BASE_URL}/{service}/metrics"),
        }
    }


_HTML = {"text/html": {"schema": {"type": "string"}}}

PATHS: dict[str, dict] = {
    "/v1/detect": {
        "post": {
            "tags": ["models"],
            "summary": "Detect objects (YOLOv3) in one or more images.",
            "description": "Boxes are in pixels of the original image. With `render=1` or "
            "`Accept: image/jpeg` / `image/png` the answer is the image with the boxes drawn.",
            # Filled per request from the detector's own declaration (live_document).
            "parameters": [],
            "requestBody": _ref("requestBodies", "Images"),
            "responses": {
                "200": {
                    "description": "Detections, or the annotated image when rendering.",
                    "headers": _RENDER_HEADERS,
                    "content": {
                        "application/json": {"schema": _ref("schemas", "DetectResponse")},
                        **_RENDERED,
                    },
                },
                **_MODEL_ERRORS,
            },
            "x-codeSamples": _curl(
                f"curl -F image=@dog.jpg {EXAMPLE_BASE_URL}/v1/detect",
                f"curl -F image=@dog.jpg '{EXAMPLE_BASE_URL}/v1/detect?render=1' -o out.jpg",
                f"curl -F image=@dog.jpg '{EXAMPLE_BASE_URL}/v1/detect?conf_threshold=0.25'",
                f"curl -H 'Content-Type: image/jpeg' --data-binary @dog.jpg "
                f"{EXAMPLE_BASE_URL}/v1/detect",
            ),
        }
    },
    "/v1/classify": {
        "post": {
            "tags": ["models"],
            "summary": "Classify one or more images (ImageNet classes, ResNet).",
            # Filled per request from the classifier's own declaration (live_document).
            "parameters": [],
            "requestBody": _ref("requestBodies", "Images"),
            "responses": {"200": _json("ClassifyResponse", "Predictions."), **_MODEL_ERRORS},
            "x-codeSamples": _curl(
                f"curl -F image=@dog.jpg '{EXAMPLE_BASE_URL}/v1/classify?top_k=5'",
                f"curl -F image=@dog.jpg -F image=@eagle.jpg {EXAMPLE_BASE_URL}/v1/classify",
            ),
        }
    },
    "/v1/models": {
        "get": {
            "tags": ["models"],
            "summary": "The models served, with their weights (trained or stand-in).",
            "description": "Both services' lists in one; a service that is down gives an "
            "entry with an `error` object instead of failing the whole answer.",
            "responses": {"200": _json("Models", "Every model, or its service's error.")},
            "x-codeSamples": _curl(f"curl {EXAMPLE_BASE_URL}/v1/models"),
        }
    },
    "/healthz": {
        "get": {
            "tags": ["health"],
            "summary": "Liveness of nginx, the front door.",
            "responses": {"200": _json("Health", "Alive.")},
            "x-codeSamples": _curl(f"curl {EXAMPLE_BASE_URL}/healthz"),
        }
    },
    **{f"/{service}/healthz": _healthz(service) for service in _SERVICE_NAMES},
    **{f"/{service}/readyz": _readyz(service) for service in _SERVICE_NAMES},
    **{f"/{service}/metrics": _metrics(service) for service in _SERVICE_NAMES},
    "/": {
        "get": {
            "tags": ["demo"],
            "summary": "The demo page: upload a photo, see boxes and the top-5 classes.",
            "parameters": [
                {
                    "name": "lang",
                    "in": "query",
                    "description": "Page language; remembered in the `lang` cookie.",
                    "schema": {"type": "string", "enum": ["en", "zh-CN"]},
                }
            ],
            "responses": {"200": {"description": "HTML page.", "content": _HTML}},
            "x-codeSamples": _curl(f"curl {EXAMPLE_BASE_URL}/"),
        }
    },
    "/upload": {
        "get": {
            "tags": ["demo"],
            "summary": "The demo page, as at /: the address the original write-up gives.",
            "responses": {"200": {"description": "HTML page.", "content": _HTML}},
            "x-codeSamples": _curl(f"curl {EXAMPLE_BASE_URL}/upload"),
        },
        "post": {
            "tags": ["demo"],
            "summary": "The demo's form post: detect and classify on the server, answer a "
            "result page (works without JavaScript).",
            "description": "With `Accept: application/json` the answer is both services' "
            "results as JSON, and upload errors are JSON errors.",
            "requestBody": {
                "required": True,
                "content": {
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "image": _BINARY,
                                "file": _BINARY,
                                "conf_threshold": {
                                    "type": "number",
                                    "minimum": 0,
                                    "maximum": 1,
                                    "description": "Passed on to /v1/detect.",
                                },
                            },
                        }
                    }
                },
            },
            "responses": {
                "200": {
                    "description": "Result page (each part shows its own error if its "
                    "service failed), or JSON when asked for.",
                    "content": {
                        **_HTML,
                        "application/json": {"schema": _ref("schemas", "UploadResult")},
                    },
                },
                "400": _error_response(
                    "missing_image, empty_image, invalid_image, invalid_parameter (JSON when "
                    "asked for; else the page with the message)."
                ),
                "413": _error_response("payload_too_large."),
                "415": _error_response("unsupported_media_type, unsupported_image_format."),
            },
            "x-codeSamples": _curl(
                f"curl -F image=@dog.jpg {EXAMPLE_BASE_URL}/upload -o result.html",
                f"curl -H 'Accept: application/json' -F image=@dog.jpg {EXAMPLE_BASE_URL}/upload",
            ),
        },
    },
    "/docs": {
        "get": {
            "tags": ["demo"],
            "summary": "This API documentation as a page.",
            "responses": {"200": {"description": "HTML page.", "content": _HTML}},
            "x-codeSamples": _curl(f"curl {EXAMPLE_BASE_URL}/docs"),
        }
    },
    "/openapi.json": {
        "get": {
            "tags": ["demo"],
            "summary": "This OpenAPI 3.1 document.",
            "responses": {
                "200": {
                    "description": "The document.",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                }
            },
            "x-codeSamples": _curl(f"curl {EXAMPLE_BASE_URL}/openapi.json"),
        }
    },
}

# ---- the Open Inference Protocol (v2): services/core/v2.py and the web service's /v2 -------

_V2_ERROR = {
    "description": 'The protocol\'s error shape, `{"error": "<message>"}`.',
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["error"],
                "properties": {"error": {"type": "string"}},
            }
        }
    },
}
_V2_MODEL = {
    "name": "model",
    "in": "path",
    "required": True,
    "description": "The service: `detector` or `classifier` (whatever architecture runs).",
    "schema": {"type": "string", "enum": ["detector", "classifier"]},
}
_V2_TENSOR = {
    "type": "object",
    "required": ["name", "datatype", "shape"],
    "properties": {
        "name": {"type": "string"},
        "datatype": {"type": "string"},
        "shape": {"type": "array", "items": {"type": "integer"}},
        "parameters": {"type": "object"},
        "data": {"type": "array"},
    },
}
_V2_JSON = {"application/json": {"schema": {"type": "object"}}}


def _v2_get(summary: str, example: str, model: bool = False) -> dict:
    operation = {
        "tags": ["open inference protocol"],
        "summary": summary,
        "responses": {
            "200": {"description": "As the protocol describes.", "content": _V2_JSON},
            "404": _V2_ERROR,
            "503": {"description": "Not ready (another replica is asked first)."},
        },
        "x-codeSamples": _curl(f"curl {EXAMPLE_BASE_URL}{example}"),
    }
    if model:
        operation["parameters"] = [_V2_MODEL]
    return {"get": operation}


V2_PATHS: dict[str, dict] = {
    "/v2": _v2_get("Server metadata: name, version, extensions.", "/v2"),
    "/v2/health/live": _v2_get("The server is live.", "/v2/health/live"),
    "/v2/health/ready": _v2_get("Both models have a ready replica.", "/v2/health/ready"),
    "/v2/models/{model}": _v2_get(
        "Model metadata: inputs and outputs with datatypes and shapes (-1: variable).",
        "/v2/models/classifier",
        model=True,
    ),
    "/v2/models/{model}/ready": _v2_get(
        "The model has a ready replica.", "/v2/models/detector/ready", model=True
    ),
    "/v2/models/{model}/infer": {
        "post": {
            "tags": ["open inference protocol"],
            "summary": "Inference, KServe v2 / Triton HTTP: JSON or binary tensors.",
            "description": "Input `IMAGE` (BYTES [N]: base64 strings in JSON, raw bytes as "
            "binary data) or `IMAGE_RAW` (UINT8 0-255 or FP32 0-1, [H, W, 3] or [N, H, W, 3]). "
            "Request parameters: the /v1 query parameters. Outputs: classifier `PROBABILITIES` "
            "(with `classification: k` the extension's `value:index:label` strings); detector "
            "`BOXES`, `SCORES`, `CLASS_IDS`, `LABELS`, `COUNTS`, `IMAGE_SIZE`. Binary tensor "
            "extension: `Inference-Header-Content-Length`, `binary_data_size`, "
            "`binary_data_output`. `/v2/models/{model}/versions/1/...` works the same. Example "
            'request.json: `{"inputs": [{"name": "IMAGE", "datatype": "BYTES", '
            '"shape": [1], "data": ["<base64 photo>"]}], "outputs": [{"name": '
            '"PROBABILITIES", "parameters": {"classification": 5}}]}`.',
            "parameters": [_V2_MODEL],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["inputs"],
                            "properties": {
                                "id": {"type": "string"},
                                "parameters": {"type": "object"},
                                "inputs": {"type": "array", "items": _V2_TENSOR},
                                "outputs": {"type": "array", "items": {"type": "object"}},
                            },
                        }
                    },
                    "application/octet-stream": {"schema": _BINARY},
                },
            },
            "responses": {
                "200": {
                    "description": "Outputs; binary ones follow the JSON part.",
                    "content": {**_V2_JSON, "application/octet-stream": {"schema": _BINARY}},
                },
                "400": _V2_ERROR,
                "404": _V2_ERROR,
                "413": _V2_ERROR,
                "503": {"description": "Every replica is full or not ready (`Retry-After`)."},
            },
            # request.json: {"inputs": [{"name": "IMAGE", "datatype": "BYTES", "shape": [1],
            # "data": ["<base64 of the photo>"]}], "outputs": [{"name": "PROBABILITIES",
            # "parameters": {"classification": 5}}]}; or use tritonclient (README).
            "x-codeSamples": _curl(
                f"curl {EXAMPLE_BASE_URL}/v2/models/classifier/infer "
                "-H 'Content-Type: application/json' -d @request.json"
            ),
        }
    },
}
PATHS.update(V2_PATHS)

# The web route that answers v2 requests for unknown model names: not an API of its own.
UNDOCUMENTED_WEB_ROUTES = {"/v2/models/<path:rest>"}

# Web service routes that nginx publishes under another path (prefix /web/).
PUBLIC_PATHS_OF_WEB_ROUTES = {
    "/healthz": "/web/healthz",
    "/readyz": "/web/readyz",
    "/metrics": "/web/metrics",
}

OPENAPI_DOCUMENT: dict = {
    "openapi": "3.1.0",
    "info": {
        "title": "Vision serving stack",
        "version": "1.0.0",
        "summary": "Object detection (YOLOv3) and image classification (ResNet) over HTTP.",
        "description": "Every path is relative to the nginx front door. Errors are JSON "
        '`{"error": {"code", "message"}}`; see the error codes on /docs. Every response '
        "carries `X-Request-ID` (the caller's, when sane, else a new one) and `X-Served-By` "
        "(the replica and worker that answered).",
    },
    "servers": [{"url": EXAMPLE_BASE_URL, "description": "nginx (docker compose default)"}],
    "tags": [
        {"name": "models", "description": "Inference."},
        {"name": "health", "description": "Liveness, readiness and metrics."},
        {"name": "demo", "description": "The web demo and these docs."},
        {
            "name": "open inference protocol",
            "description": "KServe v2 / Triton HTTP, for tritonclient and KServe's clients.",
        },
    ],
    "paths": PATHS,
    "components": {
        "schemas": SCHEMAS,
        "requestBodies": REQUEST_BODIES,
        "responses": RESPONSES,
    },
}


# The public path of each model service's POST route (nginx.conf.j2 routes them).
MODEL_PATHS = {"detector": "/v1/detect", "classifier": "/v1/classify"}


def live_document(models: list[dict]) -> dict:
    """The document with each model route's parameters as its service declares them now
    (``/v1/models`` entries: names, bounds and the running configuration's defaults). A
    service that did not answer keeps its path, with a note instead of parameters."""
    document = copy.deepcopy(OPENAPI_DOCUMENT)
    described = {entry["service"]: entry for entry in models if "endpoint" in entry}
    for service, path in MODEL_PATHS.items():
        operation = document["paths"][path]["post"]
        entry = described.get(service)
        if entry is None:
            operation["description"] = (
                operation.get("description", "") + f" (The {service} did not answer just now: "
                "its parameters are listed once it is ready.)"
            ).strip()
            continue
        operation["parameters"] = operation_parameters(entry["endpoint"])
    return document


def operations(document: dict = OPENAPI_DOCUMENT) -> list[tuple[str, str, dict]]:
    """(path, METHOD, operation) for every operation, in document order (for /docs)."""
    return [
        (path, method.upper(), operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]
