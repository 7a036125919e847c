"""TransferConfig: every knob of a style-transfer run, in one frozen, replaceable dataclass.

The fields come in groups, each saying what its options change (:data:`OPTION_GROUPS`; a
field's group is in its metadata, and the command line's ``--help`` lists the options by group):
the objective (what the picture aims at), the optimization (how pixels move), the schedule (the
sizes a run works at), the network (built to match) and the runtime (where and how fast). One
flat dataclass keeps ``dataclasses.replace(config, steps=100)`` and the command line's one option
per field as simple as they are.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, TypeVar

import torch
from torch import Tensor

from neuralstyle._precision import resolve_precision
from neuralstyle.backbones import Padding, Pooling, check_network_options
from neuralstyle.errors import ConfigError

__all__ = [
    "OPTION_GROUPS",
    "OptimizerFactory",
    "TransferConfig",
    "available_devices",
    "option_group",
]

OptimizerFactory = Callable[[list[Tensor]], torch.optim.Optimizer]
"""Builds an optimizer for the image tensor, e.g. ``lambda params: torch.optim.SGD(params,
lr=0.1)``."""

_T = TypeVar("_T")

OPTION_GROUPS: dict[str, str] = {
    "objective": "what the picture aims at: the loss terms and their weights",
    "optimization": "how the pixels move: optimizer, start, steps",
    "schedule": "the sizes a run works at: output, scales, style image, tiles",
    "network": "deprecated: the network's own options belong to FeatureExtractor",
    "runtime": "where and how fast: device, precision, layout, memory check",
}
"""Group name -> what its options change, in the order a reader meets them."""


def _in(group: str, default: _T) -> _T:
    """A field with ``default`` in ``group`` (see :data:`OPTION_GROUPS`)."""
    return field(default=default, metadata={"group": group})


def option_group(name: str) -> str:
    """The group of the :class:`TransferConfig` field ``name`` (a key of :data:`OPTION_GROUPS`).

    Raises:
        KeyError: ``name`` is not a field.
    """
    return str(TransferConfig.__dataclass_fields__[name].metadata["group"])


_OPTIMIZERS = ("adam", "lbfgs")
_INITS = ("content", "recolored", "noise")
_PRECISIONS = ("auto", "float32", "bfloat16", "float16")
_STYLE_LOSSES = ("gram", "wasserstein")
_PRESERVE_COLORS = ("none", "luminance", "covariance", "histogram")
_BALANCES = ("none", "target")
_GRAM_NORMALIZATIONS = ("chw", "hw", "none")


def _choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")


def _positive(name: str, value: float, *, allow_zero: bool) -> None:
    valid = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not valid or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ConfigError(f"{name} must be a finite number {bound}, got {value!r}")


def _check_blend(weights: tuple[float, ...]) -> None:
    if not isinstance(weights, tuple) or not weights:
        raise ConfigError(f"style_blend must be a non-empty tuple of weights, got {weights!r}")
    for weight in weights:
        _positive("each style_blend weight", weight, allow_zero=True)
    if not any(weights):
        raise ConfigError(
            f"style_blend weights are all zero {weights!r}; give one style a weight > 0"
        )


def available_devices() -> list[str]:
    """The devices a run can use on this machine, e.g. ``["cpu", "cuda:0", "cuda:1"]``."""
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices += [f"cuda:{index}" for index in range(torch.cuda.device_count())]
    if torch.backends.mps.is_available():
        devices.append("mps")
    return devices


def _present(device: torch.device) -> bool:
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        return count > 0 and (device.index or 0) < count
    if device.type == "mps":
        return bool(torch.backends.mps.is_available())
    return True  # the CPU, and device types torch itself will judge (xpu, meta, ...)


@dataclass(frozen=True)
class TransferConfig:
    """Options of a run. Change one with ``dataclasses.replace(config, steps=100)``.

    The fields are listed by group (:data:`OPTION_GROUPS`): the objective (``content_weight`` to
    ``balance``), the optimization (``steps`` to ``ema_decay``), the schedule (``size`` to
    ``tile_size``), the deprecated network options (``pooling``, ``padding``) and the runtime
    (``device`` to ``check_memory``).

    Attributes:
        content_weight: Multiplies every content term.
        style_weight: Multiplies every style term: the "style strength" knob.
        tv_weight: Weight of the total-variation smoothness term (0 switches it off).
        content_structure: Weigh the content loss per position by the photo's local detail
            (see :mod:`neuralstyle.structure`): detailed regions (faces, windows, lettering)
            keep more of the photo and flat ones take more of the style, the total content
            weight unchanged. 0 weighs every position alike; the default preset uses 8.
        style_blend: Weights of several style images (one each, non-negative); None weighs them
            equally. The style target is the weighted blend of their Grams (or Gaussian fits).
        preserve_color: Keep the content's colours: ``"luminance"`` puts the result's luma under
            the content's chroma at the end; ``"covariance"`` and ``"histogram"`` recolour the
            style image to the content's colour distribution before encoding it; ``"none"`` takes
            the style's colours.
        style_loss: ``"gram"`` (Gatys) or ``"wasserstein"`` (mean and covariance, W2).
        gram_normalize: Gram normalization, see :func:`neuralstyle.gram_matrix`.
        balance: ``"target"`` divides each layer's term by its target's magnitude, so weights mean
            the same on every backbone and image pair; ``"none"`` uses raw terms (the seed's
            objective).
        steps: Optimizer steps of the whole run, shared equally among its scales (for L-BFGS,
            one step is one loss evaluation).
        optimizer: ``"adam"``, ``"lbfgs"``, or a factory ``params -> torch.optim.Optimizer``.
        learning_rate: Step size in pixel units of [0, 1]; None picks the optimizer's default (Adam
            0.02, L-BFGS 1.0).
        adam_betas: Adam's moment decay rates.
        adam_eps: Adam's epsilon, in the units of the pixel gradient.
        init: Start from the ``"content"`` image; from the content ``"recolored"`` to the
            style's palette (each colour channel's histogram matched to the style's), so the
            optimization starts with the painting's colours on the photo's structure; or from
            ``"noise"``: a blank mid-grey canvas with faint seeded noise, as neural-style's
            ``-init random``.
        seed: Seed of the run's own random generator (noise init); global RNG state is never
            touched.
        clamp: Clamp the image to [0, 1] after every Adam step (L-BFGS runs unclamped and the
            result is clamped at the end, since clamping between its steps corrupts its curvature
            memory).
        ema_decay: Output the exponential moving average of the iterates with this decay (e.g.
            0.9: it smooths the last few steps' noise); None outputs the last iterate.
        size: Long side of the output in pixels; None keeps the content image's size.
        start_size: Coarse to fine: optimize first at this long side, then at sizes growing by
            at most sqrt(2) up to the output's, each starting from the last one's result
            upsampled (each size gets its share of ``steps``). None optimizes at the output size
            only.
        style_scale: Long side of the style image relative to the output's; None keeps the style
            image's own size.
        tile_size: Optimize every scale whose long side exceeds this many pixels tile by tile
            (overlapping square crops of this side, against style targets of the whole image), so
            memory depends on the tile instead of the output; None optimizes whole images.
        pooling: Deprecated (warns): the network's pooling is an option of the network, e.g.
            ``extractor=FeatureExtractor(layer_map.layers, pooling="avg")``. When given, the
            default network is built with it and a given extractor must have it; None (the
            default) leaves the network as built (max pooling for the default one).
        padding: Deprecated (warns), as ``pooling``: ``FeatureExtractor(..., padding=...)``.
        device: ``"auto"`` (CUDA, then MPS, then CPU) or a torch device string.
        precision: ``"float32"``, or ``"bfloat16"``/``"float16"`` autocast (Grams stay float32);
            ``"auto"`` (the presets' choice) is bfloat16 on CPUs with native bfloat16
            instructions (AVX512_BF16 or AMX), where a step is over 3 times as fast with the
            same quality measures, and float32 everywhere else.
        channels_last: Feed the network channels-last input, and convert the network that
            :class:`~neuralstyle.transfer.StyleTransfer` builds itself (a given extractor keeps
            its weights' layout). On this project's CPU a step is 7-11% faster (see
            docs/performance.md), and it is the layout GPU tensor cores want. ``False`` keeps
            the plain NCHW layout, which Apple's MPS always uses (see :meth:`memory_format`).
        compile: Wrap the feature extractor in ``torch.compile``.
        check_memory: Before a run starts, estimate its peak memory and refuse a size that will
            not fit the device, naming the largest size that does.
    """

    # -- objective
    content_weight: float = _in("objective", 1.0)
    style_weight: float = _in("objective", 1.0)
    tv_weight: float = _in("objective", 0.0)
    content_structure: float = _in("objective", 0.0)
    style_blend: tuple[float, ...] | None = _in("objective", None)
    preserve_color: Literal["none", "luminance", "covariance", "histogram"] = _in(
        "objective", "none"
    )
    style_loss: Literal["gram", "wasserstein"] = _in("objective", "gram")
    gram_normalize: Literal["chw", "hw", "none"] = _in("objective", "chw")
    balance: Literal["none", "target"] = _in("objective", "target")
    # -- optimization
    steps: int = _in("optimization", 300)
    optimizer: Literal["adam", "lbfgs"] | OptimizerFactory = _in("optimization", "adam")
    learning_rate: float | None = _in("optimization", None)
    adam_betas: tuple[float, float] = _in("optimization", (0.9, 0.999))
    adam_eps: float = _in("optimization", 1e-8)
    init: Literal["content", "recolored", "noise"] = _in("optimization", "content")
    seed: int = _in("optimization", 0)
    clamp: bool = _in("optimization", True)
    ema_decay: float | None = _in("optimization", None)
    # -- schedule
    size: int | None = _in("schedule", None)
    start_size: int | None = _in("schedule", None)
    style_scale: float | None = _in("schedule", 1.0)
    tile_size: int | None = _in("schedule", None)
    # -- network
    pooling: Pooling | None = _in("network", None)
    padding: Padding | None = _in("network", None)
    # -- runtime
    device: str = _in("runtime", "auto")
    precision: Literal["auto", "float32", "bfloat16", "float16"] = _in("runtime", "float32")
    channels_last: bool = _in("runtime", True)
    compile: bool = _in("runtime", False)
    check_memory: bool = _in("runtime", True)

    def __post_init__(self) -> None:
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 1:
            raise ConfigError(f"steps must be a positive int, got {self.steps!r}")
        if isinstance(self.optimizer, str):
            _choice("optimizer", self.optimizer, _OPTIMIZERS)
        elif not callable(self.optimizer):
            raise ConfigError(
                f"optimizer must be 'adam', 'lbfgs' or a callable params -> Optimizer, "
                f"got {self.optimizer!r}"
            )
        if self.learning_rate is not None:
            _positive("learning_rate", self.learning_rate, allow_zero=False)
        if len(self.adam_betas) != 2 or not all(0 <= b < 1 for b in self.adam_betas):
            raise ConfigError(f"adam_betas must be two numbers in [0, 1), got {self.adam_betas!r}")
        _positive("adam_eps", self.adam_eps, allow_zero=True)
        for name in ("content_weight", "style_weight", "tv_weight", "content_structure"):
            _positive(name, getattr(self, name), allow_zero=True)
        if self.style_blend is not None:
            _check_blend(self.style_blend)
        _choice("preserve_color", self.preserve_color, _PRESERVE_COLORS)
        _choice("style_loss", self.style_loss, _STYLE_LOSSES)
        _choice("gram_normalize", self.gram_normalize, _GRAM_NORMALIZATIONS)
        _choice("balance", self.balance, _BALANCES)
        _choice("init", self.init, _INITS)
        _choice("precision", self.precision, _PRECISIONS)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ConfigError(f"seed must be an int, got {self.seed!r}")
        for name in ("size", "start_size", "tile_size"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise ConfigError(
                    f"{name} must be a positive int (long side in pixels), got {value!r}"
                )
        if self.ema_decay is not None:
            valid = isinstance(self.ema_decay, (int, float)) and not isinstance(
                self.ema_decay, bool
            )
            if not valid or not 0 <= self.ema_decay < 1:
                raise ConfigError(f"ema_decay must be in [0, 1) or None, got {self.ema_decay!r}")
        self._check_network_options()
        if self.style_scale is not None:
            _positive("style_scale", self.style_scale, allow_zero=False)

    def _check_network_options(self) -> None:
        """The deprecated network options: still checked and applied, with a warning."""
        given = {name: getattr(self, name) for name in ("pooling", "padding")}
        given = {name: value for name, value in given.items() if value is not None}
        if not given:
            return
        check_network_options(given.get("pooling", "max"), given.get("padding", "zeros"))
        spelled = ", ".join(f"{name}={value!r}" for name, value in given.items())
        warnings.warn(
            f"TransferConfig({spelled}) is deprecated: the network's options belong to the "
            f"network; pass extractor=FeatureExtractor(layers, {spelled}) instead",
            DeprecationWarning,
            stacklevel=4,
        )

    def resolved_device(self) -> torch.device:
        """The device this config runs on, with ``"auto"`` resolved to the best one present."""
        if self.device != "auto":
            try:
                device = torch.device(self.device)
            except RuntimeError as error:
                raise ConfigError(
                    f"device {self.device!r} is not a torch device; use 'auto', 'cpu', 'cuda', "
                    "'cuda:1' or 'mps'"
                ) from error
            if not _present(device):
                raise ConfigError(
                    f"device {self.device!r} is not available here; this machine has "
                    f"{', '.join(available_devices())} (or use 'auto')"
                )
            return device
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")

    def memory_format(self, device: torch.device) -> torch.memory_format:
        """The layout the network runs in on ``device``: channels-last when asked, except on MPS.

        Apple's MPS has had pooling backward kernels that are wrong on channels-last input
        (pytorch/pytorch#189233, average pooling) and nothing here has measured the layout there,
        so MPS runs the plain layout.
        """
        if self.channels_last and device.type != "mps":
            return torch.channels_last
        return torch.contiguous_format

    def autocast_dtype(self, device: torch.device) -> torch.dtype | None:
        """The autocast dtype on ``device`` (``"auto"`` resolved), or None for plain float32."""
        precision = resolve_precision(self.precision, device)
        return {"bfloat16": torch.bfloat16, "float16": torch.float16}.get(precision)
