"""Canned model-service answers, shaped exactly like the real services' JSON."""

from __future__ import annotations

import copy

from services.web.upstream import CLASSIFIER, DETECTOR

UNTRAINED_WARNING = "This model runs on untrained stand-in weights."


def _parameter(name, kind, default, minimum, maximum):
    return {"name": name, "type": kind, "default": default, "minimum": minimum,
            "maximum": maximum, "description": f"{name} (canned)."}  # fmt: skip


# The "endpoint" part of the services' /v1/models entries (their declared parameters).
DETECTOR_ENDPOINT = {
    "path": "/v1/detect",
    "renders": True,
    "parameters": [
        _parameter("conf_threshold", "number", 0.5, 0.0, 1.0),
        _parameter("iou_threshold", "number", 0.45, 0.0, 1.0),
        _parameter("max_detections", "integer", 100, 1, 10000),
    ],
}
CLASSIFIER_ENDPOINT = {
    "path": "/v1/classify",
    "renders": False,
    "parameters": [_parameter("top_k", "integer", 5, 1, 1000)],
}


def detection_body(trained: bool = False) -> dict:
    body = {
        "detections": [
            {
                "label": "dog",
                "class_id": 16,
                "confidence": 0.93,
                "box": {"x1": 120.5, "y1": 220.0, "x2": 320.0, "y2": 540.25},
            },
            {
                "label": "bicycle",
                "class_id": 1,
                "confidence": 0.71,
                "box": {"x1": 100.0, "y1": 5.0, "x2": 600.0, "y2": 450.0},
            },
        ],
        "image": {"width": 768, "height": 576},
        "model": {
            "name": "yolov3-tiny",
            "trained": trained,
            "weights": "official" if trained else "stand-in",
        },
        "timings_ms": {"decode": 3.0, "inference": 40.0, "total": 52.4},
    }
    if not trained:
        body["warning"] = UNTRAINED_WARNING
    return body


def classification_body(trained: bool = True) -> dict:
    labels = ["golden retriever", "Labrador retriever", "tennis ball", "kuvasz", "clumber"]
    confidences = [0.62, 0.21, 0.05, 0.03, 0.01]
    body = {
        "predictions": [
            {"label": label, "class_id": 207 + index, "confidence": confidence}
            for index, (label, confidence) in enumerate(zip(labels, confidences, strict=True))
        ],
        "image": {"width": 768, "height": 576},
        "model": {
            "name": "resnet18",
            "trained": trained,
            "weights": "official" if trained else "stand-in",
        },
        "timings_ms": {"decode": 3.0, "inference": 20.0, "total": 31.0},
    }
    if not trained:
        body["warning"] = UNTRAINED_WARNING
    return body


def error_part(status: int, code: str, message: str) -> dict:
    return {"error": {"code": code, "message": message}, "status": status}


class FakeModelServices:
    """Stands in for upstream.ModelServices and records what it was asked."""

    def __init__(self, detection: dict | None = None, classification: dict | None = None):
        self.detection = detection if detection is not None else detection_body()
        self.classification = (
            classification if classification is not None else (classification_body())
        )
        self.calls: list[tuple] = []

    def analyse(
        self, photo, request_id: str, conf_threshold: float | None = None, credentials=None
    ) -> dict:
        self.calls.append((photo, request_id, conf_threshold))
        self.credentials = credentials
        return {
            "detection": copy.deepcopy(self.detection),
            "classification": copy.deepcopy(self.classification),
        }

    def list_models(self, request_id: str, credentials=None) -> list[dict]:
        return [
            {
                "service": DETECTOR,
                "name": "yolov3-tiny",
                "weights": {"trained": False},
                "endpoint": DETECTOR_ENDPOINT,
            },
            {
                "service": CLASSIFIER,
                "name": "resnet18",
                "weights": {"trained": True},
                "endpoint": CLASSIFIER_ENDPOINT,
            },
        ]
