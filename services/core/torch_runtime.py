"""Device, dtype and thread choices for torch in one worker process."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

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


_BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The CPU's feature flags (Linux), empty when they cannot be read."""
    try:
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def select_dtype(
    device: torch.device, half: bool, bf16: bool = False, flags: set[str] | None = None
) -> torch.dtype:
    """fp16 only where it pays off (CUDA; on CPU it is slower, so fp32 with a warning).
    bf16 on a CPU only with AVX512-BF16 or AMX (else a SettingsError: emulated bf16 is
    slower than fp32), on CUDA as asked. Both are opt-in: fp32 is the default."""
    if half and bf16:
        raise SettingsError("FP16 and BF16 are both set: choose one precision")
    if bf16:
        present = cpu_flags() if flags is None else flags
        if device.type == "cpu" and not present & set(_BF16_CPU_FLAGS):
            raise SettingsError(
                "BF16=1 needs a CPU with AVX512-BF16 or AMX (flags avx512_bf16 / amx_bf16); "
                "this one has neither: unset BF16 to run in float32"
            )
        return torch.bfloat16
    if half and device.type != "cuda":
        log.warning("fp16 was asked for but the device is %s: running in float32", device)
        return torch.float32
    return torch.float16 if half else torch.float32


def place_network(
    network: torch.nn.Module,
    device: torch.device,
    dtype: torch.dtype,
    layout: torch.memory_format,
    compiled: bool = False,
    folded: bool = False,
) -> torch.nn.Module:
    """The network in eval mode on ``device`` in ``dtype``, its 4-d weights (convolutions)
    in ``layout``: ``Module.to(memory_format=...)`` refuses a network holding 5-d buffers
    (some heads keep their anchor grids so). ``folded``: batch norms folded into their
    convolutions first (fold_batch_norms). ``compiled``: then through compile_network."""
    network = network.eval()
    if folded:
        network = fold_batch_norms(network)
    network = network.to(device, dtype)
    with torch.no_grad():
        for parameter in network.parameters():
            if parameter.dim() == 4:
                parameter.data = parameter.data.contiguous(memory_format=layout)
    return compile_network(network) if compiled else network


def fold_batch_norms(network: torch.nn.Module) -> torch.nn.Module:
    """Each convolution followed by a batch norm as one convolution with a bias, in fp32
    before any cast: one pass over the activations fewer per norm, the same outputs to float
    rounding (tested). A network with its own ``fold_batch_norms()`` (a norm in another form
    than torch's) folds itself; any other goes through torch.fx's inference fusion, and one
    that fx cannot trace is served unfolded, with a warning."""
    own = getattr(network, "fold_batch_norms", None)
    if callable(own):
        return own()
    from torch.fx.experimental.optimization import fuse

    try:
        return fuse(network)
    except Exception as error:  # tracing raises whatever the traced code raises
        log.warning("batch norms left unfolded: torch.fx cannot trace the network (%s)", error)
        return network


def compile_network(network: torch.nn.Module) -> torch.nn.Module:
    """``torch.compile`` (inductor) with freezing: weights folded in as constants and the
    convolutions prepacked for oneDNN. Exact fp32 to float rounding (tested). Static shapes:
    one graph per batch size, each built on first use, so the warm-up readiness waits for
    runs every size the pipeline uses (compiled_batch_sizes); inductor caches them on disk
    for the next start."""
    import torch._dynamo.config as dynamo_config
    import torch._inductor.config as inductor_config

    inductor_config.freezing = True
    # One graph per batch size: at most 10 (MAX_BATCH <= 256), above torch's default of 8.
    dynamo_config.recompile_limit = max(dynamo_config.recompile_limit, 16)
    return torch.compile(network, backend="inductor", dynamic=False)


def memory_format(channels_last: bool) -> torch.memory_format:
    """NHWC (channels_last) lets oneDNN/cuDNN pick faster convolutions; results are the
    same to float rounding (tested)."""
    return torch.channels_last if channels_last else torch.contiguous_format


def configure_threads(threads: int) -> None:
    """Fix torch's intra-op pool so workers x threads fits the cores given to the service."""
    torch.set_num_threads(threads)
    # Settable once per process, before any parallel work; a second call raises.
    with contextlib.suppress(RuntimeError):
        torch.set_num_interop_threads(1)
