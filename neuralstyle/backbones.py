"""VGG backbones with the paper's layer names, and the input conventions weights expect.

A backbone here is a *spec*: the layer table of the convolutional part of VGG16 or VGG19 (the
modules of ``torchvision.models.vgg16().features``, same indices, so torchvision state dicts load)
named the way Gatys et al. name them: ``conv1_1``, ``relu1_1``, ..., ``pool5``. The modules are
built from the spec, truncated after the deepest layer a run needs, and never through
``torchvision.models.vgg16()`` (its 100M-parameter classifier is slow to initialise and unused).

An ``InputConvention`` says how an RGB image in [0, 1] becomes the network's input. It
belongs to the weights, not to the user: torchvision's ImageNet weights want mean/std
normalisation, Caffe-converted weights want BGR pixel values in 0..255 minus the BGR mean.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import torch
from torch import Tensor, nn

from neuralstyle.errors import ConfigError, LayerNotFoundError, closest_names

__all__ = [
    "CAFFE",
    "CAFFE_RGB",
    "IDENTITY",
    "IMAGENET",
    "BackboneName",
    "BackboneSpec",
    "InputConvention",
    "LayerSpec",
    "available_layers",
    "build_features",
    "check_network_options",
    "get_spec",
    "resolve_convention",
    "resolve_layer_names",
]

BackboneName = Literal["vgg16", "vgg19"]
ConventionName = Literal["imagenet", "caffe", "identity"]
Pooling = Literal["max", "avg"]
Padding = Literal["zeros", "replicate"]


def check_network_options(pooling: object, padding: object) -> None:
    """The one check of the network options, shared by the config, the builder and custom
    networks.

    Raises:
        ConfigError: ``pooling`` is not ``"max"``/``"avg"`` or ``padding`` not
            ``"zeros"``/``"replicate"``.
    """
    for name, value, choices in (
        ("pooling", pooling, get_args(Pooling)),
        ("padding", padding, get_args(Padding)),
    ):
        if value not in choices:
            raise ConfigError(
                f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}"
            )


@dataclass(frozen=True)
class InputConvention:
    """How an RGB image in [0, 1] is turned into a network's input.

    The network input is ``(reorder(image) * scale - mean) / std``, where ``reorder`` flips RGB to
    BGR when ``channel_order == "bgr"``; ``mean`` and ``std`` are given in the network's channel
    order and in its value scale (0..255 units when ``scale == 255``).

    Attributes:
        name: A short label for messages and ``repr``.
        channel_order: ``"rgb"`` or ``"bgr"``, the order the network's first convolution expects.
        scale: Factor applied to [0, 1] values before the mean is subtracted (1 or 255).
        mean: Per-channel mean subtracted after scaling, in the network's channel order.
        std: Per-channel divisor applied after the mean subtraction.

    Example:
        >>> CAFFE.apply(torch.ones(1, 3, 2, 2))[0, :, 0, 0]
        tensor([150.9930, 138.3312, 132.3211])
    """

    name: str
    channel_order: Literal["rgb", "bgr"]
    scale: float
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def __post_init__(self) -> None:
        if self.channel_order not in ("rgb", "bgr"):
            raise ConfigError(f"channel_order must be 'rgb' or 'bgr', got {self.channel_order!r}")
        if len(self.mean) != 3 or len(self.std) != 3:
            raise ConfigError(
                f"mean and std need 3 values (one per channel), got {self.mean!r} and {self.std!r}"
            )
        if self.scale <= 0 or any(s <= 0 for s in self.std):
            raise ConfigError(f"scale and std must be positive, got {self.scale!r}, {self.std!r}")

    @property
    def is_identity(self) -> bool:
        """True when ``apply`` returns its input unchanged (so it can be skipped)."""
        return (
            self.channel_order == "rgb"
            and self.scale == 1.0
            and self.mean == (0.0, 0.0, 0.0)
            and self.std == (1.0, 1.0, 1.0)
        )

    def affine(self) -> tuple[Tensor, Tensor]:
        """Per-channel ``(multiplier, offset)`` of shape ``(1, 3, 1, 1)``, float32.

        Applied after the channel reorder: ``net_input = reordered * multiplier + offset``.

        Returns:
            The multiplier ``scale / std`` and the offset ``-mean / std``.

        Example:
            >>> multiplier, offset = IMAGENET.affine()
            >>> tuple(multiplier.shape)
            (1, 3, 1, 1)
        """
        std = torch.tensor(self.std, dtype=torch.float64)
        multiplier = self.scale / std
        offset = -torch.tensor(self.mean, dtype=torch.float64) / std
        return (
            multiplier.to(torch.float32).view(1, 3, 1, 1),
            offset.to(torch.float32).view(1, 3, 1, 1),
        )

    def apply(self, image: Tensor) -> Tensor:
        """Turn an RGB ``(B, 3, H, W)`` batch in [0, 1] into this convention's network input.

        Args:
            image: RGB float tensor ``(B, 3, H, W)``, values in [0, 1].

        Returns:
            A new tensor of the same shape, in the network's channel order and value scale.

        Example:
            >>> IMAGENET.apply(torch.zeros(1, 3, 1, 1)).flatten()
            tensor([-2.1179, -2.0357, -1.8044])
        """
        multiplier, offset = self.affine()
        reordered = image.flip(1) if self.channel_order == "bgr" else image
        return torch.addcmul(
            offset.to(image.device, image.dtype),
            reordered,
            multiplier.to(image.device, image.dtype),
        )


IMAGENET = InputConvention(
    name="imagenet",
    channel_order="rgb",
    scale=1.0,
    mean=(0.485, 0.456, 0.406),
    std=(0.229, 0.224, 0.225),
)
"""torchvision's ImageNet weights: RGB in [0, 1], minus mean, divided by std."""

CAFFE = InputConvention(
    name="caffe",
    channel_order="bgr",
    scale=255.0,
    mean=(104.00699, 116.66877, 122.67892),
    std=(1.0, 1.0, 1.0),
)
"""Caffe-converted VGG weights (original VGG, HED, neural-style-pt): BGR, 0..255, minus BGR mean."""

CAFFE_RGB = InputConvention(
    name="caffe_rgb",
    channel_order="rgb",
    scale=255.0,
    mean=(0.48235 * 255.0, 0.45882 * 255.0, 0.40784 * 255.0),
    std=(1.0, 1.0, 1.0),
)
"""torchvision's ``VGG16_Weights.IMAGENET1K_FEATURES`` (Caffe weights reordered to RGB): 0..255."""

IDENTITY = InputConvention(
    name="identity", channel_order="rgb", scale=1.0, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0)
)
"""No preprocessing: the network takes RGB in [0, 1] as is (the default for custom modules)."""

_CONVENTIONS: dict[str, InputConvention] = {
    "imagenet": IMAGENET,
    "caffe": CAFFE,
    "identity": IDENTITY,
}


def resolve_convention(convention: InputConvention | str) -> InputConvention:
    """Return the ``InputConvention`` for an instance or one of its names.

    Args:
        convention: An ``InputConvention``, or ``"imagenet"``, ``"caffe"``, ``"identity"``.

    Returns:
        The matching convention.

    Raises:
        ConfigError: For an unknown name or a value of another type.

    Example:
        >>> resolve_convention("caffe").channel_order
        'bgr'
    """
    if isinstance(convention, InputConvention):
        return convention
    if isinstance(convention, str) and convention in _CONVENTIONS:
        return _CONVENTIONS[convention]
    raise ConfigError(
        f"unknown input convention {convention!r}; use one of {sorted(_CONVENTIONS)} "
        "or an InputConvention instance"
    )


@dataclass(frozen=True)
class LayerSpec:
    """One module of a VGG ``features`` stack.

    Attributes:
        name: The paper's name (``conv3_1``, ``relu3_1``, ``pool3``).
        kind: ``"conv"``, ``"relu"`` or ``"pool"``.
        in_channels: Input channels (convolutions only; 0 otherwise).
        out_channels: Output channels (convolutions only; 0 otherwise).
    """

    name: str
    kind: Literal["conv", "relu", "pool"]
    in_channels: int = 0
    out_channels: int = 0


@dataclass(frozen=True)
class BackboneSpec:
    """The layer table of a VGG ``features`` stack; index ``i`` is torchvision's module ``i``.

    Attributes:
        name: ``"vgg16"`` or ``"vgg19"``.
        layers: One ``LayerSpec`` per module, in network order.
    """

    name: BackboneName
    layers: tuple[LayerSpec, ...]

    @property
    def names(self) -> tuple[str, ...]:
        """Layer names in network order."""
        return tuple(layer.name for layer in self.layers)

    def index(self, name: str) -> int:
        """Module index of a layer name (raises ``LayerNotFoundError`` for unknown names)."""
        names = self.names
        if name not in names:
            raise LayerNotFoundError(_unknown_layer_message(name, names, self.name))
        return names.index(name)

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """State-dict keys (``"0.weight"``, ``"0.bias"``, ...) of every conv, with their shapes."""
        shapes: dict[str, tuple[int, ...]] = {}
        for i, layer in enumerate(self.layers):
            if layer.kind == "conv":
                shapes[f"{i}.weight"] = (layer.out_channels, layer.in_channels, 3, 3)
                shapes[f"{i}.bias"] = (layer.out_channels,)
        return shapes

    def min_size(self, depth: int) -> int:
        """Smallest input side for which module ``depth`` still has a non-empty output."""
        pools = sum(1 for layer in self.layers[: depth + 1] if layer.kind == "pool")
        return 1 << pools


# Channels per block; "M" closes a block with a 2x2 pooling, as in the VGG paper's table 1.
_CONFIGS: dict[str, tuple[tuple[int, ...], ...]] = {
    "vgg16": ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512)),
    "vgg19": (
        (64, 64),
        (128, 128),
        (256, 256, 256, 256),
        (512, 512, 512, 512),
        (512, 512, 512, 512),
    ),
}


def _make_spec(name: BackboneName) -> BackboneSpec:
    layers: list[LayerSpec] = []
    in_channels = 3
    for block, widths in enumerate(_CONFIGS[name], start=1):
        for conv, width in enumerate(widths, start=1):
            layers.append(LayerSpec(f"conv{block}_{conv}", "conv", in_channels, width))
            layers.append(LayerSpec(f"relu{block}_{conv}", "relu"))
            in_channels = width
        layers.append(LayerSpec(f"pool{block}", "pool"))
    return BackboneSpec(name=name, layers=tuple(layers))


_SPECS: dict[str, BackboneSpec] = {name: _make_spec(name) for name in get_args(BackboneName)}


def get_spec(backbone: str) -> BackboneSpec:
    """Return the layer table of a built-in backbone.

    Args:
        backbone: ``"vgg16"`` or ``"vgg19"``.

    Returns:
        The backbone's ``BackboneSpec``.

    Raises:
        ConfigError: For any other name.

    Example:
        >>> get_spec("vgg19").index("relu4_2")
        22
    """
    if backbone not in _SPECS:
        raise ConfigError(f"unknown backbone {backbone!r}; use one of {sorted(_SPECS)}")
    return _SPECS[backbone]


def available_layers(backbone: BackboneName = "vgg16") -> tuple[str, ...]:
    """Names of the layers a built-in backbone provides, in network order.

    Args:
        backbone: ``"vgg16"`` (the default, with bundled weights) or ``"vgg19"``.

    Returns:
        ``("conv1_1", "relu1_1", "conv1_2", ..., "pool5")``.

    Raises:
        ConfigError: For an unknown backbone.

    Example:
        >>> available_layers("vgg16")[:3]
        ('conv1_1', 'relu1_1', 'conv1_2')
    """
    return get_spec(backbone).names


_TUTORIAL_NAME = re.compile(r"^(conv|relu|pool)_(\d+)$")


def _tutorial_hint(name: str, valid: Sequence[str]) -> str | None:
    # The PyTorch tutorial counts layers per kind (its conv_4 is conv2_2): translate that trap.
    match = _TUTORIAL_NAME.match(name)
    if match is None:
        return None
    kind, number = match.group(1), int(match.group(2))
    same_kind = [v for v in valid if re.fullmatch(rf"{kind}\d+(_\d+)?", v)]
    if not 1 <= number <= len(same_kind):
        return None
    paper = same_kind[number - 1]
    return f"{name} in the PyTorch tutorial's numbering (the {kind} no. {number}) is {paper!r}"


def _unknown_layer_message(name: str, valid: Sequence[str], where: str) -> str:
    tutorial = _tutorial_hint(name, valid)
    close = closest_names(name, valid)
    if tutorial is not None:
        hint = tutorial
    elif close:
        hint = f"closest: {', '.join(repr(c) for c in close)}"
    else:
        hint = f"valid names start with {', '.join(repr(v) for v in valid[:4])}"
    return f"unknown layer {name!r} for {where}; {hint}"


def resolve_layer_names(requested: Sequence[str], valid: Sequence[str], where: str) -> list[str]:
    """Check requested layer names against the valid ones; return them deduplicated, in order.

    Args:
        requested: Layer names a run needs.
        valid: Every name the network provides, in network order.
        where: The network's label for messages (``"vgg16"``, ``"the custom module"``).

    Returns:
        The requested names in network order, without duplicates.

    Raises:
        ConfigError: When ``requested`` is a single string or empty.
        LayerNotFoundError: For a name not in ``valid``; the message lists the closest names.

    Example:
        >>> resolve_layer_names(["relu2_1", "relu1_1"], available_layers(), "vgg16")
        ['relu1_1', 'relu2_1']
    """
    if isinstance(requested, str):
        raise ConfigError(
            f"layers must be a sequence of layer names, not the string {requested!r}; "
            f"write [{requested!r}]"
        )
    wanted = list(requested)
    if not wanted:
        raise ConfigError("layers must name at least one layer, e.g. ['relu4_2']")
    for name in wanted:
        if not isinstance(name, str) or name not in valid:
            raise LayerNotFoundError(_unknown_layer_message(str(name), valid, where))
    chosen = set(wanted)
    return [name for name in valid if name in chosen]


def build_features(
    spec: BackboneSpec,
    depth: int,
    *,
    pooling: Pooling = "max",
    padding: Padding = "zeros",
    keep_conv_outputs: frozenset[int] = frozenset(),
    device: torch.device | str = "meta",
) -> nn.Sequential:
    """Build ``features[: depth + 1]`` of a VGG, with torchvision's module indices.

    Built on the ``meta`` device by default: no memory is allocated and no initialisation runs,
    because the caller assigns real weights right after with ``load_state_dict(assign=True)``.

    Args:
        spec: The backbone's layer table.
        depth: Index of the last module to keep.
        pooling: ``"max"`` (VGG's own) or ``"avg"`` (smoother results, Gatys et al.).
        padding: ``"zeros"`` or ``"replicate"`` for the first convolution (avoids dark borders).
        keep_conv_outputs: Indices of convolutions whose outputs are read; the ReLU right after
            them is built out-of-place so it does not overwrite them.
        device: Where to create the parameters.

    Returns:
        A ``nn.Sequential`` whose state-dict keys are ``"0.weight"``, ``"0.bias"``, ...

    Raises:
        ConfigError: For an unknown ``pooling`` or ``padding``, or ``depth`` out of range.

    Example:
        >>> net = build_features(get_spec("vgg16"), 4)
        >>> len(net), type(net[4]).__name__
        (5, 'MaxPool2d')
    """
    check_network_options(pooling, padding)
    if not 0 <= depth < len(spec.layers):
        raise ConfigError(f"depth must be in [0, {len(spec.layers) - 1}], got {depth}")
    modules: list[nn.Module] = []
    with torch.device(device):
        for i, layer in enumerate(spec.layers[: depth + 1]):
            if layer.kind == "conv":
                mode = padding if i == 0 else "zeros"
                modules.append(
                    nn.Conv2d(
                        layer.in_channels, layer.out_channels, 3, padding=1, padding_mode=mode
                    )
                )
            elif layer.kind == "relu":
                # In place saves one activation per layer, unless the conv output it would
                # overwrite is one of the requested feature maps.
                modules.append(nn.ReLU(inplace=(i - 1) not in keep_conv_outputs))
            else:
                modules.append(nn.MaxPool2d(2, 2) if pooling == "max" else nn.AvgPool2d(2, 2))
    return nn.Sequential(*modules)
