"""A phone-photo set made from the sample photos: deterministic, generated, never committed.

Each sample photo becomes a 12-megapixel JPEG (4032x3024, or 3024x4032 for a portrait) with
camera-like grain, at quality 92; every other one is stored as phones store a portrait held
sideways: the pixels turned a quarter and EXIF orientation 6, so it is upright only once the
orientation is applied. Same inputs, same seed: the same bytes.

    python -m loadtest.phone_photos --out results/phone-photos [--photos DIR]
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from loadtest.photos import DEFAULT_PHOTOS_DIR

PHONE_SIZE = (4032, 3024)
QUALITY = 92
GRAIN_SIGMA = 4.0  # grey levels of sensor-like noise
ORIENTATION_TAG = 0x0112
SIDEWAYS = 6  # "rotate 90 CW to view": the pixels are stored turned a quarter clockwise back


def phone_photo(source: Image.Image, seed: int, sideways: bool) -> bytes:
    """One phone-size JPEG from ``source`` (any size), upright once EXIF is applied."""
    upright = ImageOps.exif_transpose(source).convert("RGB")
    size = PHONE_SIZE if upright.width >= upright.height else PHONE_SIZE[::-1]
    big = ImageOps.fit(upright, size, Image.Resampling.BICUBIC)
    noise = np.random.default_rng(seed).normal(0.0, GRAIN_SIGMA, (size[1], size[0], 1))
    grainy = np.clip(np.asarray(big, dtype=np.float32) + noise, 0, 255).astype(np.uint8)
    picture = Image.fromarray(grainy, "RGB")
    exif = Image.Exif()
    if sideways:
        # Stored turned so that EXIF orientation 6 (turn 90 degrees clockwise) makes it upright.
        picture = picture.transpose(Image.Transpose.ROTATE_90)
        exif[ORIENTATION_TAG] = SIDEWAYS
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=QUALITY, exif=exif.tobytes())
    return buffer.getvalue()


def make_phone_photos(out: Path, photos_dir: Path = DEFAULT_PHOTOS_DIR) -> list[Path]:
    """Write one phone photo per sample photo into ``out``; returns the paths, by name."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    sources = sorted(p for p in photos_dir.iterdir() if p.is_file())
    for index, path in enumerate(sources):
        try:
            with Image.open(path) as source:
                data = phone_photo(source, seed=index, sideways=index % 2 == 1)
        except OSError:
            continue  # not an image
        target = out / f"phone-{path.stem}.jpg"
        target.write_bytes(data)
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("results/phone-photos"))
    parser.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS_DIR)
    args = parser.parse_args(argv)
    for path in make_phone_photos(args.out, args.photos):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
