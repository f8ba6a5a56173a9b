"""The Open Inference Protocol (v2) through nginx, driven by the real client: tritonclient.

Both models, JSON and binary tensors, encoded images (BYTES) and raw pixels (UINT8/FP32),
metadata, readiness, the classification extension, and each documented error."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
import requests
import tritonclient.http as triton
from PIL import Image
from tritonclient.utils import InferenceServerException

from scripts.local_stack import run_stack

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def stack(tmp_path_factory, stack_weights_dir):
    with run_stack(tmp_path_factory.mktemp("v2"), stack_weights_dir) as stack:
        yield stack


@pytest.fixture(scope="module")
def client(stack):
    client = triton.InferenceServerClient(url=stack.url.removeprefix("http://"))
    yield client
    client.close()


@pytest.fixture(scope="module")
def photo(images_dir) -> bytes:
    return (images_dir / "dog.jpg").read_bytes()


def encoded_input(photos: list[bytes], binary: bool) -> triton.InferInput:
    tensor = triton.InferInput("IMAGE", [len(photos)], "BYTES")
    values = photos if binary else [base64.b64encode(p).decode() for p in photos]
    tensor.set_data_from_numpy(np.array(values, dtype=np.object_), binary_data=binary)
    return tensor


def test_server_is_live_ready_and_speaks_both_extensions(client):
    assert client.is_server_live() and client.is_server_ready()
    metadata = client.get_server_metadata()
    assert {"classification", "binary_tensor_data"} <= set(metadata["extensions"])


@pytest.mark.parametrize("model", ["detector", "classifier"])
def test_model_metadata_and_readiness(client, model):
    assert client.is_model_ready(model) and client.is_model_ready(model, "1")
    metadata = client.get_model_metadata(model)
    assert metadata["name"] == model and metadata["versions"] == ["1"]
    assert {i["name"]: i["datatype"] for i in metadata["inputs"]} == {
        "IMAGE": "BYTES",
        "IMAGE_RAW": "UINT8",
    }
    assert all(-1 in output["shape"] for output in metadata["outputs"])


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_classifier_infer_with_the_classification_extension(client, photo, binary):
    outputs = [
        triton.InferRequestedOutput("PROBABILITIES", binary_data=binary, class_count=5),
    ]
    result = client.infer("classifier", [encoded_input([photo, photo], binary)], outputs=outputs)
    top5 = result.as_numpy("PROBABILITIES")
    assert top5.shape == (2, 5)
    first = top5[0, 0].decode() if isinstance(top5[0, 0], bytes) else top5[0, 0]  # JSON: str
    value, index, label = first.split(":", 2)
    assert 0 < float(value) <= 1 and int(index) >= 0 and label
    assert list(top5[0]) == list(top5[1])  # the same photo twice, batched
    response = result.get_response()
    assert response["model_name"] == "classifier"
    assert "untrained" in response["parameters"]["warning"]


def test_classifier_probabilities_match_v1(client, stack, photo):
    result = client.infer("classifier", [encoded_input([photo], True)])
    probabilities = result.as_numpy("PROBABILITIES")
    assert probabilities.shape == (1, 1000) and probabilities.dtype == np.float32
    v1 = requests.post(
        f"{stack.url}/v1/classify?top_k=1",
        files={"image": ("dog.jpg", photo, "image/jpeg")},
        timeout=60,
    ).json()["predictions"][0]
    assert int(probabilities[0].argmax()) == v1["class_id"]
    assert abs(float(probabilities[0].max()) - v1["confidence"]) < 1e-5


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_detector_infer_answers_boxes_scores_labels_and_sizes(client, photo, binary):
    outputs = [
        triton.InferRequestedOutput(name, binary_data=binary)
        for name in ("BOXES", "SCORES", "CLASS_IDS", "LABELS", "COUNTS", "IMAGE_SIZE")
    ]
    parameters = {"conf_threshold": 0.05}
    result = client.infer(
        "detector", [encoded_input([photo], binary)], outputs=outputs, parameters=parameters
    )
    width, height = Image.open(io.BytesIO(photo)).size
    assert result.as_numpy("IMAGE_SIZE").tolist() == [[width, height]]
    count = int(result.as_numpy("COUNTS")[0])
    boxes, scores = result.as_numpy("BOXES"), result.as_numpy("SCORES")
    assert boxes.shape == (1, count, 4) and scores.shape == (1, count)
    if count:
        assert (boxes[0, :, 2] <= width + 1).all() and (scores[0] >= 0.05).all()
        assert all(label for label in result.as_numpy("LABELS")[0])


@pytest.mark.parametrize("datatype", ["UINT8", "FP32"])
def test_raw_pixels_are_accepted(client, photo, datatype):
    pixels = np.asarray(Image.open(io.BytesIO(photo)).convert("RGB").resize((320, 240)))
    data = pixels if datatype == "UINT8" else (pixels / 255.0).astype(np.float32)
    tensor = triton.InferInput("IMAGE_RAW", list(data.shape), datatype)
    tensor.set_data_from_numpy(data, binary_data=True)
    result = client.infer("detector", [tensor])
    assert result.as_numpy("IMAGE_SIZE").tolist() == [[320, 240]]


def test_documented_errors_come_in_the_protocols_shape(client, stack, photo):
    with pytest.raises(InferenceServerException) as unknown:
        client.get_model_metadata("resnet50")
    assert unknown.value.status() == "404" and "Unknown model" in unknown.value.message()
    with pytest.raises(InferenceServerException) as version:
        client.get_model_metadata("classifier", "7")
    assert version.value.status() == "404"
    wrong_input = triton.InferInput("PIXELS", [1], "BYTES")
    wrong_input.set_data_from_numpy(np.array([photo], dtype=np.object_))
    with pytest.raises(InferenceServerException) as bad:
        client.infer("classifier", [wrong_input])
    assert bad.value.status() == "400" and "IMAGE" in bad.value.message()
    with pytest.raises(InferenceServerException) as out_of_range:
        client.infer("detector", [encoded_input([photo], True)], parameters={"conf_threshold": 7})
    assert out_of_range.value.status() == "400"
    with pytest.raises(InferenceServerException) as not_an_image:
        client.infer("classifier", [encoded_input([b"not an image"], True)])
    assert not_an_image.value.status() == "400"
    with pytest.raises(InferenceServerException) as unknown_output:
        client.infer(
            "classifier",
            [encoded_input([photo], True)],
            outputs=[triton.InferRequestedOutput("LOGITS")],
        )
    assert unknown_output.value.status() == "400"
    # Not JSON at all, straight through nginx: the protocol's shape, a request id.
    raw = requests.post(f"{stack.url}/v2/models/classifier/infer", data=b"{", timeout=30)
    assert raw.status_code == 400 and isinstance(raw.json()["error"], str)
    assert raw.headers["X-Request-ID"]
