"""The photo (and the one option) of a form post to ``/upload``, held in memory only.

The web service only checks that the upload is a photo a browser can show (from its
header; nothing is decoded): the model services decode it and enforce their own limits.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass

from flask import Request
from PIL import Image, UnidentifiedImageError
from werkzeug.exceptions import RequestEntityTooLarge

from services.kit.errors import ApiError, oversize_error
from services.kit.imaging import FORMAT_MIMETYPES, require_supported_format
from services.kit.uploads import FIELD_NAMES


@dataclass(frozen=True)
class Photo:
    """An uploaded photo, forwarded as-is to the model services."""

    data: bytes
    filename: str
    mimetype: str

    def data_uri(self) -> str:
        """The photo inline (``data:``), so the result page needs no stored file."""
        return f"data:{self.mimetype};base64,{base64.b64encode(self.data).decode('ascii')}"


def read_photo(request: Request) -> Photo:
    """The one photo of a multipart form (field ``image``, or ``file`` as the original
    demo named it). The body limit itself is Flask's MAX_CONTENT_LENGTH.

    Raises ApiError: 413 ``payload_too_large`` or ``too_many_form_parts``; 400
    ``missing_image``, ``empty_image``, ``invalid_image`` (declared an image but unreadable);
    415 ``unsupported_media_type``
    (not an image at all), ``unsupported_image_format`` (an image we do not take).
    """
    try:
        files = [f for name in FIELD_NAMES for f in request.files.getlist(name) if f.filename]
    except RequestEntityTooLarge:
        raise oversize_error() from None
    if not files:
        raise ApiError(
            400, "missing_image", "No image in the form: send the photo in a field named 'image'."
        )
    upload = files[0]
    data = upload.read()
    if not data:
        raise ApiError(400, "empty_image", "The uploaded image is empty.")
    try:
        image_format = Image.open(io.BytesIO(data)).format  # reads the header only
    except (UnidentifiedImageError, OSError, ValueError):
        if (upload.mimetype or "").startswith("image/"):
            raise ApiError(400, "invalid_image", "The upload is not a readable image.") from None
        raise ApiError(
            415,
            "unsupported_media_type",
            f"The upload ({upload.mimetype or 'unknown type'}) is not an image.",
        ) from None
    require_supported_format(image_format)
    return Photo(data, upload.filename or "photo", FORMAT_MIMETYPES[image_format])


def read_conf_threshold(request: Request) -> float | None:
    """The form's ``conf_threshold`` (0..1), or None when the form has none.

    Raises ApiError 400 ``invalid_parameter``.
    """
    raw = request.form.get("conf_threshold", "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise ApiError(
            400, "invalid_parameter", f"conf_threshold={raw!r} is not a number from 0 to 1."
        )
    return value
