"""PyTorch module that runs a parsed darknet YOLOv3-family network.

Contracts (B = batch, H/W = input height/width in pixels, A = anchors per head, C = classes):

* input: ``Tensor[B, 3, H, W]``, RGB, float in [0, 1]; H and W multiples of ``size_multiple``
  (32 for YOLOv3); the dtype and device the weights live on (float32, float16, bfloat16).
* :meth:`DarknetModel.forward`: float32 ``Tensor[B, N, 5 + C]``, the decoded rows of every yolo head
  concatenated in cfg order; each head contributes ``A * h * w`` rows ordered anchor-major, then
  grid row, then grid column (darknet's memory order). Row = ``cx, cy, w, h`` in input pixels,
  objectness, then C class probabilities (independent sigmoids; not multiplied by objectness).
* :meth:`DarknetModel.forward_heads`: the same per head as ``Tensor[B, A, h, w, 5 + C]``.
* :meth:`DarknetModel.forward_raw`: per head the raw logits that feed it,
  ``Tensor[B, A * (5 + C), h, w]`` in the network's dtype.

Numerics follow darknet: batch norm divides by ``sqrt(var) + 1e-6``, leaky slope 0.1, maxpool
pads with -inf ``padding // 2`` before and the rest after, boxes decode as
``cx = (col + sigmoid(tx)) * stride_x`` and ``w = exp(tw) * anchor_w``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.fusion import fuse_conv_bn_weights

from services.detector.darknet.cfg import (
    ConvolutionalSection,
    DarknetCfg,
    LayerSection,
    MaxpoolSection,
    RouteSection,
    ShortcutSection,
    UpsampleSection,
    YoloSection,
)

DARKNET_BN_EPSILON = 1e-6
LEAKY_SLOPE = 0.1


def _activation_module(name: str) -> nn.Module:
    if name == "leaky":
        return nn.LeakyReLU(LEAKY_SLOPE)
    if name == "relu":
        return nn.ReLU()
    if name == "logistic":
        return nn.Sigmoid()
    return nn.Identity()


class DarknetBatchNorm(nn.Module):
    """Inference batch norm in darknet's form: ``(x - mean) / (sqrt(var) + eps) * weight + bias``.

    Same parameter/buffer names as ``nn.BatchNorm2d`` (torch uses ``sqrt(var + eps)``, which
    differs noticeably for the tiny variances of trained darknet weights).
    """

    def __init__(self, channels: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))
        self.eps = DARKNET_BN_EPSILON

    def forward(self, x: Tensor) -> Tensor:
        scale = self.weight / (self.running_var.sqrt() + self.eps)
        shift = self.bias - self.running_mean * scale
        return x * scale.view(1, -1, 1, 1) + shift.view(1, -1, 1, 1)

    def folded_into(self, conv: nn.Conv2d) -> nn.Conv2d:
        """``conv`` followed by this norm, as one convolution with a bias. torch's fusion
        divides by ``sqrt(var + eps)``: handing it ``(sqrt(var) + eps)^2`` and eps 0 gives
        darknet's ``sqrt(var) + eps``."""
        variance = (self.running_var.double().sqrt() + self.eps).square().to(self.running_var)
        folded = copy.deepcopy(conv)
        folded.weight, folded.bias = fuse_conv_bn_weights(
            conv.weight, conv.bias, self.running_mean, variance, 0.0, self.weight, self.bias
        )
        return folded


# Every layer module takes (previous output, outputs of all earlier layers) so the network can be
# run by one loop over an nn.ModuleList, which TorchScript unrolls.


class ConvolutionalLayer(nn.Module):
    def __init__(self, in_channels: int, section: ConvolutionalSection):
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels,
            section.filters,
            section.size,
            section.stride,
            section.padding,
            bias=not section.batch_normalize,
        )
        self.bn = DarknetBatchNorm(section.filters) if section.batch_normalize else nn.Identity()
        self.activation = _activation_module(section.activation)

    def forward(self, x: Tensor, outputs: list[Tensor]) -> Tensor:
        return self.activation(self.bn(self.conv(x)))

    def fold_batch_norm(self) -> None:
        """The norm folded into the convolution's weights and bias (inference only)."""
        if isinstance(self.bn, DarknetBatchNorm):
            self.conv = self.bn.folded_into(self.conv)
            self.bn = nn.Identity()


class MaxpoolLayer(nn.Module):
    def __init__(self, section: MaxpoolSection):
        super().__init__()
        self.size = section.size
        self.stride = section.stride
        self.pad_before = section.padding // 2
        self.pad_after = section.padding - section.padding // 2

    def forward(self, x: Tensor, outputs: list[Tensor]) -> Tensor:
        # Cheap paths first: symmetric padding is max_pool2d's own (-inf) padding, and padding
        # only after the data is dead when no pooling window reaches it (size 2 stride 2 on
        # even sizes). Otherwise pad explicitly, e.g. tiny's size=2 stride=1 pool.
        if self.pad_before == self.pad_after and 2 * self.pad_before <= self.size:
            return F.max_pool2d(x, self.size, self.stride, self.pad_before)
        padding = self.pad_before + self.pad_after
        height, width = x.shape[2], x.shape[3]
        if (
            self.pad_before == 0
            and (height + padding - self.size) // self.stride == (height - self.size) // self.stride
            and (width + padding - self.size) // self.stride == (width - self.size) // self.stride
        ):
            return F.max_pool2d(x, self.size, self.stride)
        pads = [self.pad_before, self.pad_after, self.pad_before, self.pad_after]
        x = F.pad(x, pads, mode="constant", value=float("-inf"))
        return F.max_pool2d(x, self.size, self.stride)


class UpsampleLayer(nn.Module):
    def __init__(self, section: UpsampleSection):
        super().__init__()
        self.stride = section.stride
        self.scale = section.scale

    def forward(self, x: Tensor, outputs: list[Tensor]) -> Tensor:
        x = F.interpolate(x, scale_factor=float(self.stride), mode="nearest")
        return x * self.scale if self.scale != 1.0 else x


class RouteLayer(nn.Module):
    def __init__(self, section: RouteSection):
        super().__init__()
        self.sources = list(section.sources)

    def forward(self, x: Tensor, outputs: list[Tensor]) -> Tensor:
        if len(self.sources) == 1:
            return outputs[self.sources[0]]
        return torch.cat([outputs[i] for i in self.sources], dim=1)


class ShortcutLayer(nn.Module):
    def __init__(self, section: ShortcutSection):
        super().__init__()
        self.source = section.source
        self.activation = _activation_module(section.activation)

    def forward(self, x: Tensor, outputs: list[Tensor]) -> Tensor:
        return self.activation(x + outputs[self.source])


class YoloPassthrough(nn.Module):
    """The [yolo] slot in the layer list; decoding happens in :class:`YoloHead`."""

    def forward(self, x: Tensor, outputs: list[Tensor]) -> Tensor:
        return x


class YoloHead(nn.Module):
    """Decodes one yolo layer's logits ``[B, A*(5+C), h, w]`` into ``[B, A, h, w, 5+C]``.

    Output units: cx, cy, w, h in input pixels; objectness and class probabilities in [0, 1].
    Grids are built once per (size, device, dtype) and cached; scripted/traced code rebuilds
    them inline instead (a few tiny ops).
    """

    __jit_ignored_attributes__: ClassVar[list[str]] = ["_grid_cache"]

    def __init__(self, layer_index: int, anchors: tuple[tuple[float, float], ...], classes: int):
        super().__init__()
        self.layer_index = layer_index
        self.num_anchors = len(anchors)
        self.num_classes = classes
        anchor_wh = torch.tensor(anchors, dtype=torch.float32).view(1, -1, 1, 1, 2)
        self.register_buffer("anchor_wh", anchor_wh, persistent=False)
        self._grid_cache: dict[tuple[int, int, int, int, str, str], tuple[Tensor, Tensor]] = {}

    def forward(self, logits: Tensor, input_height: int, input_width: int) -> Tensor:
        batch, _, rows, cols = logits.shape
        # Decode in float32 whatever the network runs in: exp(tw) * anchor overflows float16
        # for tw > ~5, and pixel coordinates lose precision; these tensors are small.
        p = logits.float().view(batch, self.num_anchors, 5 + self.num_classes, rows, cols)
        p = p.permute(0, 1, 3, 4, 2)
        cell_origin, stride = self._grid(rows, cols, input_height, input_width, p)
        xy = torch.sigmoid(p[..., 0:2]) * stride + cell_origin
        wh = torch.exp(p[..., 2:4]) * self.anchor_wh.float()
        scores = torch.sigmoid(p[..., 4:])
        return torch.cat([xy, wh, scores], dim=-1)

    def _grid(
        self, rows: int, cols: int, input_height: int, input_width: int, like: Tensor
    ) -> tuple[Tensor, Tensor]:
        # Cache only in eager mode: tracers and compilers would store symbolic tensors in it.
        # (TorchScript skips the body of a bare `if not torch.jit.is_scripting()`: keep it bare.)
        if not torch.jit.is_scripting():  # noqa: SIM102
            if not (torch.jit.is_tracing() or torch.compiler.is_compiling()):
                return self._cached_grid(rows, cols, input_height, input_width, like)
        return _make_grid(rows, cols, input_height, input_width, like)

    @torch.jit.unused
    def _cached_grid(
        self, rows: int, cols: int, input_height: int, input_width: int, like: Tensor
    ) -> tuple[Tensor, Tensor]:
        key = (rows, cols, input_height, input_width, str(like.device), str(like.dtype))
        grid = self._grid_cache.get(key)
        if grid is None:
            # Normal tensors even under inference_mode, so that a later autograd-enabled call
            # (export, fine-tuning) can still use them.
            with torch.inference_mode(False):
                grid = _make_grid(rows, cols, input_height, input_width, like)
            self._grid_cache[key] = grid
        return grid


def _make_grid(
    rows: int, cols: int, input_height: int, input_width: int, like: Tensor
) -> tuple[Tensor, Tensor]:
    """Cell top-left corners ``[1, 1, rows, cols, 2]`` (x, y) and cell size ``[2]``, in pixels."""
    stride_x = input_width / cols
    stride_y = input_height / rows
    ys = torch.arange(rows, device=like.device, dtype=torch.float32) * stride_y
    xs = torch.arange(cols, device=like.device, dtype=torch.float32) * stride_x
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    origin = torch.stack([grid_x, grid_y], dim=-1).view(1, 1, rows, cols, 2).to(like.dtype)
    stride = torch.tensor([stride_x, stride_y], device=like.device, dtype=like.dtype)
    return origin, stride


@dataclass(frozen=True)
class _LayerShape:
    channels: int
    stride: int  # input pixels per output cell


def _output_shapes(cfg: DarknetCfg) -> list[_LayerShape]:
    """Channels and stride of every layer's output; rejects layers whose inputs don't fit."""
    shapes: list[_LayerShape] = []
    current = _LayerShape(cfg.net.channels, 1)
    for index, section in enumerate(cfg.layers):
        if isinstance(section, ConvolutionalSection):
            # Output side must be exactly input/stride: (n + 2p - k) // s + 1 == n / s.
            if not section.size - section.stride <= 2 * section.padding <= section.size - 1:
                raise cfg.error(section, "size/stride/padding do not give input size / stride")
            current = _LayerShape(section.filters, current.stride * section.stride)
        elif isinstance(section, MaxpoolSection):
            if not section.size - section.stride <= section.padding <= section.size - 1:
                raise cfg.error(section, "size/stride/padding do not give input size / stride")
            current = _LayerShape(current.channels, current.stride * section.stride)
        elif isinstance(section, UpsampleSection):
            if current.stride % section.stride:
                raise cfg.error(section, f"cannot upsample stride {current.stride} layer")
            current = _LayerShape(current.channels, current.stride // section.stride)
        elif isinstance(section, RouteSection):
            inputs = [shapes[i] for i in section.sources]
            if len({s.stride for s in inputs}) != 1:
                raise cfg.error(section, f"routed layers {section.sources} differ in size")
            current = _LayerShape(sum(s.channels for s in inputs), inputs[0].stride)
        elif isinstance(section, ShortcutSection):
            other = shapes[section.source]
            if other != current:
                raise cfg.error(
                    section,
                    f"shortcut from layer {section.source} ({other.channels} channels, stride "
                    f"{other.stride}) does not match layer {index - 1} ({current.channels} "
                    f"channels, stride {current.stride})",
                )
        elif isinstance(section, YoloSection):
            expected = len(section.mask) * (5 + section.classes)
            if current.channels != expected:
                raise cfg.error(
                    section,
                    f"[yolo] needs {expected} input channels ({len(section.mask)} anchors x "
                    f"(5 + {section.classes} classes)), layer {index - 1} gives "
                    f"{current.channels}",
                )
        shapes.append(current)
    return shapes


def _layer_module(section: LayerSection, in_channels: int) -> nn.Module:
    if isinstance(section, ConvolutionalSection):
        return ConvolutionalLayer(in_channels, section)
    if isinstance(section, MaxpoolSection):
        return MaxpoolLayer(section)
    if isinstance(section, UpsampleSection):
        return UpsampleLayer(section)
    if isinstance(section, RouteSection):
        return RouteLayer(section)
    if isinstance(section, ShortcutSection):
        return ShortcutLayer(section)
    return YoloPassthrough()


class DarknetModel(nn.Module):
    """A darknet YOLO network built from a parsed cfg (see the module docstring for contracts).

    Attributes:
        cfg: the parsed cfg it was built from.
        input_size: default square input side in pixels (``[net]`` width unless overridden).
        num_classes: classes per detection row.
        anchors: per yolo head, its (width, height) anchors in input pixels.
        size_multiple: input height and width must be multiples of this.
    """

    def __init__(self, cfg: DarknetCfg, input_size: int | None = None):
        super().__init__()
        shapes = _output_shapes(cfg)
        yolo_sections = [s for s in cfg.layers if isinstance(s, YoloSection)]
        if not yolo_sections:
            raise cfg.error(cfg.net, "the network has no [yolo] layer")
        if len({s.classes for s in yolo_sections}) != 1:
            raise cfg.error(yolo_sections[-1], "all [yolo] layers must have the same classes")

        self.cfg = cfg
        self.num_classes = yolo_sections[0].classes
        self.anchors = [list(s.masked_anchors) for s in yolo_sections]
        self.size_multiple = max(shape.stride for shape in shapes)
        if input_size is None:
            if cfg.net.width != cfg.net.height:
                raise cfg.error(cfg.net, "non-square [net] size: pass input_size explicitly")
            input_size = cfg.net.width
        if input_size <= 0 or input_size % self.size_multiple:
            raise ValueError(f"input_size {input_size} is not a multiple of {self.size_multiple}")
        self.input_size = input_size
        self.in_channels = cfg.net.channels

        in_channels = [cfg.net.channels] + [shape.channels for shape in shapes[:-1]]
        self.layers = nn.ModuleList(
            _layer_module(section, channels)
            for section, channels in zip(cfg.layers, in_channels, strict=True)
        )
        self.heads = nn.ModuleList(
            YoloHead(index, section.masked_anchors, section.classes)
            for index, section in enumerate(cfg.layers)
            if isinstance(section, YoloSection)
        )
        # Only outputs that a later route/shortcut/head reads are kept during forward.
        referenced: set[int] = {head.layer_index for head in self.heads}
        for section in cfg.layers:
            if isinstance(section, RouteSection):
                referenced.update(section.sources)
            elif isinstance(section, ShortcutSection):
                referenced.add(section.source)
        self.keep_output = [index in referenced for index in range(len(cfg.layers))]

    @torch.jit.unused
    def fold_batch_norms(self) -> DarknetModel:
        """Every batch norm folded into its convolution, for inference: one pass over the
        activations fewer per layer, the same outputs to float rounding (tested). Weights
        must be loaded first; the state_dict no longer has the norms' keys afterwards."""
        for layer in self.layers:
            if isinstance(layer, ConvolutionalLayer):
                layer.fold_batch_norm()
        return self

    def _check_input(self, x: Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                "expected input [B, " + str(self.in_channels) + ", H, W], got " + str(x.shape)
            )
        if x.shape[2] % self.size_multiple != 0 or x.shape[3] % self.size_multiple != 0:
            raise ValueError(
                "input height and width must be multiples of "
                + str(self.size_multiple)
                + ", got "
                + str(x.shape)
            )

    @torch.jit.export
    def forward_raw(self, x: Tensor) -> list[Tensor]:
        """Per yolo head, the logits feeding it: ``Tensor[B, A*(5+C), h, w]``."""
        self._check_input(x)
        outputs: list[Tensor] = []
        unused = x.new_empty(0)
        for index, layer in enumerate(self.layers):
            x = layer(x, outputs)
            outputs.append(x if self.keep_output[index] else unused)
        return [outputs[head.layer_index] for head in self.heads]

    @torch.jit.export
    def forward_heads(self, x: Tensor) -> list[Tensor]:
        """Per yolo head, decoded ``Tensor[B, A, h, w, 5+C]`` (see module docstring)."""
        logits = self.forward_raw(x)
        height, width = x.shape[2], x.shape[3]
        decoded: list[Tensor] = []
        for index, head in enumerate(self.heads):
            decoded.append(head(logits[index], height, width))
        return decoded

    def forward(self, x: Tensor) -> Tensor:
        """Decoded detections of all heads: ``Tensor[B, N, 5+C]`` (see module docstring)."""
        heads = self.forward_heads(x)
        rows = [h.reshape(h.shape[0], -1, 5 + self.num_classes) for h in heads]
        return torch.cat(rows, dim=1)


def build_model(cfg: DarknetCfg, input_size: int | None = None) -> DarknetModel:
    """``DarknetModel(cfg, input_size)`` in eval mode (the only mode this module supports)."""
    return DarknetModel(cfg, input_size).eval()
