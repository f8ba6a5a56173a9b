"""What a model service plugs into the serving core, and the request pipeline around it.

A model is one object (:class:`VisionModel`) with ``load``, ``preprocess``, ``forward`` and
``describe``. The core decodes uploads, calls ``preprocess`` per image, batches ``forward``
across concurrent requests, and returns each image's output row with its stage timings.
Adding a third model is a new folder with one such class and its routes.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from PIL import Image

from services.common import metrics
from services.common.batching import DynamicBatcher
from services.common.errors import ApiError
from services.common.imaging import decode_image
from services.common.readiness import ModelLifecycle
from services.common.settings import ServingSettings
from services.common.torch_runtime import configure_threads
from services.common.weights import WeightsInfo

UNTRAINED_WARNING = (
    "This model runs on untrained stand-in weights (randomly initialised, generated offline): "
    "its predictions are meaningless. Install the official weights to get real results."
)


class VisionModel(ABC):
    """One servable model. Heavy work happens in ``load`` (after fork), never at import."""

    name: str
    weights: WeightsInfo

    @abstractmethod
    def load(self) -> None:
        """Build the network and load the weights onto the configured device."""

    @abstractmethod
    def preprocess(self, image: Image.Image) -> tuple[torch.Tensor, Any]:
        """RGB image -> (input Tensor[C, H, W] on CPU, metadata needed by postprocessing)."""

    @abstractmethod
    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        """Tensor[B, C, H, W] (CPU) -> model outputs Tensor[B, ...] as float32 on CPU."""

    @abstractmethod
    def describe(self) -> dict:
        """The ``/v1/models`` entry: architecture, input size, classes, device, weights."""

    def warm_up(self) -> None:
        """One inference on a blank image, so the first request pays no lazy-init cost."""
        tensor, _ = self.preprocess(Image.new("RGB", (640, 480), (127, 127, 127)))
        self.forward(tensor.unsqueeze(0))

    def model_summary(self) -> dict:
        """The short model description embedded in every response."""
        return {"name": self.name, "trained": self.weights.trained, "weights": self.weights.source}


@contextmanager
def timed(timings_ms: dict[str, float], stage: str) -> Iterator[None]:
    """Add the wall time of the block to ``timings_ms[stage]`` (milliseconds)."""
    started = time.perf_counter()
    try:
        yield
    finally:
        timings_ms[stage] = timings_ms.get(stage, 0.0) + (time.perf_counter() - started) * 1000


@dataclass
class PreparedImage:
    """One decoded image on its way through the pipeline."""

    width: int
    height: int
    meta: Any
    output: torch.Tensor | None = None


@dataclass
class PipelineResult:
    images: list[PreparedImage]
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
