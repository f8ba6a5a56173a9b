"""HTTP API of the classifier: ``POST /v1/classify`` plus the serving core's endpoints."""

from __future__ import annotations

from collections.abc import Mapping

from flask import Flask

from services.classifier.model import Classifier, top_k_predictions
from services.classifier.settings import ClassifierSettings
from services.common.model_app import (
    create_model_app,
    json_result,
    query_number,
    run_uploaded_images,
)
from services.common.model_service import timed

SERVICE = "classifier"


def create_app(environ: Mapping[str, str] | None = None, load_in_background: bool = True) -> Flask:
    """App factory. ``environ`` overrides the process environment (tests use it)."""
    settings = ClassifierSettings.from_env(environ)
    model = Classifier(settings)
    app = create_model_app(SERVICE, model, settings.serving, load_in_background)

    @app.post("/v1/classify")
    def classify():
        top_k = query_number("top_k", settings.top_k, 1, len(model.categories), int)
        result = run_uploaded_images(app)
        with timed(result.timings_ms, "postprocess"):
            per_image = [
                {
                    "predictions": top_k_predictions(item.output, model.categories, top_k),
                    "image": {"width": item.width, "height": item.height},
                }
                for item in result.images
            ]
        return json_result(app, per_image, result.timings_ms)

    return app
