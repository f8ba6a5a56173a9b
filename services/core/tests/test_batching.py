"""Dynamic batching groups concurrent inputs and returns each caller its own row."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest
import torch

from services.core.batching import DynamicBatcher
from services.kit.native_thread_name import MODEL_THREAD_NAME


def test_concurrent_callers_share_batches_and_get_their_own_rows():
    sizes = []
    release = threading.Event()

    def infer(batch: torch.Tensor) -> torch.Tensor:
        release.wait(5)  # hold the first batch so the others queue up behind it
        sizes.append(batch.shape[0])
        return batch * 10

    batcher = DynamicBatcher(infer, max_batch=4, max_wait_s=0.05)
    results = {}

    def call(value: int):
        results[value] = batcher.run([torch.full((2,), float(value))])[0]

    threads = [threading.Thread(target=call, args=(v,)) for v in range(9)]
    for thread in threads:
        thread.start()
    release.set()
    for thread in threads:
        thread.join(10)
    batcher.close()
    assert sorted(results) == list(range(9))
    for value, (row, timing) in results.items():
        assert row.tolist() == [value * 10.0, value * 10.0]
        assert timing.batch_size >= 1
    assert sum(sizes) == 9 and max(sizes) <= 4 and len(sizes) < 9


def test_an_inference_error_reaches_every_caller_and_the_batcher_survives():
    calls = []

    def infer(batch):
        calls.append(batch.shape[0])
        if len(calls) == 1:
            raise RuntimeError("boom")
        return batch

    batcher = DynamicBatcher(infer, max_batch=2, max_wait_s=0.0)
    with pytest.raises(RuntimeError, match="boom"):
        batcher.run([torch.zeros(1)])
    assert batcher.run([torch.ones(1)])[0][0].item() == 1.0
    batcher.close()


@pytest.mark.skipif(sys.platform != "linux", reason="thread names in /proc are Linux's")
def test_the_model_thread_carries_its_name_for_the_os():
    # What ps -L, top -H and the bench's CPU split (loadtest/bench/cpu_split.py) read.
    batcher = DynamicBatcher(lambda batch: batch, max_batch=2, max_wait_s=0.0)
    try:
        batcher.run([torch.zeros(1)])  # answered: the thread is inside its loop
        comm = Path(f"/proc/self/task/{batcher._thread.native_id}/comm").read_text().strip()
        assert comm == MODEL_THREAD_NAME == "inference"
        # only that thread: this one (the caller) keeps its own name
        own = Path(f"/proc/self/task/{threading.get_native_id()}/comm").read_text().strip()
        assert own != MODEL_THREAD_NAME
    finally:
        batcher.close()


def test_a_lone_request_does_not_wait_for_company():
    batcher = DynamicBatcher(lambda batch: batch, max_batch=8, max_wait_s=30.0)
    done = threading.Event()
    threading.Thread(target=lambda: (batcher.run([torch.zeros(1)]), done.set())).start()
    # With a 30 s batch window, only the no-one-else-is-coming rule can answer this in time.
    assert done.wait(10)
    batcher.close()


def test_a_request_still_preparing_is_waited_for():
    sizes = []
    batcher = DynamicBatcher(
        lambda b: (sizes.append(b.shape[0]), b)[1], max_batch=8, max_wait_s=30.0
    )
    second_is_preparing = threading.Event()
    second_may_queue = threading.Event()
    results = []

    def second():
        with batcher.preparing() as queued:
            second_is_preparing.set()
            second_may_queue.wait(10)
            results.append(batcher.run([torch.ones(1)], on_queued=queued))

    worker = threading.Thread(target=second)
    worker.start()
    assert second_is_preparing.wait(10)  # it decodes while the first one queues
    first_is_queued = threading.Event()

    def first():
        with batcher.preparing() as queued:
            results.append(
                batcher.run([torch.zeros(1)], on_queued=lambda: (queued(), first_is_queued.set()))
            )

    first_thread = threading.Thread(target=first)
    first_thread.start()
    assert first_is_queued.wait(10)
    second_may_queue.set()
    first_thread.join(20)
    worker.join(20)
    batcher.close()
    assert sizes == [2]
