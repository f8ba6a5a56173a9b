"""OpenAPI pieces derived from a model's declaration (torch-free: the web service uses them).

A model service describes its endpoint in ``/v1/models`` (``endpoint``: path, whether it
renders, its parameters with the running defaults). From that description the model
service serves its own ``/openapi.json`` (:func:`service_document`), and the web service
builds the stack's document (services/web/openapi.py), so neither copies a default.
"""

from __future__ import annotations

from services.kit.imaging import FORMAT_MIMETYPES, PICTURE_TYPES

_BINARY = {"type": "string", "contentMediaType": "application/octet-stream"}

IMAGES_REQUEST_BODY = {
    "required": True,
    "description": "One or more images as multipart fields named `image` (or `file`), "
    "or one image as the raw body.",
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {
                    "image": {"type": "array", "items": _BINARY},
                    "file": {"type": "array", "items": _BINARY},
                },
            }
        },
        **{
            mimetype: {"schema": {"type": "string", "contentMediaType": mimetype}}
            for mimetype in dict.fromkeys(FORMAT_MIMETYPES.values())
        },
    },
}

RENDER_PARAMETER = {
    "name": "render",
    "in": "query",
    "required": False,
    "description": "1: answer with the annotated image instead of JSON.",
    "schema": {"type": "integer", "enum": [0, 1], "default": 0},
}


def query_parameter(described: dict) -> dict:
    """An OpenAPI 3.1 query parameter from a :meth:`Parameter.describe` dict."""
    schema = {key: described[key] for key in ("type", "default", "minimum", "maximum")}
    return {
        "name": described["name"],
        "in": "query",
        "required": False,
        "description": described["description"],
        "schema": schema,
    }


def operation_parameters(endpoint: dict) -> list[dict]:
    """The query parameters of a described endpoint (plus ``render`` when it renders)."""
    parameters = [query_parameter(p) for p in endpoint["parameters"]]
    if endpoint["renders"]:
        parameters.append(RENDER_PARAMETER)
    return parameters


def service_document(service: str, model_name: str, endpoint: dict) -> dict:
    """The OpenAPI 3.1 document of one model service, at its own paths (nginx publishes
    them under ``/<service>/``; the POST route also at the root)."""
    content = {"application/json": {"schema": {"type": "object"}}}
    if endpoint["renders"]:
        content.update(
            {
                kind: {"schema": {"type": "string", "contentMediaType": kind}}
                for kind in PICTURE_TYPES
            }
        )
    error = {
        "description": 'JSON error `{"error": {"code", "message"}}`.',
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
    json_ok = {
        "description": "OK.",
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": f"{service} ({model_name})", "version": "1.0.0"},
        "paths": {
            endpoint["path"]: {
                "post": {
                    "summary": f"Run {model_name} on one or more images.",
                    "parameters": operation_parameters(endpoint),
                    "requestBody": IMAGES_REQUEST_BODY,
                    "responses": {
                        "200": {"description": "One result per image.", "content": content},
                        "4XX": error,
                        "5XX": error,
                    },
                }
            },
            "/v1/models": {"get": {"summary": "The model served.", "responses": {"200": json_ok}}},
            "/healthz": {"get": {"summary": "Liveness.", "responses": {"200": json_ok}}},
            "/readyz": {
                "get": {
                    "summary": "Readiness: 503 until the model is loaded in every worker.",
                    "responses": {"200": json_ok, "503": error},
                }
            },
        },
    }
