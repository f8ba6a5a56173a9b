"""Dynamic batching: concurrent requests in one worker share a model call.

One inference thread per worker owns the model. HTTP threads decode and preprocess in
parallel, then hand their tensors here; the inference thread takes whatever is queued (up
to ``max_batch`` images, waiting at most ``max_wait_s`` for more once it has one), runs one
batched forward pass and hands each caller its own row back. This also serialises model
calls, so torch's intra-op threads are never oversubscribed by concurrent requests.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

from services.kit.native_thread_name import MODEL_THREAD_NAME, set_native_thread_name


@dataclass
class BatchTiming:
    """Milliseconds one image spent waiting for a batch, and the batch's model time."""

    queue_ms: float
    inference_ms: float
    batch_size: int
    batch_id: int


@dataclass
class _Item:
    tensor: torch.Tensor
    future: Future = field(default_factory=Future)
    enqueued: float = field(default_factory=time.perf_counter)


class DynamicBatcher:
    """Runs ``infer(Tensor[B, ...]) -> Tensor[B, ...]`` over batches of queued inputs."""

    def __init__(
        self,
        infer: Callable[[torch.Tensor], torch.Tensor],
        max_batch: int,
        max_wait_s: float,
        on_batch: Callable[[int], None] | None = None,
    ):
        self._infer = infer
        self._max_batch = max_batch
        self._max_wait_s = max_wait_s
        self._on_batch = on_batch
        self._queue: queue.Queue[_Item | None] = queue.Queue()
        self._batches_run = 0
        self._preparing = 0  # requests decoding/preprocessing now: inputs that will come
        self._preparing_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=MODEL_THREAD_NAME, daemon=True)
        self._thread.start()

    @contextmanager
    def preparing(self) -> Iterator[Callable[[], None]]:
        """Wrap a request's decode + preprocess + ``run``: while any request is preparing,
        a batch waits up to ``max_wait_s`` for its input; when none is, a lone request runs
        at once. Pass the yielded callback to ``run`` as ``on_queued``: the request stops
        counting only once its inputs are in the queue, so there is no moment at which it
        is invisible to the batcher."""
        released = False

        def release() -> None:
            nonlocal released
            with self._preparing_lock:
                if not released:
                    self._preparing -= 1
                    released = True

        with self._preparing_lock:
            self._preparing += 1
        try:
            yield release
        finally:
            release()

    def run(
        self,
        tensors: Sequence[torch.Tensor],
        on_queued: Callable[[], None] | None = None,
    ) -> list[tuple[torch.Tensor, BatchTiming]]:
        """Queue each tensor (one image, no batch dimension) and wait for its output row."""
        items = [_Item(t) for t in tensors]
        for item in items:
            self._queue.put(item)
        if on_queued:
            on_queued()
        return [item.future.result() for item in items]

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=5)

    def _collect(self, first: _Item) -> list[_Item]:
        batch = [first]
        deadline = time.perf_counter() + self._max_wait_s
        while len(batch) < self._max_batch:
            # Waiting only pays when another request is about to queue its input.
            wait = deadline - time.perf_counter() if self._preparing else 0.0
            try:
                item = (
                    self._queue.get(timeout=max(0.0, wait))
                    if wait > 0
                    else (self._queue.get_nowait())
                )
            except queue.Empty:
                break
            if item is None:
                self._queue.put(None)  # let the loop see the stop signal after this batch
                break
            if item.tensor.shape != first.tensor.shape:
                self._queue.put(item)  # a different input size waits for the next batch
                break
            batch.append(item)
        return batch

    def _run(self) -> None:
        set_native_thread_name(MODEL_THREAD_NAME)
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = self._collect(first)
            started = time.perf_counter()
            try:
                outputs = self._infer(torch.stack([item.tensor for item in batch]))
            except Exception as error:  # handed to every waiting request
                for item in batch:
                    item.future.set_exception(error)
                continue
            inference_ms = (time.perf_counter() - started) * 1000
            self._batches_run += 1
            if self._on_batch:
                self._on_batch(len(batch))
            for index, item in enumerate(batch):
                timing = BatchTiming(
                    queue_ms=(started - item.enqueued) * 1000,
                    inference_ms=inference_ms,
                    batch_size=len(batch),
                    batch_id=self._batches_run,
                )
                item.future.set_result((outputs[index], timing))
