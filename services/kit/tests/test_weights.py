"""Verified downloads, provenance of weights files, and the fetch command."""

from __future__ import annotations

import hashlib

import pytest

from services import fetch_weights
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


def test_fetch_without_network_refuses_silent_standins(tmp_path, capsys):
    code = fetch_weights.main(["--dest", str(tmp_path), "--only", "classifier", "--timeout", "5"])
    assert code == 1
    assert "--allow-standin" in capsys.readouterr().out
    assert not (tmp_path / "resnet18.pth").exists()


def test_fetch_writes_loud_standins_when_allowed(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(
        "services.classifier.official.official_weights",
        lambda arch: ((tmp_path / "unreachable.pth").as_uri(), "0" * 64),
    )
    code = fetch_weights.main(["--dest", str(tmp_path), "--only", "classifier", "--allow-standin"])
    assert code == 0
    out = capsys.readouterr().out
    assert "UNTRAINED STAND-IN" in out
    assert inspect_weights(tmp_path / "resnet18.pth", {}).source == "stand-in"
    # A second run keeps the marked stand-in instead of writing another.
    assert (
        fetch_weights.main(["--dest", str(tmp_path), "--only", "classifier", "--allow-standin"])
        == 0
    )
    assert "resnet18.pth: present" in capsys.readouterr().out


def test_fetch_downloads_the_pinned_file(tmp_path, monkeypatch, classifier_weights):
    digest = hashlib.sha256(classifier_weights.read_bytes()).hexdigest()
    monkeypatch.setattr(
        "services.classifier.official.official_weights",
        lambda arch: (classifier_weights.as_uri(), digest),
    )
    dest = tmp_path / "dest"
    assert fetch_weights.main(["--dest", str(dest), "--only", "classifier"]) == 0
    assert (dest / "resnet18.pth").read_bytes() == classifier_weights.read_bytes()
