"""Photo loading (EXIF-upright sizes) and the multipart body file for ab."""

from __future__ import annotations

import io

import pytest
from PIL import Image
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from loadtest.ab_body import BOUNDARY, content_type, main, multipart_body
from loadtest.photos import PhotosError, load_photos, photo_sequence


def jpeg(width: int, height: int, orientation: int | None = None) -> bytes:
    buffer = io.BytesIO()
    exif = Image.Exif()
    if orientation:
        exif[0x0112] = orientation
    Image.new("RGB", (width, height), (200, 10, 10)).save(buffer, "JPEG", exif=exif)
    return buffer.getvalue()


def test_sizes_are_upright_and_non_images_are_skipped(tmp_path):
    (tmp_path / "plain.jpg").write_bytes(jpeg(40, 20))
    (tmp_path / "rotated.jpg").write_bytes(jpeg(40, 20, orientation=6))  # 90 degrees
    (tmp_path / "notes.txt").write_text("not a photo")
    photos = {p.name: p for p in load_photos(tmp_path)}
    assert set(photos) == {"plain.jpg", "rotated.jpg"}
    assert (photos["plain.jpg"].width, photos["plain.jpg"].height) == (40, 20)
    assert (photos["rotated.jpg"].width, photos["rotated.jpg"].height) == (20, 40)
    assert photos["plain.jpg"].mimetype == "image/jpeg"


def test_a_folder_without_photos_is_an_error(tmp_path):
    with pytest.raises(PhotosError, match="no readable photo"):
        load_photos(tmp_path)
    with pytest.raises(PhotosError, match="does not exist"):
        load_photos(tmp_path / "missing")


def test_the_photo_mix_is_reproducible(tmp_path):
    for name in "abc":
        (tmp_path / f"{name}.jpg").write_bytes(jpeg(8, 8))
    photos = load_photos(tmp_path)
    first = [p.name for p in photo_sequence(photos, 50, seed=3)]
    assert first == [p.name for p in photo_sequence(photos, 50, seed=3)]
    assert set(first) == {"a.jpg", "b.jpg", "c.jpg"}


def test_the_ab_body_is_a_multipart_upload_a_server_can_read(tmp_path):
    photo_path = tmp_path / "p.jpg"
    photo_path.write_bytes(jpeg(16, 8))
    out = tmp_path / "ab" / "body.multipart"
    assert main(["--photo", str(photo_path), "--out", str(out)]) == 0
    assert (out.parent / "body.multipart.content-type").read_text().strip() == content_type()
    environ = EnvironBuilder(
        method="POST", data=out.read_bytes(), content_type=content_type()
    ).get_environ()
    upload = Request(environ).files["image"]
    assert upload.filename == "p.jpg" and upload.mimetype == "image/jpeg"
    assert upload.read() == photo_path.read_bytes()


def test_the_boundary_must_not_occur_in_the_file():
    with pytest.raises(ValueError):
        multipart_body("image", "x.jpg", "image/jpeg", f"..{BOUNDARY}..".encode(), BOUNDARY)
