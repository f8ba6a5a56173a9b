"""API keys: read from a variable and a file, validated, forwarded by name."""

from __future__ import annotations

import pytest

from services.kit.api_keys import credential_headers, read_api_keys
from services.kit.settings import EnvReader, SettingsError

KEY_A = "k" * 16
KEY_B = "Another-key_0123456789"


def keys(environ: dict[str, str]) -> tuple[str, ...]:
    return read_api_keys(EnvReader("", environ))


def test_no_keys_means_the_api_is_open():
    assert keys({}) == ()
    assert keys({"API_KEYS": " , "}) == ()


def test_keys_from_the_variable_and_the_file_in_order_without_duplicates(tmp_path):
    key_file = tmp_path / "keys"
    key_file.write_text(f"# operators\n{KEY_B}\n\n{KEY_A}\n")
    assert keys({"API_KEYS": f"{KEY_A}, {KEY_A}", "API_KEYS_FILE": str(key_file)}) == (
        KEY_A,
        KEY_B,
    )


@pytest.mark.parametrize("bad", ["short", "has space in it long enough", 'quote"' * 4, "x" * 257])
def test_a_malformed_key_stops_the_start_without_showing_it(bad):
    with pytest.raises(SettingsError, match="API key #1") as raised:
        keys({"API_KEYS": bad})
    assert bad not in str(raised.value)


def test_an_unreadable_key_file_names_the_variable(tmp_path):
    with pytest.raises(SettingsError, match="API_KEYS_FILE"):
        keys({"API_KEYS_FILE": str(tmp_path / "missing")})


def test_only_credential_headers_are_forwarded():
    headers = {"X-API-Key": KEY_A, "Authorization": f"Bearer {KEY_B}", "Cookie": "c=1"}
    assert credential_headers(headers) == {"X-API-Key": KEY_A, "Authorization": f"Bearer {KEY_B}"}
    assert credential_headers({}) == {}
