"""The one JSON error shape every service answers with.

``{"error": {"code": "<stable_snake_case>", "message": "<human sentence>"}}``: clients switch
on ``code``; ``message`` is for people. No HTML error pages, no stack traces.
"""

from __future__ import annotations

import logging

from flask import Flask, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

# Stable codes for the HTTP errors that Flask/werkzeug raise before our code runs.
_HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    408: "request_timeout",
    411: "length_required",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
    500: "internal_error",
    503: "unavailable",
}


class ApiError(Exception):
    """An error meant for the client: an HTTP status, a stable code and a sentence."""

    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def error_body(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": message}}


def error_response(error: ApiError, body: dict | None = None):
    """The JSON answer to ``error``: our shape unless ``body`` (a protocol's own) is given."""
    discard_unread_body()
    response = jsonify(error_body(error.code, error.message) if body is None else body)
    response.status_code = error.status
    response.headers.update(error.headers)
    return response


def discard_unread_body() -> None:
    """Read what is left of the request body before answering an error early (a refusal,
    a bad parameter): a server that answers and closes with bytes unread makes the kernel
    reset the connection, and the peer (nginx) can lose the answer. Only a declared length
    within the app's limit is read; anything else is for the connection to close on."""
    length = request.content_length
    limit = current_app.config.get("MAX_CONTENT_LENGTH") or 0
    if not length or length > limit:
        return
    try:
        while request.stream.read(1 << 16):
            pass
    except (OSError, ValueError):
        pass  # the client went away: nothing left to protect


def oversize_error() -> ApiError:
    """The 413 for the current request: a body over the app's MAX_CONTENT_LENGTH, or
    (werkzeug raises the same exception) a form with more parts than ``max_form_parts`` in
    a body under it."""
    max_body_bytes = current_app.config.get("MAX_CONTENT_LENGTH") or 0
    body = request.content_length
    if body is not None and body <= max_body_bytes:
        return too_many_form_parts_error(request.max_form_parts)
    limit_mb = max_body_bytes / (1024 * 1024)
    return ApiError(
        413, "payload_too_large", f"The request body is larger than the limit of {limit_mb:g} MB."
    )


def too_many_form_parts_error(max_parts: int) -> ApiError:
    return ApiError(
        413,
        "too_many_form_parts",
        f"The form has more than {max_parts} parts (fields and files); send fewer.",
    )


def install_error_handlers(app: Flask) -> None:
    """Turn every error, ours or werkzeug's or unexpected, into the JSON shape."""

    @app.errorhandler(ApiError)
    def _api_error(error: ApiError):
        return error_response(error)

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException):
        status = error.code or 500
        code = _HTTP_CODES.get(status, "http_error")
        message = error.description or error.name
        if status == 413:
            return error_response(oversize_error())
        response = error_response(ApiError(status, code, message))
        if status == 405 and error.valid_methods:
            response.headers["Allow"] = ", ".join(error.valid_methods)
        return response

    @app.errorhandler(Exception)
    def _unexpected(error: Exception):
        # Logged with its traceback for operators; the client sees only a sentence.
        log.exception("unhandled error")
        return error_response(
            ApiError(500, "internal_error", "The server failed to process the request.")
        )
