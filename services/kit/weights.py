"""Weights files: checksums, provenance (trained or stand-in) and verified downloads.

A stand-in is a randomly initialised file in the real format, written when the official
weights cannot be downloaded. Its generator writes a ``<file>.standin.json`` marker beside
it; services report such weights as ``"trained": false`` in every response.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import urllib.request
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

log = logging.getLogger(__name__)

STANDIN_SUFFIX = ".standin.json"
_CHUNK = 1 << 20


class WeightsError(RuntimeError):
    """A weights file is missing, corrupt, or failed its checksum."""


@dataclass(frozen=True)
class WeightsInfo:
    """What a service says about the weights it serves (part of ``/v1/models``)."""

    path: str
    sha256: str
    size_bytes: int
    trained: bool
    source: str  # "official", "stand-in" or "user-supplied"
    url: str | None = None

    def as_dict(self) -> dict:
        """The public form: the file's name, never the host's directory layout."""
        return {**asdict(self), "path": Path(self.path).name}


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def standin_marker(path: Path) -> Path:
    return path.with_name(path.name + STANDIN_SUFFIX)


def write_standin_marker(path: Path, generator: str, seed: int) -> None:
    marker = {
        "trained": False,
        "generator": generator,
        "seed": seed,
        "sha256": sha256_file(path),
        "note": "Randomly initialised stand-in weights: predictions are meaningless.",
    }
    standin_marker(path).write_text(json.dumps(marker, indent=2) + "\n")


def inspect_weights(path: Path, official: Mapping[str, str]) -> WeightsInfo:
    """Identify a weights file. ``official`` maps pinned sha256 -> download URL.

    Official checksum -> trained; a stand-in marker whose checksum matches -> untrained;
    anything else is the user's own file and is taken as trained.
    """
    digest = sha256_file(path)
    size = path.stat().st_size
    if digest in official:
        return WeightsInfo(str(path), digest, size, True, "official", official[digest])
    marker_path = standin_marker(path)
    if marker_path.is_file():
        marker = json.loads(marker_path.read_text())
        if marker.get("sha256") == digest:
            return WeightsInfo(str(path), digest, size, False, "stand-in")
        log.warning(
            "stand-in marker %s does not match %s; treating it as user-supplied", marker_path, path
        )
    return WeightsInfo(str(path), digest, size, True, "user-supplied")


def download(url: str, destination: Path, sha256: str | None, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``destination`` atomically, verifying the pinned ``sha256``.

    The data goes to a temporary file beside the destination and is renamed into place only
    after the checksum matches, so a failed or tampered download never leaves a file behind.
    """
    destination.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=destination.parent, prefix=".download-")
    try:
        digest = hashlib.sha256()
        with os.fdopen(handle, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as src:
            while chunk := src.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
        actual = digest.hexdigest()
        if sha256 is not None and actual != sha256:
            raise WeightsError(
                f"checksum mismatch for {url}: expected sha256 {sha256}, got {actual}"
            )
        os.replace(temporary, destination)
        return destination
    finally:
        Path(temporary).unlink(missing_ok=True)
