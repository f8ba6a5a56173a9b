"""The classifier's HTTP API through Flask's test client: results, inputs and errors."""

from __future__ import annotations

import io

from PIL import Image

from services.core.declaration import UNTRAINED_WARNING


def png_bytes(size=(320, 240), colour=(200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG")
    return buffer.getvalue()


def assert_error(response, status: int, code: str) -> None:
    assert response.status_code == status, response.data[:300]
    assert response.is_json, response.data[:300]
    body = response.get_json()
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert "Traceback" not in response.get_data(as_text=True)


def test_classify_multipart_returns_sorted_top_k(client, images_dir):
    with open(images_dir / "dog.jpg", "rb") as photo:
        response = client.post("/v1/classify?top_k=3", data={"image": (photo, "dog.jpg")})
    assert response.status_code == 200
    body = response.get_json()
    predictions = body["predictions"]
    assert len(predictions) == 3
    confidences = [p["confidence"] for p in predictions]
    assert confidences == sorted(confidences, reverse=True)
    assert all(0 < c <= 1 for c in confidences)
    assert {"label", "class_id", "confidence"} <= set(predictions[0])
    assert body["image"] == {"width": 768, "height": 576}
    assert body["model"] == {
        "name": "resnet18",
        "trained": False,
        "weights": "stand-in",
        "dtype": "float32",
    }
    assert body["warning"] == UNTRAINED_WARNING
    assert set(body["timings_ms"]) == {
        "decode",
        "preprocess",
        "queue",
        "inference",
        "postprocess",
        "total",
    }
    assert response.headers["X-Request-ID"]


def test_field_named_file_is_accepted(client):
    response = client.post("/v1/classify", data={"file": (io.BytesIO(png_bytes()), "a.png")})
    assert response.status_code == 200
    assert len(response.get_json()["predictions"]) == 5


def test_raw_image_body_is_accepted(client):
    response = client.post("/v1/classify", data=png_bytes(), content_type="image/png")
    assert response.status_code == 200
    assert response.get_json()["image"] == {"width": 320, "height": 240}


def test_several_images_give_one_result_each_in_order(client):
    sizes = [(100, 50), (60, 90), (128, 128)]
    data = {"image": [(io.BytesIO(png_bytes(size)), f"{i}.png") for i, size in enumerate(sizes)]}
    response = client.post("/v1/classify?top_k=2", data=data)
    assert response.status_code == 200
    results = response.get_json()["results"]
    assert [(r["image"]["width"], r["image"]["height"]) for r in results] == sizes
    assert all(len(r["predictions"]) == 2 for r in results)


def test_request_id_is_kept_when_given(client):
    response = client.post(
        "/v1/classify",
        data=png_bytes(),
        content_type="image/png",
        headers={"X-Request-ID": "trace-123"},
    )
    assert response.headers["X-Request-ID"] == "trace-123"


def test_missing_field_is_400(client):
    response = client.post("/v1/classify", data={"other": (io.BytesIO(png_bytes()), "a.png")})
    assert_error(response, 400, "missing_image")


def test_empty_body_is_400(client):
    assert_error(client.post("/v1/classify"), 400, "missing_image")
    assert_error(
        client.post("/v1/classify", data=b"", content_type="image/png"), 400, "missing_image"
    )


def test_text_file_is_400(client):
    data = {"image": (io.BytesIO(b"just some text"), "notes.txt")}
    assert_error(client.post("/v1/classify", data=data), 400, "invalid_image")


def test_json_body_is_415(client):
    assert_error(client.post("/v1/classify", json={"url": "x"}), 415, "unsupported_media_type")


def test_body_over_the_limit_is_413(client):
    big = b"\xff" * (2 * 1024 * 1024 + 1)
    assert_error(
        client.post("/v1/classify", data=big, content_type="image/jpeg"), 413, "payload_too_large"
    )


def test_too_many_pixels_is_413(client):
    # A 1-bit PNG of 3000 x 2000 pixels: small on the wire, 6 MP decoded (limit here: 4 MP).
    buffer = io.BytesIO()
    Image.new("1", (3000, 2000)).save(buffer, "PNG")
    assert_error(
        client.post("/v1/classify", data=buffer.getvalue(), content_type="image/png"),
        413,
        "image_too_large",
    )


def test_too_many_images_is_400(client):
    data = {"image": [(io.BytesIO(png_bytes()), f"{i}.png") for i in range(5)]}
    assert_error(client.post("/v1/classify", data=data), 400, "too_many_images")


def test_bad_top_k_is_400(client):
    for value in ("0", "abc", "1001", "2.5"):
        response = client.post(
            f"/v1/classify?top_k={value}", data=png_bytes(), content_type="image/png"
        )
        assert_error(response, 400, "invalid_parameter")


def test_unknown_route_and_wrong_method_are_json(client):
    assert_error(client.get("/nope"), 404, "not_found")
    response = client.get("/v1/classify")
    assert_error(response, 405, "method_not_allowed")
    assert "POST" in response.headers["Allow"]


def test_bad_input_leaves_the_app_serving(client):
    client.post("/v1/classify", data=b"\x89PNG\r\n\x1a\n broken", content_type="image/png")
    assert (
        client.post("/v1/classify", data=png_bytes(), content_type="image/png").status_code == 200
    )


def test_models_describes_model_and_weights(client, classifier_weights):
    entry = client.get("/v1/models").get_json()["models"][0]
    assert entry["name"] == "resnet18"
    assert entry["input_size"] == [224, 224]
    assert entry["num_classes"] == 1000
    assert entry["device"] == "cpu" and entry["dtype"] == "float32"
    weights = entry["weights"]
    assert weights["path"] == classifier_weights.name  # no host directories
    assert weights["trained"] is False and weights["source"] == "stand-in"
    assert len(weights["sha256"]) == 64


def test_health_and_readiness(client):
    assert client.get("/healthz").get_json()["status"] == "alive"
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.get_json()["status"] == "ready"


def test_metrics_count_requests_and_stages(client):
    client.post("/v1/classify", data=png_bytes(), content_type="image/png")
    text = client.get("/metrics").get_data(as_text=True)
    assert 'vision_http_requests_total{endpoint="/v1/classify",method="POST",' in text
    assert 'vision_stage_duration_seconds_count{service="classifier",stage="inference"}' in text
    assert 'vision_images_processed_total{service="classifier"}' in text


def test_a_form_with_too_many_parts_is_named_as_such(client):
    fields = {f"field{i}": "x" for i in range(1001)}  # ~60 KB, far under MAX_BODY_MB
    fields["image"] = (io.BytesIO(b"not read"), "a.jpg")  # a file part: multipart
    response = client.post("/v1/classify", data=fields)
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "too_many_form_parts"


def test_a_cut_off_form_is_a_json_400_naming_the_problem(client, images_dir):
    photo = (images_dir / "dog.jpg").read_bytes()
    boundary = "cut-off-form"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="dog.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
    ).encode() + photo[:1000]  # no closing boundary: the client stopped sending
    response = client.post(
        "/v1/classify", data=body, content_type=f"multipart/form-data; boundary={boundary}"
    )
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "missing_image" and "closing boundary" in error["message"]
