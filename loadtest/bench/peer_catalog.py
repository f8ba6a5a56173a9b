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


@dataclass(frozen=True)
class Peer:
    name: str
    label: str  # for tables: the product and its pinned version
    short: str  # for ratio columns and plot legends
    venv: str  # directory under the repository root
    requirements: str  # pins file, relative to the repository root
    starter: str  # "module:function": (peer_python, weights_dir, work_dir) -> Endpoint cm

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
            "LitServe 0.2.19",
            "LitServe",
            ".venv-bench",
            "loadtest/requirements-bench.txt",
            "loadtest.bench.contenders:litserve",
        ),
        Peer(
            "torchserve",
            "TorchServe 0.12.0",
            "TorchServe",
            ".venv-bench",
            "loadtest/requirements-bench.txt",
            "loadtest.bench.contenders:torchserve",
        ),
        Peer(
            "rayserve",
            "Ray Serve 2.60.0",
            "Ray Serve",
            ".venv-peer-ray",
            "loadtest/requirements-peer-ray.txt",
            "loadtest.bench.contender_ray:ray_serve",
        ),
        Peer(
            "bentoml",
            "BentoML 1.4.40",
            "BentoML",
            ".venv-peer-bentoml",
            "loadtest/requirements-peer-bentoml.txt",
            "loadtest.bench.contender_bentoml:bentoml",
        ),
        Peer(
            "pytriton",
            "PyTriton 0.7.0 (Triton 2.51.0)",
            "PyTriton",
            ".venv-peer-pytriton",
            "loadtest/requirements-peer-pytriton.txt",
            "loadtest.bench.contender_pytriton:pytriton",
        ),
    )
}
