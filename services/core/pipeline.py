"""The request pipeline around a declared model: decode -> preprocess -> batched forward.

One :class:`InferencePipeline` per worker loads and warms up its model (in a background
thread, see services.kit.readiness), then runs each request's images through the model's
``preprocess`` and the dynamic batcher, returning each image's output row and the stage
timings.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Generic

import torch
from PIL import Image

from services.core.batching import DynamicBatcher
from services.core.declaration import MetaT, VisionModel
from services.core.torch_runtime import configure_threads
from services.kit import metrics
from services.kit.admission import Admission, auto_queue_limit, effective_queue_limit
from services.kit.errors import ApiError
from services.kit.imaging import decode_photo
from services.kit.readiness import ModelLifecycle
from services.kit.settings import ServingSettings
from services.kit.timing import timed


def compiled_batch_sizes(max_batch: int) -> list[int]:
    """The batch sizes a compiled network gets a graph for: the powers of two up to
    ``max_batch``, and ``max_batch``. Static graphs: a graph built for one size runs
    faster than one for any size (measured, docs/benchmarks.md)."""
    sizes = [1]
    while sizes[-1] * 2 <= max_batch:
        sizes.append(sizes[-1] * 2)
    return sizes if sizes[-1] == max_batch else [*sizes, max_batch]


def split_for_graphs(size: int, graph_sizes: list[int]) -> list[int]:
    """Chunks that add up to ``size``, each a size with a graph, largest first:
    7 with graphs for 1, 2, 4, 8 -> 4, 2, 1. A compiled network's cost per image hardly
    depends on the batch size, so running the chunks costs what one batch would."""
    chunks = []
    for graph in sorted(graph_sizes, reverse=True):
        while size >= graph:
            chunks.append(graph)
            size -= graph
    return chunks


def warm_up_batches(compiled: bool, max_batch: int) -> list[int]:
    """Batch sizes to run before ready: 1 for eager; every graph of a compiled network, so
    no request waits for one to be built."""
    return compiled_batch_sizes(max_batch) if compiled else [1]


def preprocess_decoded(
    model: VisionModel[MetaT], image: Image.Image, photo_size: tuple[int, int]
) -> tuple[torch.Tensor, MetaT]:
    """``model.preprocess`` of a decoded photo; ``photo_size`` (its upright size as sent) is
    passed on only when the decode was smaller (draft), so a model's output in pixels maps
    back to the photo's."""
    if image.size == photo_size:
        return model.preprocess(image)
    return model.preprocess(image, photo_size)


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
        self.admission = Admission(service)
        self._batcher: DynamicBatcher | None = None
        # A compiled network's graph sizes, every batch split into them; none when eager.
        self._graph_sizes = compiled_batch_sizes(settings.max_batch) if settings.compile else []

    def start(self, background: bool = True, on_failure=None) -> None:
        """Load and warm up the model (in a background thread by default)."""
        self.lifecycle = ModelLifecycle(on_failure=on_failure)
        self.lifecycle.start(self._load_and_warm_up, background=background)

    def _load_and_warm_up(self) -> None:
        configure_threads(self.settings.torch_threads)
        with torch.inference_mode():
            self.model.load()
            for batch_size in warm_up_batches(self.settings.compile, self.settings.max_batch):
                self.model.warm_up(batch_size)
            image_ms = self._uncontended_image_ms()
        self.admission.set_limit(self.queue_limit(image_ms))
        self._batcher = DynamicBatcher(
            self._forward,
            max_batch=self.settings.max_batch,
            max_wait_s=self.settings.batch_wait_ms / 1000,
            on_batch=lambda size: metrics.BATCH_SIZE.labels(self.service).observe(size),
        )

    def _uncontended_image_ms(self, runs: int = 5, within_s: float = 2.0) -> float:
        """The fastest of a few single-image passes (at least two, at most ``runs``, stopping
        after ``within_s``): replicas start side by side, so one pass alone may share the
        CPU with another's loading and overstate the cost."""
        started = time.perf_counter()
        timings = [self._time_one_image(), self._time_one_image()]
        while len(timings) < runs and time.perf_counter() - started < within_s:
            timings.append(self._time_one_image())
        return min(timings)

    def _time_one_image(self) -> float:
        """Milliseconds of one warm single-image pass (preprocess + forward)."""
        started = time.perf_counter()
        self.model.warm_up()
        return (time.perf_counter() - started) * 1000

    def queue_limit(self, image_ms: float) -> int:
        """The admission limit: configured, or from the latency budget at ``image_ms``."""
        settings = self.settings
        if settings.queue_limit:
            return effective_queue_limit(settings.queue_limit, settings.http_threads)
        return auto_queue_limit(settings.queue_budget_ms, image_ms, settings.http_threads)

    @contextmanager
    def admitted(self) -> Iterator[None]:
        """Readiness, then a place in the bounded queue (a 503 right away if neither)."""
        self.require_ready()
        with self.admission.admit():
            yield

    def _forward(self, batch: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            if not self._graph_sizes:
                return self.model.forward(batch)
            chunks = batch.split(split_for_graphs(len(batch), self._graph_sizes))
            if len(chunks) == 1:
                return self.model.forward(batch)
            return torch.cat([self.model.forward(chunk) for chunk in chunks])

    def require_ready(self) -> None:
        if not self.lifecycle.ready or self._batcher is None:
            raise ApiError(
                503,
                "model_not_ready",
                "The model is still loading; retry in a moment.",
                headers={"Retry-After": "1"},
            )

    def run(self, blobs: list[bytes | Image.Image], full_decode: bool = False) -> PipelineResult:
        """Decode (encoded bytes; an RGB picture is taken as it is), preprocess and run
        every image; raises ApiError on bad input. ``full_decode``: never a reduced-scale
        decode (an answer drawn on the photo needs all of it)."""
        self.require_ready()
        assert self._batcher is not None
        needed = None if full_decode or not self.settings.draft_decode else self.model.decode_size
        timings = {"decode": 0.0, "preprocess": 0.0}
        prepared: list[PreparedImage] = []
        tensors: list[torch.Tensor] = []
        with self._batcher.preparing() as queued:
            for blob in blobs:
                with timed(timings, "decode"):
                    if isinstance(blob, Image.Image):
                        image, (width, height) = blob, blob.size
                    else:
                        image, (width, height) = decode_photo(
                            blob, self.settings.max_pixels, needed
                        )
                with timed(timings, "preprocess"):
                    tensor, meta = preprocess_decoded(self.model, image, (width, height))
                prepared.append(PreparedImage(width, height, meta))
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
