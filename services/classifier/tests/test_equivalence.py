"""With the full decode, the service gives exactly what torchvision gives when run directly on
the same image; with the draft decode (the default), the same answer within a tolerance."""

from __future__ import annotations

import pytest
import torch
from PIL import Image
from torchvision.models import ResNet18_Weights, resnet18

from services.classifier.tests.conftest import loaded_app


@pytest.fixture(scope="module")
def full_decode_client(classifier_weights):
    return loaded_app(classifier_weights, CLASSIFIER_DRAFT_DECODE="0").test_client()


def reference_probabilities(classifier_weights, path) -> torch.Tensor:
    network = resnet18(weights=None)
    network.load_state_dict(torch.load(classifier_weights, weights_only=True))
    network.eval()
    with torch.inference_mode():
        batch = ResNet18_Weights.IMAGENET1K_V1.transforms()(Image.open(path).convert("RGB"))
        return network(batch.unsqueeze(0)).softmax(dim=1)[0]


def test_draft_decoding_stays_close_to_torchvision(client, classifier_weights, images_dir):
    path = images_dir / "eagle.jpg"
    with open(path, "rb") as photo:
        served = client.post("/v1/classify?top_k=5", data={"image": (photo, "eagle.jpg")})
    assert served.status_code == 200
    expected = reference_probabilities(classifier_weights, path)
    predictions = served.get_json()["predictions"]
    assert predictions[0]["class_id"] == int(expected.argmax())
    # Stand-in weights give a near-uniform output: compare probabilities, not the ranks below
    # the first (they swap on differences in the fifth decimal).
    for prediction in predictions:
        reference = float(expected[prediction["class_id"]])
        assert abs(prediction["confidence"] - reference) < 2e-3


def test_service_matches_torchvision(full_decode_client, classifier_weights, images_dir):
    client = full_decode_client
    path = images_dir / "eagle.jpg"
    with open(path, "rb") as photo:
        served = client.post("/v1/classify?top_k=5", data={"image": (photo, "eagle.jpg")})
    assert served.status_code == 200

    weights = ResNet18_Weights.IMAGENET1K_V1
    expected_p, expected_i = reference_probabilities(classifier_weights, path).topk(5)

    predictions = served.get_json()["predictions"]
    assert [p["class_id"] for p in predictions] == expected_i.tolist()
    assert [p["label"] for p in predictions] == [
        weights.meta["categories"][i] for i in expected_i.tolist()
    ]
    for prediction, expected in zip(predictions, expected_p.tolist(), strict=True):
        assert abs(prediction["confidence"] - expected) < 1e-5
