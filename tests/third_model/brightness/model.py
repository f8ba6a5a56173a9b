"""A third model, declared the way detector and classifier are: mean brightness of a photo.

The whole model is this one class (plus app.py and gunicorn.conf.py, two lines each): a
1x1 convolution with weights from a ``state_dict`` file (luma coefficients), averaged over
the image. It exists to prove that a new model needs no edit to services/core or
services/kit (tests/third_model/test_third_model.py).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image
from torchvision.transforms.functional import pil_to_tensor

from services.core.declaration import VisionModel
from services.core.state_dict import load_state_dict_file
from services.core.torch_runtime import select_device
from services.kit.parameters import Parameter
from services.kit.settings import EnvReader, ServingSettings, read_workers
from services.kit.weights import inspect_weights

PREFIX = "BRIGHTNESS"
DEFAULT_PORT = 8004
SIZE = 64  # images are scaled to SIZE x SIZE first


@dataclass(frozen=True)
class BrightnessSettings:
    weights_path: Path
    decimals: int
    workers: int
    serving: ServingSettings

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> BrightnessSettings:
        env = EnvReader(PREFIX, dict(os.environ if environ is None else environ))
        workers = read_workers(env)
        return cls(
            weights_path=env.path("WEIGHTS", Path("brightness.pt")),
            decimals=env.integer("DECIMALS", 3, 0, 6),
            workers=workers,
            serving=ServingSettings.from_env(env, workers),
        )


def luma_network() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Conv2d(3, 1, 1, bias=False), torch.nn.AdaptiveAvgPool2d(1))


class Brightness(VisionModel[None]):
    route = "/v1/brightness"

    def __init__(self, settings: BrightnessSettings):
        self.settings = settings
        self.name = "brightness"
        self.network: torch.nn.Module | None = None

    def parameters(self) -> list[Parameter]:
        return [Parameter("decimals", int, self.settings.decimals, 0, 6, "Digits after the point.")]

    def load(self) -> None:
        self.weights = inspect_weights(self.settings.weights_path, {})
        network = luma_network()
        load_state_dict_file(network, self.settings.weights_path, "luma 1x1 conv")
        self.network = network.eval().to(select_device(self.settings.serving.device))

    def preprocess(self, image: Image.Image) -> tuple[torch.Tensor, None]:
        return pil_to_tensor(image.resize((SIZE, SIZE))).float() / 255, None

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        assert self.network is not None, "load() first"
        return self.network(batch).flatten(1).cpu()

    def postprocess(self, output: torch.Tensor, meta: None, params: Mapping[str, float]) -> dict:
        return {"brightness": round(float(output[0]), int(params["decimals"]))}

    def describe(self) -> dict:
        return {"name": self.name, "task": "brightness", "input_size": [SIZE, SIZE]}
