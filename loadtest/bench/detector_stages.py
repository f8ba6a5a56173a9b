"""Detector figures per stage: where a request's time goes, for each darknet model.

    python -m loadtest.bench.detector_stages --weights-dir weights \
        [--models yolov3-tiny,yolov3] [--requests 24] [--threads 2]   (or: make bench-detector)

For each model, one after the other on the same cores:
1. the bare network: a batch-1 forward pass on letterboxed photos, back to back, with
   ``--threads`` torch threads (the model time a request cannot go below);
2. the service: the detector under real gunicorn (1 worker, the same threads), one client
   sending the photos one at a time; the stage times come from each answer's ``timings_ms``.
Prints a table with the medians, images/s and the ratio of the end-to-end time (as the client
sees it) to the bare forward pass. Photos, weights and threads are the same for both.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

from loadtest.bench.ceiling import DETECTOR_INPUT_SIZE, build
from loadtest.photos import DEFAULT_PHOTOS_DIR, load_photos
from scripts.launch import run_service

STAGES = ("decode", "preprocess", "queue", "inference", "postprocess", "total")
WARM_UP = 2


def bare_forward_ms(weights_dir: Path, model: str, photos_dir: Path, runs: int) -> float:
    """Median ms of one batch-1 forward pass of the bare network."""
    import torch

    network, tensors = build("detect", weights_dir, model, photos_dir)
    times = []
    with torch.inference_mode():
        for index in range(runs + WARM_UP):
            started = time.perf_counter()
            network(tensors[index % len(tensors)].unsqueeze(0))
            times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times[WARM_UP:])


def service_stages(
    weights_dir: Path, model: str, photos_dir: Path, requests_count: int, threads: int
) -> dict[str, float]:
    """Median stage times (server side) and client latency, in ms, over sequential requests."""
    env = {
        "WEIGHTS_DIR": str(weights_dir),
        "DETECTOR_MODEL": model,
        "DETECTOR_WORKERS": "1",
        "DETECTOR_TORCH_THREADS": str(threads),
    }
    photos = load_photos(photos_dir)
    stages: dict[str, list[float]] = {stage: [] for stage in (*STAGES, "client")}
    with tempfile.TemporaryDirectory() as logs, run_service("detector", env, Path(logs)) as server:
        session = requests.Session()
        for index in range(requests_count + WARM_UP):
            photo = photos[index % len(photos)]
            started = time.perf_counter()
            response = session.post(f"{server.url}/v1/detect", files=photo.multipart(), timeout=120)
            client_ms = (time.perf_counter() - started) * 1000
            response.raise_for_status()
            if index < WARM_UP:
                continue
            for stage, ms in response.json()["timings_ms"].items():
                stages.setdefault(stage, []).append(ms)
            stages["client"].append(client_ms)
    return {stage: statistics.median(values) for stage, values in stages.items() if values}


def table(rows: list[dict]) -> str:
    header = [
        "model",
        "bare forward",
        *STAGES,
        "client end-to-end",
        "images/s",
        "end-to-end / bare",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        stages = row["service"]
        cells = [row["model"], f"{row['bare_ms']:.1f}"]
        cells += [f"{stages.get(stage, 0.0):.1f}" for stage in STAGES]
        cells += [
            f"{stages['client']:.1f}",
            f"{1000 / stages['client']:.2f}",
            f"{stages['client'] / row['bare_ms']:.2f}x",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights-dir", type=Path, default=Path("weights"))
    parser.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS_DIR)
    parser.add_argument("--models", default="yolov3-tiny,yolov3")
    parser.add_argument("--requests", type=int, default=24)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    rows = []
    for model in args.models.split(","):
        bare = bare_forward_ms(args.weights_dir, model, args.photos, args.requests)
        print(f"{model}: bare forward {bare:.1f} ms", flush=True)
        service = service_stages(args.weights_dir, model, args.photos, args.requests, args.threads)
        print(f"{model}: service {service}", flush=True)
        rows.append({"model": model, "bare_ms": bare, "service": service})
    print(
        f"\nDetector at {DETECTOR_INPUT_SIZE}x{DETECTOR_INPUT_SIZE}, 1 client, sequential "
        f"requests, {args.threads} torch threads; medians in ms:\n"
    )
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
