"""HTTP API of the classifier: ``POST /v1/classify`` (declared by Classifier) plus the core's."""

from __future__ import annotations

from collections.abc import Mapping

from flask import Flask

from services.classifier.model import Classifier
from services.classifier.settings import ClassifierSettings
from services.core.routes import create_model_app

SERVICE = "classifier"


def create_app(environ: Mapping[str, str] | None = None, load_in_background: bool = True) -> Flask:
    """App factory. ``environ`` overrides the process environment (tests use it)."""
    settings = ClassifierSettings.from_env(environ)
    return create_model_app(SERVICE, Classifier(settings), settings.serving, load_in_background)
