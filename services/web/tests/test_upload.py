"""POST /upload, the no-JS form post: bad uploads, results, per-part errors, the banner."""

import io
import re

import pytest
from PIL import Image

from services.kit.uploads import InMemoryRequest
from services.web.app import create_app
from services.web.tests.fakes import (
    FakeModelServices,
    classification_body,
    detection_body,
    error_part,
)

JSON = {"Accept": "application/json"}


def form(data: bytes, name: str = "photo.jpg", mimetype: str = "image/jpeg", field="image"):
    return {field: (io.BytesIO(data), name, mimetype)}


def png_bytes(image_format: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(buffer, image_format)
    return buffer.getvalue()


def upload_message(html: str) -> str:
    match = re.search(r'<div id="upload-message"[^>]*role="alert">(.*?)</div>', html, re.S)
    assert match, "the page shows the upload message"
    return re.sub(r"<[^>]+>", " ", match.group(1))


@pytest.mark.parametrize(
    ("data", "status", "code", "sentence"),
    [
        ({}, 400, "missing_image", "No photo was sent"),
        (form(b"", "empty.jpg"), 400, "empty_image", "The file is empty."),
        (form(b"hello", "notes.txt", "text/plain"), 415, "unsupported_media_type", "not a photo"),
        (form(b"\xff\xd8garbage", "broken.jpg"), 400, "invalid_image", "could not be read"),
        (form(png_bytes("ICO"), "icon.ico", "image/x-icon"), 415, "unsupported_image_format",
         "format is not supported"),
    ],
)  # fmt: skip
def test_bad_upload_shows_the_page_again_with_a_friendly_message(
    client, fake_services, data, status, code, sentence
):
    response = client.post("/upload", data=data, content_type="multipart/form-data")
    html = response.get_data(as_text=True)
    assert response.status_code == status
    assert response.content_type.startswith("text/html")
    assert sentence in upload_message(html)
    assert 'id="upload-form"' in html  # the form is there to try again
    assert "Traceback" not in html
    assert fake_services.calls == []


@pytest.mark.parametrize(
    ("data", "status", "code"),
    [
        ({}, 400, "missing_image"),
        (form(b"hello", "notes.txt", "text/plain"), 415, "unsupported_media_type"),
        (form(b"\x89PNG\r\n\x1a\nbroken", "broken.png", "image/png"), 400, "invalid_image"),
    ],
)
def test_bad_upload_answers_json_errors_when_json_is_asked_for(client, data, status, code):
    response = client.post("/upload", data=data, headers=JSON, content_type="multipart/form-data")
    assert response.status_code == status
    assert response.json == {"error": {"code": code, "message": response.json["error"]["message"]}}


def test_too_large_upload_is_413_with_the_limit_in_the_message(dog_jpeg):
    app = create_app({"MAX_BODY_MB": "0.05"})
    client = app.test_client()
    html_response = client.post("/upload", data=form(dog_jpeg))
    assert html_response.status_code == 413
    assert "0.05 MB" in upload_message(html_response.get_data(as_text=True))
    json_response = client.post("/upload", data=form(dog_jpeg), headers=JSON)
    assert json_response.status_code == 413
    assert json_response.json["error"]["code"] == "payload_too_large"


def test_bad_upload_message_in_chinese(client):
    response = client.post(
        "/upload", data=form(b"hello", "notes.txt", "text/plain"), headers={"Accept-Language": "zh"}
    )
    assert response.status_code == 415
    assert "这不是照片" in upload_message(response.get_data(as_text=True))


def test_result_page_draws_boxes_tables_and_bars(client, fake_services, dog_jpeg):
    response = client.post("/upload", data=form(dog_jpeg, "dog.jpg"))
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'src="data:image/jpeg;base64,' in html  # the photo inline, nothing stored
    assert '<svg class="overlay" viewBox="0 0 768 576"' in html
    assert html.count('<g class="detection-box">') == 2
    assert ">dog 93%</text>" in html and ">bicycle 71%</text>" in html
    assert 'alt="The uploaded photo with 2 detected objects outlined"' in html
    assert '<td class="box-coords">120, 220, 320, 540</td>' in html
    assert html.count('<rect class="bar-fill" width="') == 5
    assert '<rect class="bar-fill" width="62.00"' in html
    assert "golden retriever" in html and "62.0%" in html
    assert "Model: yolov3-tiny (untrained stand-in weights) · 52 ms" in html
    [(photo, _request_id, conf_threshold)] = fake_services.calls
    assert conf_threshold is None  # the detector's own default
    assert photo.data == dog_jpeg and photo.mimetype == "image/jpeg"


def test_result_page_accepts_the_original_demos_field_name(client, fake_services, dog_jpeg):
    response = client.post("/upload", data=form(dog_jpeg, field="file"))
    assert response.status_code == 200 and len(fake_services.calls) == 1


def test_request_id_is_forwarded_to_the_model_services(client, fake_services, dog_jpeg):
    client.post("/upload", data=form(dog_jpeg), headers={"X-Request-ID": "demo-42"})
    assert fake_services.calls[0][1] == "demo-42"


def test_confidence_threshold_is_passed_on_and_kept_on_the_page(client, fake_services, dog_jpeg):
    data = {**form(dog_jpeg), "conf_threshold": "0.25"}
    html = client.post("/upload", data=data).get_data(as_text=True)
    assert fake_services.calls[0][2] == 0.25
    assert re.search(r'<input id="conf-threshold" [^>]*value="0.25">', html)


@pytest.mark.parametrize("value", ["high", "1.5", "-0.1"])
def test_bad_confidence_threshold_is_a_400(client, fake_services, dog_jpeg, value):
    data = {**form(dog_jpeg), "conf_threshold": value}
    response = client.post("/upload", data=data, headers=JSON)
    assert response.status_code == 400
    assert response.json["error"]["code"] == "invalid_parameter"
    assert fake_services.calls == []


def test_zero_detections_show_the_no_objects_row(app, client, dog_jpeg):
    empty = detection_body()
    empty["detections"] = []
    app.extensions["model_services"] = FakeModelServices(detection=empty)
    html = client.post("/upload", data=form(dog_jpeg)).get_data(as_text=True)
    assert "No objects found above the confidence threshold." in html
    assert '<svg class="overlay"' in html and '<g class="detection-box">' not in html


def test_a_failing_service_only_fails_its_own_part(app, client, dog_jpeg):
    app.extensions["model_services"] = FakeModelServices(
        detection=error_part(503, "unavailable", "The detector service cannot be reached.")
    )
    response = client.post("/upload", data=form(dog_jpeg))
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Object detection failed" in html
    assert "The service is not available right now." in html
    assert "Details: unavailable: The detector service cannot be reached." in html
    assert '<svg class="overlay"' not in html and 'alt="The uploaded photo"' in html
    assert "golden retriever" in html  # classification still shown


def test_json_result_carries_both_parts(app, client, dog_jpeg):
    app.extensions["model_services"] = FakeModelServices(
        classification=error_part(504, "gateway_timeout", "too slow")
    )
    response = client.post("/upload", data=form(dog_jpeg), headers=JSON)
    assert response.status_code == 200
    assert response.json["detection"]["detections"][0]["label"] == "dog"
    assert response.json["classification"]["error"]["code"] == "gateway_timeout"


@pytest.mark.parametrize(
    ("detector_trained", "classifier_trained", "named"),
    [
        (False, True, ["the detector"]),
        (True, False, ["the classifier"]),
        (False, False, ["the detector", "the classifier"]),
        (True, True, []),
    ],
)
def test_banner_names_exactly_the_models_on_stand_in_weights(
    app, client, dog_jpeg, detector_trained, classifier_trained, named
):
    app.extensions["model_services"] = FakeModelServices(
        detection=detection_body(trained=detector_trained),
        classification=classification_body(trained=classifier_trained),
    )
    html = client.post("/upload", data=form(dog_jpeg)).get_data(as_text=True)
    banner = re.search(
        r'<div id="banner" class="banner" role="status"( hidden)?>(.*?)</div>', html, re.S
    )
    assert banner
    if not named:
        assert banner.group(1) == " hidden"
        return
    assert banner.group(1) is None
    text = banner.group(2)
    assert "Untrained stand-in weights" in text
    assert " and ".join(named) in text


def test_result_page_in_chinese(client, dog_jpeg):
    html = client.post(
        "/upload", data=form(dog_jpeg), headers={"Accept-Language": "zh-CN"}
    ).get_data(as_text=True)
    assert "检测到的物体" in html and "分类（前 5 名）" in html
    assert "检测模型 加载的是未经训练的替代权重" in html


def test_uploads_are_held_in_memory(app):
    assert app.request_class is InMemoryRequest


def test_a_form_with_too_many_parts_is_named_as_such(client):
    fields = {f"field{i}": "x" for i in range(1001)}
    fields["image"] = (io.BytesIO(b"not read"), "a.jpg")  # a file part: multipart
    response = client.post("/upload", data=fields, headers={"Accept": "application/json"})
    assert response.status_code == 413
    assert response.json["error"]["code"] == "too_many_form_parts"
