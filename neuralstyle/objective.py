"""Objective: the weighted, balanced loss a run minimizes, as one object other code can hold.

A run of :class:`~neuralstyle.StyleTransfer` minimizes an :class:`Objective`; a training loop
can call the same object as a perceptual loss:

* :meth:`Objective.targets` encodes content and style images once, without gradients;
* calling the objective, ``objective(image, targets)``, gives the total and its per-term
  breakdown, each term balanced and weighted exactly as a run weighs it.

It reads the objective's options from a :class:`~neuralstyle.TransferConfig` (the weights,
``balance``, ``style_loss``, ``gram_normalize``, ``preserve_color``, ``style_blend``) and the
network's runtime options (``device``, ``precision``, ``channels_last``, ``compile``,
``tile_size``); the optimizer and schedule options mean nothing here.
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from neuralstyle._checks import check_float_tensor, check_rank
from neuralstyle.color import match_color
from neuralstyle.config import TransferConfig
from neuralstyle.errors import ConfigError, ShapeError
from neuralstyle.features import FeatureExtractor
from neuralstyle.layers import LayerMap
from neuralstyle.losses import (
    GaussianStatistics,
    content_loss,
    style_loss,
    total_variation,
    wasserstein_style_loss,
)
from neuralstyle.masks import mask_at
from neuralstyle.presets import DEFAULT
from neuralstyle.scales import spatial_size
from neuralstyle.structure import content_weight_maps
from neuralstyle.targets import (
    StyleRegion,
    StyleTarget,
    Targets,
    blend_targets,
    blend_weights,
    check_style_counts,
    content_norms,
    pooled_target,
    style_region,
    style_target,
)
from neuralstyle.tiling import TilePlan

__all__ = ["Loss", "Objective"]

# The most pixels of each style image Targets.palette keeps (evenly strided): enough for its
# colour distribution, and small whatever the style's size.
_PALETTE_PIXELS = 1 << 16


@dataclass(frozen=True)
class Loss:
    """A loss evaluation.

    Attributes:
        total: 0-d total over the batch, the quantity minimized.
        per_item: ``(B,)`` total of each batch item.
        terms: Weighted 0-d terms (``"content/relu4_2"``, ``"style/relu1_1"``, ``"tv"``) summing to
            ``total``.
    """

    total: Tensor
    per_item: Tensor
    terms: Mapping[str, Tensor]

    def detached(self) -> Loss:
        """The same values cut from the graph (what a loop keeps after the backward pass)."""
        terms = {name: value.detach() for name, value in self.terms.items()}
        return Loss(self.total.detach(), self.per_item.detach(), terms)


class Objective:
    """The weighted sum of content, style and total-variation terms on a frozen network.

    Args:
        layer_map: Content and style layers with their weights; defaults to the ``"default"``
            preset's.
        config: The weights and loss options (see the module's docstring for the fields it
            reads); defaults to the ``"default"`` preset's.
        extractor: The network; defaults to the bundled VGG16 truncated to the map's layers.

    Raises:
        LayerNotFoundError: The layer map names a layer the extractor does not provide.
        ConfigError: Every term is weighted 0, or the config's pooling or padding differs from
            the given extractor's.

    Example:
        >>> objective = Objective()  # doctest: +SKIP
        >>> photos = load_image("photo.jpg")  # doctest: +SKIP
        >>> targets = objective.targets(photos, load_image("painting.jpg"))  # doctest: +SKIP
        >>> objective(stylizer(photos), targets).total.backward()  # doctest: +SKIP
    """

    def __init__(
        self,
        layer_map: LayerMap | None = None,
        *,
        config: TransferConfig | None = None,
        extractor: FeatureExtractor | None = None,
    ) -> None:
        self.layer_map = layer_map if layer_map is not None else DEFAULT.layer_map
        self.config = config if config is not None else DEFAULT.config
        self.device = self.config.resolved_device()
        owned = extractor is None
        if extractor is None:
            extractor = FeatureExtractor(
                self.layer_map.layers,
                pooling=self.config.pooling or "max",
                padding=self.config.padding or "zeros",
            )
        _check_extractor_matches(extractor, self.config)
        _check_some_term(self.layer_map, self.config)
        self.layer_map.check_available(extractor.layers)
        self.extractor = extractor.to(self.device)
        self.memory_format = self.config.memory_format(self.device)
        if owned:
            # Only our own network's weights change layout: a caller's extractor keeps giving the
            # caller maps in the layout it had. The input's layout is what picks the fast kernels
            # (features()); the weights' layout changed a convolution's time by under 2%.
            self.extractor = self.extractor.to(memory_format=self.memory_format)
        self._forward: Callable[[Tensor], dict[str, Tensor]] = (
            _compiled(self.extractor) if self.config.compile else self.extractor
        )

    @functools.cached_property
    def tile_plan(self) -> TilePlan | None:
        """How images larger than ``config.tile_size`` are cut into tiles (None without tiling).

        Raises:
            ConfigError: ``tile_size`` is too small for the network's strides.
        """
        if self.config.tile_size is None:
            return None
        return TilePlan.probe(
            self.config.tile_size, self.features, self.extractor.min_size, self.device
        )

    def features(self, image: Tensor) -> dict[str, Tensor]:
        """The extractor's feature maps of ``image`` with the config's precision and memory
        format (gradients flow unless called under ``torch.no_grad()``)."""
        image = image.contiguous(memory_format=self.memory_format)
        with self._autocast():
            return self._forward(image)

    def _autocast(self) -> contextlib.AbstractContextManager[object]:
        dtype = self.config.autocast_dtype(self.device)
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=dtype)

    # -- targets -----------------------------------------------------------------------------------

    @torch.no_grad()
    def targets(
        self,
        content: Tensor,
        styles: Tensor | Sequence[Tensor],
        *,
        style_masks: Sequence[Tensor] | None = None,
        content_mask: Tensor | None = None,
    ) -> Targets:
        """Encode the targets once, without gradients; the output will have ``content``'s size.

        Args:
            content: The content batch ``(B, 3, H, W)``, RGB in [0, 1].
            styles: One style image ``(1, 3, h, w)`` or several, blended with
                ``config.style_blend`` (or given regions by ``style_masks``); each is encoded at
                the size it has.
            style_masks: One ``(1, 1, h, w)`` mask per style with the content's aspect ratio:
                each style applies only inside its mask.
            content_mask: ``(1, 1, h, w)``: where the image may change; outside it the content
                stays as it is.

        Raises:
            ConfigError: The style, blend-weight and mask counts do not go together.
            ShapeError: An image is not ``(B, 3, H, W)``.
        """
        styles = [styles] if isinstance(styles, Tensor) else list(styles)
        mask_count = None if style_masks is None else len(style_masks)
        check_style_counts(self.config, len(styles), mask_count)
        for name, image in [("content", content), *(("style", style) for style in styles)]:
            check_float_tensor(image, name)
            check_rank(image, name, 4, "(B, 3, H, W)")
        content = content.to(self.device)
        size = spatial_size(content)
        plan = self.tile_plan
        if plan is not None and plan.needed(size):
            # Too large for one pass: the whole image's content maps, assembled tile by tile.
            content_layers = list(self.layer_map.content)
            content_targets = plan.content_maps(self.features, content, content_layers)
            shapes = {name: plan.feature_shape(name, size) for name in self.layer_map.style}
        else:
            features = self.features(content)
            content_targets = {name: features[name] for name in self.layer_map.content}
            shapes = {name: spatial_size(features[name]) for name in self.layer_map.style}
        region = None if content_mask is None else mask_at(content_mask.to(self.device), size)
        seen = [self._as_seen(style.to(self.device), content) for style in styles]
        per_style = [self._style_targets(image) for image in seen]
        if style_masks is not None:
            sized = [mask_at(mask.to(self.device), size) for mask in style_masks]
            regions = tuple(
                style_region(found, mask, shapes, self.config, self.device)
                for found, mask in zip(per_style, sized, strict=True)
            )
        else:
            blend = blend_weights(self.config, len(per_style))
            blended = {
                name: blend_targets([found[name] for found in per_style], blend)
                for name in self.layer_map.style
            }
            regions = (style_region(blended, region, shapes, self.config, self.device),)
        norms = content_norms(content_targets, self.config, self.device)
        weights = None
        if self.config.content_structure:
            layer_shapes = {name: spatial_size(maps) for name, maps in content_targets.items()}
            weights = content_weight_maps(content, layer_shapes, self.config.content_structure)
        batch = content.shape[0]
        palette = torch.cat([_palette(image).expand(batch, -1, -1) for image in seen], -1)
        return Targets(
            content,
            content_targets,
            norms,
            regions,
            region,
            content_weights=weights,
            palette=palette.unsqueeze(2),
        )

    def _as_seen(self, style: Tensor, content: Tensor) -> Tensor:
        """A style image as its targets see it: recoloured to each content item's palette when
        ``preserve_color`` matches colours, else as it is."""
        method = self.config.preserve_color
        if method in ("covariance", "histogram"):
            batch = style.expand(content.shape[0], -1, -1, -1)
            return match_color(batch, content, method=method)
        return style

    def _style_targets(self, image: Tensor) -> dict[str, StyleTarget]:
        """One style image's target at every style layer."""
        plan = self.tile_plan
        if plan is not None and plan.needed(spatial_size(image)):
            # Too large for one pass: pool the statistics of tile cores (they are sums over
            # positions, so the pooled targets are the whole image's).
            layers = list(self.layer_map.style)
            found = plan.core_statistics(self.features, image, layers, self._style_target)
            return {name: pooled_target(parts, self.config) for name, parts in found.items()}
        features = self.features(image)
        return {name: self._style_target(features[name]) for name in self.layer_map.style}

    def _style_target(self, features: Tensor, mask: Tensor | None = None) -> StyleTarget:
        return style_target(features, self.config, mask)

    # -- the loss ----------------------------------------------------------------------------------

    def visible(self, image: Tensor, targets: Targets) -> Tensor:
        """The picture an optimized image stands for: itself, or inside the content mask only.

        Outside the mask the content shows through unchanged, so gradients never move those
        pixels and a soft mask edge blends the two.
        """
        if targets.content_mask is None:
            return image
        return torch.lerp(targets.content_image, image, targets.content_mask)

    def __call__(self, image: Tensor, targets: Targets) -> Loss:
        """Evaluate the weighted objective of ``image`` against ``targets`` (one forward pass).

        Args:
            image: ``(B, 3, H, W)`` RGB, the content batch's shape.
            targets: From :meth:`targets`.

        Returns:
            The :class:`Loss` with the total, per-item totals and per-term breakdown; gradients
            flow to ``image``.

        Raises:
            ShapeError: ``image`` does not match the content batch's shape.
        """
        check_float_tensor(image, "image")
        check_rank(image, "image", 4, "(B, 3, H, W)")
        if image.shape != targets.content_image.shape:
            raise ShapeError(
                f"image must have the content batch's shape {tuple(targets.content_image.shape)}, "
                f"got {tuple(image.shape)}"
            )
        image = self.visible(image, targets)
        features = self.features(image)
        config = self.config
        per_term: dict[str, Tensor] = {}
        for name, weight in self.layer_map.content.items():
            if weight and config.content_weight:
                value = _content_value(features[name], targets, name)
                per_term[f"content/{name}"] = (
                    value * targets.content_norm[name] * (weight * config.content_weight)
                )
        for name, weight in self.layer_map.style.items():
            if weight and config.style_weight:
                first, *others = targets.styles
                value = self._region_loss(features[name], first, name)
                for region in others:
                    value = value + self._region_loss(features[name], region, name)
                per_term[f"style/{name}"] = value * (weight * config.style_weight)
        if config.tv_weight:
            per_term["tv"] = total_variation(image, reduction="none") * config.tv_weight
        per_item = torch.stack(list(per_term.values())).sum(0)
        terms = {name: value.sum() for name, value in per_term.items()}
        return Loss(total=per_item.sum(), per_item=per_item, terms=terms)

    def _region_loss(self, features: Tensor, region: StyleRegion, name: str) -> Tensor:
        """One region's ``(B,)`` style loss at one layer, normalized and weighted by its share."""
        target = region.targets[name]
        mask = None if region.masks is None else region.masks[name]
        if isinstance(target, GaussianStatistics):
            value = wasserstein_style_loss(features, target, reduction="none", mask=mask)
        else:
            normalize = self.config.gram_normalize
            value = style_loss(features, target, normalize=normalize, reduction="none", mask=mask)
        if region.masks is None:
            return value * region.norms[name]
        return value * (region.norms[name] * region.share)


def _compiled(extractor: FeatureExtractor) -> Callable[[Tensor], dict[str, Tensor]]:
    """``torch.compile(extractor)``, quiet about the one warning every call of ours would raise.

    The optimized image reaches the network as a non-leaf tensor (masked, or converted to
    channels-last); when dynamo wraps such an input it reads its ``.grad``, which makes torch
    warn that a non-leaf's ``.grad`` is never populated. We never use that ``.grad``: the
    warning says nothing to the caller, and under ``-W error`` it would stop the run.
    """
    compiled = torch.compile(extractor)

    def forward(image: Tensor) -> dict[str, Tensor]:
        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore",
                message="The .grad attribute of a Tensor that is not a leaf",
                category=UserWarning,
            )
            features: dict[str, Tensor] = compiled(image)
        return features

    return forward


def _check_some_term(layer_map: LayerMap, config: TransferConfig) -> None:
    """Refuse an objective whose every term is weighted 0: it would have nothing to minimize."""
    content = config.content_weight and any(layer_map.content.values())
    style = config.style_weight and any(layer_map.style.values())
    if not (content or style or config.tv_weight):
        raise ConfigError(
            "no term left to optimize: content_weight, style_weight and tv_weight (with the "
            "layer map's weights) are all 0; give at least one of them a weight > 0"
        )


def _check_extractor_matches(extractor: FeatureExtractor, config: TransferConfig) -> None:
    """A given extractor must have the pooling and padding a (deprecated) config option asks."""
    for option in ("pooling", "padding"):
        wanted, built = getattr(config, option), getattr(extractor, option)
        if wanted is not None and wanted != built:
            raise ConfigError(
                f"the config asks for {option}={wanted!r} but the extractor was built with "
                f"{option}={built!r}; leave the config's {option} unset (it is deprecated: the "
                "extractor's own option decides) or build the extractor with "
                f"FeatureExtractor(..., {option}={wanted!r})"
            )


def _content_value(features: Tensor, targets: Targets, name: str) -> Tensor:
    """``(B,)`` content loss of one layer: the mean squared error over the positions
    ``targets.counted`` keeps, each position weighted by ``targets.content_weights``."""
    target = targets.content[name]
    if targets.content_weights is not None:
        # Scaling both by sqrt(weight) weighs each position's squared error by the weight.
        root = targets.content_weights[name].sqrt()
        features, target = features * root, target * root
    if targets.counted is None:
        return content_loss(features, target, reduction="none")
    counted = targets.counted[name]
    # Zeroed outside, the mean over all positions is the sum inside over all positions:
    # rescale it to the mean over the counted ones.
    value = content_loss(features * counted, target * counted, reduction="none")
    return value * (counted.numel() / counted.sum().clamp_min(1))


def _palette(image: Tensor) -> Tensor:
    """Up to ``_PALETTE_PIXELS`` of ``image``'s pixels, evenly strided, ``(B, 3, N)``."""
    pixels = image.flatten(2)
    stride = -(-pixels.shape[-1] // _PALETTE_PIXELS)
    return pixels[..., ::stride]
