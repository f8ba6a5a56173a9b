"""Get the uploaded image bytes out of a request, in memory only.

Accepted: multipart/form-data with one or more ``image`` fields (``file`` too, the field
name of the original Flask demo), or a raw body whose Content-Type is an image type. The
form is parsed by services.kit.multipart_form (python-multipart, cheaper than werkzeug's
``request.files``: figures there); the web service's form keeps werkzeug's.
"""

from __future__ import annotations

import io

from flask import Request

from services.kit.errors import ApiError
from services.kit.imaging import SUPPORTED_CONTENT_TYPES
from services.kit.multipart_form import read_file_parts

FIELD_NAMES = ("image", "file")
# Bytes read from the request per step while parsing a form (the body is capped anyway).
FORM_READ_CHUNK = 1 << 20


class InMemoryRequest(Request):
    """A request whose multipart files are kept in memory.

    werkzeug spools uploads over 500 KB to temporary files; the body size is already capped
    by MAX_CONTENT_LENGTH, so memory is bounded and nothing is ever written to disk.
    """

    def _get_file_stream(
        self, total_content_length, content_type, filename=None, content_length=None
    ):
        return io.BytesIO()


def read_uploaded_images(request: Request, max_images: int) -> list[bytes]:
    """Return the raw bytes of every uploaded image, in the order they were sent.

    Raises ApiError 400 ``missing_image``, 400 ``too_many_images`` or 415
    ``unsupported_media_type``.
    """
    mimetype = request.mimetype
    if mimetype == "multipart/form-data":
        body = iter(lambda: request.stream.read(FORM_READ_CHUNK), b"")
        parts = read_file_parts(
            body, request.mimetype_params.get("boundary", ""), request.max_form_parts
        )
        # Grouped by field name in FIELD_NAMES order, each in the order sent.
        files = [part for name in FIELD_NAMES for part in parts if part.name == name]
        if not files:
            raise ApiError(
                400,
                "missing_image",
                "No image in the form: send the photo in a multipart field named 'image'.",
            )
        _check_count(len(files), max_images)
        return [part.data for part in files]
    if mimetype in SUPPORTED_CONTENT_TYPES or mimetype == "application/octet-stream":
        body = request.get_data(cache=False)
        if not body:
            raise ApiError(400, "missing_image", "The request body is empty.")
        return [body]
    if not mimetype and not request.content_length:
        raise ApiError(
            400,
            "missing_image",
            "No image: send multipart/form-data with an 'image' field or a raw image body.",
        )
    raise ApiError(
        415,
        "unsupported_media_type",
        f"Content-Type {mimetype or '(none)'} is not accepted: send multipart/form-data "
        "with an 'image' field, or the image bytes with an image/* Content-Type.",
    )


def _check_count(count: int, max_images: int) -> None:
    if count > max_images:
        raise ApiError(
            400,
            "too_many_images",
            f"{count} images were sent; at most {max_images} are accepted per request.",
        )
