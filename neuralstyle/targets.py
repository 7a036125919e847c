"""What a run aims at: the target dataclasses, and how targets are built from feature maps.

:class:`~neuralstyle.transfer.StyleTransfer` runs the network and decides which images to encode
at which size; the functions here turn the feature maps it gets into content norms, style targets
(Gram matrices or Gaussian statistics), blends of several styles and masked style regions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from neuralstyle.config import TransferConfig
from neuralstyle.errors import ConfigError
from neuralstyle.image import ImageSource
from neuralstyle.losses import (
    GaussianStatistics,
    blend_statistics,
    gaussian_statistics,
    gram_matrix,
)
from neuralstyle.masks import mask_at

__all__ = [
    "RunInputs",
    "StyleRegion",
    "StyleTarget",
    "Targets",
    "blend_targets",
    "blend_weights",
    "content_norms",
    "pooled_target",
    "style_region",
    "style_target",
]

StyleTarget = Tensor | GaussianStatistics
"""One style layer's target: a Gram matrix ``(1, C, C)`` or the Gaussian statistics."""


@dataclass(frozen=True)
class StyleRegion:
    """One style's pull on the image: what it aims at, and where.

    Attributes:
        targets: Layer -> Gram matrix ``(1, C, C)`` or
            :class:`~neuralstyle.losses.GaussianStatistics`.
        norms: Layer -> 0-d factor applied to that layer's loss (the inverse target magnitude,
            or 1 when ``balance="none"``).
        masks: Layer -> region mask ``(1, 1, h, w)`` at that layer's size, or None for the whole
            image.
        share: ``(1,)`` fraction of the image the region covers (its mask's mean; 1 without a
            mask). Each region's loss is weighted by it, so every pixel feels the same pull
            whether the image has one style or several regions, and a mask of ones gives the
            unmasked run.
    """

    targets: Mapping[str, StyleTarget]
    norms: Mapping[str, Tensor]
    masks: Mapping[str, Tensor] | None
    share: Tensor


@dataclass(frozen=True)
class RunInputs:
    """A run's inputs, loaded and checked once at the output size (see
    :meth:`StyleTransfer.load_inputs`); every scale is encoded from them.

    Attributes:
        content_image: The content batch ``(B, 3, H, W)`` at the output size.
        styles: The style images as given (each is loaded at the size a scale needs).
        style_masks: One ``(1, 1, H, W)`` mask per style, or None.
        content_mask: The ``(1, 1, H, W)`` content mask, or None.
    """

    content_image: Tensor
    styles: tuple[ImageSource, ...]
    style_masks: tuple[Tensor, ...] | None
    content_mask: Tensor | None


@dataclass(frozen=True)
class Targets:
    """What a run aims at, encoded once under ``torch.no_grad()``.

    Attributes:
        content_image: The content batch ``(B, 3, H, W)`` on the run's device.
        content: Layer -> content feature maps ``(B, C, h, w)``.
        content_norm: Layer -> factor applied to that layer's content loss (``(B,)`` inverse mean
            square of each item's target, or 1 when ``balance="none"``).
        styles: The style regions: one for a single style or a blend, one per style image when
            style masks assign them regions.
        content_mask: ``(1, 1, H, W)`` where the image may change (1) and where it stays the
            content (0), or None for everywhere.
        counted: Layer -> ``(1, 1, h, w)`` 0/1 map of the feature positions the content loss
            counts (a tile's core, see :mod:`neuralstyle.tiling`; style regions carry theirs in
            their masks), or None for every position.
        content_weights: Layer -> ``(B, 1, h, w)`` weight of each feature position in the
            content loss, mean 1 (the photo's local detail, see
            :mod:`neuralstyle.structure`), or None for the same weight everywhere.
        palette: The style images' pixels pooled, ``(B, 3, 1, N)`` (an even sample of up to
            65,536 of each image's), recoloured as their targets were (``preserve_color``): the
            colours ``init="recolored"`` starts from; None when the targets were built without
            them.
    """

    content_image: Tensor
    content: Mapping[str, Tensor]
    content_norm: Mapping[str, Tensor]
    styles: tuple[StyleRegion, ...]
    content_mask: Tensor | None = None
    counted: Mapping[str, Tensor] | None = None
    content_weights: Mapping[str, Tensor] | None = None
    palette: Tensor | None = None


def style_target(
    features: Tensor, config: TransferConfig, mask: Tensor | None = None
) -> StyleTarget:
    """The target of one style layer's ``features``: the config's style statistic, in float32."""
    if config.style_loss == "wasserstein":
        return gaussian_statistics(features.float(), mask=mask)
    return gram_matrix(features.float(), normalize=config.gram_normalize, mask=mask)


def blend_weights(config: TransferConfig, count: int) -> tuple[float, ...]:
    """The weight of each of ``count`` styles: ``config.style_blend``, or equal weights.

    Raises:
        ConfigError: No style, or a blend with a different count.
    """
    if count == 0:
        raise ConfigError("style is an empty list; pass at least one style image")
    blend = config.style_blend
    if blend is None:
        return (1.0,) * count
    if len(blend) != count:
        raise ConfigError(
            f"style_blend has {len(blend)} weights for {count} style images; give one weight "
            "per style image"
        )
    return blend


def check_style_counts(config: TransferConfig, styles: int, masks: int | None = None) -> None:
    """The one place that says how many styles, blend weights and style masks go together.

    The library checks it before any work and the command line before loading the network.

    Args:
        config: Its ``style_blend`` is checked.
        styles: How many style images.
        masks: How many style masks, or None for none.

    Raises:
        ConfigError: No style, a blend with another count, masks with a blend, or masks with
            another count.
    """
    blend_weights(config, styles)
    if masks is None:
        return
    if config.style_blend is not None:
        raise ConfigError(
            "style_blend mixes the styles everywhere while style masks give each style a "
            "region; pass one or the other"
        )
    if masks != styles:
        raise ConfigError(
            f"got {masks} style masks for {styles} style images; give one mask per style "
            "image, in the same order"
        )


def blend_targets(targets: Sequence[StyleTarget], weights: Sequence[float]) -> StyleTarget:
    """One style's target, or the weighted blend of several (Grams average linearly)."""
    if len(targets) == 1:
        return targets[0]
    if all(isinstance(t, GaussianStatistics) for t in targets):
        return blend_statistics([t for t in targets if isinstance(t, GaussianStatistics)], weights)
    total = float(sum(weights))
    grams = [t for t in targets if isinstance(t, Tensor)]
    return sum(
        (w / total * g for w, g in zip(weights, grams, strict=True)), torch.zeros_like(grams[0])
    )


def pooled_target(parts: Sequence[tuple[int, StyleTarget]], config: TransferConfig) -> StyleTarget:
    """Whole-image target from the targets of disjoint parts with their position counts."""
    targets = [target for _, target in parts]
    grams = [target for target in targets if isinstance(target, Tensor)]
    if config.gram_normalize == "none" and grams:
        return torch.stack(grams).sum(0)  # unnormalized Grams are plain sums: they add up
    return blend_targets(targets, [float(count) for count, _ in parts])


def content_norms(
    content: Mapping[str, Tensor], config: TransferConfig, device: torch.device
) -> dict[str, Tensor]:
    """Per-layer content factors: inverse target magnitudes when balancing, else ones."""
    if config.balance == "none":
        return dict.fromkeys(content, torch.ones((), device=device))
    return {name: 1 / _mean_square(f).clamp_min(1e-12) for name, f in content.items()}


def style_region(
    targets: dict[str, StyleTarget],
    mask: Tensor | None,
    shapes: Mapping[str, tuple[int, int]],
    config: TransferConfig,
    device: torch.device,
) -> StyleRegion:
    """A style's region: its targets, their balancing norms, and its mask at every layer's size.

    Args:
        targets: Layer -> style target.
        mask: ``(1, 1, H, W)`` where the style applies, or None for everywhere.
        shapes: Layer -> feature map ``(h, w)``, the sizes the mask is taken to.
        config: Its ``balance`` decides the norms.
        device: Where the norms and share live.
    """
    if config.balance == "none":
        norms = dict.fromkeys(targets, torch.ones((), device=device))
    else:
        norms = {name: 1 / _target_magnitude(t).clamp_min(1e-24) for name, t in targets.items()}
    if mask is None:
        return StyleRegion(targets, norms, None, torch.ones(1, device=device))
    masks = {name: mask_at(mask, shape) for name, shape in shapes.items()}
    return StyleRegion(targets, norms, masks, mask.flatten(1).mean(1))


def _mean_square(features: Tensor) -> Tensor:
    """Per-item mean of squares of ``(B, C, H, W)`` features, shape ``(B,)``."""
    return features.float().square().flatten(1).mean(1)


def _target_magnitude(target: StyleTarget) -> Tensor:
    """The loss a zero image would have against ``target``: what "all of the style" weighs."""
    if isinstance(target, GaussianStatistics):
        channels = target.mean.shape[-1]
        trace = torch.diagonal(target.covariance, dim1=-2, dim2=-1).sum(-1)
        return ((target.mean.square().sum(-1) + trace) / channels).mean()
    return target.square().mean()
