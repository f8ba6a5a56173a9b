"""What the result page shows for the two services' answers (pure functions).

``results`` is ``{"detection": <detector body>, "classification": <classifier body>}``,
either body possibly an error body (see upstream.py). ``static/app.js`` renders the same
parts from the same bodies for the JS page.
"""

from __future__ import annotations

from services.web.i18n import Translator
from services.web.upstream import CLASSIFIER, DETECTOR, is_error

PART_SERVICES = {"detection": DETECTOR, "classification": CLASSIFIER}


def untrained_services(results: dict) -> list[str]:
    """The services whose answer says their model runs on untrained stand-in weights."""
    return [
        service
        for part, service in PART_SERVICES.items()
        if (results.get(part) or {}).get("model", {}).get("trained") is False
    ]


def banner_text(t: Translator, services: list[str]) -> str | None:
    """The stand-in warning naming the untrained models, or None when all are trained."""
    if not services:
        return None
    names = t("banner.and").join(t(f"banner.{service}") for service in services)
    return t("banner.untrained", models=names)


def error_view(t: Translator, body: dict, limit_mb: str) -> dict | None:
    """A failed part's sentence (in the page's language) and the service's own details."""
    if not is_error(body):
        return None
    code = body["error"].get("code", "")
    return {
        "text": t.error(code, limit_mb=limit_mb, status=body.get("status", "?")),
        "details": t("error.details", code=code, message=body["error"].get("message", "")),
    }


def model_line(t: Translator, body: dict) -> str:
    """``Model: yolov3 · 42 ms``, flagged when the weights are stand-ins."""
    model = body.get("model", {})
    key = "part.model_untrained" if model.get("trained") is False else "part.model"
    total = body.get("timings_ms", {}).get("total")
    return t(key, name=model.get("name", "?"), ms=f"{total:.0f}" if total is not None else "?")


def percent(confidence: float) -> str:
    return f"{confidence * 100:.1f}%"
