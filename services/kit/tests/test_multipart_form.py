"""The model services' multipart reader: the parts werkzeug's parser finds, from any chunking."""

from __future__ import annotations

import io

import pytest
import requests
from werkzeug.formparser import parse_form_data

from services.kit.errors import ApiError
from services.kit.multipart_form import read_file_parts

PHOTO = bytes(range(256)) * 40 + b"\r\n--not the boundary\r\n" + bytes(range(255, -1, -1)) * 40


def encoded_form(fields: list[tuple[str, object]]) -> tuple[bytes, str]:
    """A multipart body as a real client (requests) encodes it, and its boundary."""
    prepared = requests.Request("POST", "http://x/", files=fields).prepare()
    content_type = prepared.headers["Content-Type"]
    return prepared.body, content_type.split("boundary=", 1)[1]


def chunked(body: bytes, size: int) -> list[bytes]:
    return [body[i : i + size] for i in range(0, len(body), size)]


@pytest.mark.parametrize("chunk_size", [1, 7, 4096, 1 << 20])
def test_file_parts_are_those_werkzeug_reads_whatever_the_chunking(chunk_size):
    fields = [
        ("image", ("first.jpg", PHOTO, "image/jpeg")),
        ("note", (None, b"a plain field, not a file")),
        ("file", ("second.png", PHOTO[::-1], "image/png")),
        ("image", ("fotografía.jpg", b"", "image/jpeg")),
    ]
    body, boundary = encoded_form(fields)
    parts = read_file_parts(chunked(body, chunk_size), boundary, max_parts=10)

    environ = {
        "REQUEST_METHOD": "POST",
        "CONTENT_TYPE": f"multipart/form-data; boundary={boundary}",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
    }
    _, _, werkzeug_files = parse_form_data(environ)
    expected = [(name, f.filename, f.read()) for name, f in werkzeug_files.items(multi=True)]
    # werkzeug groups the files by field name; the parts come in the order sent.
    assert sorted((p.name, p.filename, p.data) for p in parts) == sorted(expected)
    assert [p.filename for p in parts] == ["first.jpg", "second.png", "fotografía.jpg"]


def test_a_body_cut_before_its_closing_boundary_is_a_clear_400():
    body, boundary = encoded_form([("image", ("a.jpg", PHOTO, "image/jpeg"))])
    with pytest.raises(ApiError) as error:
        read_file_parts([body[: len(body) // 2]], boundary, max_parts=10)
    assert (error.value.status, error.value.code) == (400, "missing_image")
    assert "closing boundary" in error.value.message


def test_garbage_instead_of_a_form_is_a_clear_400():
    with pytest.raises(ApiError) as error:
        read_file_parts([b"this is not a multipart body at all"], "abc", max_parts=10)
    assert (error.value.status, error.value.code) == (400, "missing_image")
    assert "could not be read" in error.value.message


def test_a_content_type_without_boundary_is_a_clear_400():
    with pytest.raises(ApiError) as error:
        read_file_parts([b"anything"], "", max_parts=10)
    assert (error.value.status, error.value.code) == (400, "missing_image")


def test_more_parts_than_allowed_is_413_too_many_form_parts():
    fields = [(f"field{i}", (None, b"x")) for i in range(4)]
    body, boundary = encoded_form([*fields, ("image", ("a.jpg", PHOTO, "image/jpeg"))])
    assert len(read_file_parts([body], boundary, max_parts=5)) == 1
    with pytest.raises(ApiError) as error:
        read_file_parts([body], boundary, max_parts=4)
    assert (error.value.status, error.value.code) == (413, "too_many_form_parts")
