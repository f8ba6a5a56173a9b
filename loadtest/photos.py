"""The photos a load test posts: bytes as on disk, plus the size a service must report.

Services apply the EXIF orientation before anything else, so the width and height they
report are those of the upright image; that is what :class:`Photo` records.
"""

from __future__ import annotations

import io
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from services.kit.imaging import FORMAT_MIMETYPES

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PHOTOS_DIR = REPO_ROOT.parent / "shared" / "data" / "images"


class PhotosError(ValueError):
    """The photo folder is missing or holds no readable photo."""


@dataclass(frozen=True)
class Photo:
    name: str
    data: bytes
    mimetype: str
    width: int  # after EXIF orientation, as the services report it
    height: int

    def multipart(self, field: str = "image") -> dict[str, tuple[str, bytes, str]]:
        """The ``files=`` argument of requests for a multipart upload of this photo."""
        return {field: (self.name, self.data, self.mimetype)}


def read_photo(path: Path) -> Photo:
    """Read one photo; raises PhotosError when Pillow cannot identify it as an image."""
    data = path.read_bytes()
    try:
        with Image.open(io.BytesIO(data)) as image:
            mimetype = FORMAT_MIMETYPES.get(image.format or "")
            upright = ImageOps.exif_transpose(image)
            width, height = upright.size
    except (UnidentifiedImageError, OSError) as error:
        raise PhotosError(f"{path}: not a readable image ({error})") from None
    if mimetype is None:
        raise PhotosError(f"{path}: image format not accepted by the services")
    return Photo(path.name, data, mimetype, width, height)


def load_photos(folder: Path | str | None = None) -> list[Photo]:
    """Every readable photo directly in ``folder`` (default: ../shared/data/images), by name.

    Files that are not images are skipped; a folder without any photo is an error.
    """
    folder = Path(folder) if folder else DEFAULT_PHOTOS_DIR
    if not folder.is_dir():
        raise PhotosError(f"photo folder {folder} does not exist")
    photos = []
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        try:
            photos.append(read_photo(path))
        except PhotosError:
            continue
    if not photos:
        raise PhotosError(f"no readable photo in {folder}")
    return photos


def photo_sequence(photos: Sequence[Photo], count: int, seed: int) -> list[Photo]:
    """A reproducible random mix of ``count`` photos (every contender gets the same one)."""
    chooser = random.Random(seed)
    return [chooser.choice(photos) for _ in range(count)]
