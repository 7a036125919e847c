"""StyleTransfer: wires a feature extractor, a layer map and the losses into an optimization loop.

The loop is built from seams other code can call on its own:

* :meth:`StyleTransfer.targets` encodes the content and style once, without gradients;
* :meth:`StyleTransfer.initial_image` and :meth:`StyleTransfer.make_optimizer` set up a run;
* :meth:`StyleTransfer.loss` gives the total and its per-term breakdown for any image;
* :meth:`StyleTransfer.step` does one update;
* :meth:`StyleTransfer.start` returns an iterator of :class:`~neuralstyle.callbacks.StepState`;
* :meth:`StyleTransfer.run` drives that iterator with callbacks and returns a
:class:`TransferResult`.

Nothing in a step reads a value back to the host, so a GPU never waits for Python.
"""

from __future__ import annotations

import contextlib
import functools
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import cast

import torch
from torch import Tensor

from neuralstyle._checks import check_float_tensor, check_rank
from neuralstyle.callbacks import Callback, DivergenceGuard, LossHistory
from neuralstyle.color import match_color, transfer_luminance
from neuralstyle.config import TransferConfig
from neuralstyle.errors import ConfigError, ShapeError
from neuralstyle.features import FeatureExtractor
from neuralstyle.image import ImageSource, load_image
from neuralstyle.layers import LayerMap
from neuralstyle.lbfgs import scaled_backward
from neuralstyle.losses import (
    GaussianStatistics,
    content_loss,
    style_loss,
    total_variation,
    wasserstein_style_loss,
)
from neuralstyle.masks import load_mask, mask_at
from neuralstyle.presets import DEFAULT, Preset, get_preset
from neuralstyle.run import TransferRun
from neuralstyle.scales import resize, spatial_size
from neuralstyle.targets import (
    RunInputs,
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

__all__ = ["NOISE_MEAN", "NOISE_STD", "Loss", "StyleTransfer", "TransferResult"]

NOISE_MEAN = (0.485, 0.456, 0.406)
"""The colour ``init="noise"`` starts from: ImageNet's mean, a neutral grey the networks know."""
NOISE_STD = 0.001 / 256
"""The spread of ``init="noise"`` around :data:`NOISE_MEAN`: neural-style's ``-init random``
(0.001 in its 0..256 pixel units). Faint on purpose: the optimizer paints on a blank canvas, and
strong noise (uniform in [0, 1]) survives hundreds of L-BFGS steps as coloured speckle."""

ImageSources = ImageSource | list[ImageSource] | tuple[ImageSource, ...]
"""One image, or a list/tuple of images (a content batch, or styles to blend)."""


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


@dataclass(frozen=True)
class TransferResult:
    """The outcome of :meth:`StyleTransfer.run`.

    Attributes:
        image: The final image ``(B, 3, H, W)``, RGB in [0, 1] (see :meth:`StyleTransfer.output`).
        best_image: The image with the lowest loss seen (per batch item).
        best_loss: That lowest total loss (summed over the batch).
        history: Loss term -> value at every step (``"total"`` included).
        steps_done: Steps completed.
        stop_reason: Why the run ended early, or None.
        seconds: Wall time of the whole run, targets included.
        seconds_targets: Wall time spent encoding the targets.
    """

    image: Tensor
    best_image: Tensor
    best_loss: float
    history: dict[str, list[float]]
    steps_done: int
    stop_reason: str | None
    seconds: float
    seconds_targets: float

    @property
    def seconds_per_step(self) -> float:
        """Mean optimization time per step."""
        return (self.seconds - self.seconds_targets) / max(self.steps_done, 1)


_GUARD = DivergenceGuard()
"""The guard every :class:`StyleTransfer` uses unless told otherwise (it keeps no state)."""


class StyleTransfer:
    """Optimizes an image to have one image's content and another's style.

    Args:
        layer_map: Content and style layers with their weights; defaults to the ``"default"``
            preset's.
        config: Options of the run; defaults to the ``"default"`` preset's.
        extractor: The network; defaults to the bundled VGG16 truncated to the map's layers.
        callbacks: Called during :meth:`run`, after ``guard``.
        guard: Called first in every run: by default a
            :class:`~neuralstyle.callbacks.DivergenceGuard` checking every 10 steps that the
            loss is finite; pass another, or ``None`` for none.

    Raises:
        LayerNotFoundError: The layer map names a layer the extractor does not provide.
        ConfigError: The config's pooling or padding differs from the given extractor's.

    Example:
        >>> result = StyleTransfer().run("photo.jpg", "painting.jpg")  # doctest: +SKIP
        >>> save_image(result.image, "out.png")  # doctest: +SKIP
    """

    def __init__(
        self,
        layer_map: LayerMap | None = None,
        *,
        config: TransferConfig | None = None,
        extractor: FeatureExtractor | None = None,
        callbacks: Sequence[Callback] = (),
        guard: Callback | None = _GUARD,
    ) -> None:
        self.layer_map = layer_map if layer_map is not None else DEFAULT.layer_map
        self.config = config if config is not None else DEFAULT.config
        self.device = self.config.resolved_device()
        owned = extractor is None
        if extractor is None:
            extractor = FeatureExtractor(
                self.layer_map.layers, pooling=self.config.pooling, padding=self.config.padding
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
        self.callbacks = tuple(callbacks)
        self.guard = guard

    @classmethod
    def from_preset(
        cls,
        preset: str | Preset,
        *,
        extractor: FeatureExtractor | None = None,
        callbacks: Sequence[Callback] = (),
        guard: Callback | None = _GUARD,
    ) -> StyleTransfer:
        """Build from a named preset (see :data:`neuralstyle.PRESETS`) or a :class:`Preset`.

        To change a preset's options, pass its config through ``dataclasses.replace``:
        ``StyleTransfer(SEED.layer_map, config=replace(SEED.config, steps=100))``.

        Raises:
            ConfigError: Unknown preset name.
        """
        chosen = get_preset(preset) if isinstance(preset, str) else preset
        return cls(
            chosen.layer_map,
            config=chosen.config,
            extractor=extractor,
            callbacks=callbacks,
            guard=guard,
        )

    @functools.cached_property
    def tile_plan(self) -> TilePlan | None:
        """How scales larger than ``config.tile_size`` are cut into tiles (None without tiling).

        Raises:
            ConfigError: ``tile_size`` is too small for the network's strides.
        """
        if self.config.tile_size is None:
            return None
        return TilePlan.probe(
            self.config.tile_size, self.features, self.extractor.min_size, self.device
        )

    # -- seams -------------------------------------------------------------------------------------

    def load_content(self, content: ImageSources) -> Tensor:
        """Load one image, or a list or tuple of images, as a ``(B, 3, H, W)`` batch on the device.

        Args:
            content: A path, PIL image, array or tensor (a 4-d tensor may hold a batch), or a
                list or tuple of those; every item is resized to the first item's size.
        """
        if isinstance(content, (list, tuple)):
            if not content:
                raise ConfigError("content is an empty sequence; pass at least one image")
            first = self._load(content[0], self.config.size)
            size = (first.shape[-2], first.shape[-1])
            rest = [self._load(item, size) for item in content[1:]]
            return torch.cat([first, *rest])
        return self._load(content, self.config.size)

    def _load(self, source: ImageSource, size: int | tuple[int, int] | None) -> Tensor:
        if isinstance(source, Tensor) and source.dim() == 4 and source.shape[0] > 1:
            check_float_tensor(source, "content")
            items = [load_image(item, size=size) for item in source]
            return torch.cat(items).to(self.device)
        return load_image(source, size=size).to(self.device)

    def load_style(
        self, style: ImageSource, content_shape: Sequence[int], *, scale: float = 1.0
    ) -> Tensor:
        """Load the style image with its long side ``style_scale`` times the content's long side.

        With ``style_scale=None`` the style keeps its own size, times ``scale``: the current
        size relative to the output's in a coarse-to-fine run, so the strokes keep their size
        relative to the picture at every scale.
        """
        long_side: int | None = None
        if self.config.style_scale is not None:
            long_side = max(1, round(max(content_shape[-2:]) * self.config.style_scale))
        elif scale < 1:
            long_side = max(1, round(max(load_image(style).shape[-2:]) * scale))
        return load_image(style, size=long_side).to(self.device)

    @torch.no_grad()
    def targets(
        self,
        content: ImageSources,
        style: ImageSources,
        *,
        style_masks: Sequence[ImageSource] | None = None,
        content_mask: ImageSource | None = None,
    ) -> Targets:
        """Encode the content and style targets once, without gradients, at the output size.

        Args:
            content: The content image(s); see :meth:`load_content`.
            style: The style image (path, PIL image, array or tensor), or a list of them blended
                with ``config.style_blend``.
            style_masks: One region mask per style image (see :func:`~neuralstyle.load_mask`):
                each style applies only inside its mask instead of being blended everywhere.
            content_mask: Where the image may change; outside it the content stays as it is.

        Returns:
            The :class:`Targets` every later loss evaluation compares against.

        Raises:
            ConfigError: ``config.style_blend`` or ``style_masks`` has a count other than the
                style count, or both are given.
            ShapeError: A mask's aspect ratio is not the content's.
            ImageError: A mask has values outside [0, 1].
        """
        inputs = self.load_inputs(content, style, style_masks, content_mask)
        return self.encode(inputs, spatial_size(inputs.content_image))

    def load_inputs(
        self,
        content: ImageSources,
        style: ImageSources,
        style_masks: Sequence[ImageSource] | None,
        content_mask: ImageSource | None,
    ) -> RunInputs:
        """Load and check everything a run reads, before any network work.

        Takes the arguments of :meth:`targets`; every later scale is encoded from the result.
        """
        content_image = self.load_content(content)
        styles = tuple(style) if isinstance(style, (list, tuple)) else (style,)
        check_style_counts(
            self.config, len(styles), None if style_masks is None else len(style_masks)
        )
        for source in styles:  # read each one now, so a bad file fails before any work
            load_image(source)
        size = spatial_size(content_image)
        masks = None
        if style_masks is not None:
            masks = tuple(
                load_mask(mask, size=size, name=f"style mask {index}").to(self.device)
                for index, mask in enumerate(style_masks, start=1)
            )
        region = None
        if content_mask is not None:
            region = load_mask(content_mask, size=size, name="content mask").to(self.device)
        return RunInputs(content_image, styles, masks, region)

    @torch.no_grad()
    def encode(self, inputs: RunInputs, size: tuple[int, int]) -> Targets:
        """The targets of loaded ``inputs`` with the output at ``size`` (one scale of a run).

        :meth:`targets` is ``encode(load_inputs(...), output size)``; a coarse-to-fine loop calls
        it once per scale.
        """
        content_image = resize(inputs.content_image, size).clamp_(0, 1)
        plan = self.tile_plan
        if plan is not None and plan.needed(size):
            # Too large for one pass: the whole image's content maps, assembled tile by tile.
            content_layers = list(self.layer_map.content)
            content_targets = plan.content_maps(self.features, content_image, content_layers)
            shapes = {name: plan.feature_shape(name, size) for name in self.layer_map.style}
        else:
            features = self.features(content_image)
            content_targets = {name: features[name] for name in self.layer_map.content}
            shapes = {name: spatial_size(features[name]) for name in self.layer_map.style}
        content_mask = None if inputs.content_mask is None else mask_at(inputs.content_mask, size)
        regions = self._regions(inputs, content_image, content_mask, shapes)
        content_norm = content_norms(content_targets, self.config, self.device)
        return Targets(content_image, content_targets, content_norm, regions, content_mask)

    def _regions(
        self,
        inputs: RunInputs,
        content_image: Tensor,
        content_mask: Tensor | None,
        shapes: Mapping[str, tuple[int, int]],
    ) -> tuple[StyleRegion, ...]:
        """One region per masked style, or one region (the blend) over the content mask."""
        scale = max(content_image.shape[-2:]) / max(inputs.content_image.shape[-2:])
        per_style = [self._style_targets(source, scale, content_image) for source in inputs.styles]
        if inputs.style_masks is not None:
            masks = [mask_at(mask, content_image.shape[-2:]) for mask in inputs.style_masks]
            return tuple(
                style_region(targets, mask, shapes, self.config, self.device)
                for targets, mask in zip(per_style, masks, strict=True)
            )
        blend = blend_weights(self.config, len(per_style))
        blended = {
            name: blend_targets([targets[name] for targets in per_style], blend)
            for name in self.layer_map.style
        }
        return (style_region(blended, content_mask, shapes, self.config, self.device),)

    def _style_targets(
        self, source: ImageSource, scale: float, content_image: Tensor
    ) -> dict[str, StyleTarget]:
        """One style image's target at every style layer."""
        image = self.load_style(source, content_image.shape, scale=scale)
        method = self.config.preserve_color
        if method in ("covariance", "histogram"):
            # Recolour the style to each content item's palette.
            batch = image.expand(content_image.shape[0], -1, -1, -1)
            image = match_color(batch, content_image, method=method)
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

    def visible(self, image: Tensor, targets: Targets) -> Tensor:
        """The picture an optimized image stands for: itself, or inside the content mask only.

        Outside the mask the content shows through unchanged, so gradients never move those
        pixels and a soft mask edge blends the two.
        """
        if targets.content_mask is None:
            return image
        return torch.lerp(targets.content_image, image, targets.content_mask)

    def output(self, image: Tensor, targets: Targets) -> Tensor:
        """Clamp an optimized image to [0, 1]; give it the content's chroma if asked.

        With ``preserve_color="luminance"`` the result keeps its own luma (the style's strokes)
        under the content's chroma; with a content mask the content shows outside it.
        """
        clamped = self.visible(image.detach(), targets).clamp(0, 1)
        if self.config.preserve_color == "luminance":
            return transfer_luminance(clamped, targets.content_image)
        return clamped

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

    def initial_image(self, targets: Targets, init: ImageSource | None = None) -> Tensor:
        """The image the optimization starts from, a leaf tensor that requires grad.

        Args:
            targets: From :meth:`targets`.
            init: A given starting image (resized to the content's size); None uses
                ``config.init`` (the content, or noise from ``config.seed``).
        """
        content = targets.content_image
        if init is not None:
            start = load_image(init, size=(content.shape[-2], content.shape[-1])).to(self.device)
            start = start.expand_as(content)
        elif self.config.init == "noise":
            generator = torch.Generator().manual_seed(self.config.seed)
            noise = torch.randn(content.shape, generator=generator) * NOISE_STD
            start = (noise + torch.tensor(NOISE_MEAN).view(1, 3, 1, 1)).to(self.device)
        else:
            start = content
        # Always contiguous, even with channels_last (the network input is converted on the way
        # in): L-BFGS views the gradient as one flat vector, which a channels-last one is not.
        return start.detach().clone(memory_format=torch.contiguous_format).requires_grad_(True)

    def make_optimizer(self, image: Tensor) -> torch.optim.Optimizer:
        """The optimizer the config asks for, over ``image`` alone."""
        choice, lr = self.config.optimizer, self.config.learning_rate
        if choice == "adam":
            fused = image.device.type == "cuda"
            return torch.optim.Adam(
                [image],
                lr=lr or 0.02,
                betas=self.config.adam_betas,
                eps=self.config.adam_eps,
                fused=fused or None,
            )
        if choice == "lbfgs":
            # One evaluation per step; memory of 100 pairs as in neural-style.
            return torch.optim.LBFGS([image], lr=lr or 1.0, max_iter=1, history_size=100)
        if callable(choice):
            return choice([image])
        raise ConfigError(f"unknown optimizer {choice!r}")

    def loss(self, image: Tensor, targets: Targets) -> Loss:
        """Evaluate the weighted objective of ``image`` against ``targets`` (one forward pass).

        Args:
            image: ``(B, 3, H, W)`` RGB, the content batch's shape.
            targets: From :meth:`targets`.

        Returns:
            The :class:`Loss` with the total, per-item totals and per-term breakdown.

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

    def step(self, image: Tensor, targets: Targets, optimizer: torch.optim.Optimizer) -> Loss:
        """Do one optimizer update of ``image`` in place; return the loss *before* the update.

        Makes no host sync on the Adam path. L-BFGS minimizes the total times a scale it measures
        on its first step (see :mod:`neuralstyle.lbfgs`) and, like every closure-based
        optimizer, reads the loss.
        """
        evaluations: list[Loss] = []
        is_lbfgs = isinstance(optimizer, torch.optim.LBFGS)

        def closure() -> Tensor:
            optimizer.zero_grad(set_to_none=True)
            loss = self.loss(image, targets)
            evaluations.append(loss)
            if isinstance(optimizer, torch.optim.LBFGS):
                return scaled_backward(loss.total, optimizer)
            loss.total.backward()  # type: ignore[no-untyped-call]
            return loss.total

        # torch types closures as returning float; every optimizer also accepts a 0-d tensor, and
        # returning the tensor keeps the Adam path free of host syncs.
        optimizer.step(cast(Callable[[], float], closure))
        if self.config.clamp and not is_lbfgs:
            with torch.no_grad():
                image.clamp_(0, 1)
        first = evaluations[0]
        return Loss(first.total.detach(), first.per_item.detach(), _detached(first.terms))

    def start(
        self,
        content: ImageSources,
        style: ImageSources,
        *,
        init: ImageSource | None = None,
        style_masks: Sequence[ImageSource] | None = None,
        content_mask: ImageSource | None = None,
        callbacks: Sequence[Callback] = (),
    ) -> TransferRun:
        """Set up a run and return it as an iterator of :class:`StepState`, one per step.

        Takes the arguments of :meth:`run`, and calls the same callbacks: the instance's
        ``guard`` (if any), its ``callbacks``, then ``callbacks``. With ``config.start_size``
        the iterator passes through every scale; :attr:`StepState.scale` tells which. It ends
        after the last step or a callback's :class:`~neuralstyle.callbacks.Stop`; to stop
        earlier, break and call :meth:`TransferRun.close` (or iterate inside a ``with`` block)
        so every callback's ``on_end`` runs. Iterating it to the end gives the picture
        :meth:`run` gives.

        Example:
            >>> with StyleTransfer().start("photo.jpg", "painting.jpg") as run:  # doctest: +SKIP
            ...     for state in run:
            ...         if state.step == 50:
            ...             break
            >>> run.best_image  # doctest: +SKIP
        """
        inputs = self.load_inputs(content, style, style_masks, content_mask)
        guard = () if self.guard is None else (self.guard,)
        hooks = [*guard, *self.callbacks, *callbacks]
        return TransferRun(self, inputs, init, hooks)

    def run(
        self,
        content: ImageSources,
        style: ImageSources,
        *,
        init: ImageSource | None = None,
        style_masks: Sequence[ImageSource] | None = None,
        content_mask: ImageSource | None = None,
        callbacks: Sequence[Callback] = (),
    ) -> TransferResult:
        """Stylize ``content`` with ``style`` and return the result.

        Args:
            content: A path, PIL image, numpy array or tensor (RGB in [0, 1]), or a list of them
                to stylize a batch in one call.
            style: The style image, in any of the same forms, or a list of style images blended
                with ``config.style_blend``.
            init: A given starting image instead of ``config.init``.
            style_masks: One region mask per style image (white: that style applies there);
                paths, PIL images, arrays or tensors with the content's aspect ratio.
            content_mask: Where the picture may change; outside it the content stays as it is.
            callbacks: Called after the instance's guard and its own callbacks.

        Returns:
            The :class:`TransferResult`.
        """
        begin = time.perf_counter()
        history = LossHistory()
        with self.start(
            content,
            style,
            init=init,
            style_masks=style_masks,
            content_mask=content_mask,
            callbacks=[*callbacks, history],
        ) as transfer:
            for _ in transfer:
                pass
        return TransferResult(
            image=self.output(transfer.result_image, transfer.targets),
            best_image=self.output(transfer.best_image, transfer.targets),
            best_loss=float(transfer.best_per_item.sum()),
            history=history.as_lists(),
            steps_done=transfer.steps_done,
            stop_reason=transfer.stop_reason,
            seconds=time.perf_counter() - begin,
            seconds_targets=transfer.seconds_targets,
        )


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
    """Refuse a run whose every loss term is weighted 0: it would have nothing to minimize."""
    content = config.content_weight and any(layer_map.content.values())
    style = config.style_weight and any(layer_map.style.values())
    if not (content or style or config.tv_weight):
        raise ConfigError(
            "no term left to optimize: content_weight, style_weight and tv_weight (with the "
            "layer map's weights) are all 0; give at least one of them a weight > 0"
        )


def _check_extractor_matches(extractor: FeatureExtractor, config: TransferConfig) -> None:
    """A given extractor must have been built with the pooling and padding the config asks."""
    for option in ("pooling", "padding"):
        wanted, built = getattr(config, option), getattr(extractor, option)
        if wanted != built:
            raise ConfigError(
                f"the config asks for {option}={wanted!r} but the extractor was built with "
                f"{option}={built!r}; build it with FeatureExtractor(..., {option}={wanted!r}) "
                "or leave extractor=None"
            )


def _content_value(features: Tensor, targets: Targets, name: str) -> Tensor:
    """``(B,)`` content loss of one layer, over the positions ``targets.counted`` keeps."""
    target = targets.content[name]
    if targets.counted is None:
        return content_loss(features, target, reduction="none")
    counted = targets.counted[name]
    # Zeroed outside, the mean over all positions is the sum inside over all positions:
    # rescale it to the mean over the counted ones.
    value = content_loss(features * counted, target * counted, reduction="none")
    return value * (counted.numel() / counted.sum().clamp_min(1))


def _detached(terms: Mapping[str, Tensor]) -> dict[str, Tensor]:
    return {name: value.detach() for name, value in terms.items()}
