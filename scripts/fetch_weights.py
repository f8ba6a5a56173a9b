"""Put every model file the stack needs into one weights directory.

    python -m scripts.fetch_weights --dest weights [--allow-standin] [--darknet-dir DIR]

For each file: keep it when it is already there and valid; else download it from its
official URL and check the pinned sha256; else (offline) copy cfg/names from
``--darknet-dir`` when their checksums match; else, only with ``--allow-standin``, write a
randomly initialised stand-in in the real format and say so loudly. Without it, a missing
file is an error: services never run on random weights silently.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from services.kit.weights import WeightsError, download, inspect_weights, sha256_file

BANNER = "!" * 78


def say(message: str) -> None:
    print(f"fetch_weights: {message}", flush=True)


def warn_standin(path: Path) -> None:
    say(
        f"\n{BANNER}\n  NO NETWORK: wrote UNTRAINED STAND-IN weights {path}\n"
        "  Predictions will be meaningless; every API response and the web page say so.\n"
        f"{BANNER}"
    )


def ensure_file(
    path: Path,
    url: str | None,
    sha256: str | None,
    allow_standin: bool,
    write_standin: Callable[[Path], None] | None = None,
    local_copy: Path | None = None,
    timeout: float = 30.0,
) -> str:
    """Make ``path`` exist; returns how: 'present', 'downloaded', 'copied' or 'stand-in'."""
    if path.is_file() and _acceptable(path, sha256):
        return "present"
    errors = []
    if url:
        try:
            download(url, path, sha256, timeout=timeout)
            return "downloaded"
        except (OSError, WeightsError) as error:
            errors.append(f"download {url}: {error}")
    if local_copy is not None and local_copy.is_file():
        if sha256 is None or sha256_file(local_copy) == sha256:
            path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(local_copy, path)
            return "copied"
        errors.append(f"{local_copy}: checksum differs from the pinned sha256")
    if write_standin is not None and allow_standin:
        write_standin(path)
        warn_standin(path)
        return "stand-in"
    hint = " (or pass --allow-standin to generate untrained stand-ins)" if write_standin else ""
    raise WeightsError(f"cannot get {path.name}: {'; '.join(errors) or 'no source'}{hint}")


def _acceptable(path: Path, sha256: str | None) -> bool:
    """An existing file is kept if it is the pinned file or a marked stand-in."""
    info = inspect_weights(path, {sha256: ""} if sha256 else {})
    return sha256 is None or info.source in {"official", "stand-in"}


def fetch_classifier(dest: Path, arch: str, allow_standin: bool, timeout: float) -> str:
    from services.classifier.official import official_weights
    from services.classifier.standin import write_standin_state_dict

    url, sha256 = official_weights(arch)
    return ensure_file(
        dest / f"{arch}.pth",
        url,
        sha256,
        allow_standin,
        write_standin=lambda path: write_standin_state_dict(arch, path),
        timeout=timeout,
    )


def fetch_detector(
    dest: Path, model: str, allow_standin: bool, darknet_dir: Path | None, timeout: float
) -> dict[str, str]:
    from services.detector.darknet.standin import write_standin_weights
    from services.detector.official import OFFICIAL_FILES

    results = {}
    for name in (f"{model}.cfg", "coco.names"):
        official = OFFICIAL_FILES[name]
        results[name] = ensure_file(
            dest / name,
            official.url,
            official.sha256,
            allow_standin=False,
            local_copy=darknet_dir / name if darknet_dir else None,
            timeout=timeout,
        )
    official = OFFICIAL_FILES[f"{model}.weights"]
    cfg_path = dest / f"{model}.cfg"
    results[f"{model}.weights"] = ensure_file(
        dest / f"{model}.weights",
        official.url,
        official.sha256,
        allow_standin,
        write_standin=lambda path: write_standin_weights(cfg_path, path, seed=0),  # + marker
        timeout=timeout,
    )
    return results


def main(argv: list[str] | None = None) -> int:
    # Defaults come from the environment too, so the compose `weights` service is configured
    # like every other service.
    env = os.environ
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dest", type=Path, required=True, help="weights directory")
    parser.add_argument(
        "--allow-standin",
        action="store_true",
        default=env.get("ALLOW_STANDIN_WEIGHTS", "0").lower() in {"1", "true"},
        help="write untrained stand-ins when the official files are unreachable "
        "(env ALLOW_STANDIN_WEIGHTS=1)",
    )
    parser.add_argument(
        "--darknet-dir",
        type=Path,
        default=env.get("DARKNET_DIR") or None,
        help="local copies of the official darknet cfg/names files (env DARKNET_DIR)",
    )
    parser.add_argument("--classifier-arch", default=env.get("CLASSIFIER_ARCH", "resnet18"))
    parser.add_argument(
        "--detector-models",
        default=env.get("DETECTOR_MODELS", "yolov3,yolov3-tiny"),
        help="comma-separated darknet models (yolov3, yolov3-tiny); env DETECTOR_MODELS",
    )
    parser.add_argument("--only", choices=("classifier", "detector"), default=None)
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per download")
    args = parser.parse_args(argv)
    try:
        if args.only in (None, "classifier"):
            how = fetch_classifier(
                args.dest, args.classifier_arch, args.allow_standin, args.timeout
            )
            say(f"{args.classifier_arch}.pth: {how}")
        if args.only in (None, "detector"):
            for model in filter(None, args.detector_models.split(",")):
                for name, how in fetch_detector(
                    args.dest, model.strip(), args.allow_standin, args.darknet_dir, args.timeout
                ).items():
                    say(f"{name}: {how}")
    except WeightsError as error:
        say(f"error: {error}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
