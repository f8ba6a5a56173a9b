"""What a caller's ``X-Request-ID`` may look like (standard library only).

One rule for nginx (nginx/render.py turns it into the map that keeps or replaces the id)
and the services (services.kit.requestlog), so both logs always carry the same id: a value
outside it, control characters or escape sequences included, is replaced by a fresh id.
"""

from __future__ import annotations

import re

# Matched in full (nginx: ^...$ in a map; Python: fullmatch).
REQUEST_ID_PATTERN = r"[A-Za-z0-9._:-]{1,128}"
_REQUEST_ID = re.compile(REQUEST_ID_PATTERN)


def is_sane_request_id(value: str | None) -> bool:
    return bool(value) and _REQUEST_ID.fullmatch(value) is not None
