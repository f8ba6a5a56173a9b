"""The request pipeline around a declared model: decode -> preprocess -> batched forward.

One :class:`InferencePipeline` per worker loads and warms up its model (in a background
thread, see services.kit.readiness), then runs each request's images through the model's
``preprocess`` and the dynamic batcher, returning each image's output row and the stage
timings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic

import torch

from services.core.batching import DynamicBatcher
from services.core.declaration import MetaT, VisionModel
from services.core.torch_runtime import configure_threads
from services.kit import metrics
from services.kit.errors import ApiError
from services.kit.imaging import decode_image
from services.kit.readiness import ModelLifecycle
from services.kit.settings import ServingSettings
from services.kit.timing import timed


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
