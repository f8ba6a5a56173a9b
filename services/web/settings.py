"""Web demo configuration: ``WEB_*`` environment variables, validated at start.

The web service runs no model; it serves the page and the API docs and, for the no-JS
form post, calls the detector and the classifier over HTTP.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from services.kit.settings import EnvReader, SettingsError, max_body_mb, served_by_mode

PREFIX = "WEB"
DEFAULT_PORT = 8003
# gunicorn_settings defaults to 4 threads; a web worker mostly waits on the model services,
# so it gets more (see gunicorn.conf.py).
DEFAULT_HTTP_THREADS = 8


def _service_url(env: EnvReader, key: str, default: str) -> str:
    url = env.string(key, default).rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise SettingsError(f"{env.name(key)}={url!r} is not an http:// or https:// URL")
    return url


@dataclass(frozen=True)
class WebSettings:
    """Model service URLs are base URLs the web service appends ``/v1/...`` to: one
    replica (``http://detector:8002``) or nginx's per-service prefix, which balances over
    the replicas (``http://nginx:8080/detector``)."""

    detector_url: str
    classifier_url: str
    upstream_timeout_s: float
    max_body_mb: float
    log_level: str
    served_by: str

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_body_mb * 1024 * 1024)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> WebSettings:
        env = EnvReader(PREFIX, dict(os.environ if environ is None else environ))
        return cls(
            detector_url=_service_url(env, "DETECTOR_URL", "http://127.0.0.1:8002"),
            classifier_url=_service_url(env, "CLASSIFIER_URL", "http://127.0.0.1:8001"),
            upstream_timeout_s=env.number("UPSTREAM_TIMEOUT_S", 120.0, 1.0, 3600.0),
            max_body_mb=max_body_mb(env),
            log_level=env.string("LOG_LEVEL", "info", ("debug", "info", "warning", "error")),
            served_by=served_by_mode(env),
        )
