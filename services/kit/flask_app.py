"""The Flask app every service starts from, model services and web alike."""

from __future__ import annotations

from flask import Flask, Response, jsonify
from werkzeug.middleware.proxy_fix import ProxyFix

from services.kit.errors import install_error_handlers
from services.kit.metrics import render_metrics
from services.kit.requestlog import configure_logging, install_request_logging
from services.kit.uploads import InMemoryRequest


def create_service_app(
    import_name: str, service: str, max_body_bytes: int, log_level: str, served_by: str
):
    """A Flask app with what every service shares: JSON errors and logs, request ids, the
    body limit, uploads kept in memory, client addresses taken from nginx's headers, and the
    ``/healthz`` and ``/metrics`` endpoints. Each service adds its own ``/readyz``."""
    app = Flask(import_name)
    # One trusted proxy (nginx) in front: log the client's address, not nginx's.
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1)
    app.request_class = InMemoryRequest
    app.config["MAX_CONTENT_LENGTH"] = max_body_bytes
    app.json.sort_keys = False
    configure_logging(log_level)
    install_error_handlers(app)
    install_request_logging(app, service, served_by)

    @app.get("/healthz")
    def healthz():
        return jsonify(status="alive", service=service)

    @app.get("/metrics")
    def prometheus_metrics():
        body, content_type = render_metrics()
        return Response(body, content_type=content_type)

    return app
