import string

import pytest

from services.web.i18n import Translator, catalogue, choose_language, supported


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_language_has_every_message_with_the_same_placeholders():
    messages = catalogue()["messages"]
    english = messages["en"]
    assert set(messages) == set(catalogue()["languages"]) == {"en", "zh-CN"}
    for language, texts in messages.items():
        assert set(texts) == set(english), language
        for key, text in texts.items():
            assert placeholders(text) == placeholders(english[key]), (language, key)


@pytest.mark.parametrize(
    ("tag", "expected"),
    [("en", "en"), ("en-GB", "en"), ("zh-CN", "zh-CN"), ("zh-TW", "zh-CN"), ("zh_Hans", "zh-CN"),
     ("fr", None), ("", None), (None, None)],
)  # fmt: skip
def test_tags_map_to_the_catalogue_languages(tag, expected):
    assert supported(tag) == expected


def test_query_beats_cookie_beats_header_beats_default():
    header = [("zh-CN", 1.0)]
    assert choose_language("en", "zh-CN", header).source == "query"
    assert choose_language(None, "en", header) == choose_language("xx", "en", header)
    assert choose_language(None, "en", header).language == "en"
    assert choose_language(None, None, header).language == "zh-CN"
    assert choose_language(None, None, []).source == "default"


def test_header_is_read_by_quality_not_by_order():
    accepted = [("fr", 1.0), ("en", 0.5), ("zh", 0.8)]
    assert choose_language(None, None, accepted).language == "zh-CN"
    assert choose_language(None, None, [("de", 1.0)]).language == "en"


def test_translator_fills_placeholders_and_falls_back():
    zh = Translator("zh-CN")
    assert "20 MB" in zh("upload.hint", limit_mb=20)
    assert zh("no.such.key") == "no.such.key"
    assert zh.error("unavailable") == zh("error.unavailable")
    assert "418" in zh.error("teapot_code", status=418)  # unknown codes: the generic sentence
    assert "{limit_mb}" in Translator("en")("upload.hint")  # no value: left visible, no crash
