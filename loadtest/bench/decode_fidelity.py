"""The models' fast input paths against the full ones: time, input tensors, outputs.

    python -m loadtest.bench.decode_fidelity --weights-dir weights [--photos DIR]

For the sample photos and the generated phone-photo set (loadtest/phone_photos.py), every
photo goes through each model's request path twice. The classifier: the full path
(``*_DRAFT_DECODE=0``: full decode, torchvision's published transform) and the default one
(draft decode at the smallest DCT scale holding the transform's resize size, then only the
centre crop resampled: services/classifier/crop_resize.py). The detector (yolov3): full
decode against the default draft decode at the smallest DCT scale still covering the
letterbox, boxes mapped back to the photo's pixels (a request that renders always decodes in
full). Reported per set: decode + preprocess time (median), the input tensors' difference,
and the outputs' (classifier: cosine similarity of the probability vectors, top-1 and top-5
agreement, largest probability difference; detector: detections matched by class and IoU,
score and corner differences of the matched). Writes docs/decode.md (generated), prints it.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

from loadtest.bench.agreement import DETECTION_PARAMS, MATCH_IOU, detector_agreement
from loadtest.bench.run_bench import describe_machine
from loadtest.phone_photos import make_phone_photos
from loadtest.photos import DEFAULT_PHOTOS_DIR
from services.classifier.crop_resize import classification_input
from services.classifier.model import Classifier
from services.classifier.settings import ClassifierSettings
from services.core.pipeline import preprocess_decoded
from services.detector.model import Detector
from services.detector.settings import DetectorSettings
from services.kit.imaging import decode_photo

REPO_ROOT = Path(__file__).resolve().parents[2]
DOC = REPO_ROOT / "docs" / "decode.md"
REPEATS = 3
T = TypeVar("T")


def best_time(run: Callable[[], T]) -> tuple[T, float]:
    """``run()``'s result and its best time of REPEATS, in milliseconds."""
    best = float("inf")
    for _ in range(REPEATS):
        started = time.perf_counter()
        result = run()
        best = min(best, (time.perf_counter() - started) * 1000)
    return result, best


def timed_path(classifier: Classifier, data: bytes, max_pixels: int, fast: bool):
    """(input tensor, best of REPEATS decode + preprocess milliseconds) of one path."""
    needed = classifier.decode_size if fast else None

    def run() -> torch.Tensor:
        image, _size = decode_photo(data, max_pixels, needed)
        if fast:
            return classification_input(image, classifier.transform)
        return classifier.transform(image)

    return best_time(run)


def compare_set(classifier: Classifier, paths: list[Path], max_pixels: int) -> dict:
    rows = []
    for path in paths:
        data = path.read_bytes()
        full, full_ms = timed_path(classifier, data, max_pixels, fast=False)
        draft, draft_ms = timed_path(classifier, data, max_pixels, fast=True)
        # The crop resampling on its own: both from the full decode.
        cropped = classification_input(decode_photo(data, max_pixels)[0], classifier.transform)
        with torch.inference_mode():
            probs = classifier.forward(torch.stack([full, draft, cropped]))
        p_full, p_draft, p_cropped = probs[0], probs[1], probs[2]
        top5_full = set(p_full.topk(5).indices.tolist())
        top5_draft = set(p_draft.topk(5).indices.tolist())
        rows.append(
            {
                "photo": path.name,
                "full_ms": full_ms,
                "draft_ms": draft_ms,
                "tensor_max_abs": float((full - draft).abs().max()),
                "tensor_mean_abs": float((full - draft).abs().mean()),
                "cosine": float(torch.nn.functional.cosine_similarity(p_full, p_draft, dim=0)),
                "top1_same": int(p_full.argmax() == p_draft.argmax()),
                "top5_overlap": len(top5_full & top5_draft) / 5,
                "prob_max_abs": float((p_full - p_draft).abs().max()),
                "crop_values_changed": float((full != cropped).float().mean()),
                "crop_tensor_max_abs": float((full - cropped).abs().max()),
                "crop_cosine": float(
                    torch.nn.functional.cosine_similarity(p_full, p_cropped, dim=0)
                ),
                "crop_top1_same": int(p_full.argmax() == p_cropped.argmax()),
            }
        )
    return {
        "photos": len(rows),
        "full_ms": float(np.median([r["full_ms"] for r in rows])),
        "draft_ms": float(np.median([r["draft_ms"] for r in rows])),
        "tensor_max_abs": max(r["tensor_max_abs"] for r in rows),
        "tensor_mean_abs": float(np.mean([r["tensor_mean_abs"] for r in rows])),
        "cosine_min": min(r["cosine"] for r in rows),
        "top1_agreement": float(np.mean([r["top1_same"] for r in rows])),
        "top5_overlap": float(np.mean([r["top5_overlap"] for r in rows])),
        "prob_max_abs": max(r["prob_max_abs"] for r in rows),
        "crop_values_changed": max(r["crop_values_changed"] for r in rows),
        "crop_tensor_max_abs": max(r["crop_tensor_max_abs"] for r in rows),
        "crop_cosine_min": min(r["crop_cosine"] for r in rows),
        "crop_top1_agreement": float(np.mean([r["crop_top1_same"] for r in rows])),
        "rows": rows,
    }


def detector_path(detector: Detector, data: bytes, max_pixels: int, fast: bool):
    """(input tensor, meta, best of REPEATS decode + preprocess ms) as the request path runs."""
    needed = detector.decode_size if fast else None

    def run():
        return preprocess_decoded(detector, *decode_photo(data, max_pixels, needed))

    (tensor, meta), best = best_time(run)
    return tensor, meta, best


def compare_detector_set(detector: Detector, paths: list[Path], max_pixels: int) -> dict:
    """The two paths' detections, and a noise floor: the full path against itself with
    uniform noise of half an 8-bit step added to its input (an untrained network's
    detections near the threshold flip under that alone)."""
    noise = torch.Generator().manual_seed(0)
    full_ms, draft_ms, tensor_diffs, reduced = [], [], [], 0
    found: dict[str, list[list[dict]]] = {"full": [], "draft": [], "noisy": []}
    for path in paths:
        data = path.read_bytes()
        full, full_meta, ms = detector_path(detector, data, max_pixels, fast=False)
        full_ms.append(ms)
        draft, draft_meta, ms = detector_path(detector, data, max_pixels, fast=True)
        draft_ms.append(ms)
        reduced += draft_meta.image.size != full_meta.image.size
        tensor_diffs.append((full - draft).abs())
        noisy = (full + (torch.rand(full.shape, generator=noise) - 0.5) / 255).clamp(0, 1)
        with torch.inference_mode():
            rows = detector.forward(torch.stack([full, draft, noisy]))
        for name, row, meta in zip(found, rows, (full_meta, draft_meta, full_meta), strict=True):
            found[name].append(detector.postprocess(row, meta, DETECTION_PARAMS)["detections"])
    return {
        "photos": len(paths),
        "reduced": reduced,
        "full_ms": float(np.median(full_ms)),
        "draft_ms": float(np.median(draft_ms)),
        "tensor_max_abs": float(max(d.max() for d in tensor_diffs)),
        "tensor_mean_abs": float(np.mean([float(d.mean()) for d in tensor_diffs])),
        **detector_agreement(found["full"], found["draft"]),
        "noise_floor_matched": detector_agreement(found["full"], found["noisy"])["matched"],
    }


def render_detector_doc(trained: bool, sets: dict[str, dict]) -> list[str]:
    weights = "trained weights" if trained else "**stand-in weights** (untrained)"
    lines = [
        "",
        "## The detector",
        "",
        f"yolov3 at 416 with {weights}. The full path (`DETECTOR_DRAFT_DECODE=0`, and every "
        "request that renders) decodes in full; the default path for JSON answers decodes at "
        "the smallest DCT scale whose longer side still covers the 416-pixel letterbox and "
        "maps the boxes back to the photo's pixels. Detections at confidence >= "
        f"{DETECTION_PARAMS['conf_threshold']} (low, so stand-in weights leave some), matched "
        f"one-to-one by class and IoU >= {MATCH_IOU}; tensor differences in [0, 1] pixel units.",
        "",
        "| photo set | photos | decoded smaller | full path ms | default path ms | speed-up "
        "| tensor max / mean abs diff | detections (full path) | matched | extra "
        "| max score diff | max corner diff (px) | matched, noise floor |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, result in sets.items():
        lines.append(
            f"| {name} | {result['photos']} | {result['reduced']} | {result['full_ms']:.1f} | "
            f"{result['draft_ms']:.1f} | {result['full_ms'] / result['draft_ms']:.1f}x | "
            f"{result['tensor_max_abs']:.3f} / {result['tensor_mean_abs']:.4f} | "
            f"{result['detections']} | "
            f"{result['matched']:.0%} | {result['extra']} | {result['score_max_abs']:.3f} | "
            f"{result['corner_max_abs_px']:.1f} | {result['noise_floor_matched']:.0%} |"
        )
    lines += [
        "",
        "A photo whose longer side is under twice 416 pixels has no smaller DCT scale that "
        "covers the letterbox: both paths decode it in full (the photos not decoded smaller).",
        "",
        "The noise floor is the full path against itself with uniform noise of half an 8-bit "
        "step added to the input. "
        + (
            "With these trained weights it is the agreement any re-encoding of the photo "
            "could expect."
            if trained
            else "Far below 100 %, it shows what the matching says with stand-in weights: "
            "an untrained network's detections near the threshold flip under input noise "
            "smaller than the draft path's difference, so its matched share says nothing "
            "about the path; the tensor columns do. Rerun with the official weights "
            "(`make weights` online) for a meaningful detection agreement."
        ),
    ]
    return lines


def render_doc(
    machine: dict, trained: bool, sets: dict[str, dict], detector: tuple[bool, dict[str, dict]]
) -> str:
    weights = (
        "trained weights"
        if trained
        else "**stand-in weights** (untrained: outputs differ as a random network's would)"
    )
    lines = [
        "# The input paths: draft decoding and crop resampling, speed and fidelity",
        "",
        "<!-- Generated by `python -m loadtest.bench.decode_fidelity`: do not edit. -->",
        "",
        f"{machine['cpu']} ({machine['cpus']} CPUs; {machine['cpu_flags']}), "
        f"torch {machine['torch']}. Decode + preprocess per photo, best of "
        f"{REPEATS}, median over the set.",
        "",
        "## The classifier",
        "",
        f"ResNet18 with {weights}. The full path (`CLASSIFIER_DRAFT_DECODE=0`) decodes in "
        "full and runs torchvision's published transform; the default path decodes at the "
        "smallest DCT scale holding the 256-pixel resize and resamples only the centre crop "
        "(`services/classifier/crop_resize.py`). Tensor differences are in the normalised "
        "input's units (ImageNet mean/std; one 8-bit step is up to 0.0175).",
        "",
        "| photo set | photos | full path ms | default path ms | speed-up "
        "| tensor max / mean abs diff | min cosine (probabilities) | top-1 agreement "
        "| top-5 overlap | max prob diff |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, result in sets.items():
        lines.append(
            f"| {name} | {result['photos']} | {result['full_ms']:.1f} | {result['draft_ms']:.1f} | "
            f"{result['full_ms'] / result['draft_ms']:.1f}x | {result['tensor_max_abs']:.3f} / "
            f"{result['tensor_mean_abs']:.4f} | {result['cosine_min']:.5f} | "
            f"{result['top1_agreement']:.0%} | {result['top5_overlap']:.0%} | "
            f"{result['prob_max_abs']:.4f} |"
        )
    lines += [
        "",
        "The crop resampling on its own (both from the full decode): Pillow derives its "
        "fixed-point filter weights from the crop's box instead of the whole image, so a few "
        "values land one 8-bit step away from the preset's.",
        "",
        "| photo set | input values changed (worst photo) | tensor max abs diff "
        "| min cosine (probabilities) | top-1 agreement |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, result in sets.items():
        lines.append(
            f"| {name} | {result['crop_values_changed']:.2%} | "
            f"{result['crop_tensor_max_abs']:.4f} | {result['crop_cosine_min']:.6f} | "
            f"{result['crop_top1_agreement']:.0%} |"
        )
    lines += render_detector_doc(*detector)
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights-dir", type=Path, default=REPO_ROOT / "weights")
    parser.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS_DIR)
    parser.add_argument("--no-publish", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    settings = ClassifierSettings.from_env(
        {"WEIGHTS_DIR": str(args.weights_dir.resolve()), "CLASSIFIER_TORCH_THREADS": "1"}
    )
    classifier = Classifier(settings)
    classifier.load()
    detector = Detector(
        DetectorSettings.from_env(
            {"WEIGHTS_DIR": str(args.weights_dir.resolve()), "DETECTOR_TORCH_THREADS": "1"}
        )
    )
    detector.load()
    samples = sorted(p for p in args.photos.iterdir() if p.suffix.lower() in (".jpg", ".jpeg"))
    with tempfile.TemporaryDirectory() as work:
        phones = make_phone_photos(Path(work), args.photos)
        named = {
            "sample photos (JPEG)": samples,
            "phone photos (12 MP, q92, half EXIF 6)": phones,
        }
        max_pixels = settings.serving.max_pixels
        sets = {name: compare_set(classifier, paths, max_pixels) for name, paths in named.items()}
        detector_sets = {
            name: compare_detector_set(detector, paths, max_pixels) for name, paths in named.items()
        }
    text = render_doc(
        describe_machine(),
        classifier.weights.trained,
        sets,
        (detector.weights.trained, detector_sets),
    )
    print(text)
    if not args.no_publish:
        DOC.write_text(text)
        print(f"wrote {DOC.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
