"""Image classification with a torchvision architecture (ResNet18 by default).

Preprocessing is the transform torchvision publishes with the weights (resize, center crop,
normalize): by default resampling only the crop (crop_resize.py, within one 8-bit step of the
preset), with ``*_DRAFT_DECODE=0`` the preset itself. The labels are the weights' own
category list.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
import torchvision
from PIL import Image
from torchvision.models import get_model, get_model_weights

from services.classifier.crop_resize import classification_input
from services.classifier.official import official_checksums
from services.classifier.settings import ClassifierSettings
from services.core.declaration import TensorSpec, VisionModel
from services.core.state_dict import load_state_dict_file
from services.core.torch_runtime import (
    memory_format,
    place_network,
    select_device,
    select_dtype,
)
from services.kit.parameters import Parameter
from services.kit.settings import SettingsError
from services.kit.weights import inspect_weights


def classification_architectures() -> list[str]:
    return torchvision.models.list_models(module=torchvision.models)


def build_network(arch: str) -> torch.nn.Module:
    """The torchvision architecture with random initialisation (weights loaded later)."""
    if arch not in classification_architectures():
        raise SettingsError(
            f"CLASSIFIER_ARCH={arch!r} is not a torchvision classification model "
            "(see torchvision.models.list_models(module=torchvision.models))"
        )
    return get_model(arch, weights=None)


def top_k_predictions(probabilities: torch.Tensor, categories: list[str], k: int) -> list[dict]:
    """Tensor[C] of softmax probabilities -> the k most likely classes, most likely first."""
    values, indices = probabilities.topk(min(k, probabilities.numel()))
    return [
        {"label": categories[i], "class_id": int(i), "confidence": round(float(p), 6)}
        for p, i in zip(values.tolist(), indices.tolist(), strict=True)
    ]


class Classifier(VisionModel[None]):
    route = "/v1/classify"

    def __init__(self, settings: ClassifierSettings):
        self.settings = settings
        self.name = settings.arch
        published = get_model_weights(settings.arch).DEFAULT
        self.transform = published.transforms()
        # The published transform resizes the shorter side to this first: a JPEG can be
        # decoded at a DCT scale that still holds it (difference measured: docs/decode.md).
        self.resize_side = int(self.transform.resize_size[0])
        self.categories: list[str] = list(published.meta["categories"])
        self.device = torch.device("cpu")
        self.dtype = torch.float32
        self.layout = torch.contiguous_format
        self.network: torch.nn.Module | None = None

    def parameters(self) -> list[Parameter]:
        return [
            Parameter(
                "top_k", int, self.settings.top_k, 1, len(self.categories),
                "How many of the most likely classes to return, most likely first.",
            )
        ]  # fmt: skip

    def load(self) -> None:
        self.weights = inspect_weights(self.settings.weights_path, official_checksums())
        self.device = select_device(self.settings.serving.device)
        self.dtype = select_dtype(
            self.device, self.settings.serving.half, self.settings.serving.bf16
        )
        self.layout = memory_format(self.settings.serving.channels_last)
        network = build_network(self.settings.arch)
        load_state_dict_file(network, self.settings.weights_path, self.settings.arch)
        serving = self.settings.serving
        self.network = place_network(
            network, self.device, self.dtype, self.layout, serving.compile, serving.fold_batchnorm
        )

    def decode_size(self, width: int, height: int) -> tuple[int, int]:
        return self.resize_side, self.resize_side  # both sides hold the shorter side's resize

    def preprocess(
        self, image: Image.Image, photo_size: tuple[int, int] | None = None
    ) -> tuple[torch.Tensor, None]:
        # The answer is not in pixel coordinates: a smaller decode changes nothing here.
        if self.settings.serving.draft_decode:
            return classification_input(image, self.transform), None
        return self.transform(image), None

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        """Tensor[B, 3, 224, 224] normalised -> softmax probabilities Tensor[B, classes]."""
        assert self.network is not None, "load() first"
        logits = self.network(
            batch.to(self.device, self.dtype, memory_format=self.layout, non_blocking=True)
        )
        return logits.float().softmax(dim=1).cpu()

    def postprocess(self, output: torch.Tensor, meta: None, params: Mapping[str, float]) -> dict:
        return {"predictions": top_k_predictions(output, self.categories, int(params["top_k"]))}

    def v2_outputs(self) -> list[TensorSpec]:
        return [TensorSpec("PROBABILITIES", "FP32", (-1, len(self.categories)), labelled=True)]

    def v2_tensors(self, outputs: list[torch.Tensor], results: list[dict]) -> dict:
        return {"PROBABILITIES": torch.stack(outputs).numpy().astype(np.float32)}

    def v2_labels(self) -> list[str]:
        return self.categories

    def describe(self) -> dict:
        crop = self.transform.crop_size[0]
        return {
            "name": self.name,
            "task": "classification",
            "architecture": f"torchvision.models.{self.settings.arch}",
            "input_size": [crop, crop],
            "num_classes": len(self.categories),
            "device": str(self.device),
            "dtype": str(self.dtype).removeprefix("torch."),
        }
