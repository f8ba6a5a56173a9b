"""The served model paths against the network as loaded: speed and fidelity, both photo sets.

    python -m loadtest.bench.precision_fidelity --weights-dir weights [--photos DIR]
        [--detector-models yolov3-tiny,yolov3] [--seconds 3] [--no-publish]

The variants are the serving settings themselves: the default folded batch norms, ``*_BF16=1``
(where the CPU has AVX512-BF16 or AMX) and ``*_COMPILE=1`` (torch.compile), each loaded
through the model service's own ``load()`` beside the reference (channels_last fp32 eager,
``*_FOLD_BATCHNORM=0``: the network as loaded). For
the sample photos and the generated phone photos (loadtest/phone_photos.py), every photo is
preprocessed once and run through both. Reported: the classifier's probabilities (cosine
similarity, top-1 agreement, top-5 overlap, largest difference) and the detector's
detections (matched: same class, IoU >= 0.5; score difference of the matched), plus images/s
of each variant at batch 8 on the same tensors. Writes docs/precision.md and prints it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch

from loadtest.bench.agreement import DETECTION_PARAMS, MATCH_IOU, detector_agreement
from loadtest.bench.run_bench import describe_machine
from loadtest.phone_photos import make_phone_photos
from loadtest.photos import DEFAULT_PHOTOS_DIR
from services.classifier.model import Classifier
from services.classifier.settings import ClassifierSettings
from services.core.torch_runtime import cpu_flags
from services.detector.model import Detector
from services.detector.settings import DetectorSettings
from services.kit.imaging import decode_photo

REPO_ROOT = Path(__file__).resolve().parents[2]
DOC = REPO_ROOT / "docs" / "precision.md"
SPEED_BATCH = 8


# The reference: the network exactly as loaded (fp32 eager, channels_last, norms unfolded).
REFERENCE = {"FOLD_BATCHNORM": "0"}


def variants() -> dict[str, dict[str, str]]:
    """Variant name -> the settings that make it (bf16 only where the CPU runs it); every
    variant but the reference has the default folded norms."""
    found = {"folded": {}, "compile": {"COMPILE": "1"}}
    if cpu_flags() & {"avx512_bf16", "amx_bf16"}:
        found["bf16"] = {"BF16": "1"}
    return found


def load_model(kind: str, weights_dir: Path, detector_model: str, settings: dict[str, str]):
    prefix = "CLASSIFIER" if kind == "classifier" else "DETECTOR"
    env = {"WEIGHTS_DIR": str(weights_dir.resolve()), f"{prefix}_TORCH_THREADS": "2"}
    env.update({f"{prefix}_{name}": value for name, value in settings.items()})
    if kind == "classifier":
        model = Classifier(ClassifierSettings.from_env(env))
    else:
        env["DETECTOR_MODEL"] = detector_model
        model = Detector(DetectorSettings.from_env(env))
    model.load()
    return model


def images_per_s(model, tensors: list[torch.Tensor], seconds: float) -> float:
    batch = torch.stack([tensors[i % len(tensors)] for i in range(SPEED_BATCH)])
    with torch.inference_mode():
        model.forward(batch)  # warm-up (and, compiled, the graph for this shape)
        runs, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds or runs < 3:
            model.forward(batch)
            runs += 1
    return SPEED_BATCH * runs / (time.perf_counter() - started)


def classifier_agreement(reference: torch.Tensor, other: torch.Tensor) -> dict:
    cosine = torch.nn.functional.cosine_similarity(reference, other, dim=1)
    top5_ref, top5_other = reference.topk(5, dim=1).indices, other.topk(5, dim=1).indices
    overlap = [
        len(set(a.tolist()) & set(b.tolist())) / 5
        for a, b in zip(top5_ref, top5_other, strict=True)
    ]
    return {
        "cosine_min": float(cosine.min()),
        "top1_agreement": float((reference.argmax(1) == other.argmax(1)).float().mean()),
        "top5_overlap": float(np.mean(overlap)),
        "prob_max_abs": float((reference - other).abs().max()),
    }


def photo_set(paths: list[Path], model, max_pixels: int) -> tuple[list[torch.Tensor], list]:
    tensors, metas = [], []
    for path in paths:
        image, _size = decode_photo(path.read_bytes(), max_pixels, None)
        tensor, meta = model.preprocess(image)
        tensors.append(tensor)
        metas.append(meta)
    return tensors, metas


def outputs(model, tensors: list[torch.Tensor], metas: list, kind: str):
    with torch.inference_mode():
        rows = [model.forward(t.unsqueeze(0))[0] for t in tensors]
    if kind == "classifier":
        return torch.stack(rows)
    return [
        model.postprocess(r, m, DETECTION_PARAMS)["detections"]
        for r, m in zip(rows, metas, strict=True)
    ]


def measure(
    kind: str, name: str, build: Callable, sets: dict[str, list[Path]], seconds: float
) -> list[dict]:
    reference = build(REFERENCE)
    rows = []
    for variant, settings in variants().items():
        started = time.perf_counter()
        other = build(settings)
        load_s = time.perf_counter() - started
        for set_name, paths in sets.items():
            tensors, metas = photo_set(paths, reference, reference.settings.serving.max_pixels)
            ref_out = outputs(reference, tensors, metas, kind)
            started = time.perf_counter()
            other_out = outputs(other, tensors, metas, kind)
            first_s = time.perf_counter() - started  # a compiled network builds graphs here
            compare = classifier_agreement if kind == "classifier" else detector_agreement
            rows.append(
                {
                    "model": name,
                    "variant": variant,
                    "photo_set": set_name,
                    "photos": len(paths),
                    "reference_images_per_s": images_per_s(reference, tensors, seconds),
                    "variant_images_per_s": images_per_s(other, tensors, seconds),
                    "load_s": load_s,
                    "first_pass_s": first_s,
                    **compare(ref_out, other_out),
                }
            )
            print(rows[-1], flush=True)
    return rows


def render_doc(machine: dict, trained: dict[str, bool], rows: list[dict]) -> str:
    weights = ", ".join(
        f"{name}: {'trained' if ok else '**untrained stand-in**'}" for name, ok in trained.items()
    )
    lines = [
        "# Folded norms, compilation and reduced precision: speed and fidelity",
        "",
        "<!-- Generated by `python -m loadtest.bench.precision_fidelity`: do not edit. -->",
        "",
        f"{machine['cpu']} ({machine['cpus']} CPUs; {machine['cpu_flags']}), torch "
        f"{machine['torch']}. Weights: {weights} (stand-ins make the outputs a random "
        "network's, so agreement is of two numerical paths, not of accuracy). Reference: the "
        "network as loaded (channels_last, fp32, eager, `*_FOLD_BATCHNORM=0`), 2 torch threads; "
        "`folded` is the default path (batch norms folded into the convolutions), `compile` "
        "and `bf16` add their setting to it. Speed: images/s at batch "
        f"{SPEED_BATCH} on the set's preprocessed tensors. Detections at confidence >= "
        f"{DETECTION_PARAMS['conf_threshold']}, matched by class and IoU >= {MATCH_IOU}.",
        "",
        "## Classifier",
        "",
        "| model | variant | photo set | images/s reference / variant | speed-up "
        "| min cosine | top-1 agreement | top-5 overlap | max prob diff |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in (r for r in rows if "cosine_min" in r):
        lines.append(
            f"| {r['model']} | {r['variant']} | {r['photo_set']} | "
            f"{r['reference_images_per_s']:.1f} / {r['variant_images_per_s']:.1f} | "
            f"{r['variant_images_per_s'] / r['reference_images_per_s']:.2f}x | "
            f"{r['cosine_min']:.6f} | {r['top1_agreement']:.0%} | {r['top5_overlap']:.0%} | "
            f"{r['prob_max_abs']:.2e} |"
        )
    lines += [
        "",
        "## Detector",
        "",
        "| model | variant | photo set | images/s reference / variant | speed-up "
        "| detections (reference) | matched | extra in variant | max score diff |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in (r for r in rows if "matched" in r):
        lines.append(
            f"| {r['model']} | {r['variant']} | {r['photo_set']} | "
            f"{r['reference_images_per_s']:.1f} / {r['variant_images_per_s']:.1f} | "
            f"{r['variant_images_per_s'] / r['reference_images_per_s']:.2f}x | "
            f"{r['detections']} | {r['matched']:.0%} | {r['extra']} | {r['score_max_abs']:.4f} |"
        )
    compiled = [r for r in rows if r["variant"] == "compile"]
    if compiled:
        lines += [
            "",
            "Compile cost, paid once per replica before it reports ready (model load + the "
            "first pass over a set; batch 1 here, the warm-up also builds the graphs for 2, 4 "
            "and 8): "
            + "; ".join(
                f"{r['model']} {r['load_s'] + r['first_pass_s']:.0f} s"
                for r in compiled
                if r["photo_set"] == compiled[0]["photo_set"]
            )
            + ".",
        ]
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def private_inductor_cache(path: Path) -> Iterator[None]:
    """Inductor's cache private to this run: compile time is measured, not a cache hit."""
    before = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(path)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("TORCHINDUCTOR_CACHE_DIR", None)
        else:
            os.environ["TORCHINDUCTOR_CACHE_DIR"] = before


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights-dir", type=Path, default=REPO_ROOT / "weights")
    parser.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS_DIR)
    parser.add_argument("--detector-models", default="yolov3-tiny,yolov3")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--no-publish", action="store_true")
    args = parser.parse_args(argv)
    samples = sorted(p for p in args.photos.iterdir() if p.suffix.lower() in (".jpg", ".jpeg"))
    rows, trained = [], {}
    with tempfile.TemporaryDirectory() as work:
        sets = {
            "sample": samples,
            "phone (12 MP)": make_phone_photos(Path(work) / "phone", args.photos),
        }
        with private_inductor_cache(Path(work) / "inductor"):
            jobs = [("classifier", "resnet18", "")] + [
                ("detector", m, m) for m in args.detector_models.split(",") if m
            ]
            for kind, name, detector_model in jobs:

                def build(settings, kind=kind, detector_model=detector_model):
                    return load_model(kind, args.weights_dir, detector_model, settings)

                trained[name] = build(REFERENCE).weights.trained
                rows += measure(kind, name, build, sets, args.seconds)
    text = render_doc(describe_machine(), trained, rows)
    print(text)
    if not args.no_publish:
        DOC.write_text(text)
        print(f"wrote {DOC.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
