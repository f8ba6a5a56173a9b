"""Parser for darknet ``.cfg`` network definitions.

A cfg file is an INI-like list of ``[section]`` headers followed by ``key=value`` lines. The first
section must be ``[net]`` (input size and training settings); every later section is one layer,
numbered from 0 in file order. Layers refer to earlier layers by index, either absolute (``61``)
or relative to themselves (``-1`` is the previous layer); the parser resolves every reference to
an absolute index and rejects any that point outside the layers before it.

The parser is strict: an unknown section, an unknown key, a malformed value or a missing required
key raises :class:`CfgError` whose message starts with ``"<file> line <n>:"``. Keys that only
matter for training are accepted and ignored. Only the layer types and options that YOLOv3,
YOLOv3-tiny and YOLOv3-SPP use are supported, with darknet's defaults and semantics.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ACTIVATIONS = ("linear", "leaky", "relu", "logistic")


class CfgError(ValueError):
    """A cfg file that cannot be turned into a network; the message names the file line."""


@dataclass(frozen=True)
class NetSection:
    """``[net]``: the input the network was defined for (pixels) and its channel count."""

    line: int
    width: int
    height: int
    channels: int


@dataclass(frozen=True)
class ConvolutionalSection:
    """``[convolutional]``: conv2d (+ batch norm without conv bias) + activation.

    ``padding`` is the zero padding on each side in pixels (darknet: ``size // 2`` when
    ``pad=1``, else the ``padding`` key).
    """

    line: int
    filters: int
    size: int
    stride: int
    padding: int
    batch_normalize: bool
    activation: str


@dataclass(frozen=True)
class ShortcutSection:
    """``[shortcut]``: element-wise sum of the previous layer and layer ``source``."""

    line: int
    source: int
    activation: str


@dataclass(frozen=True)
class RouteSection:
    """``[route]``: channel concatenation of the outputs of ``sources`` (absolute indexes)."""

    line: int
    sources: tuple[int, ...]


@dataclass(frozen=True)
class UpsampleSection:
    """``[upsample]``: nearest-neighbour upsampling by the integer ``stride``, times ``scale``."""

    line: int
    stride: int
    scale: float


@dataclass(frozen=True)
class MaxpoolSection:
    """``[maxpool]``: max pooling with darknet's padding rule.

    ``padding`` is the *total* padding per axis (darknet default ``size - 1``); darknet puts
    ``padding // 2`` before and the rest after, so ``size=2 stride=1`` pads one pixel on the
    right/bottom only and keeps the spatial size.
    """

    line: int
    size: int
    stride: int
    padding: int


@dataclass(frozen=True)
class YoloSection:
    """``[yolo]``: detection head decoding the previous layer's output.

    ``anchors`` holds all ``num`` anchor (width, height) pairs in network-input pixels; ``mask``
    selects the ones this head uses, in order.
    """

    line: int
    mask: tuple[int, ...]
    anchors: tuple[tuple[float, float], ...]
    classes: int

    @property
    def masked_anchors(self) -> tuple[tuple[float, float], ...]:
        return tuple(self.anchors[i] for i in self.mask)


LayerSection = (
    ConvolutionalSection
    | ShortcutSection
    | RouteSection
    | UpsampleSection
    | MaxpoolSection
    | YoloSection
)


@dataclass(frozen=True)
class DarknetCfg:
    """A parsed cfg: ``layers[i]`` is darknet layer ``i``; ``source`` names the file in errors."""

    source: str
    net: NetSection
    layers: tuple[LayerSection, ...]

    def error(self, section: NetSection | LayerSection, message: str) -> CfgError:
        """A :class:`CfgError` pointing at ``section``'s header line."""
        return CfgError(f"{self.source} line {section.line}: {message}")


# --- raw syntax ---------------------------------------------------------------------------


@dataclass
class _RawSection:
    kind: str
    line: int
    options: dict[str, tuple[str, int]]  # key -> (value, line number)


def _read_sections(text: str, source: str) -> list[_RawSection]:
    sections: list[_RawSection] = []
    for number, raw_line in enumerate(text.splitlines(), start=1):
        line = raw_line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            if not line.endswith("]") or len(line) < 3:
                raise CfgError(f"{source} line {number}: malformed section header {line!r}")
            sections.append(_RawSection(line[1:-1].strip().lower(), number, {}))
            continue
        key, separator, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if not separator or not key or not value:
            raise CfgError(f"{source} line {number}: expected 'key=value', got {line!r}")
        if not sections:
            raise CfgError(f"{source} line {number}: option {key!r} before any [section]")
        options = sections[-1].options
        if key in options:
            raise CfgError(f"{source} line {number}: duplicate key {key!r}")
        options[key] = (value, number)
    return sections


# --- typed values -------------------------------------------------------------------------


def _int(text: str) -> int:
    return int(text)


def _float(text: str) -> float:
    return float(text)


def _int_list(text: str) -> tuple[int, ...]:
    return tuple(int(item) for item in text.split(","))


def _float_list(text: str) -> tuple[float, ...]:
    return tuple(float(item) for item in text.split(","))


def _activation(text: str) -> str:
    if text not in ACTIVATIONS:
        raise ValueError(f"one of {', '.join(ACTIVATIONS)}")
    return text


_Parser = Callable[[str], Any]

# Per section: the keys the model uses, with their parser; then training-only keys we ignore.
_SCHEMAS: dict[str, dict[str, _Parser]] = {
    "net": {"width": _int, "height": _int, "channels": _int},
    "convolutional": {
        "filters": _int,
        "size": _int,
        "stride": _int,
        "pad": _int,
        "padding": _int,
        "batch_normalize": _int,
        "activation": _activation,
    },
    "shortcut": {"from": _int, "activation": _activation},
    "route": {"layers": _int_list},
    "upsample": {"stride": _int, "scale": _float},
    "maxpool": {"size": _int, "stride": _int, "padding": _int},
    "yolo": {"mask": _int_list, "anchors": _float_list, "classes": _int, "num": _int},
}
_TRAINING_ONLY_KEYS: dict[str, frozenset[str]] = {
    "net": frozenset(
        {
            *("batch", "subdivisions", "learning_rate", "momentum", "decay", "time_steps"),
            *("notruth", "random", "adam", "B1", "B2", "eps", "inputs", "max_crop", "min_crop"),
            *("max_ratio", "min_ratio", "center", "clip", "angle", "aspect", "saturation"),
            *("exposure", "hue", "policy", "burn_in", "power", "step", "scale", "steps"),
            *("scales", "gamma", "max_batches"),
        }
    ),
    "yolo": frozenset({"jitter", "ignore_thresh", "truth_thresh", "random", "max"}),
}


class _Options:
    """Typed access to one section's options, with errors naming the offending line."""

    def __init__(self, raw: _RawSection, source: str):
        self.raw = raw
        self.source = source
        schema = _SCHEMAS[raw.kind]
        ignored = _TRAINING_ONLY_KEYS.get(raw.kind, frozenset())
        for key, (_, line) in raw.options.items():
            if key not in schema and key not in ignored:
                raise self.error_at(line, f"unknown key {key!r} in [{raw.kind}]")

    def error_at(self, line: int, message: str) -> CfgError:
        return CfgError(f"{self.source} line {line}: {message}")

    def line_of(self, key: str) -> int:
        return self.raw.options[key][1] if key in self.raw.options else self.raw.line

    def get(self, key: str, default: Any = None) -> Any:
        if key not in self.raw.options:
            if default is None:
                raise self.error_at(self.raw.line, f"[{self.raw.kind}] needs {key!r}")
            return default
        value, line = self.raw.options[key]
        try:
            return _SCHEMAS[self.raw.kind][key](value)
        except ValueError as exc:
            hint = f" (expected {exc})" if str(exc).startswith("one of") else ""
            raise self.error_at(line, f"bad value {value!r} for {key!r}{hint}") from None

    def positive(self, key: str, default: Any = None) -> Any:
        value = self.get(key, default)
        if value <= 0:
            raise self.error_at(self.line_of(key), f"{key!r} must be positive, got {value}")
        return value

    def non_negative(self, key: str, default: Any = None) -> Any:
        value = self.get(key, default)
        if value < 0:
            raise self.error_at(self.line_of(key), f"{key!r} must be >= 0, got {value}")
        return value

    def flag(self, key: str) -> bool:
        value = self.get(key, 0)
        if value not in (0, 1):
            raise self.error_at(self.line_of(key), f"{key!r} must be 0 or 1, got {value}")
        return bool(value)

    def layer_reference(self, key: str, index: int, relative: int) -> int:
        """Resolve a layer reference as darknet does (negative = relative to layer ``index``)."""
        absolute = index + relative if relative < 0 else relative
        if not 0 <= absolute < index:
            raise self.error_at(
                self.line_of(key),
                f"{key!r} refers to layer {relative} (absolute {absolute}), "
                f"outside layers 0..{index - 1} before this layer {index}",
            )
        return absolute


# --- sections -----------------------------------------------------------------------------


def _net(opts: _Options) -> NetSection:
    return NetSection(
        line=opts.raw.line,
        width=opts.positive("width"),
        height=opts.positive("height"),
        channels=opts.positive("channels", 3),
    )


def _convolutional(opts: _Options, index: int) -> ConvolutionalSection:
    size = opts.positive("size", 1)
    padding = size // 2 if opts.flag("pad") else opts.non_negative("padding", 0)
    return ConvolutionalSection(
        line=opts.raw.line,
        filters=opts.positive("filters", 1),
        size=size,
        stride=opts.positive("stride", 1),
        padding=padding,
        batch_normalize=opts.flag("batch_normalize"),
        activation=opts.get("activation", "logistic"),
    )


def _shortcut(opts: _Options, index: int) -> ShortcutSection:
    return ShortcutSection(
        line=opts.raw.line,
        source=opts.layer_reference("from", index, opts.get("from")),
        activation=opts.get("activation", "linear"),
    )


def _route(opts: _Options, index: int) -> RouteSection:
    sources = tuple(opts.layer_reference("layers", index, i) for i in opts.get("layers"))
    return RouteSection(line=opts.raw.line, sources=sources)


def _upsample(opts: _Options, index: int) -> UpsampleSection:
    return UpsampleSection(
        line=opts.raw.line, stride=opts.positive("stride", 2), scale=opts.get("scale", 1.0)
    )


def _maxpool(opts: _Options, index: int) -> MaxpoolSection:
    stride = opts.positive("stride", 1)
    size = opts.positive("size", stride)
    return MaxpoolSection(
        line=opts.raw.line,
        size=size,
        stride=stride,
        padding=opts.non_negative("padding", size - 1),
    )


def _yolo(opts: _Options, index: int) -> YoloSection:
    num = opts.positive("num", 1)
    values = opts.get("anchors")
    if len(values) != 2 * num:
        raise opts.error_at(
            opts.line_of("anchors"),
            f"'anchors' has {len(values)} numbers, expected 2 * num = {2 * num}",
        )
    anchors = tuple((values[i], values[i + 1]) for i in range(0, len(values), 2))
    mask = opts.get("mask", tuple(range(num)))
    if not mask or any(not 0 <= i < num for i in mask):
        raise opts.error_at(opts.line_of("mask"), f"'mask' indexes must lie in 0..{num - 1}")
    return YoloSection(
        line=opts.raw.line, mask=mask, anchors=anchors, classes=opts.positive("classes")
    )


_LAYER_BUILDERS: dict[str, Callable[[_Options, int], LayerSection]] = {
    "convolutional": _convolutional,
    "conv": _convolutional,
    "shortcut": _shortcut,
    "route": _route,
    "upsample": _upsample,
    "maxpool": _maxpool,
    "max": _maxpool,
    "yolo": _yolo,
}


def parse_cfg_text(text: str, source: str = "<cfg>") -> DarknetCfg:
    """Parse cfg ``text``; ``source`` is the name used in error messages."""
    sections = _read_sections(text, source)
    if not sections or sections[0].kind not in ("net", "network"):
        where = f"first section is [{sections[0].kind}]" if sections else "no sections"
        line = sections[0].line if sections else 1
        raise CfgError(f"{source} line {line}: missing [net] section ({where})")
    sections[0].kind = "net"
    net = _net(_Options(sections[0], source))
    layers: list[LayerSection] = []
    for index, raw in enumerate(sections[1:]):
        kind = "net" if raw.kind == "network" else raw.kind
        if kind == "net":
            raise CfgError(f"{source} line {raw.line}: [net] may only be the first section")
        builder = _LAYER_BUILDERS.get(kind)
        if builder is None:
            raise CfgError(f"{source} line {raw.line}: unknown section [{raw.kind}]")
        raw.kind = "convolutional" if kind == "conv" else "maxpool" if kind == "max" else kind
        layers.append(builder(_Options(raw, source), index))
    if not layers:
        raise CfgError(f"{source} line {net.line}: the network has no layers after [net]")
    return DarknetCfg(source=source, net=net, layers=tuple(layers))


def parse_cfg(path: str | Path) -> DarknetCfg:
    """Parse the cfg file at ``path``; errors name the file by its base name."""
    path = Path(path)
    return parse_cfg_text(path.read_text(encoding="utf-8"), source=path.name)
