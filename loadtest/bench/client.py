"""Closed-loop load at a fixed concurrency: N threads, each sending its next request as soon
as the previous answer is in, every answer checked.

Every contender gets the same reproducible photo sequence. Only answers that come back
inside the measured window (after a warm-up) count; throughput is successful answers per
second of that window, and latencies are exact (no buckets). The client runs in this
process, on the same two cores as the servers: its own CPU time is reported per request
so its share of the budget is visible (it is the same for every contender).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import requests

from loadtest.photos import Photo, photo_sequence

# (session, photo) -> response; raises requests.RequestException on transport errors.
SendFn = Callable[[requests.Session, Photo], requests.Response]
# (response, photo) -> None when right, else the problem in a few words.
CheckFn = Callable[[requests.Response, Photo], str | None]


@dataclass(frozen=True)
class LevelResult:
    concurrency: int
    window_s: float
    answers: int  # inside the window, right or wrong
    failures: int
    images_per_s: float  # right answers per second of the window
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    mean_ms: float | None
    client_cpu_ms_per_request: float | None
    first_failure: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class _Sample:
    start: float
    end: float
    ok: bool
    problem: str | None


def run_level(
    send: SendFn,
    check: CheckFn,
    photos: Sequence[Photo],
    concurrency: int,
    warmup_s: float,
    duration_s: float,
    seed: int = 7,
    min_answers_per_client: int = 3,
    max_window_s: float = 240.0,
    on_window: Callable[[str], None] | None = None,
) -> LevelResult:
    """Load with ``concurrency`` closed-loop clients, then measure.

    Warm-up lasts ``warmup_s`` and until every client has had an answer (first requests pay
    for lazy initialisation). The measured window then lasts ``duration_s`` and, for slow
    servers, until it holds ``min_answers_per_client x concurrency`` answers, so that even
    a 30-second request is measured over a few full cycles (at most ``max_window_s``).
    ``on_window`` is called with "start" and "end" at the window's edges (CPU snapshots).
    """
    sequence = itertools.cycle(photo_sequence(photos, 997, seed))
    sequence_lock = threading.Lock()
    samples: list[_Sample] = []
    samples_lock = threading.Lock()
    stop = threading.Event()

    def client() -> None:
        session = requests.Session()
        try:
            while not stop.is_set():
                with sequence_lock:
                    photo = next(sequence)
                tick = time.perf_counter()
                try:
                    response = send(session, photo)
                    problem = check(response, photo)
                except requests.RequestException as error:
                    problem = f"{type(error).__name__}: {error}"[:200]
                    session.close()
                    session = requests.Session()
                tock = time.perf_counter()
                with samples_lock:
                    samples.append(_Sample(tick, tock, problem is None, problem))
        finally:
            session.close()

    def answers_since(moment: float) -> int:
        with samples_lock:
            return sum(1 for s in samples if s.end >= moment)

    cpu_before = time.process_time()
    started = time.perf_counter()
    threads = [threading.Thread(target=client, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    while time.perf_counter() - started < warmup_s or answers_since(started) < concurrency:
        if time.perf_counter() - started > max_window_s:
            break
        time.sleep(0.05)
    if on_window:
        on_window("start")
    window_start = time.perf_counter()
    needed = min_answers_per_client * concurrency
    while True:
        elapsed = time.perf_counter() - window_start
        if elapsed >= max_window_s or (
            elapsed >= duration_s and answers_since(window_start) >= needed
        ):
            break
        time.sleep(0.05)
    window_end = time.perf_counter()
    if on_window:
        on_window("end")
    stop.set()
    for thread in threads:
        thread.join()
    cpu_ms = (time.process_time() - cpu_before) * 1000

    window_s = window_end - window_start
    inside = [s for s in samples if window_start <= s.end <= window_end]
    right = [s for s in inside if s.ok]
    latencies = np.array([(s.end - s.start) * 1000 for s in right])
    failures = [s for s in inside if not s.ok]

    def percentile(q: float) -> float | None:
        return float(np.percentile(latencies, q)) if len(latencies) else None

    return LevelResult(
        concurrency=concurrency,
        window_s=window_s,
        answers=len(inside),
        failures=len(failures),
        images_per_s=len(right) / window_s,
        p50_ms=percentile(50),
        p95_ms=percentile(95),
        p99_ms=percentile(99),
        mean_ms=float(latencies.mean()) if len(latencies) else None,
        client_cpu_ms_per_request=cpu_ms / len(samples) if samples else None,
        first_failure=failures[0].problem if failures else None,
    )
