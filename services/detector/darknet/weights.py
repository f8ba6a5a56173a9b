"""Darknet ``.weights`` files and PyTorch state-dict files for :class:`DarknetModel`.

``.weights`` layout (little-endian): int32 major, minor, revision; then ``seen`` (images seen in
training) as int64 when ``major * 10 + minor >= 2 and major < 1000 and minor < 1000``, else as
int32; then float32 parameters, convolutional layers in cfg order:

* with batch norm: bn bias (beta), bn weight (gamma), running mean, running variance, conv weight
* without: conv bias, conv weight

Conv weights are ``[filters, in_channels, size, size]`` in C order, as in PyTorch. The file must
hold exactly the parameters the cfg needs; anything else raises :class:`WeightsError`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from services.detector.darknet.model import ConvolutionalLayer, DarknetBatchNorm, DarknetModel
from services.kit.weights import WeightsError

_INT32 = struct.Struct("<i")
_SEEN64 = struct.Struct("<q")
DEFAULT_VERSION = (0, 2, 0)  # what darknet writes for YOLOv3: 64-bit `seen`


@dataclass(frozen=True)
class WeightsHeader:
    major: int
    minor: int
    revision: int
    seen: int

    @property
    def seen_is_64_bit(self) -> bool:
        return _seen_is_64_bit(self.major, self.minor)

    @property
    def size(self) -> int:
        """Header length in bytes (20 or 16)."""
        return 12 + (8 if self.seen_is_64_bit else 4)


def _seen_is_64_bit(major: int, minor: int) -> bool:
    return major * 10 + minor >= 2 and major < 1000 and minor < 1000


def parse_header(data: bytes, source: str = "<weights>") -> WeightsHeader:
    """Decode the header at the start of ``data``."""
    if len(data) < 12:
        raise WeightsError(f"{source}: {len(data)} bytes is too short for a darknet header")
    major, minor, revision = struct.unpack_from("<iii", data)
    seen_format = _SEEN64 if _seen_is_64_bit(major, minor) else _INT32
    if len(data) < 12 + seen_format.size:
        raise WeightsError(f"{source}: {len(data)} bytes is too short for a darknet header")
    (seen,) = seen_format.unpack_from(data, 12)
    return WeightsHeader(major, minor, revision, seen)


def encode_header(header: WeightsHeader) -> bytes:
    seen_format = _SEEN64 if header.seen_is_64_bit else _INT32
    return struct.pack("<iii", header.major, header.minor, header.revision) + seen_format.pack(
        header.seen
    )


def darknet_parameters(model: DarknetModel) -> list[Tensor]:
    """The model's tensors in ``.weights`` file order (the live tensors, not copies)."""
    tensors: list[Tensor] = []
    for layer in model.layers:
        if not isinstance(layer, ConvolutionalLayer):
            continue
        if isinstance(layer.bn, DarknetBatchNorm):
            bn = layer.bn
            tensors += [bn.bias, bn.weight, bn.running_mean, bn.running_var]
        else:
            tensors.append(layer.conv.bias)
        tensors.append(layer.conv.weight)
    return tensors


def darknet_parameter_count(model: DarknetModel) -> int:
    """Number of float32 values a ``.weights`` file for ``model`` holds after its header."""
    return sum(t.numel() for t in darknet_parameters(model))


def load_darknet_weights(model: DarknetModel, path: str | Path) -> WeightsHeader:
    """Copy the parameters in the ``.weights`` file at ``path`` into ``model`` (any device/dtype).

    Raises :class:`WeightsError` unless the file holds exactly the floats the model needs.
    """
    path = Path(path)
    data = path.read_bytes()
    header = parse_header(data, path.name)
    payload = len(data) - header.size
    expected = darknet_parameter_count(model)
    if payload != expected * 4:
        actual = f"{payload // 4} floats" + (f" + {payload % 4} bytes" if payload % 4 else "")
        verdict = "too short" if payload < expected * 4 else "too long"
        raise WeightsError(
            f"{path.name}: model {model.cfg.source} needs {expected} float32 parameters "
            f"({header.size + expected * 4} bytes with the {header.size}-byte header), but the "
            f"file holds {actual} ({len(data)} bytes): {verdict} by "
            f"{abs(payload - expected * 4)} bytes; is it the weights for this cfg?"
        )
    values = np.frombuffer(data, dtype="<f4", offset=header.size)
    offset = 0
    with torch.no_grad():
        for tensor in darknet_parameters(model):
            chunk = torch.from_numpy(values[offset : offset + tensor.numel()].copy())
            tensor.copy_(chunk.view_as(tensor))
            offset += tensor.numel()
    return header


def write_darknet_weights(
    model: DarknetModel,
    path: str | Path,
    seen: int = 0,
    version: tuple[int, int, int] = DEFAULT_VERSION,
) -> WeightsHeader:
    """Write ``model``'s parameters as a darknet ``.weights`` file; returns the header written."""
    header = WeightsHeader(*version, seen=seen)
    with torch.no_grad():
        values = [
            t.detach().to("cpu", torch.float32).reshape(-1) for t in darknet_parameters(model)
        ]
    payload = torch.cat(values).numpy().astype("<f4", copy=False)
    with Path(path).open("wb") as file:
        file.write(encode_header(header))
        file.write(payload.tobytes())
    return header


def save_state_dict(model: DarknetModel, path: str | Path) -> None:
    """Save ``model.state_dict()`` (CPU tensors) with ``torch.save``."""
    state = {key: value.detach().cpu() for key, value in model.state_dict().items()}
    torch.save(state, Path(path))
