"""What a model service declares, and the request pipeline the core runs around it.

A model is one object (:class:`VisionModel`): its route and request parameters, ``load``,
``preprocess``, ``forward``, ``postprocess`` and optionally ``render``, with its metadata
typed (``MetaT``) from preprocess to postprocess. The core (services.common.model_app)
registers the route, validates the parameters before reading the body, decodes uploads,
batches ``forward`` across concurrent requests, and builds the JSON envelope or the encoded
picture. A third model is a new folder with one such class and a two-line ``app.py``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import torch
from PIL import Image

from services.common import metrics
from services.common.batching import DynamicBatcher
from services.common.errors import ApiError
from services.common.imaging import decode_image
from services.common.parameters import Parameter
from services.common.readiness import ModelLifecycle
from services.common.settings import ServingSettings
from services.common.timing import timed
from services.common.torch_runtime import configure_threads
from services.common.weights import WeightsInfo

MetaT = TypeVar("MetaT")

UNTRAINED_WARNING = (
    "This model runs on untrained stand-in weights (randomly initialised, generated offline): "
    "its predictions are meaningless. Install the official weights to get real results."
)


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
    route: str  # the POST endpoint, e.g. "/v1/detect"
    renders: bool = False  # True: ``render`` answers ?render=1 / Accept: image/*
    jpeg_quality: int = 90
    weights: WeightsInfo  # set by load()

    def parameters(self) -> list[Parameter]:
        """The request's query parameters, with the running configuration's defaults."""
        return []

    @abstractmethod
    def load(self) -> None:
        """Build the network, load the weights onto the configured device, set ``weights``."""

    @abstractmethod
    def preprocess(self, image: Image.Image) -> tuple[torch.Tensor, MetaT]:
        """RGB image -> (input Tensor[C, H, W] on CPU, what postprocessing needs)."""

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

    def warm_up(self) -> None:
        """One inference on a blank image, so the first request pays no lazy-init cost."""
        tensor, _ = self.preprocess(Image.new("RGB", (640, 480), (127, 127, 127)))
        self.forward(tensor.unsqueeze(0))

    def model_summary(self) -> dict:
        """The short model description embedded in every response."""
        return {"name": self.name, "trained": self.weights.trained, "weights": self.weights.source}


@dataclass
class PreparedImage(Generic[MetaT]):
    """One decoded image on its way through the pipeline."""

    width: int
    height: int
    meta: MetaT
    output: torch.Tensor | None = None


@dataclass
class PipelineResult(Generic[MetaT]):
    images: list[PreparedImage[MetaT]]
    timings_ms: dict[str, float] = field(default_factory=dict)


class InferencePipeline:
    """decode -> preprocess -> (batched) forward for one worker's model."""

    def __init__(self, service: str, model: VisionModel, settings: ServingSettings) -> None:
        self.service = service
        self.model = model
        self.settings = settings
        self.lifecycle = ModelLifecycle()
        self._batcher: DynamicBatcher | None = None

    def start(self, background: bool = True, on_failure=None) -> None:
        """Load and warm up the model (in a background thread by default)."""
        self.lifecycle = ModelLifecycle(on_failure=on_failure)
        self.lifecycle.start(self._load_and_warm_up, background=background)

    def _load_and_warm_up(self) -> None:
        configure_threads(self.settings.torch_threads)
        with torch.inference_mode():
            self.model.load()
            self.model.warm_up()
        self._batcher = DynamicBatcher(
            self._forward,
            max_batch=self.settings.max_batch,
            max_wait_s=self.settings.batch_wait_ms / 1000,
            on_batch=lambda size: metrics.BATCH_SIZE.labels(self.service).observe(size),
        )

    def _forward(self, batch: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return self.model.forward(batch)

    def require_ready(self) -> None:
        if not self.lifecycle.ready or self._batcher is None:
            raise ApiError(
                503,
                "model_not_ready",
                "The model is still loading; retry in a moment.",
                headers={"Retry-After": "1"},
            )

    def run(self, blobs: list[bytes]) -> PipelineResult:
        """Decode, preprocess and run every uploaded image; raises ApiError on bad input."""
        self.require_ready()
        assert self._batcher is not None
        timings = {"decode": 0.0, "preprocess": 0.0}
        prepared: list[PreparedImage] = []
        tensors: list[torch.Tensor] = []
        with self._batcher.preparing() as queued:
            for blob in blobs:
                with timed(timings, "decode"):
                    image = decode_image(blob, self.settings.max_pixels)
                with timed(timings, "preprocess"):
                    tensor, meta = self.model.preprocess(image)
                prepared.append(PreparedImage(image.width, image.height, meta))
                tensors.append(tensor)
            outputs = self._batcher.run(tensors, on_queued=queued)
        for item, (output, _) in zip(prepared, outputs, strict=True):
            item.output = output
        timings["queue"] = max(timing.queue_ms for _, timing in outputs)
        # Images of one request may share a batch: count each batch's model time once.
        batches = {timing.batch_id: timing.inference_ms for _, timing in outputs}
        timings["inference"] = sum(batches.values())
        metrics.IMAGES.labels(self.service).inc(len(prepared))
        return PipelineResult(prepared, timings)
