"""The file parts of a multipart/form-data body, parsed in memory with python-multipart.

The model services read uploads with python-multipart (Starlette's parser) instead of
Flask's ``request.files``: werkzeug's parser compiles two regular expressions for every
request (each body has its own boundary, so Python's pattern cache never hits) and reads
the body in small steps through gunicorn's reader. Under gunicorn with the sample photos
that cost 1.3 ms of CPU per request, against 0.4 ms here, reading the body included
(docs/benchmarks.md). Pure: chunks of the body in, parts out, or an ApiError.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from services.kit.errors import ApiError, too_many_form_parts_error


@dataclass
class FilePart:
    """One part of the form that carries a file (its Content-Disposition has a filename)."""

    name: str
    filename: str
    chunks: list[bytes] = field(default_factory=list)

    @property
    def data(self) -> bytes:
        return b"".join(self.chunks)


@dataclass
class _PartBeingRead:
    headers: dict[bytes, bytes] = field(default_factory=dict)
    header_field: bytearray = field(default_factory=bytearray)
    header_value: bytearray = field(default_factory=bytearray)
    file: FilePart | None = None


def read_file_parts(body: Iterable[bytes], boundary: str, max_parts: int) -> list[FilePart]:
    """Every file part of the multipart ``body`` (an iterable of its chunks), in order.

    A form field without a filename is skipped, as ``request.files`` skips it. Raises
    ApiError 400 ``missing_image`` for a body that is not valid multipart (no boundary, a
    cut-off or garbled body), 413 ``too_many_form_parts`` past ``max_parts`` parts.
    """
    if not boundary:
        raise ApiError(
            400, "missing_image", "The multipart Content-Type has no boundary: no form to read."
        )
    files: list[FilePart] = []
    parts = 0
    current = _PartBeingRead()

    def on_part_begin() -> None:
        nonlocal current, parts
        parts += 1
        if parts > max_parts:
            raise too_many_form_parts_error(max_parts)
        current = _PartBeingRead()

    def on_header_field(data: bytes, start: int, end: int) -> None:
        current.header_field += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        current.header_value += data[start:end]

    def on_header_end() -> None:
        current.headers[bytes(current.header_field).lower()] = bytes(current.header_value)
        current.header_field.clear()
        current.header_value.clear()

    def on_headers_finished() -> None:
        _, options = parse_options_header(current.headers.get(b"content-disposition"))
        if b"filename" in options:
            name = options.get(b"name", b"").decode("utf-8", "replace")
            current.file = FilePart(name, options[b"filename"].decode("utf-8", "replace"))
            files.append(current.file)

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if current.file is not None:
            current.file.chunks.append(data[start:end])

    ended = False

    def on_end() -> None:
        nonlocal ended
        ended = True

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_end": on_end,
        },
    )
    try:
        for chunk in body:
            parser.write(chunk)
        parser.finalize()
    except FormParserError as error:
        raise _malformed(str(error)) from None
    if not ended:
        raise _malformed("the body ends before the closing boundary")
    return files


def _malformed(reason: str) -> ApiError:
    return ApiError(
        400,
        "missing_image",
        f"The multipart body could not be read ({reason}): send the photo in a form field "
        "named 'image'.",
    )
