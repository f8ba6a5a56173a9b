"""The detector's HTTP API through Flask's test client (yolov3-tiny, stand-in weights)."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from services.core.declaration import UNTRAINED_WARNING
from services.detector.app import create_app


def tiny_client(detector_files, **settings: str):
    """A loaded yolov3-tiny app's test client, with ``settings`` added to its environment."""
    environ = {
        "WEIGHTS_DIR": str(detector_files),
        "DETECTOR_MODEL": "yolov3-tiny",
        "DETECTOR_TORCH_THREADS": "1",
        **settings,
    }
    return create_app(environ, load_in_background=False).test_client()


@pytest.fixture(scope="module")
def client(detector_files):
    return tiny_client(detector_files, DETECTOR_MAX_IMAGES="3")


def post(client, path: str, photo: bytes, **kwargs):
    return client.post(path, data={"image": (io.BytesIO(photo), "photo.jpg")}, **kwargs)


def test_detect_returns_boxes_in_original_pixels(client, images_dir):
    photo = (images_dir / "dog.jpg").read_bytes()
    response = post(client, "/v1/detect?conf_threshold=0.05", photo)
    assert response.status_code == 200, response.data
    body = response.get_json()
    assert body["image"] == {"width": 768, "height": 576}
    assert body["model"] == {
        "name": "yolov3-tiny",
        "trained": False,
        "weights": "stand-in",
        "dtype": "float32",
    }
    assert body["warning"] == UNTRAINED_WARNING
    detections = body["detections"]
    assert detections, "the calibrated stand-in finds some boxes at a low threshold"
    confidences = [d["confidence"] for d in detections]
    assert confidences == sorted(confidences, reverse=True)
    for detection in detections:
        box = detection["box"]
        assert 0 <= box["x1"] <= box["x2"] <= 768 and 0 <= box["y1"] <= box["y2"] <= 576
        assert detection["confidence"] > 0.05
        assert isinstance(detection["label"], str) and detection["label"]
    assert {"decode", "preprocess", "inference", "postprocess"} <= set(body["timings_ms"])


def test_thresholds_and_limits_apply(client, images_dir):
    photo = (images_dir / "dog.jpg").read_bytes()
    loose = post(client, "/v1/detect?conf_threshold=0.01&max_detections=1000", photo).get_json()
    capped = post(client, "/v1/detect?conf_threshold=0.01&max_detections=2", photo).get_json()
    strict = post(client, "/v1/detect?conf_threshold=1", photo).get_json()
    assert len(capped["detections"]) == min(2, len(loose["detections"]))
    assert strict["detections"] == []


@pytest.mark.parametrize(
    "query",
    [
        "conf_threshold=2",
        "conf_threshold=abc",
        "iou_threshold=-0.1",
        "max_detections=0",
        "max_detections=1.5",
        "render=maybe",
        "conf_threshold=nan",
    ],
)
def test_bad_parameters_are_400(client, query):
    response = post(client, f"/v1/detect?{query}", b"irrelevant")
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_parameter"


def test_render_returns_an_annotated_jpeg_of_the_original_size(client, images_dir):
    photo = (images_dir / "giraffe.jpg").read_bytes()
    original = Image.open(io.BytesIO(photo))
    response = post(client, "/v1/detect?render=1&conf_threshold=0.05", photo)
    assert response.status_code == 200
    assert response.mimetype == "image/jpeg"
    assert response.headers["X-Model-Trained"] == "false"
    assert "untrained" in response.headers["Warning"]
    assert "inference;dur=" in response.headers["Server-Timing"]
    rendered = Image.open(io.BytesIO(response.data))
    assert rendered.format == "JPEG" and rendered.size == original.size


def test_accept_header_selects_png(client, images_dir):
    photo = (images_dir / "kite.jpg").read_bytes()
    response = post(client, "/v1/detect", photo, headers={"Accept": "image/png"})
    assert response.mimetype == "image/png"
    assert Image.open(io.BytesIO(response.data)).format == "PNG"


def test_several_images_get_a_result_each_in_order(client, images_dir):
    names = ["dog.jpg", "eagle.jpg", "horses.jpg"]
    data = {"image": [(io.BytesIO((images_dir / n).read_bytes()), n) for n in names]}
    response = client.post("/v1/detect", data=data)
    assert response.status_code == 200
    results = response.get_json()["results"]
    sizes = [Image.open(images_dir / n).size for n in names]
    assert [(r["image"]["width"], r["image"]["height"]) for r in results] == sizes


def test_render_of_several_images_is_refused(client, images_dir):
    photo = (images_dir / "dog.jpg").read_bytes()
    data = {"image": [(io.BytesIO(photo), "a.jpg"), (io.BytesIO(photo), "b.jpg")]}
    response = client.post("/v1/detect?render=1", data=data)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "render_single_image"


def test_models_lists_class_names_and_weights(client, detector_files):
    entry = client.get("/v1/models").get_json()["models"][0]
    assert entry["name"] == "yolov3-tiny"
    assert entry["num_classes"] == 80 and entry["class_names"][0] == "person"
    assert entry["input_size"] == [416, 416]
    assert entry["weights"]["source"] == "stand-in"
    assert entry["weights"]["path"] == "yolov3-tiny.weights"  # no host directories


def test_bad_image_is_400_and_the_worker_keeps_serving(client, images_dir):
    response = post(client, "/v1/detect", b"GIF89a-but-not-really")
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_image"
    assert post(client, "/v1/detect", (images_dir / "dog.jpg").read_bytes()).status_code == 200


def stage_count(client, stage: str) -> float:
    """How many observations the stage histogram holds for the detector's ``stage``."""
    text = client.get("/metrics").get_data(as_text=True)
    prefix = f'vision_stage_duration_seconds_count{{service="detector",stage="{stage}"}}'
    lines = [line for line in text.splitlines() if line.startswith(prefix)]
    return float(lines[0].split()[-1]) if lines else 0.0


def test_rendered_answers_record_their_stages_too(client, images_dir):
    photo = (images_dir / "dog.jpg").read_bytes()
    before = {stage: stage_count(client, stage) for stage in ("inference", "render", "encode")}
    response = post(client, "/v1/detect?render=1", photo)
    assert response.status_code == 200
    for stage, count in before.items():
        assert stage_count(client, stage) == count + 1, stage


def test_models_lists_the_endpoint_and_its_parameters_with_configured_defaults(detector_files):
    client = tiny_client(detector_files, DETECTOR_CONF_THRESHOLD="0.3")
    (entry,) = client.get("/v1/models").get_json()["models"]
    assert entry["endpoint"]["path"] == "/v1/detect" and entry["endpoint"]["renders"] is True
    parameters = {p["name"]: p for p in entry["endpoint"]["parameters"]}
    assert parameters["conf_threshold"]["default"] == 0.3
    assert parameters["max_detections"] == {
        "name": "max_detections",
        "type": "integer",
        "default": 100,
        "minimum": 1,
        "maximum": 10000,
        "description": parameters["max_detections"]["description"],
    }


def big_photo(images_dir) -> tuple[bytes, tuple[int, int]]:
    """kite.jpg at twice its size (2704x1800): a JSON answer decodes it at 1/4."""
    image = Image.open(images_dir / "kite.jpg")
    image = image.resize((image.width * 2, image.height * 2))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue(), image.size


@pytest.fixture
def preprocessed_sizes(monkeypatch) -> list[tuple]:
    """(image size, photo_size) of every preprocess call, the real one still running."""
    from services.detector.model import Detector

    calls: list[tuple] = []
    real = Detector.preprocess

    def recording(self, image, photo_size=None):
        calls.append((image.size, photo_size))
        return real(self, image, photo_size)

    monkeypatch.setattr(Detector, "preprocess", recording)
    return calls


def test_a_json_answer_decodes_a_big_jpeg_smaller_with_boxes_in_its_pixels(
    client, images_dir, preprocessed_sizes
):
    photo, (width, height) = big_photo(images_dir)
    response = post(client, "/v1/detect?conf_threshold=0.05", photo)
    assert response.status_code == 200, response.data
    body = response.get_json()
    assert body["image"] == {"width": width, "height": height}
    assert preprocessed_sizes == [((width // 4, height // 4), (width, height))]
    assert body["detections"]
    for detection in body["detections"]:
        box = detection["box"]
        assert 0 <= box["x1"] <= box["x2"] <= width and 0 <= box["y1"] <= box["y2"] <= height


def test_a_rendered_answer_decodes_the_photo_in_full(client, images_dir, preprocessed_sizes):
    photo, size = big_photo(images_dir)
    response = post(client, "/v1/detect?render=1&conf_threshold=0.05", photo)
    assert response.status_code == 200
    assert preprocessed_sizes == [(size, None)]
    assert Image.open(io.BytesIO(response.data)).size == size


def test_draft_decode_off_decodes_every_photo_in_full(
    detector_files, images_dir, preprocessed_sizes
):
    full_client = tiny_client(detector_files, DETECTOR_DRAFT_DECODE="0")
    preprocessed_sizes.clear()  # the warm-up's
    photo, size = big_photo(images_dir)
    response = post(full_client, "/v1/detect", photo)
    assert response.status_code == 200
    assert preprocessed_sizes == [(size, None)]
