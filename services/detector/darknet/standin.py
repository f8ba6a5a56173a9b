"""Untrained stand-in weights in the real darknet ``.weights`` format.

The official weights cannot be downloaded everywhere (CI, sandboxes), so the service can run on a
randomly initialised network instead: same cfg, same file format, same code path, obviously
meaningless detections (the renderer marks them with a banner).

A plain random init is degenerate for a 75-conv network: activations grow through the residual
sums until sigmoid saturates and ``exp`` overflows. So, like a freshly trained net, the batch
norms are given running statistics measured on an input (data-dependent init), and each yolo
head's conv is rescaled so that its logits have a sane spread: a few confident boxes per image
instead of none or thousands.

Usage: ``python -m services.detector.darknet.standin CFG OUT [--seed N]``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from services.detector.darknet.cfg import parse_cfg
from services.detector.darknet.model import (
    ConvolutionalLayer,
    DarknetBatchNorm,
    DarknetModel,
    build_model,
)
from services.detector.darknet.weights import WeightsHeader, write_darknet_weights
from services.kit.weights import STANDIN_SUFFIX, write_standin_marker

# Target (mean, std) of each yolo logit group after calibration.
_XY_LOGITS = (0.0, 1.0)
_WH_LOGITS = (0.0, 0.5)  # boxes stay within a few times their anchor
_OBJECTNESS_LOGITS = (-4.0, 1.0)  # a handful of boxes per photo (more on textured ones)
_CLASS_LOGITS = (-1.0, 1.0)
GENERATOR = "services.detector.darknet.standin"
CALIBRATION_SIZE = 256  # pixels; big enough for every head to see a few cells, cheap on CPU


def calibration_images(batch: int, size: int, generator: torch.Generator) -> Tensor:
    """Photo-like random RGB images ``Tensor[batch, 3, size, size]`` in [0, 1].

    Smooth colour gradients overlaid with random rectangles, flat or textured at several
    scales: the mix of flat regions, edges and texture gives activation statistics close to
    those of real photos (pure noise or pure smooth fields do not).
    """
    coarse = torch.rand(batch, 3, 4, 4, generator=generator)
    images = F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)
    for index in range(batch):
        for _ in range(48):
            x0, y0 = torch.randint(0, size, (2,), generator=generator).tolist()
            w, h = torch.randint(size // 16, size // 2, (2,), generator=generator).tolist()
            patch = torch.rand(3, 1, 1, generator=generator).expand(3, h, w)
            cell = 2 ** int(torch.randint(0, 5, (1,), generator=generator))  # 1..16 px grain
            grain = torch.rand(1, 3, h // cell + 1, w // cell + 1, generator=generator) - 0.5
            grain = F.interpolate(grain, scale_factor=cell, mode="nearest")[0, :, :h, :w]
            amplitude = float(torch.rand(1, generator=generator))
            region = images[index, :, y0 : y0 + h, x0 : x0 + w]
            region.copy_(patch[:, : region.shape[1], : region.shape[2]])
            region.add_(amplitude * grain[:, : region.shape[1], : region.shape[2]])
    return images.clamp(0.0, 1.0)


def _convolutions(model: DarknetModel) -> list[ConvolutionalLayer]:
    return [layer for layer in model.layers if isinstance(layer, ConvolutionalLayer)]


@torch.no_grad()
def random_init(model: DarknetModel, seed: int = 0) -> None:
    """Kaiming-normal conv weights, zero conv biases, identity batch norms (not yet usable)."""
    generator = torch.Generator().manual_seed(seed)
    for layer in _convolutions(model):
        nn.init.kaiming_normal_(
            layer.conv.weight, a=0.1, nonlinearity="leaky_relu", generator=generator
        )
        if layer.conv.bias is not None:
            layer.conv.bias.zero_()
        if isinstance(layer.bn, DarknetBatchNorm):
            layer.bn.weight.fill_(1.0)
            layer.bn.bias.zero_()
            layer.bn.running_mean.zero_()
            layer.bn.running_var.fill_(1.0)


@torch.no_grad()
def calibrate(model: DarknetModel, seed: int = 0, images: Tensor | None = None) -> None:
    """Data-dependent init in one forward pass over ``images``.

    Each batch norm gets the mean/variance of its own input (measured by a hook just before it
    normalises, so later layers see already-calibrated inputs); then each yolo head's conv is
    rescaled so its logit groups get the target mean/std. Conv weights and batch-norm
    weight/bias are kept otherwise.

    Args:
        model: float32 model on the CPU.
        seed: seeds the default calibration images.
        images: ``Tensor[B, 3, H, W]`` in [0, 1]; default: random :func:`calibration_images`.
    """
    if images is None:
        size = min(model.input_size, CALIBRATION_SIZE)
        size = max(size - size % model.size_multiple, model.size_multiple)
        images = calibration_images(2, size, torch.Generator().manual_seed(seed))

    def measure(bn: nn.Module, inputs: tuple[Tensor, ...]) -> None:
        x = inputs[0]
        bn.running_mean.copy_(x.mean(dim=(0, 2, 3)))
        var = x.var(dim=(0, 2, 3), unbiased=False)
        # Floor: channels nearly constant on the calibration images would otherwise amplify
        # whatever real images put in them (10x for 1% of the typical variance).
        bn.running_var.copy_(var.clamp_min(max(1e-2, 0.1 * float(var.median()))))

    batchnorms = [m for m in model.modules() if isinstance(m, DarknetBatchNorm)]
    hooks = [bn.register_forward_pre_hook(measure) for bn in batchnorms]
    try:
        head_logits = model.forward_raw(images)
    finally:
        for hook in hooks:
            hook.remove()
    _rescale_heads(model, head_logits)


def _rescale_heads(model: DarknetModel, head_logits: list[Tensor]) -> None:
    targets = [_XY_LOGITS, _XY_LOGITS, _WH_LOGITS, _WH_LOGITS, _OBJECTNESS_LOGITS]
    targets += [_CLASS_LOGITS] * model.num_classes
    for head, logits in zip(model.heads, head_logits, strict=True):
        layer = model.layers[head.layer_index - 1]
        if not isinstance(layer, ConvolutionalLayer) or layer.conv.bias is None:
            continue  # only a plain conv feeding the head can be rescaled this way
        mean = logits.mean(dim=(0, 2, 3))
        std = logits.std(dim=(0, 2, 3)).clamp_min(1e-6)
        target_mean = torch.tensor([m for m, _ in targets] * head.num_anchors)
        target_std = torch.tensor([s for _, s in targets] * head.num_anchors)
        gain = target_std / std
        layer.conv.weight.mul_(gain.view(-1, 1, 1, 1))
        layer.conv.bias.copy_((layer.conv.bias - mean) * gain + target_mean)


def initialise_standin(model: DarknetModel, seed: int = 0) -> None:
    """Give ``model`` (float32, CPU) deterministic random but well-scaled parameters."""
    random_init(model, seed)
    calibrate(model, seed)


def write_standin_weights(
    cfg_path: str | Path, out_path: str | Path, seed: int = 0
) -> WeightsHeader:
    """Write untrained stand-in ``.weights`` for the cfg at ``cfg_path`` (``seen`` = 0).

    Also writes the ``<out>.standin.json`` marker (services.kit.weights) by which services
    recognise the file as untrained, so a stand-in can never pass for trained weights.
    """
    model = build_model(parse_cfg(cfg_path))
    initialise_standin(model, seed)
    header = write_darknet_weights(model, out_path, seen=0)
    write_standin_marker(Path(out_path), generator=GENERATOR, seed=seed)
    return header


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cfg", type=Path, help="darknet .cfg file")
    parser.add_argument("out", type=Path, help=".weights file to write")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    write_standin_weights(args.cfg, args.out, args.seed)
    print(f"wrote stand-in weights for {args.cfg.name} to {args.out} (+ {STANDIN_SUFFIX} marker)")


if __name__ == "__main__":
    main()
