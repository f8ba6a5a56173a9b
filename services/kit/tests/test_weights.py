"""Verified downloads and the provenance of weights files."""

from __future__ import annotations

import hashlib

import pytest

from services.kit.weights import WeightsError, download, inspect_weights


def test_download_from_a_file_url_checks_the_sha256(tmp_path):
    source = tmp_path / "source.bin"
    source.write_bytes(b"weights" * 1000)
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    target = tmp_path / "out" / "model.bin"
    download(source.as_uri(), target, digest)
    assert target.read_bytes() == source.read_bytes()


def test_wrong_checksum_fails_and_leaves_nothing_behind(tmp_path):
    source = tmp_path / "source.bin"
    source.write_bytes(b"tampered")
    target = tmp_path / "out" / "model.bin"
    with pytest.raises(WeightsError, match="checksum mismatch"):
        download(source.as_uri(), target, "0" * 64)
    assert list(target.parent.iterdir()) == []


def test_provenance_official_standin_and_user(tmp_path, classifier_weights):
    assert inspect_weights(classifier_weights, {}).source == "stand-in"
    assert inspect_weights(classifier_weights, {}).trained is False
    digest = inspect_weights(classifier_weights, {}).sha256
    official = inspect_weights(classifier_weights, {digest: "https://example/official"})
    assert (official.source, official.trained) == ("official", True)
    user_file = tmp_path / "mine.pth"
    user_file.write_bytes(classifier_weights.read_bytes())  # no stand-in marker beside it
    assert inspect_weights(user_file, {}).source == "user-supplied"
