"""StyleTransfer: the convenient shell that reads inputs, builds the objective and runs the loop.

The work happens in modules other code can use on its own, and every method here hands over to
one of them:

* :class:`~neuralstyle.objective.Objective` (``transfer.objective``) encodes targets and
  evaluates the weighted, balanced loss (:meth:`StyleTransfer.targets`, :meth:`StyleTransfer.loss`);
* :mod:`neuralstyle.inputs` reads and checks the content, styles and masks;
* :mod:`neuralstyle.optimize` starts the image, builds the optimizer and does one update
  (:meth:`StyleTransfer.initial_image`, :meth:`StyleTransfer.make_optimizer`,
  :meth:`StyleTransfer.step`);
* :class:`~neuralstyle.run.TransferRun` strings steps into scales, tiles and callbacks
  (:meth:`StyleTransfer.start`), and :meth:`StyleTransfer.run` drives it to a
  :class:`TransferResult`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from neuralstyle import inputs as run_inputs
from neuralstyle import optimize
from neuralstyle.callbacks import Callback, DivergenceGuard, LossHistory
from neuralstyle.color import transfer_luminance
from neuralstyle.config import TransferConfig
from neuralstyle.features import FeatureExtractor
from neuralstyle.image import ImageSource
from neuralstyle.inputs import ImageSources
from neuralstyle.layers import LayerMap
from neuralstyle.objective import Loss, Objective
from neuralstyle.optimize import NOISE_MEAN, NOISE_STD
from neuralstyle.presets import Preset, get_preset
from neuralstyle.run import TransferRun
from neuralstyle.scales import spatial_size
from neuralstyle.targets import RunInputs, Targets
from neuralstyle.tiling import TilePlan

# Loss, NOISE_MEAN, NOISE_STD and ImageSources moved to the modules that own them; importing them
# from here keeps working.
__all__ = ["NOISE_MEAN", "NOISE_STD", "ImageSources", "Loss", "StyleTransfer", "TransferResult"]


@dataclass(frozen=True)
class TransferResult:
    """The outcome of :meth:`StyleTransfer.run`.

    Attributes:
        image: The final image ``(B, 3, H, W)``, RGB in [0, 1] (see :meth:`StyleTransfer.output`).
        best_image: The image with the lowest loss seen (per batch item).
        best_loss: That lowest total loss (summed over the batch).
        best_losses: Each batch item's lowest total loss (they sum to ``best_loss``).
        history: Loss term -> value at every step (``"total"`` included).
        steps_done: Steps completed.
        stop_reason: Why the run ended early, or None.
        seconds: Wall time of the whole run, targets included.
        seconds_targets: Wall time spent encoding the targets.
    """

    image: Tensor
    best_image: Tensor
    best_loss: float
    best_losses: tuple[float, ...]
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
        self.objective = Objective(layer_map, config=config, extractor=extractor)
        # The objective's parts, read often enough to be at hand.
        self.layer_map = self.objective.layer_map
        self.config = self.objective.config
        self.device = self.objective.device
        self.extractor = self.objective.extractor
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

    @property
    def tile_plan(self) -> TilePlan | None:
        """The objective's :attr:`~neuralstyle.objective.Objective.tile_plan`."""
        return self.objective.tile_plan

    # -- inputs and targets ------------------------------------------------------------------------

    def load_content(self, content: ImageSources) -> Tensor:
        """:func:`~neuralstyle.inputs.load_content` at ``config.size`` on the run's device."""
        return run_inputs.load_content(content, size=self.config.size, device=self.device)

    def load_style(
        self, style: ImageSource, content_shape: Sequence[int], *, scale: float = 1.0
    ) -> Tensor:
        """:func:`~neuralstyle.inputs.load_style` with ``config.style_scale``."""
        return run_inputs.load_style(
            style,
            content_shape,
            style_scale=self.config.style_scale,
            device=self.device,
            scale=scale,
        )

    def load_inputs(
        self,
        content: ImageSources,
        style: ImageSources,
        style_masks: Sequence[ImageSource] | None,
        content_mask: ImageSource | None,
    ) -> RunInputs:
        """:func:`~neuralstyle.inputs.load_inputs` with this run's config and device."""
        return run_inputs.load_inputs(
            content,
            style,
            config=self.config,
            style_masks=style_masks,
            content_mask=content_mask,
            device=self.device,
        )

    def encode(self, inputs: RunInputs, size: tuple[int, int]) -> Targets:
        """:func:`~neuralstyle.inputs.encode`: the targets of loaded inputs at one scale's size."""
        return run_inputs.encode(self.objective, inputs, size)

    @torch.no_grad()
    def targets(
        self,
        content: ImageSources,
        style: ImageSources,
        *,
        style_masks: Sequence[ImageSource] | None = None,
        content_mask: ImageSource | None = None,
    ) -> Targets:
        """Read the inputs and encode their targets once, without gradients, at the output size.

        Args:
            content: The content image(s): a path, PIL image, array or tensor, or a list of them.
            style: The style image, or a list of them blended with ``config.style_blend``.
            style_masks: One region mask per style image (see :func:`~neuralstyle.load_mask`):
                each style applies only inside its mask instead of being blended everywhere.
            content_mask: Where the image may change; outside it the content stays as it is.

        Raises:
            ConfigError: ``config.style_blend`` or ``style_masks`` has a count other than the
                style count, or both are given.
            ShapeError: A mask's aspect ratio is not the content's.
            ImageError: A mask has values outside [0, 1].
        """
        loaded = self.load_inputs(content, style, style_masks, content_mask)
        return self.encode(loaded, spatial_size(loaded.content_image))

    # -- the objective and one step ----------------------------------------------------------------

    def features(self, image: Tensor) -> dict[str, Tensor]:
        """The objective's :meth:`~neuralstyle.objective.Objective.features`."""
        return self.objective.features(image)

    def loss(self, image: Tensor, targets: Targets) -> Loss:
        """The objective's value, ``self.objective(image, targets)`` (one forward pass).

        Raises:
            ShapeError: ``image`` does not match the content batch's shape.
        """
        return self.objective(image, targets)

    def visible(self, image: Tensor, targets: Targets) -> Tensor:
        """The objective's :meth:`~neuralstyle.objective.Objective.visible`."""
        return self.objective.visible(image, targets)

    def output(self, image: Tensor, targets: Targets) -> Tensor:
        """Clamp an optimized image to [0, 1]; give it the content's chroma if asked.

        With ``preserve_color="luminance"`` the result keeps its own luma (the style's strokes)
        under the content's chroma; with a content mask the content shows outside it.
        """
        clamped = self.visible(image.detach(), targets).clamp(0, 1)
        if self.config.preserve_color == "luminance":
            return transfer_luminance(clamped, targets.content_image)
        return clamped

    def initial_image(self, targets: Targets, init: ImageSource | None = None) -> Tensor:
        """:func:`~neuralstyle.optimize.initial_image` with this run's config."""
        return optimize.initial_image(targets, self.config, init=init)

    def make_optimizer(self, image: Tensor) -> torch.optim.Optimizer:
        """:func:`~neuralstyle.optimize.make_optimizer` with this run's config."""
        return optimize.make_optimizer(image, self.config)

    def step(self, image: Tensor, targets: Targets, optimizer: torch.optim.Optimizer) -> Loss:
        """:func:`~neuralstyle.optimize.step` on this run's objective: one update of ``image``
        in place, returning the loss *before* the update."""
        return optimize.step(self.objective, image, targets, optimizer)

    # -- whole runs --------------------------------------------------------------------------------

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
        loaded = self.load_inputs(content, style, style_masks, content_mask)
        guard = () if self.guard is None else (self.guard,)
        hooks = [*guard, *self.callbacks, *callbacks]
        return TransferRun(self.objective, loaded, init, hooks)

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
            best_losses=tuple(transfer.best_per_item.tolist()),  # one read, after the loop
            history=history.as_lists(),
            steps_done=transfer.steps_done,
            stop_reason=transfer.stop_reason,
            seconds=time.perf_counter() - begin,
            seconds_targets=transfer.seconds_targets,
        )
