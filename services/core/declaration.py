"""What a model declares: one object for its whole request path (see VisionModel).

A model states its route and request parameters, ``load``, ``preprocess``, ``forward``,
``postprocess`` and optionally ``render``, with its metadata typed (``MetaT``) from
preprocess to postprocess. The core (services.core.routes) registers the route, validates
the parameters before reading the body, decodes uploads, batches ``forward`` across
concurrent requests (services.core.pipeline), and builds the JSON envelope or the encoded
picture. A new model is a new folder with one such class, an ``app.py`` of two lines and
its ``gunicorn.conf.py``: nothing in the core changes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import torch
from PIL import Image

from services.kit.parameters import Parameter
from services.kit.weights import WeightsInfo

MetaT = TypeVar("MetaT")

UNTRAINED_WARNING = (
    "This model runs on untrained stand-in weights (randomly initialised, generated offline): "
    "its predictions are meaningless. Install the official weights to get real results."
)


@dataclass(frozen=True)
class TensorSpec:
    """One output of the Open Inference Protocol (v2) route: ``-1`` marks a variable size.
    ``labelled``: one value per class, which the protocol's top-k extension may turn into
    ``value:index:label`` strings (``v2_labels``)."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    labelled: bool = False


@dataclass(frozen=True)
class Rendered:
    """A picture answer: the drawn image and the model's own response headers."""

    picture: Image.Image
    headers: dict[str, str] = field(default_factory=dict)


class VisionModel(ABC, Generic[MetaT]):
    """One servable model, its whole request path. Heavy work (building the network,
    reading and hashing weights) happens in ``load``, after fork, never at import or in
    the constructor."""

    name: str
    route: str  # the POST endpoint, "/v1/<task>"
    renders: bool = False  # True: ``render`` answers ?render=1 / Accept: image/*
    jpeg_quality: int = 90
    weights: WeightsInfo  # set by load()
    dtype: torch.dtype = torch.float32  # the precision the model runs in, set by load()

    def parameters(self) -> list[Parameter]:
        """The request's query parameters, with the running configuration's defaults."""
        return []

    @abstractmethod
    def load(self) -> None:
        """Build the network, load the weights onto the configured device, set ``weights``."""

    def decode_size(self, width: int, height: int) -> tuple[int, int] | None:
        """The smallest picture preprocessing needs from a ``width`` x ``height`` photo: a
        JPEG is then decoded at the smallest DCT scale holding it (1/2, 1/4, 1/8;
        services.kit.imaging.decode_photo), unless the request renders. None (the default):
        always a full decode."""
        return None

    @abstractmethod
    def preprocess(
        self, image: Image.Image, photo_size: tuple[int, int] | None = None
    ) -> tuple[torch.Tensor, MetaT]:
        """RGB image -> (input Tensor[C, H, W] on CPU, what postprocessing needs).

        ``photo_size``: the photo's upright size as sent, given only when ``decode_size``
        made the image smaller; an answer in pixel coordinates maps back to it."""

    @abstractmethod
    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        """Tensor[B, C, H, W] (CPU) -> model outputs Tensor[B, ...] as float32 on CPU."""

    @abstractmethod
    def postprocess(self, output: torch.Tensor, meta: MetaT, params: Mapping[str, float]) -> dict:
        """One image's output row -> its JSON result (the core adds ``image`` and the rest)."""

    def render(self, meta: MetaT, result: dict) -> Rendered:
        """The picture answer for one image's ``result`` (only when ``renders``)."""
        raise NotImplementedError(f"{type(self).__name__} does not render")

    @abstractmethod
    def describe(self) -> dict:
        """The ``/v1/models`` entry: architecture, input size, classes, device."""

    def v2_outputs(self) -> list[TensorSpec]:
        """The outputs of ``POST /v2/models/<service>/infer`` (services.core.v2)."""
        return []

    def v2_tensors(self, outputs: list[torch.Tensor], results: list[dict]) -> dict:
        """Each output of ``v2_outputs`` as a numpy array over the batch, from the model's
        output rows and their ``postprocess`` results (with ``image``)."""
        raise NotImplementedError(f"{type(self).__name__} has no v2 outputs")

    def v2_labels(self) -> list[str]:
        """Class names, for the top-k extension of a ``labelled`` output."""
        return []

    def warm_up(self, batch_size: int = 1) -> None:
        """One inference on blank images, so the first request pays no lazy-init cost."""
        tensor, _ = self.preprocess(Image.new("RGB", (640, 480), (127, 127, 127)))
        self.forward(tensor.unsqueeze(0).repeat(batch_size, *([1] * tensor.dim())))

    def model_summary(self) -> dict:
        """The short model description embedded in every response."""
        return {
            "name": self.name,
            "trained": self.weights.trained,
            "weights": self.weights.source,
            "dtype": str(self.dtype).removeprefix("torch."),
        }
