"""The content checks that turn a 200 with a wrong body into a load-test failure."""

from __future__ import annotations

import copy

import pytest

from loadtest.checks import (
    check_classification,
    check_detection,
    check_models,
    check_page,
    describe_error,
    page_conf_threshold,
    static_assets,
)
from loadtest.photos import Photo

PHOTO = Photo("dog.jpg", b"", "image/jpeg", 768, 576)
ENVELOPE = {
    "image": {"width": 768, "height": 576},
    "model": {"name": "m", "trained": False, "weights": "stand-in"},
    "timings_ms": {"decode": 1.0, "total": 12.5},
    "warning": "untrained stand-in weights",
}


def classification(top_k: int = 3) -> dict:
    confidences = [0.5, 0.2, 0.1, 0.05, 0.01][:top_k]
    predictions = [
        {"label": f"class {i}", "class_id": i, "confidence": c} for i, c in enumerate(confidences)
    ]
    return {"predictions": predictions, **copy.deepcopy(ENVELOPE)}


def detection() -> dict:
    return {
        "detections": [
            {
                "label": "dog",
                "class_id": 16,
                "confidence": 0.9,
                "box": {"x1": 10.0, "y1": 20.0, "x2": 300.5, "y2": 576.0},
            },
            {
                "label": "bicycle",
                "class_id": 1,
                "confidence": 0.6,
                "box": {"x1": 0.0, "y1": 0.0, "x2": 768.0, "y2": 100.0},
            },
        ],
        **copy.deepcopy(ENVELOPE),
    }


def test_a_right_classification_passes():
    assert check_classification(classification(3), PHOTO, top_k=3) == []


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda b: b["predictions"].pop(), "expected top_k=3"),
        (lambda b: b["image"].update(width=767), "differs from the photo sent"),
        (lambda b: b["predictions"].reverse(), "not sorted"),
        (lambda b: b["predictions"][0].update(confidence=1.5), "not in [0, 1]"),
        (lambda b: b["predictions"][0].update(confidence=float("nan")), "not in [0, 1]"),
        (lambda b: b["predictions"][1].update(class_id=1000), "out of range"),
        (lambda b: b["predictions"][1].update(class_id=0), "appears twice"),
        (lambda b: b["predictions"][2].update(label=""), "no label"),
        (lambda b: b.pop("warning"), "no 'warning'"),
        (lambda b: b.pop("timings_ms"), "timings_ms"),
        (lambda b: b["model"].update(trained="no"), "not a boolean"),
        (lambda b: b.pop("predictions"), "no 'predictions' list"),
    ],
)
def test_a_wrong_classification_is_caught(mutate, expected):
    body = classification(3)
    mutate(body)
    problems = check_classification(body, PHOTO, top_k=3)
    assert any(expected in p for p in problems), problems


def test_trained_models_need_no_warning():
    body = classification(3)
    body["model"]["trained"] = True
    del body["warning"]
    assert check_classification(body, PHOTO, top_k=3) == []


def test_a_non_object_body_is_caught():
    assert check_classification([1, 2], PHOTO, top_k=3)
    assert check_detection("x", PHOTO)


def test_right_detections_pass_also_when_there_are_none():
    assert check_detection(detection(), PHOTO) == []
    empty = detection()
    empty["detections"] = []
    assert check_detection(empty, PHOTO) == []


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda b: b["detections"].reverse(), "not sorted"),
        (lambda b: b["detections"][0]["box"].update(x2=900), "outside 768x576"),
        (lambda b: b["detections"][0]["box"].update(x2=5), "empty or outside"),
        (lambda b: b["detections"][0].update(box=[1, 2, 3, 4]), "box is not"),
        (lambda b: b["detections"][1].update(confidence=-0.1), "not in [0, 1]"),
        (lambda b: b["detections"][1].update(class_id=-1), "bad class_id"),
        (lambda b: b["image"].update(height=575), "differs from the photo sent"),
        (lambda b: b.pop("detections"), "no 'detections' list"),
    ],
)
def test_wrong_detections_are_caught(mutate, expected):
    body = detection()
    mutate(body)
    problems = check_detection(body, PHOTO)
    assert any(expected in p for p in problems), problems


def test_the_page_and_its_assets():
    page = (
        '<!doctype html><html><head><link rel="stylesheet" href="/static/style.css?v=1">'
        '<script src="/static/app.js" defer></script><script src="/static/app.js"></script>'
        '</head><body><form><input type="file" name="image"></form></body></html>'
    )
    assert check_page(page, "text/html; charset=utf-8") == []
    assert static_assets(page) == ["/static/style.css", "/static/app.js"]
    assert check_page("<html>", "application/json")  # neither HTML nor complete


def test_the_model_list():
    good = {"models": [{"service": "detector"}, {"service": "classifier"}]}
    assert check_models(good) == []
    failing = {
        "models": [
            {"service": "detector", "error": {"code": "bad_gateway"}},
            {"service": "classifier"},
        ]
    }
    assert check_models(failing) == ["detector: bad_gateway"]
    assert check_models({"models": [{"service": "detector"}]}) == ["no entry for classifier"]


def test_error_lines_name_the_stacks_error_code():
    body = {"error": {"code": "model_not_ready", "message": "The model is still loading."}}
    assert describe_error(503, body, "") == "HTTP 503 model_not_ready: The model is still loading."
    assert describe_error(502, None, "<html>bad gateway</html>").startswith("HTTP 502: '<html>")


def test_detections_below_the_threshold_sent_are_caught():
    body = detection()
    assert check_detection(body, PHOTO, conf_threshold=0.6) == []
    problems = check_detection(body, PHOTO, conf_threshold=0.7)
    assert problems == ["detection 1: confidence 0.6 below conf_threshold 0.7"]


def test_the_threshold_the_page_starts_with():
    page = '<input id="t" type="range" name="conf_threshold" min="0.05" value="0.45">'
    assert page_conf_threshold(page) == 0.45
    assert page_conf_threshold("<input name='other' value='1'>") is None
