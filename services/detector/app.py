"""HTTP API of the detector: ``POST /v1/detect`` (declared by Detector) plus the core's."""

from __future__ import annotations

from collections.abc import Mapping

from flask import Flask

from services.core.routes import create_model_app
from services.detector.model import Detector
from services.detector.settings import DetectorSettings

SERVICE = "detector"


def create_app(environ: Mapping[str, str] | None = None, load_in_background: bool = True) -> Flask:
    """App factory. ``environ`` overrides the process environment (tests use it)."""
    settings = DetectorSettings.from_env(environ)
    return create_model_app(SERVICE, Detector(settings), settings.serving, load_in_background)
