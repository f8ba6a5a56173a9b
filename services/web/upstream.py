"""HTTP calls from the web service to the detector and the classifier.

Every call returns the service's JSON body, or, when the call fails in any way (service
down, timeout, non-JSON answer, an error status), a body in the stack's error shape
``{"error": {"code", "message"}}`` plus ``"status"``. Callers never see an exception, so
one failing service never takes the other's result, or the page, down with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

import requests

from services.kit.errors import error_body
from services.kit.requestlog import REQUEST_ID_HEADER
from services.web.photos import Photo

DETECTOR = "detector"
CLASSIFIER = "classifier"
# Marks the web service's own calls, so a service URL that leads back to the web service
# (e.g. nginx's root instead of its /detector prefix) is refused at once instead of
# calling itself until every worker thread is stuck waiting.
UPSTREAM_CALL_HEADER = "X-Vision-Web-Call"
# A refused or unroutable connection should fail fast even when the read timeout is long.
_CONNECT_TIMEOUT_S = 5.0


def _failure(status: int, code: str, message: str) -> dict:
    return {**error_body(code, message), "status": status}


def is_error(body: dict) -> bool:
    return isinstance(body.get("error"), dict)


class ModelServices:
    """Calls to the two model services; thread-safe (one session-less call each)."""

    def __init__(self, detector_url: str, classifier_url: str, timeout_s: float):
        self.urls = {DETECTOR: detector_url, CLASSIFIER: classifier_url}
        self.timeout = (min(_CONNECT_TIMEOUT_S, timeout_s), timeout_s)

    def analyse(
        self,
        photo: Photo,
        request_id: str,
        conf_threshold: float | None = None,
        credentials: Mapping[str, str] | None = None,
    ) -> dict[str, dict]:
        """Detection and classification of one photo, called in parallel.

        Returns ``{"detection": <POST /v1/detect body>, "classification": <POST
        /v1/classify?top_k=5 body>}``; either body may be an error body. ``conf_threshold``
        None leaves the detector's own default. ``credentials``: the caller's API key
        headers, sent along (services/kit/api_keys.py).
        """
        detect_params = {} if conf_threshold is None else {"conf_threshold": conf_threshold}
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="upstream") as pool:
            detection = pool.submit(
                self._post_photo,
                DETECTOR,
                "/v1/detect",
                detect_params,
                photo,
                request_id,
                credentials,
            )
            classification = pool.submit(
                self._post_photo,
                CLASSIFIER,
                "/v1/classify",
                {"top_k": 5},
                photo,
                request_id,
                credentials,
            )
            return {"detection": detection.result(), "classification": classification.result()}

    def list_models(
        self, request_id: str, credentials: Mapping[str, str] | None = None
    ) -> list[dict]:
        """Both services' ``/v1/models`` entries; a failing service gives one entry
        ``{"service": name, "error": {...}}`` instead."""
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="upstream") as pool:
            answers = {
                service: pool.submit(
                    self._call, service, "GET", "/v1/models", request_id, credentials
                )
                for service in self.urls
            }
            entries: list[dict] = []
            for service, answer in answers.items():
                body = answer.result()
                if is_error(body):
                    entries.append({"service": service, "error": body["error"]})
                elif isinstance(body.get("models"), list):
                    entries.extend({"service": service, **model} for model in body["models"])
                else:
                    message = f"The {service} service sent no model list."
                    entries.append({"service": service, **error_body("bad_gateway", message)})
            return entries

    def all_ready(self, request_id: str, credentials: Mapping[str, str] | None = None) -> bool:
        """Whether every model service has a ready replica (their /readyz, through nginx)."""
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="upstream") as pool:
            answers = [
                pool.submit(self._call, service, "GET", "/readyz", request_id, credentials)
                for service in self.urls
            ]
            return not any(is_error(answer.result()) for answer in answers)

    def _post_photo(
        self,
        service: str,
        path: str,
        params: dict,
        photo: Photo,
        request_id: str,
        credentials: Mapping[str, str] | None,
    ) -> dict:
        files = {"image": (photo.filename, photo.data, photo.mimetype)}
        return self._call(
            service, "POST", path, request_id, credentials, params=params, files=files
        )

    def _call(
        self,
        service: str,
        method: str,
        path: str,
        request_id: str,
        credentials: Mapping[str, str] | None = None,
        **kwargs,
    ) -> dict:
        url = self.urls[service] + path
        try:
            response = requests.request(
                method,
                url,
                headers={
                    **(credentials or {}),
                    REQUEST_ID_HEADER: request_id,
                    UPSTREAM_CALL_HEADER: "1",
                },
                timeout=self.timeout,
                **kwargs,
            )
        except requests.Timeout:
            return _failure(
                504,
                "gateway_timeout",
                f"The {service} service did not answer within {self.timeout[1]:g} s.",
            )
        except requests.RequestException:
            return _failure(503, "unavailable", f"The {service} service cannot be reached.")
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return _failure(
                502,
                "bad_gateway",
                f"The {service} service answered HTTP {response.status_code} without a JSON body.",
            )
        if response.status_code >= 400 or is_error(body):
            if is_error(body):
                return {**body, "status": response.status_code}
            return _failure(
                502, "bad_gateway", f"The {service} service answered HTTP {response.status_code}."
            )
        return body
