"""Loading a PyTorch ``state_dict`` file into a network: one loader for every model."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor

from services.kit.weights import WeightsError


def load_state_dict_file(network: torch.nn.Module, path: str | Path, model: str) -> None:
    """Load a ``.pt``/``.pth`` state dict saved for the same architecture into ``network``.

    Accepts a plain state dict or ``{"state_dict": ...}`` and loads it strictly; raises
    :class:`WeightsError` naming the missing, unexpected or wrongly shaped keys (``model``
    names the architecture in that message) when it does not fit exactly.
    """
    path = Path(path)
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for corrupt/foreign files
        raise WeightsError(f"{path.name}: not a readable PyTorch state dict ({exc})") from None
    if isinstance(loaded, Mapping) and "state_dict" in loaded:
        loaded = loaded["state_dict"]
    if not isinstance(loaded, Mapping) or not all(isinstance(v, Tensor) for v in loaded.values()):
        raise WeightsError(f"{path.name}: expected a mapping of parameter names to tensors")
    problems = state_dict_mismatches(network.state_dict(), loaded)
    if problems:
        raise WeightsError(f"{path.name} does not match model {model}: " + "; ".join(problems))
    network.load_state_dict(loaded, strict=True)


def state_dict_mismatches(expected: Mapping[str, Tensor], loaded: Mapping[str, Tensor]) -> list:
    """Human-readable differences between two state dicts (empty when they fit)."""

    def first(keys: list[str]) -> str:
        return ", ".join(keys[:5]) + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")

    problems = []
    missing = [k for k in expected if k not in loaded]
    unexpected = [k for k in loaded if k not in expected]
    reshaped = [
        f"{k} {tuple(loaded[k].shape)} != {tuple(v.shape)}"
        for k, v in expected.items()
        if k in loaded and loaded[k].shape != v.shape
    ]
    if missing:
        problems.append(f"{len(missing)} missing keys ({first(missing)})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys ({first(unexpected)})")
    if reshaped:
        problems.append(f"{len(reshaped)} shape mismatches ({first(reshaped)})")
    return problems
