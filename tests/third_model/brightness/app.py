"""HTTP API of the third model: ``POST /v1/brightness`` (declared by Brightness)."""

from __future__ import annotations

from collections.abc import Mapping

from flask import Flask

from services.core.routes import create_model_app
from tests.third_model.brightness.model import Brightness, BrightnessSettings


def create_app(environ: Mapping[str, str] | None = None, load_in_background: bool = True) -> Flask:
    settings = BrightnessSettings.from_env(environ)
    return create_model_app(
        "brightness", Brightness(settings), settings.serving, load_in_background
    )
