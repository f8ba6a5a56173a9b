"""The benchmark's peers in one place: name, label, their own venv and pins, how to start.

Each peer runs in its own virtual environment (their pins conflict with each other and with
the stack's), created by `make bench` on first use from its requirements file.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def pinned_version(requirements: Path, package: str) -> str:
    """``package``'s version in a pins file: the one place a peer's version is written."""
    for line in requirements.read_text().splitlines():
        name, _, version = line.partition("==")
        if name.strip().lower().replace("_", "-") == package:
            return version.strip()
    raise ValueError(f"{package} is not pinned in {requirements}")


@dataclass(frozen=True)
class Peer:
    name: str
    product: str
    package: str  # the distribution whose pinned version names the peer
    short: str  # for ratio columns and plot legends
    venv: str  # directory under the repository root
    requirements: str  # pins file, relative to the repository root
    starter: str  # "module:function": (peer_python, weights_dir, work_dir) -> Endpoint cm

    @property
    def version(self) -> str:
        return pinned_version(self.requirements_path, self.package)

    @property
    def label(self) -> str:  # for tables
        return f"{self.product} {self.version}"

    @property
    def venv_path(self) -> Path:
        return REPO_ROOT / self.venv

    @property
    def requirements_path(self) -> Path:
        return REPO_ROOT / self.requirements

    def start(self) -> Callable:
        module, _, function = self.starter.partition(":")
        return getattr(importlib.import_module(module), function)


PEERS = {
    peer.name: peer
    for peer in (
        Peer(
            "litserve",
            "LitServe",
            "litserve",
            "LitServe",
            ".venv-bench",
            "loadtest/requirements-bench.txt",
            "loadtest.bench.contenders:litserve",
        ),
        Peer(
            "torchserve",
            "TorchServe",
            "torchserve",
            "TorchServe",
            ".venv-bench",
            "loadtest/requirements-bench.txt",
            "loadtest.bench.contenders:torchserve",
        ),
        Peer(
            "rayserve",
            "Ray Serve",
            "ray",
            "Ray Serve",
            ".venv-peer-ray",
            "loadtest/requirements-peer-ray.txt",
            "loadtest.bench.contender_ray:ray_serve",
        ),
        Peer(
            "bentoml",
            "BentoML",
            "bentoml",
            "BentoML",
            ".venv-peer-bentoml",
            "loadtest/requirements-peer-bentoml.txt",
            "loadtest.bench.contender_bentoml:bentoml",
        ),
        Peer(
            "pytriton",
            "PyTriton",
            "nvidia-pytriton",
            "PyTriton",
            ".venv-peer-pytriton",
            "loadtest/requirements-peer-pytriton.txt",
            "loadtest.bench.contender_pytriton:pytriton",
        ),
    )
}
