"""Stand-in classifier weights: a randomly initialised torchvision ``state_dict``.

Written in exactly the format torchvision publishes, so the real loading path is used, and
marked as a stand-in so every response says the weights are untrained.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torchvision.models import get_model

from services.kit.weights import write_standin_marker


def write_standin_state_dict(arch: str, path: Path, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    network = get_model(arch, weights=None)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(network.state_dict(), path)
    write_standin_marker(path, generator=f"torchvision.models.{arch} default init", seed=seed)
    return path
