"""The weights command (`make weights`): official files, or loudly marked stand-ins."""

from __future__ import annotations

import hashlib

from scripts import fetch_weights
from services.kit.weights import inspect_weights


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
