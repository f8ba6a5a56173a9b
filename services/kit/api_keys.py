"""Optional API keys (off by default), checked once at the edge (nginx).

Keys come from ``API_KEYS`` (comma-separated) and/or ``API_KEYS_FILE`` (one per line, ``#``
comments); none set means the API is open. A client sends its key as ``X-API-Key: <key>``
or ``Authorization: Bearer <key>``. nginx compares them (nginx/nginx.conf.j2); the web
service forwards the caller's credential headers on its own calls to the models, so the
page and the no-JS form work with the caller's key and never with one of their own.

A key is 16-256 characters of letters, digits, ``-`` and ``_``: safe to put in nginx's
config as it is, and long enough not to be guessed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from services.kit.settings import EnvReader, SettingsError

API_KEY_HEADER = "X-API-Key"
CREDENTIAL_HEADERS = (API_KEY_HEADER, "Authorization")
KEY_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,256}")


def read_api_keys(env: EnvReader) -> tuple[str, ...]:
    """Every configured key, in order, without duplicates; a malformed key or an
    unreadable file is a SettingsError naming the variable."""
    keys = [k.strip() for k in (env.raw("API_KEYS") or "").split(",") if k.strip()]
    if file_name := env.raw("API_KEYS_FILE"):
        try:
            lines = Path(file_name).read_text(encoding="utf-8").splitlines()
        except OSError as error:
            name = env.name("API_KEYS_FILE")
            raise SettingsError(f"{name}={file_name!r}: {error.strerror}") from None
        keys += [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    for index, key in enumerate(keys, 1):
        if not KEY_PATTERN.fullmatch(key):
            raise SettingsError(
                f"API key #{index} (from API_KEYS or API_KEYS_FILE) must be 16-256 letters, "
                "digits, '-' or '_'"
            )
    return tuple(dict.fromkeys(keys))


def credential_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The caller's credential headers, to send along on calls made on its behalf."""
    return {name: headers[name] for name in CREDENTIAL_HEADERS if headers.get(name)}
