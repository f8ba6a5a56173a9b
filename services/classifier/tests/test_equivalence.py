"""The service gives exactly what torchvision gives when run directly on the same image."""

from __future__ import annotations

import torch
from PIL import Image
from torchvision.models import ResNet18_Weights, resnet18


def test_service_matches_torchvision(client, classifier_weights, images_dir):
    path = images_dir / "eagle.jpg"
    with open(path, "rb") as photo:
        served = client.post("/v1/classify?top_k=5", data={"image": (photo, "eagle.jpg")})
    assert served.status_code == 200

    weights = ResNet18_Weights.IMAGENET1K_V1
    network = resnet18(weights=None)
    network.load_state_dict(torch.load(classifier_weights, weights_only=True))
    network.eval()
    with torch.inference_mode():
        batch = weights.transforms()(Image.open(path).convert("RGB")).unsqueeze(0)
        probabilities = network(batch).softmax(dim=1)[0]
    expected_p, expected_i = probabilities.topk(5)

    predictions = served.get_json()["predictions"]
    assert [p["class_id"] for p in predictions] == expected_i.tolist()
    assert [p["label"] for p in predictions] == [
        weights.meta["categories"][i] for i in expected_i.tolist()
    ]
    for prediction, expected in zip(predictions, expected_p.tolist(), strict=True):
        assert abs(prediction["confidence"] - expected) < 1e-5
