"""Device, dtype and thread choices for torch in one worker process."""

from __future__ import annotations

import contextlib
import logging

import torch

from services.kit.settings import SettingsError

log = logging.getLogger(__name__)


def select_device(requested: str) -> torch.device:
    """``auto`` picks CUDA when a GPU is visible, else CPU; ``cpu``/``cuda``/``cuda:N`` are
    taken as asked and refused with a SettingsError when that device is not there."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(requested)
    except RuntimeError:
        raise SettingsError(f"device {requested!r} is not a torch device name") from None
    if device.type not in {"cpu", "cuda"}:
        raise SettingsError(f"device {requested!r}: only cpu and cuda are supported")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise SettingsError(f"device {requested!r} asked for, but no CUDA GPU is visible")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise SettingsError(
                f"device {requested!r}: only {torch.cuda.device_count()} GPU(s) are visible"
            )
    return device


def select_dtype(device: torch.device, half: bool) -> torch.dtype:
    """fp16 only where it pays off (CUDA); on CPU it is slower, so fp32 with a warning."""
    if half and device.type != "cuda":
        log.warning("fp16 was asked for but the device is %s: running in float32", device)
        return torch.float32
    return torch.float16 if half else torch.float32


def configure_threads(threads: int) -> None:
    """Fix torch's intra-op pool so workers x threads fits the cores given to the service."""
    torch.set_num_threads(threads)
    # Settable once per process, before any parallel work; a second call raises.
    with contextlib.suppress(RuntimeError):
        torch.set_num_interop_threads(1)
