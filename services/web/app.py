"""HTTP face of the web demo: the page, the no-JS form post, the model list and the docs.

The page calls ``/v1/detect`` and ``/v1/classify`` itself (same origin, through nginx);
``POST /upload`` does the same calls from the server for browsers without JavaScript.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from flask import Flask, Response, g, jsonify, make_response, render_template, request
from markupsafe import Markup, escape

from services.kit.api_keys import credential_headers
from services.kit.colours import class_colour_css
from services.kit.errors import ApiError
from services.kit.flask_app import create_service_app
from services.web import openapi, results_view
from services.web.boxes import overlay_boxes
from services.web.i18n import LANGUAGE_COOKIE, Translator, catalogue, choose_language, languages
from services.web.photos import read_conf_threshold, read_photo
from services.web.settings import WebSettings
from services.web.upstream import UPSTREAM_CALL_HEADER, ModelServices

STACK_VERSION = "0.1.0"  # pyproject.toml's version
SERVICE = "web"
_ONE_YEAR_S = 365 * 24 * 3600
# Everything the page needs is same-origin; photos are shown as data: or blob: URLs.
_CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)


def code_spans(text: str) -> Markup:
    """``like `this` `` -> escaped HTML with <code> spans (the docs' only markup)."""
    return Markup(re.sub(r"`([^`]+)`", r"<code>\1</code>", str(escape(text))))


def create_app(environ: Mapping[str, str] | None = None) -> Flask:
    """App factory. ``environ`` overrides the process environment (tests use it)."""
    settings = WebSettings.from_env(environ)
    app = create_service_app(
        __name__, SERVICE, settings.max_body_bytes, settings.log_level, settings.served_by
    )
    app.add_template_filter(code_spans)
    # Tests swap this object for a fake to drive the result page without model services.
    app.extensions["model_services"] = ModelServices(
        settings.detector_url, settings.classifier_url, settings.upstream_timeout_s
    )
    limit_mb = f"{settings.max_body_mb:g}"

    def model_services() -> ModelServices:
        return app.extensions["model_services"]

    def render_page(template: str, status: int = 200, **context) -> Response:
        """A page in the visitor's language, remembering an explicit ``?lang=`` choice."""
        choice = choose_language(
            request.args.get("lang"),
            request.cookies.get(LANGUAGE_COOKIE),
            list(request.accept_languages),
        )
        t = Translator(choice.language)
        results = context.get("results")
        client_config = {
            "language": choice.language,
            "languageSource": choice.source,
            "maxBodyBytes": settings.max_body_bytes,
            "limitMb": limit_mb,
            "languages": languages(),
            "messages": catalogue()["messages"],
            "results": results,
            "uploadError": context.get("upload_error"),
        }
        html = render_template(
            template,
            t=t,
            languages=languages(),
            limit_mb=limit_mb,
            client_config=client_config,
            view=results_view,
            overlay_boxes=overlay_boxes,
            class_colour=class_colour_css,
            **context,
        )
        response = make_response(html, status)
        if choice.source == "query":
            response.set_cookie(
                LANGUAGE_COOKIE, choice.language, max_age=_ONE_YEAR_S, samesite="Lax"
            )
        response.headers["Content-Language"] = choice.language
        response.vary.update(("Accept-Language", "Cookie"))
        response.headers["Content-Security-Policy"] = _CONTENT_SECURITY_POLICY
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.after_request
    def _safe_defaults(response: Response) -> Response:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response

    @app.get("/readyz")
    def readyz():
        # Nothing to load: the page works (and shows per-part errors) with models down.
        return jsonify(status="ready", service=SERVICE)

    # The Open Inference Protocol (v2), server level; the models' own v2 routes are theirs
    # (services/core/v2.py), reached through nginx at /v2/models/<service>/...
    @app.get("/v2")
    def v2_server_metadata():
        return jsonify(
            name="vision-stack",
            version=STACK_VERSION,
            extensions=["classification", "binary_tensor_data"],
        )

    @app.get("/v2/health/live")
    def v2_live():
        return jsonify(live=True)

    @app.get("/v2/health/ready")
    def v2_ready():
        ready = model_services().all_ready(g.request_id, credential_headers(request.headers))
        response = jsonify(ready=ready)
        response.status_code = 200 if ready else 503
        return response

    @app.route("/v2/models/<path:rest>", methods=["GET", "POST"])
    def v2_unknown_model(rest: str):
        # nginx sends /v2/models/detector/... and /classifier/... to the models; any other
        # name lands here, answered in the protocol's error shape.
        name = rest.split("/", 1)[0]
        response = jsonify(error=f"Unknown model {name!r}: the models are detector, classifier.")
        response.status_code = 404
        return response

    @app.get("/")
    def index():
        return render_page("index.html")

    # The same page at the address the original write-up tells its readers to open.
    app.add_url_rule("/upload", "upload_page", index, methods=["GET"])

    @app.post("/upload")
    def upload():
        wants_json = (
            request.accept_mimetypes.best_match(["text/html", "application/json"])
            == "application/json"
        )
        try:
            photo = read_photo(request)
            conf_threshold = read_conf_threshold(request)
        except ApiError as error:
            if wants_json:
                raise
            upload_error = {"code": error.code, "message": error.message, "status": error.status}
            return render_page("index.html", error.status, upload_error=upload_error)
        results = model_services().analyse(
            photo, g.request_id, conf_threshold, credential_headers(request.headers)
        )
        g.log_fields["parts_failed"] = [part for part, body in results.items() if "error" in body]
        if wants_json:
            return jsonify(results)
        return render_page(
            "index.html",
            results=results,
            photo_src=photo.data_uri(),
            conf_threshold=conf_threshold,
        )

    @app.get("/v1/models")
    def models():
        if request.headers.get(UPSTREAM_CALL_HEADER):
            raise ApiError(
                508,
                "upstream_loop",
                "WEB_DETECTOR_URL or WEB_CLASSIFIER_URL leads back to the web service; "
                "point it at the model service (through nginx: <nginx>/detector, "
                "<nginx>/classifier).",
            )
        return jsonify(
            models=model_services().list_models(g.request_id, credential_headers(request.headers))
        )

    def live_document() -> dict:
        # Parameters and defaults as the model services declare them right now.
        return openapi.live_document(
            model_services().list_models(g.request_id, credential_headers(request.headers))
        )

    @app.get("/docs")
    def docs():
        return render_page(
            "docs.html",
            switch_endpoint="docs",
            operations=openapi.operations(live_document()),
            error_codes=openapi.ERROR_CODES,
        )

    @app.get("/openapi.json")
    def openapi_document():
        return jsonify(live_document())

    return app
