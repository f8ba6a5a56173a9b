"""Write a multipart/form-data body file for ApacheBench (``ab -p FILE -T TYPE``).

    python -m loadtest.ab_body --photo ../shared/data/images/dog.jpg --out results/ab/body.multipart

Writes the body (one ``image`` field holding the photo, CRLF line ends as RFC 7578 wants)
and, beside it, ``<out>.content-type`` with the matching ``multipart/form-data; boundary=...``
value for ``-T``. ``make ab-body`` and ``make ab`` use it; see docs/loadtest.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from loadtest.photos import DEFAULT_PHOTOS_DIR, PhotosError, read_photo

BOUNDARY = "vision-loadtest-7f3c2a9e41d84b6b"


def multipart_body(field: str, filename: str, mimetype: str, data: bytes, boundary: str) -> bytes:
    if boundary.encode() in data:
        raise ValueError("the boundary occurs inside the file; choose another")
    head = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
        f"Content-Type: {mimetype}\r\n\r\n"
    ).encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode()


def content_type(boundary: str = BOUNDARY) -> str:
    return f"multipart/form-data; boundary={boundary}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photo", type=Path, default=DEFAULT_PHOTOS_DIR / "dog.jpg")
    parser.add_argument("--out", type=Path, default=Path("results/ab/body.multipart"))
    parser.add_argument("--field", default="image")
    args = parser.parse_args(argv)
    try:
        photo = read_photo(args.photo)
    except (PhotosError, OSError) as error:
        print(f"ab_body: {error}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(
        multipart_body(args.field, photo.name, photo.mimetype, photo.data, BOUNDARY)
    )
    type_file = args.out.with_name(args.out.name + ".content-type")
    type_file.write_text(content_type() + "\n")
    print(f"ab_body: {args.out} ({args.out.stat().st_size} bytes, {photo.name})")
    print(f"ab_body: -T '{content_type()}' (also in {type_file})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
