"""The web service against the real model services under gunicorn (stand-in weights).

The detector URL points at a closed port in the first tests, so the per-part error path
is exercised for real; the detector's own tests below run when services/detector exists.
"""

from __future__ import annotations

import io
import re

import pytest
import requests
from PIL import Image

from scripts.launch import run_service
from services.web.app import create_app

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def web_with_classifier_only(classifier_service, closed_port_url):
    app = create_app(
        {"WEB_CLASSIFIER_URL": classifier_service.url, "WEB_DETECTOR_URL": closed_port_url}
    )
    return app.test_client()


def test_model_list_shows_the_classifier_and_the_detector_as_down(web_with_classifier_only):
    response = web_with_classifier_only.get("/v1/models")
    assert response.status_code == 200
    detector, classifier = response.json["models"]
    assert detector["service"] == "detector"
    assert detector["error"]["code"] == "unavailable"
    assert classifier["service"] == "classifier" and classifier["name"] == "resnet18"
    assert classifier["weights"]["trained"] is False


def test_upload_page_shows_classification_and_the_detectors_error(
    web_with_classifier_only, classifier_service, dog_jpeg
):
    response = web_with_classifier_only.post(
        "/upload",
        data={"image": (io.BytesIO(dog_jpeg), "dog.jpg", "image/jpeg")},
        headers={"X-Request-ID": "web-live-test-1"},
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Object detection failed" in html and "not available right now" in html
    predictions = re.search(r'<table class="predictions">.*?</table>', html, re.S)
    assert predictions and predictions.group(0).count("<tr>") == 1 + 5  # header + top-5
    assert "Model: resnet18 (untrained stand-in weights)" in html
    assert re.search(r'<div id="banner" class="banner" role="status">', html)
    assert "for the classifier" in html
    assert '"request_id": "web-live-test-1"' in classifier_service.log()


def test_upload_json_and_upstream_errors_pass_through(web_with_classifier_only, dog_jpeg):
    response = web_with_classifier_only.post(
        "/upload",
        data={"image": (io.BytesIO(dog_jpeg), "dog.jpg", "image/jpeg")},
        headers={"Accept": "application/json"},
    )
    assert response.status_code == 200
    assert response.json["detection"]["error"]["code"] == "unavailable"
    classification = response.json["classification"]
    assert len(classification["predictions"]) == 5
    assert classification["model"] == {
        "name": "resnet18",
        "trained": False,
        "weights": "stand-in",
        "dtype": "float32",
    }
    assert classification["image"] == {"width": 768, "height": 576}


def test_classifier_rejections_show_as_that_parts_error(web_with_classifier_only):
    buffer = io.BytesIO()
    Image.new("1", (9000, 9000)).save(buffer, "PNG")  # over the classifier's 40 MP
    response = web_with_classifier_only.post(
        "/upload",
        data={"image": (io.BytesIO(buffer.getvalue()), "huge.png", "image/png")},
        headers={"Accept-Language": "en"},
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Classification failed" in html
    assert "too many pixels" in html and "Details: image_too_large:" in html


def test_web_under_gunicorn_serves_page_health_metrics_and_upload(
    classifier_service, closed_port_url, tmp_path, dog_jpeg
):
    env = {"WEB_CLASSIFIER_URL": classifier_service.url, "WEB_DETECTOR_URL": closed_port_url}
    with run_service("web", env, tmp_path, deadline_s=60) as web:
        assert requests.get(web.url + "/readyz", timeout=5).json()["status"] == "ready"
        page = requests.get(web.url + "/", timeout=5)
        assert page.status_code == 200 and "X-Served-By" in page.headers
        response = requests.post(
            web.url + "/upload",
            files={"image": ("dog.jpg", dog_jpeg, "image/jpeg")},
            headers={"Accept": "application/json"},
            timeout=120,
        )
        assert response.status_code == 200
        assert len(response.json()["classification"]["predictions"]) == 5
        metrics = requests.get(web.url + "/metrics", timeout=5).text
        assert re.search(
            r'vision_http_requests_total\{[^}]*endpoint="/upload"[^}]*\} 1\.0', metrics
        )


def test_upload_with_both_real_services(classifier_service, detector_service, dog_jpeg):
    client = create_app(
        {"WEB_CLASSIFIER_URL": classifier_service.url, "WEB_DETECTOR_URL": detector_service.url}
    ).test_client()
    data = {"image": (io.BytesIO(dog_jpeg), "dog.jpg", "image/jpeg")}
    results = client.post("/upload", data=data, headers={"Accept": "application/json"}).json
    detection = results["detection"]
    assert "error" not in detection, detection
    assert detection["image"] == {"width": 768, "height": 576}
    assert detection["model"]["trained"] is False
    for item in detection["detections"]:
        box = item["box"]
        assert 0 <= box["x1"] <= box["x2"] <= 768 and 0 <= box["y1"] <= box["y2"] <= 576
    html = client.post(
        "/upload", data={"image": (io.BytesIO(dog_jpeg), "dog.jpg", "image/jpeg")}
    ).get_data(as_text=True)
    assert '<svg class="overlay" viewBox="0 0 768 576"' in html
    assert html.count('<g class="detection-box">') == len(detection["detections"])
    assert "for the detector and the classifier" in html
    models = client.get("/v1/models").json["models"]
    assert [entry["service"] for entry in models] == ["detector", "classifier"]
    assert all(entry["weights"]["trained"] is False for entry in models)


def test_openapi_shows_the_running_services_defaults(classifier_service, detector_service):
    client = create_app(
        {"WEB_CLASSIFIER_URL": classifier_service.url, "WEB_DETECTOR_URL": detector_service.url}
    ).test_client()
    paths = client.get("/openapi.json").json["paths"]
    detect = {p["name"]: p["schema"] for p in paths["/v1/detect"]["post"]["parameters"]}
    assert detect["conf_threshold"]["default"] == 0.3  # DETECTOR_CONF_THRESHOLD of the fixture
    assert set(detect) == {"conf_threshold", "iou_threshold", "max_detections", "render"}
    (top_k,) = paths["/v1/classify"]["post"]["parameters"]
    assert top_k["schema"] == {"type": "integer", "default": 5, "minimum": 1, "maximum": 1000}
