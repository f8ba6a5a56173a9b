"""Is an answer right, beyond its status code? Pure checks of the stack's response shapes.

Each ``check_*`` function returns a list of problems (empty: the answer is right). Stand-in
weights make labels meaningless and detections few or none, so the checks validate what
must hold for any weights: keys and types, the image size matching the photo sent, top-k
length, confidences within [0, 1] and sorted, boxes inside the image, the untrained warning.
"""

from __future__ import annotations

import math
import re
from typing import Any

from loadtest.photos import Photo

NUM_IMAGENET_CLASSES = 1000
_BOX_TOLERANCE_PX = 1.0
_STATIC_ASSET = re.compile(r"""(?:src|href)=["'](/static/[^"'?#]+)""")
_THRESHOLD_INPUT = re.compile(r"""<input[^>]*name=["']conf_threshold["'][^>]*>""")
_VALUE = re.compile(r"""value=["']([0-9.]+)["']""")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_probability(value: Any) -> bool:
    return _is_number(value) and 0.0 <= value <= 1.0


def check_envelope(body: Any, photo: Photo) -> list[str]:
    """What every model answer carries: the image size, the model, timings, the warning."""
    if not isinstance(body, dict):
        return [f"body is {type(body).__name__}, not a JSON object"]
    problems = []
    image = body.get("image")
    if not isinstance(image, dict):
        problems.append("no 'image' object")
    elif (image.get("width"), image.get("height")) != (photo.width, photo.height):
        problems.append(
            f"image size {image.get('width')}x{image.get('height')} differs from the photo "
            f"sent ({photo.name}: {photo.width}x{photo.height})"
        )
    model = body.get("model")
    if not isinstance(model, dict) or not isinstance(model.get("name"), str):
        problems.append("no 'model' object with a name")
    elif not isinstance(model.get("trained"), bool):
        problems.append("'model.trained' is not a boolean")
    elif model["trained"] is False and not (
        isinstance(body.get("warning"), str) and body["warning"]
    ):
        problems.append("untrained model but no 'warning'")
    timings = body.get("timings_ms")
    if not isinstance(timings, dict) or not _is_number(timings.get("total")):
        problems.append("no 'timings_ms.total'")
    return problems


def check_classification(body: Any, photo: Photo, top_k: int) -> list[str]:
    """``POST /v1/classify?top_k=K`` answer for one photo."""
    envelope = check_envelope(body, photo)
    if not isinstance(body, dict):
        return envelope
    predictions = body.get("predictions")
    if not isinstance(predictions, list):
        return ["no 'predictions' list", *envelope]
    problems = []
    if len(predictions) != top_k:
        problems.append(f"{len(predictions)} predictions, expected top_k={top_k}")
    confidences = []
    for index, prediction in enumerate(predictions):
        if not isinstance(prediction, dict):
            problems.append(f"prediction {index} is not an object")
            continue
        label, class_id = prediction.get("label"), prediction.get("class_id")
        confidence = prediction.get("confidence")
        if not (isinstance(label, str) and label):
            problems.append(f"prediction {index}: no label")
        if not (isinstance(class_id, int) and 0 <= class_id < NUM_IMAGENET_CLASSES):
            problems.append(f"prediction {index}: class_id {class_id!r} out of range")
        if not _is_probability(confidence):
            problems.append(f"prediction {index}: confidence {confidence!r} not in [0, 1]")
        else:
            confidences.append(confidence)
    if confidences != sorted(confidences, reverse=True):
        problems.append("predictions are not sorted by confidence")
    if sum(confidences) > 1.0 + 1e-3:
        problems.append(f"confidences sum to {sum(confidences):.4f} > 1")
    class_ids = [p.get("class_id") for p in predictions if isinstance(p, dict)]
    if len(set(class_ids)) != len(class_ids):
        problems.append("a class appears twice in the top-k")
    return problems + envelope


def check_detection(
    body: Any, photo: Photo, max_detections: int = 100, conf_threshold: float | None = None
) -> list[str]:
    """``POST /v1/detect`` JSON answer for one photo; boxes in original-image pixels.

    With ``conf_threshold`` (the value sent), every confidence must be at least that.
    """
    envelope = check_envelope(body, photo)
    if not isinstance(body, dict):
        return envelope
    detections = body.get("detections")
    if not isinstance(detections, list):
        return ["no 'detections' list", *envelope]
    problems = []
    if len(detections) > max_detections:
        problems.append(f"{len(detections)} detections, more than {max_detections}")
    confidences = []
    for index, detection in enumerate(detections):
        if not isinstance(detection, dict):
            problems.append(f"detection {index} is not an object")
            continue
        if not (isinstance(detection.get("label"), str) and detection["label"]):
            problems.append(f"detection {index}: no label")
        if not (isinstance(detection.get("class_id"), int) and detection["class_id"] >= 0):
            problems.append(f"detection {index}: bad class_id {detection.get('class_id')!r}")
        confidence = detection.get("confidence")
        if not _is_probability(confidence):
            problems.append(f"detection {index}: confidence {confidence!r} not in [0, 1]")
        else:
            confidences.append(confidence)
            if conf_threshold is not None and confidence < conf_threshold - 1e-4:
                problems.append(
                    f"detection {index}: confidence {confidence} below conf_threshold "
                    f"{conf_threshold}"
                )
        problems.extend(f"detection {index}: {p}" for p in _check_box(detection.get("box"), photo))
    if confidences != sorted(confidences, reverse=True):
        problems.append("detections are not sorted by confidence")
    return problems + envelope


def _check_box(box: Any, photo: Photo) -> list[str]:
    if not isinstance(box, dict) or not all(
        _is_number(box.get(k)) for k in ("x1", "y1", "x2", "y2")
    ):
        return ["box is not {x1, y1, x2, y2} numbers"]
    x1, y1, x2, y2 = (box[k] for k in ("x1", "y1", "x2", "y2"))
    tolerance = _BOX_TOLERANCE_PX
    if not (
        -tolerance <= x1 < x2 <= photo.width + tolerance
        and -tolerance <= y1 < y2 <= photo.height + tolerance
    ):
        return [f"box ({x1}, {y1}, {x2}, {y2}) is empty or outside {photo.width}x{photo.height}"]
    return []


def check_page(text: str, content_type: str) -> list[str]:
    """``GET /``: an HTML page with the upload form."""
    problems = []
    if not content_type.startswith("text/html"):
        problems.append(f"Content-Type {content_type!r}, expected text/html")
    lowered = text.lower()
    if "</html>" not in lowered:
        problems.append("page is not a complete HTML document")
    if 'type="file"' not in lowered:
        problems.append("page has no file input")
    return problems


def check_models(body: Any) -> list[str]:
    """``GET /v1/models`` of the web service: an entry per model service, none failing."""
    if not isinstance(body, dict) or not isinstance(body.get("models"), list):
        return ["no 'models' list"]
    problems = []
    services = set()
    for entry in body["models"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("service"), str):
            problems.append("a model entry names no service")
            continue
        services.add(entry["service"])
        if isinstance(entry.get("error"), dict):
            problems.append(f"{entry['service']}: {entry['error'].get('code', 'error')}")
    missing = {"detector", "classifier"} - services
    if missing:
        problems.append(f"no entry for {', '.join(sorted(missing))}")
    return problems


def static_assets(page: str) -> list[str]:
    """The same-origin ``/static/...`` paths a page loads (scripts, styles), in order."""
    return list(dict.fromkeys(_STATIC_ASSET.findall(page)))


def page_conf_threshold(page: str) -> float | None:
    """The detection threshold the page's slider starts at (what its script sends)."""
    field = _THRESHOLD_INPUT.search(page)
    value = _VALUE.search(field.group(0)) if field else None
    return float(value.group(1)) if value else None


def describe_error(status: int, body: Any, text: str) -> str:
    """One line for a failed answer: the status and the stack's error code if there is one."""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        return f"HTTP {status} {error.get('code', '?')}: {error.get('message', '')}"[:300]
    return f"HTTP {status}: {text[:200]!r}"
