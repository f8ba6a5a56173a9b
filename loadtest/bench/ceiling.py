"""The ceiling: the bare model on preprocessed tensors, no HTTP, no decoding, best batch size.

    python -m loadtest.bench.ceiling --task classify --weights-dir weights \
        [--threads 2] [--processes 1] [--batches 1,2,4,8,16,32] [--seconds 4] [--out FILE] \
        [--memory-format contiguous|channels_last] [--fold-batchnorm] [--compile]

The photos are decoded and preprocessed once (exactly as the services do it: torchvision's
published transform for the classifier, the letterbox for the detector); then, for each
batch size, the network runs back to back on batches cycled from those tensors, under
``torch.inference_mode()``. With ``--processes N`` (each with ``--threads``), N copies run
the same sweep at the same time, in step (a barrier per batch size), and their images per
second add up: the most a server made of N single-model workers could reach. The memory
format is the weights' and inputs' layout (exact fp32 either way; the services default to
channels_last): the bench runs both, so the ceiling is the faster one. ``--fold-batchnorm``
folds each batch norm into its convolution as the services do by default (exact fp32 to
rounding). ``--compile`` adds
torch.compile (inductor, frozen weights, one static graph per batch size, built in the
unmeasured warm-up pass): exact fp32 too, and the bench runs it as well. ``--with-decoding``
puts the services' own input path in the loop: every batch is decoded from the photos' JPEG
bytes and preprocessed as a replica does it (draft decoding, crop resampling or letterbox),
then run; the most a server that decodes its own photos could reach with HTTP and its client
for free.

Prints (or writes to --out) JSON: per batch size images/s and the p50/p95/p99 of one batch's
model time; ``best`` is the batch size with the most images/s.
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from loadtest.photos import DEFAULT_PHOTOS_DIR, load_photos

DETECTOR_INPUT_SIZE = 416
MIN_ITERATIONS = 3


def build(task: str, weights_dir: Path, detector_model: str, photos_dir: Path):
    """(network, list of preprocessed Tensor[C, H, W]) for ``task``."""
    from PIL import Image, ImageOps

    images = [
        ImageOps.exif_transpose(Image.open(io.BytesIO(p.data))).convert("RGB")
        for p in load_photos(photos_dir)
    ]
    if task == "classify":
        from torchvision.models import ResNet18_Weights

        from services.classifier.model import build_network
        from services.core.state_dict import load_state_dict_file

        network = build_network("resnet18")
        load_state_dict_file(network, weights_dir / "resnet18.pth", "resnet18")
        transform = ResNet18_Weights.DEFAULT.transforms()
        tensors = [transform(image) for image in images]
    else:
        from services.detector.darknet.cfg import parse_cfg
        from services.detector.darknet.model import build_model
        from services.detector.darknet.weights import load_darknet_weights
        from services.detector.yolo import letterbox

        network = build_model(parse_cfg(weights_dir / f"{detector_model}.cfg"), DETECTOR_INPUT_SIZE)
        load_darknet_weights(network, weights_dir / f"{detector_model}.weights")
        tensors = [letterbox(image, DETECTOR_INPUT_SIZE)[0] for image in images]
    return network.eval(), tensors


def service_input_path(task: str, weights_dir: Path, detector_model: str) -> Callable:
    """``prepare(jpeg bytes) -> Tensor[C, H, W]``: decode and preprocess exactly as a replica
    with the default settings does (services.core.pipeline), without loading its network."""
    from services.core.pipeline import preprocess_decoded
    from services.kit.imaging import decode_photo

    env = {"WEIGHTS_DIR": str(weights_dir.resolve()), "DETECTOR_MODEL": detector_model}
    if task == "classify":
        from services.classifier.model import Classifier
        from services.classifier.settings import ClassifierSettings

        model = Classifier(ClassifierSettings.from_env(env))
    else:
        from services.detector.model import Detector
        from services.detector.settings import DetectorSettings

        model = Detector(DetectorSettings.from_env(env))
    serving = model.settings.serving
    needed = model.decode_size if serving.draft_decode else None

    def prepare(data: bytes):
        return preprocess_decoded(model, *decode_photo(data, serving.max_pixels, needed))[0]

    return prepare


def sweep(args: argparse.Namespace, barrier=None) -> list[dict]:
    import torch

    from services.core.torch_runtime import memory_format, place_network

    torch.set_num_threads(args.threads)
    network, tensors = build(args.task, args.weights_dir, args.detector_model, args.photos)
    layout = memory_format(args.memory_format == "channels_last")
    network = place_network(
        network,
        torch.device("cpu"),
        torch.float32,
        layout,
        compiled=args.compile,
        folded=args.fold_batchnorm,
    )
    if args.with_decoding:
        prepare = service_input_path(args.task, args.weights_dir, args.detector_model)
        encoded = [photo.data for photo in load_photos(args.photos)]

    def next_batch(batch_size: int, start: int):
        if not args.with_decoding:
            batch = torch.stack([tensors[i % len(tensors)] for i in range(batch_size)])
        else:  # another run of the photos each time: decoding costs differ between them
            batch = torch.stack(
                [prepare(encoded[(start + i) % len(encoded)]) for i in range(batch_size)]
            )
        return batch.contiguous(memory_format=layout)

    results = []
    with torch.inference_mode():
        for batch_size in args.batches:
            batch = next_batch(batch_size, 0)
            network(batch)  # warm-up: allocator, kernels (and the compiled graph) for this shape
            if barrier is not None:
                barrier.wait()
            latencies = []
            started = time.perf_counter()
            while time.perf_counter() - started < args.seconds or len(latencies) < MIN_ITERATIONS:
                tick = time.perf_counter()
                if args.with_decoding:
                    batch = next_batch(batch_size, len(latencies) * batch_size)
                network(batch)
                latencies.append((time.perf_counter() - tick) * 1000)
            elapsed = time.perf_counter() - started
            if barrier is not None:
                barrier.wait()
            ms = np.array(latencies)
            results.append(
                {
                    "batch": batch_size,
                    "images_per_s": batch_size * len(latencies) / elapsed,
                    "batch_p50_ms": float(np.percentile(ms, 50)),
                    "batch_p95_ms": float(np.percentile(ms, 95)),
                    "batch_p99_ms": float(np.percentile(ms, 99)),
                    "iterations": len(latencies),
                }
            )
            print(
                f"ceiling {args.task}: batch {batch_size:>3}: "
                f"{results[-1]['images_per_s']:.1f} images/s",
                file=sys.stderr,
                flush=True,
            )
    return results


def _child(args: argparse.Namespace, barrier, queue) -> None:
    queue.put(sweep(args, barrier))


def run(args: argparse.Namespace) -> dict:
    if args.processes == 1:
        per_batch = sweep(args)
    else:
        context = multiprocessing.get_context("spawn")
        barrier, queue = context.Barrier(args.processes), context.Queue()
        children = [
            context.Process(target=_child, args=(args, barrier, queue))
            for _ in range(args.processes)
        ]
        for child in children:
            child.start()
        copies = [queue.get() for _ in children]
        for child in children:
            child.join()
        per_batch = [
            {
                **rows[0],
                "images_per_s": sum(r["images_per_s"] for r in rows),
                "iterations": sum(r["iterations"] for r in rows),
            }
            for rows in zip(*copies, strict=True)
        ]
    best = max(per_batch, key=lambda row: row["images_per_s"])
    return {
        "task": args.task,
        "model": "resnet18" if args.task == "classify" else args.detector_model,
        "processes": args.processes,
        "threads": args.threads,
        "memory_format": args.memory_format,
        "compiled": args.compile,
        "folded_batchnorm": args.fold_batchnorm,
        "with_decoding": args.with_decoding,
        "per_batch": per_batch,
        "best": best,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=("classify", "detect"), default="classify")
    parser.add_argument("--weights-dir", type=Path, default=Path("weights"))
    parser.add_argument("--detector-model", default="yolov3")
    parser.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS_DIR)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--batches", default="1,2,4,8,16,32")
    parser.add_argument("--seconds", type=float, default=4.0, help="measured time per batch size")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--memory-format", choices=("contiguous", "channels_last"), default="channels_last"
    )
    parser.add_argument("--compile", action="store_true", help="torch.compile (inductor)")
    parser.add_argument(
        "--fold-batchnorm", action="store_true", help="batch norms folded into the convolutions"
    )
    parser.add_argument(
        "--with-decoding",
        action="store_true",
        help="decode and preprocess every batch from the JPEG bytes, as the services do",
    )
    args = parser.parse_args(argv)
    args.batches = [int(b) for b in args.batches.split(",") if b.strip()]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = run(args)
    text = json.dumps(result, indent=2) + "\n"
    if args.out:
        args.out.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
