"""The one message catalogue (``messages.json``) for the server-rendered page and its JS.

Languages are English (``en``) and simplified Chinese (``zh-CN``). The choice comes from,
in order: ``?lang=`` (the switch's links), the ``lang`` cookie (the remembered choice),
``Accept-Language``, else English. Messages may hold ``{name}`` placeholders, filled the
same way here and in ``static/app.js``.
"""

from __future__ import annotations

import json
import string
from dataclasses import dataclass
from functools import cache
from pathlib import Path

CATALOGUE_PATH = Path(__file__).with_name("messages.json")
DEFAULT_LANGUAGE = "en"
LANGUAGE_COOKIE = "lang"
# Primary subtag -> the catalogue that serves it: every Chinese variant gets simplified
# Chinese, which beats falling back to English for a Chinese reader.
_PRIMARY_SUBTAGS = {"en": "en", "zh": "zh-CN"}


@cache
def catalogue() -> dict:
    """``{"languages": {tag: name}, "messages": {tag: {key: text}}}``."""
    return json.loads(CATALOGUE_PATH.read_text(encoding="utf-8"))


def languages() -> dict[str, str]:
    return catalogue()["languages"]


def supported(tag: str | None) -> str | None:
    """The catalogue language for a BCP 47 tag (``zh-TW`` -> ``zh-CN``), or None."""
    if not tag:
        return None
    if tag in languages():
        return tag
    return _PRIMARY_SUBTAGS.get(tag.split("-")[0].split("_")[0].lower())


def from_accept_language(accepted: list[tuple[str, float]]) -> str | None:
    """The best catalogue language for ``(tag, quality)`` pairs, highest quality first."""
    for tag, quality in sorted(accepted, key=lambda pair: -pair[1]):
        language = supported(tag)
        if language and quality > 0:
            return language
    return None


@dataclass(frozen=True)
class LanguageChoice:
    language: str
    source: str  # "query", "cookie", "header" or "default": the JS refines only "default"


def choose_language(
    query: str | None, cookie: str | None, accepted: list[tuple[str, float]]
) -> LanguageChoice:
    for source, language in (
        ("query", supported(query)),
        ("cookie", supported(cookie)),
        ("header", from_accept_language(accepted)),
    ):
        if language:
            return LanguageChoice(language, source)
    return LanguageChoice(DEFAULT_LANGUAGE, "default")


class Translator:
    """``t("upload.hint", limit_mb=20)`` in one language; unknown keys fall back to English
    and then to the key itself, so a missing translation never breaks a page."""

    def __init__(self, language: str):
        self.language = language
        self.messages: dict[str, str] = catalogue()["messages"][language]
        self._fallback: dict[str, str] = catalogue()["messages"][DEFAULT_LANGUAGE]

    def __call__(self, key: str, **params: object) -> str:
        text = self.messages.get(key, self._fallback.get(key, key))
        return string.Formatter().vformat(text, (), _KeepMissing(params)) if params else text

    def error(self, code: str, **params: object) -> str:
        """The sentence for an error code; unknown codes get the generic one."""
        key = f"error.{code}"
        if key in self.messages:
            return self(key, **params)
        return self("error.generic", **params)


class _KeepMissing(dict):
    """Leaves ``{name}`` in place when no value was given, rather than raising."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"
