"""FeatureExtractor: RGB images in, the feature maps of named layers out, in one forward pass.

The network is truncated after the deepest requested layer, frozen and kept in eval mode. The
input convention of the weights (ImageNet mean/std, Caffe BGR 0..255) is applied inside, so every
caller passes RGB in [0, 1]. No hooks: the VGG path iterates its ``nn.Sequential`` and collects
outputs; a non-sequential custom module goes through torchvision's ``create_feature_extractor``
on a private copy.
"""

from __future__ import annotations

import copy
import os
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Literal, TypeVar

import torch
from torch import Tensor, nn

from neuralstyle._checks import check_float_tensor, check_rank
from neuralstyle.backbones import (
    IDENTITY,
    InputConvention,
    Padding,
    Pooling,
    available_layers,
    build_features,
    check_network_options,
    get_spec,
    resolve_convention,
    resolve_layer_names,
)
from neuralstyle.errors import (
    ConfigError,
    DeviceMismatchError,
    LayerNotFoundError,
    ShapeError,
    closest_names,
)
from neuralstyle.weights import resolve_weights

# InputConvention and available_layers are re-exported: callers of the extractor need them too.
__all__ = ["FeatureExtractor", "InputConvention", "available_layers"]

_Self = TypeVar("_Self", bound="FeatureExtractor")
_CUSTOM = "the custom module"


class FeatureExtractor(nn.Module):
    """Feature maps of named layers of a frozen, truncated CNN, for RGB images in [0, 1].

    Built-in backbones are VGG16 (default, bundled offline weights) and VGG19 (torchvision's
    ImageNet weights), with the paper's layer names (``conv1_1``, ``relu1_1``, ..., ``pool5``; see
    ``neuralstyle.available_layers``). Any ``nn.Module`` works too, with ``layer_names``
    mapping your names to its module paths (``{"relu1_1": "1"}`` for a ``nn.Sequential``) or to
    torchvision ``feature_extraction`` node names for non-sequential models.

    The extractor is frozen (``requires_grad=False``) and always in eval mode: ``.train()`` keeps
    it in eval so batch-norm statistics of a custom module never drift. The caller's module is
    copied, never modified.

    Args:
        layers: Layer names to return. Order and duplicates do not matter; the output follows
            network order.
        backbone: ``"vgg16"``, ``"vgg19"`` or your own ``nn.Module``.
        weights: For VGG: ``"bundled"`` (VGG16 only, through ``relu5_1``), ``"imagenet"``,
            ``"random"``, or a local state-dict file. ``None`` means ``"bundled"`` for VGG16 and
            ``"imagenet"`` for VGG19. Must be ``None`` for a custom module (it has its own).
        layer_names: Custom modules only: your layer name -> module path or node name. ``None``
            means the requested names are the paths themselves.
        convention: How RGB [0, 1] becomes the network's input. ``None`` takes the weights' own
            (Caffe for the bundled file, ImageNet for torchvision's, inferred for a local file)
            and ``"identity"`` for a custom module.
        pooling: ``"max"`` or ``"avg"`` (replaces every max pooling, custom modules included).
        padding: ``"zeros"`` or ``"replicate"`` for the first convolution.
        seed: Seed for ``weights="random"`` (a private generator; the global RNG is untouched).

    Attributes:
        layers: The requested layers, in network order.
        convention: The input convention applied in ``forward``.
        backbone_name: ``"vgg16"``, ``"vgg19"`` or ``"custom"``.
        source: Where the weights came from (``"bundled"``, a path, ``"random(seed=0)"``, ...).
        min_size: Smallest input height/width that still gives every layer a non-empty map
            (worked out for VGG and custom ``nn.Sequential`` modules; 1 for other modules).
        pooling: The pooling it was built with.
        padding: The first convolution's padding it was built with.

    Raises:
        LayerNotFoundError: A layer or module path the network does not have (closest names in
            the message).
        ConfigError: Inconsistent options (bundled weights past ``relu5_1``, ``layer_names`` for
            a VGG, ``weights`` for a custom module, unknown pooling/padding/convention).
        WeightsNotFoundError: Weights file missing, or ImageNet weights offline.
        WeightsError: Corrupt, unsafe or non-fitting weights.

    Example:
        >>> extractor = FeatureExtractor(["relu1_1", "relu4_2"])
        >>> feats = extractor(torch.rand(1, 3, 64, 64))
        >>> {name: tuple(f.shape) for name, f in feats.items()}
        {'relu1_1': (1, 64, 64, 64), 'relu4_2': (1, 512, 8, 8)}
    """

    layers: tuple[str, ...]
    convention: InputConvention
    backbone_name: str
    source: str
    min_size: int
    _multiplier: Tensor
    _offset: Tensor

    def __init__(
        self,
        layers: Sequence[str],
        *,
        backbone: Literal["vgg16", "vgg19"] | nn.Module = "vgg16",
        weights: str | os.PathLike[str] | None = None,
        layer_names: Mapping[str, str] | None = None,
        convention: InputConvention | Literal["imagenet", "caffe", "identity"] | None = None,
        pooling: Pooling = "max",
        padding: Padding = "zeros",
        seed: int = 0,
    ) -> None:
        super().__init__()
        chosen = resolve_convention(convention) if convention is not None else None
        if isinstance(backbone, nn.Module):
            if weights is not None:
                raise ConfigError(
                    "weights applies to the built-in VGG backbones; load your module's weights "
                    "before passing it"
                )
            self._init_custom(backbone, layers, layer_names, pooling, padding)
            chosen = chosen if chosen is not None else IDENTITY
        else:
            if layer_names is not None:
                raise ConfigError(
                    f"layer_names is for a custom nn.Module; {backbone!r} uses the paper's names "
                    "(see available_layers())"
                )
            chosen = self._init_vgg(backbone, layers, weights, chosen, pooling, padding, seed)
        self.convention = chosen
        self.pooling: Pooling = pooling
        self.padding: Padding = padding
        self._set_preprocessing(chosen)
        self.requires_grad_(False)
        self.eval()

    def _init_vgg(
        self,
        backbone: str,
        layers: Sequence[str],
        weights: str | os.PathLike[str] | None,
        convention: InputConvention | None,
        pooling: Pooling,
        padding: Padding,
        seed: int,
    ) -> InputConvention:
        spec = get_spec(backbone)
        names = resolve_layer_names(layers, spec.names, spec.name)
        indices = [spec.index(name) for name in names]
        depth = max(indices)
        default = "bundled" if spec.name == "vgg16" else "imagenet"
        source = weights if weights is not None else default
        resolved = resolve_weights(source, spec, depth, convention=convention, seed=seed)
        keep = frozenset(i for i in indices if spec.layers[i].kind == "conv")
        body = build_features(spec, depth, pooling=pooling, padding=padding, keep_conv_outputs=keep)
        body.load_state_dict(resolved.state_dict, assign=True)
        self.body: nn.Module = body
        self._taps: tuple[tuple[str, ...], ...] | None = tuple(
            (spec.names[i],) if i in indices else () for i in range(depth + 1)
        )
        self.layers = tuple(names)
        self.backbone_name = spec.name
        self.source = resolved.source
        self.min_size = spec.min_size(depth)
        return resolved.convention

    def _init_custom(
        self,
        module: nn.Module,
        layers: Sequence[str],
        layer_names: Mapping[str, str] | None,
        pooling: Pooling,
        padding: Padding,
    ) -> None:
        if isinstance(layers, str):
            resolve_layer_names(layers, (), _CUSTOM)  # raises the single-string error
        mapping = dict(layer_names) if layer_names is not None else {name: name for name in layers}
        names = resolve_layer_names(layers, list(mapping), _CUSTOM)
        children = [name for name, _ in module.named_children()]
        paths = [mapping[name] for name in names]
        if isinstance(module, nn.Sequential) and all(path in children for path in paths):
            self._init_sequential(module, names, paths, children, pooling, padding)
        else:
            self._init_graph(module, names, paths, pooling, padding)
        self.backbone_name = "custom"
        self.source = type(module).__name__

    def _init_sequential(
        self,
        module: nn.Sequential,
        names: list[str],
        paths: list[str],
        children: list[str],
        pooling: Pooling,
        padding: Padding,
    ) -> None:
        position = {path: children.index(path) for path in paths}
        depth = max(position.values())
        kept = OrderedDict(
            (name, copy.deepcopy(child))
            for name, child in list(module.named_children())[: depth + 1]
        )
        body = _prepare_copy(nn.Sequential(kept), pooling, padding)
        taps: list[list[str]] = [[] for _ in range(depth + 1)]
        for name, path in sorted(
            zip(names, paths, strict=True), key=lambda item: position[item[1]]
        ):
            taps[position[path]].append(name)
        self.body = body
        self._taps = tuple(tuple(tap) for tap in taps)
        self.layers = tuple(name for tap in taps for name in tap)
        self.min_size = _min_input_size(list(body.children()))

    def _init_graph(
        self,
        module: nn.Module,
        names: list[str],
        paths: list[str],
        pooling: Pooling,
        padding: Padding,
    ) -> None:
        # Deferred: importing torch.fx machinery is only worth it for non-sequential modules.
        from torchvision.models.feature_extraction import (  # type: ignore[import-untyped]
            create_feature_extractor,
            get_graph_node_names,
        )

        private = _prepare_copy(copy.deepcopy(module), pooling, padding)
        nodes = get_graph_node_names(private)[1]
        order = {path: _node_position(path, nodes) for path in paths}
        ranked = sorted(zip(names, paths, strict=True), key=lambda item: order[item[1]])
        self.body = create_feature_extractor(
            private, return_nodes={path: name for name, path in ranked}
        )
        self._taps = None
        self.layers = tuple(name for name, _ in ranked)
        # A traced graph's sizes are not worked out; its own layers report a too-small input.
        self.min_size = 1

    def _set_preprocessing(self, convention: InputConvention) -> None:
        reference = next(self.body.parameters(), None)
        device = reference.device if reference is not None else torch.device("cpu")
        dtype = reference.dtype if reference is not None else torch.float32
        multiplier, offset = convention.affine()
        self.register_buffer("_multiplier", multiplier.to(device, dtype), persistent=False)
        self.register_buffer("_offset", offset.to(device, dtype), persistent=False)
        self._flip = convention.channel_order == "bgr"
        self._identity = convention.is_identity

    if TYPE_CHECKING:  # nn.Module.__call__ returns Any; give callers the real type

        def __call__(self, image: Tensor) -> dict[str, Tensor]: ...

    def train(self: _Self, mode: bool = True) -> _Self:
        """Keep eval mode whatever ``mode`` says: the extractor is a frozen measuring device.

        Args:
            mode: Ignored.

        Returns:
            ``self``, in eval mode.

        Example:
            >>> FeatureExtractor(["relu1_1"]).train().training
            False
        """
        return super().train(False)

    def extra_repr(self) -> str:
        """One line with the layers, backbone, weights and convention."""
        return (
            f"layers={self.layers}, backbone={self.backbone_name!r}, source={self.source!r}, "
            f"convention={self.convention.name!r}"
        )

    def _check(self, image: Tensor) -> None:
        check_float_tensor(image, "image")
        check_rank(image, "image", 4, "(B, 3, H, W)")
        if image.shape[1] != 3:
            raise ShapeError(
                f"image must be RGB (B, 3, H, W), got {image.shape[1]} channels in shape "
                f"{tuple(image.shape)}"
            )
        if min(image.shape[-2:]) < self.min_size:
            raise ShapeError(
                f"image is {image.shape[-2]}x{image.shape[-1]}; {self.layers[-1]} needs height "
                f"and width of at least {self.min_size}"
            )
        if image.device != self._offset.device:
            raise DeviceMismatchError(
                f"image is on {image.device} but the extractor is on {self._offset.device}; "
                "move one with .to(device)"
            )

    def preprocess(self, image: Tensor) -> Tensor:
        """Apply the input convention to an RGB ``(B, 3, H, W)`` batch in [0, 1].

        Args:
            image: RGB float tensor in [0, 1].

        Returns:
            The network's input, in the extractor's dtype.

        Example:
            >>> FeatureExtractor(["relu1_1"]).preprocess(torch.zeros(1, 3, 1, 1)).flatten()
            tensor([-104.0070, -116.6688, -122.6789])
        """
        image = image.to(self._offset.dtype)
        if self._identity:
            return image
        ordered = image.flip(1) if self._flip else image
        return torch.addcmul(self._offset, ordered, self._multiplier)

    def forward(self, image: Tensor) -> dict[str, Tensor]:
        """Feature maps of the requested layers.

        Only metadata is checked (no device sync), so this is safe in an optimisation loop.

        Args:
            image: RGB float tensor ``(B, 3, H, W)`` in [0, 1], on the extractor's device; any
                memory format (``channels_last`` works).

        Returns:
            ``{layer: (B, C, H', W') tensor}`` in network order.

        Raises:
            DTypeError: Non-floating input.
            ShapeError: Not ``(B, 3, H, W)``, or smaller than ``min_size``.
            DeviceMismatchError: Image and extractor on different devices.

        Example:
            >>> feats = FeatureExtractor(["relu1_1"])(torch.rand(2, 3, 32, 32))
            >>> tuple(feats["relu1_1"].shape)
            (2, 64, 32, 32)
        """
        self._check(image)
        x = self.preprocess(image)
        if self._taps is None:
            outputs: dict[str, Tensor] = self.body(x)
            return outputs
        features: dict[str, Tensor] = {}
        for module, names in zip(self.body.children(), self._taps, strict=True):
            x = module(x)
            for name in names:
                features[name] = x
        return features


def _prepare_copy(module: nn.Module, pooling: Pooling, padding: Padding) -> nn.Module:
    """Apply the options to a private copy, and make every in-place op out-of-place.

    An in-place ReLU right after a returned layer would overwrite that layer's output.
    """
    check_network_options(pooling, padding)
    for child in module.modules():
        if getattr(child, "inplace", False) is True:
            child.inplace = False  # type: ignore[assignment]
    if pooling == "avg":
        _replace_max_pooling(module)
    if padding == "replicate":
        first = next((m for m in module.modules() if isinstance(m, nn.Conv2d)), None)
        if first is None:
            raise ConfigError("padding='replicate' needs a nn.Conv2d in the custom module")
        first.padding_mode = "replicate"
    return module


def _replace_max_pooling(module: nn.Module) -> None:
    for name, child in module.named_children():
        if isinstance(child, nn.MaxPool2d):
            average = nn.AvgPool2d(
                child.kernel_size, child.stride, child.padding, ceil_mode=child.ceil_mode
            )
            setattr(module, name, average)
        else:
            _replace_max_pooling(child)


def _node_position(path: str, nodes: list[str]) -> int:
    """Index of a node, or of the last node under a module path (as create_feature_extractor)."""
    if path in nodes:
        return nodes.index(path)
    inside = [i for i, node in enumerate(nodes) if node.startswith(path + ".")]
    if inside:
        return inside[-1]
    close = closest_names(path, nodes)
    hint = f"closest: {', '.join(repr(c) for c in close)}" if close else f"nodes: {nodes[:6]}"
    raise LayerNotFoundError(f"{path!r} is not a module path or node of {_CUSTOM}; {hint}")


# Largest input side tried when working out a custom module's min_size.
_MAX_SIDE = 1 << 16


def _min_input_size(modules: Sequence[nn.Module]) -> int:
    """Smallest square input side for which every module in ``modules`` gives a non-empty map.

    Convolutions and poolings shrink a map by their kernel, stride, padding and dilation; other
    modules are taken to keep its size (activations, norms, dropout). A map never shrinks when the
    input grows, so doubling and then bisecting finds the bound. Returns 1 when even
    ``_MAX_SIDE`` does not fit: the network's own error is then the better message.

    Example:
        >>> _min_input_size([nn.Conv2d(3, 8, 3), nn.MaxPool2d(2), nn.Conv2d(8, 8, 3, padding=1)])
        4
    """
    if not _fits(modules, _MAX_SIDE):
        return 1
    high = 1
    while not _fits(modules, high):
        high *= 2
    low = high // 2  # does not fit (0 stands for "nothing below 1")
    while high - low > 1:
        middle = (low + high) // 2
        if _fits(modules, middle):
            high = middle
        else:
            low = middle
    return high


def _fits(modules: Sequence[nn.Module], side: int) -> bool:
    """Whether a ``side x side`` input leaves every module's output non-empty."""
    sizes = (side, side)
    for module in _leaves(modules):
        sizes = _output_sizes(module, sizes)
        if min(sizes) < 1:
            return False
    return True


def _leaves(modules: Sequence[nn.Module]) -> Iterator[nn.Module]:
    """The modules in forward order, nested ``nn.Sequential`` containers opened."""
    for module in modules:
        if isinstance(module, nn.Sequential):
            yield from _leaves(list(module.children()))
        else:
            yield module


def _output_sizes(module: nn.Module, sizes: tuple[int, int]) -> tuple[int, int]:
    """The ``(height, width)`` a 2-d convolution or pooling makes of ``sizes``, as torch does."""
    if isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
        wanted = module.output_size
        targets = wanted if isinstance(wanted, tuple) else (wanted, wanted)
        return (targets[0] or sizes[0], targets[-1] or sizes[1])
    if isinstance(module, nn.Conv2d):
        if module.padding == "same":
            return sizes
        padding = (0, 0) if module.padding == "valid" else module.padding
        conv = (module.kernel_size, module.stride, padding, module.dilation)
        return _windowed(sizes, conv, ceil=False)
    if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
        stride = module.stride if module.stride is not None else module.kernel_size
        dilation = module.dilation if isinstance(module, nn.MaxPool2d) else 1
        pool = (module.kernel_size, stride, module.padding, dilation)
        return _windowed(sizes, pool, ceil=bool(module.ceil_mode))
    return sizes


def _pair(value: object) -> tuple[int, int] | None:
    """An int or a 1- or 2-tuple of ints as ``(height, width)``; None for anything else."""
    if isinstance(value, int):
        return value, value
    if isinstance(value, (tuple, list)) and value and all(isinstance(v, int) for v in value):
        return int(value[0]), int(value[-1])
    return None


def _windowed(
    sizes: tuple[int, int], window: tuple[object, object, object, object], *, ceil: bool
) -> tuple[int, int]:
    """Output sizes of a sliding window (kernel, stride, padding, dilation), rounded as torch
    rounds them (``pooling_output_shape``); an unreadable window keeps the sizes."""
    pairs = [_pair(value) for value in window]
    if any(pair is None for pair in pairs):
        return sizes
    kernel, stride, padding, dilation = (pair for pair in pairs if pair is not None)
    out = []
    for n, k, s, p, d in zip(sizes, kernel, stride, padding, dilation, strict=True):
        span = d * (k - 1) + 1
        size = (n + 2 * p - span + (s - 1 if ceil else 0)) // s + 1
        # In ceil mode the last window must start inside the input or its left padding.
        if ceil and (size - 1) * s >= n + p:
            size -= 1
        out.append(size)
    return out[0], out[1]
