"""TransferRun: one run in progress, step by step and scale by scale.

:meth:`StyleTransfer.start <neuralstyle.StyleTransfer.start>` returns one; iterating it does one
optimizer step per item and, in a coarse-to-fine run, moves to the next scale when a scale's
steps are done (upsampling the result, re-encoding the targets, starting a fresh optimizer). It
keeps the lowest-loss image and, when asked, the moving average of the iterates, without reading
anything back to the host. A scale larger than ``config.tile_size`` is optimized tile by tile
(:class:`~neuralstyle.tiling.TiledScale`): there a step is one step of the current tile, and the
image is the whole picture as the finished tiles left it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from neuralstyle.callbacks import RunEnd, StepState
from neuralstyle.image import ImageSource
from neuralstyle.memory import check_fits
from neuralstyle.scales import resize, scale_sizes
from neuralstyle.tiling import TiledScale, steps_per_tile

if TYPE_CHECKING:
    from neuralstyle.targets import RunInputs
    from neuralstyle.transfer import Loss, StyleTransfer

__all__ = ["TransferRun"]


class TransferRun(Iterator[StepState]):
    """An ongoing run: iterate it for one :class:`StepState` per step, stop whenever you like.

    Attributes:
        sizes: ``(height, width)`` of every scale, the output's last.
        image: The image being optimized at the current scale (a leaf tensor that requires
            grad), or at a tiled scale the whole picture as the finished tiles left it.
        targets: The current scale's targets (at a tiled scale, of the whole picture; each
            tile's are cut from them).
        optimizer: The current scale's optimizer (at a tiled scale, the current tile's).
        best_image: The lowest-loss image seen so far at the current scale (per batch item); at
            a tiled scale, whose tile losses do not compare, the picture itself.
        tiled: The current scale's :class:`~neuralstyle.tiling.TiledScale`, or None.
        average: The moving average of the iterates (``config.ema_decay``), else None.
        steps_done: Steps completed, over all scales.
    """

    def __init__(
        self, transfer: StyleTransfer, inputs: RunInputs, init: ImageSource | None
    ) -> None:
        began = time.perf_counter()
        self._transfer = transfer
        self._inputs = inputs
        self.sizes = scale_sizes(*_hw(inputs.content_image), transfer.config.start_size)
        # Refuse a size that will not fit before any work (config.check_memory turns it off).
        check_fits(transfer, *_hw(inputs.content_image), int(inputs.content_image.shape[0]))
        self._steps = [self._steps_at(size) for size in self.sizes]
        self._scale = 0
        self.tiled: TiledScale | None = None
        self.targets = transfer.encode(inputs, self.sizes[0])
        self._begin_scale(transfer.initial_image(self.targets, init))
        self.steps_done = 0
        self.seconds_targets = time.perf_counter() - began
        self._began = time.perf_counter()

    @property
    def total_steps(self) -> int:
        """Steps of the whole run: ``config.steps`` at every scale (every tile's at a tiled one)."""
        return sum(self._steps)

    def _steps_at(self, size: tuple[int, int]) -> int:
        steps = self._transfer.config.steps
        plan = self._transfer.tile_plan
        if plan is None or not plan.needed(size):
            return steps
        return len(plan.visits(size)) * steps_per_tile(steps)

    @property
    def result_image(self) -> Tensor:
        """What the run gives as its image now: the moving average if kept, else the iterate."""
        return self.image.detach() if self.average is None else self.average

    def _begin_scale(self, start: Tensor) -> None:
        transfer = self._transfer
        self._scale_steps = 0
        plan = transfer.tile_plan
        size = _hw(start)
        if plan is not None and plan.needed(size):
            self.tiled = TiledScale(transfer, self.targets, plan, start, transfer.config.steps)
            self.image = self.best_image = self.tiled.image
            self.optimizer = self.tiled.optimizer
            self.best_per_item = self.tiled.estimate
            self.average = None  # tiles end at different times: no common iterate to average
            return
        self.tiled = None
        # Always contiguous, even with channels_last (the network input is converted on the way
        # in): L-BFGS views the gradient as one flat vector, which a channels-last one is not.
        self.image = start.detach().clone(memory_format=torch.contiguous_format)
        self.image.requires_grad_(True)
        # A fresh optimizer per scale: carrying Adam's moments over measured worse (the
        # per-pixel gradient shrinks as the pixel count grows; see docs/howto/quality.md).
        self.optimizer = transfer.make_optimizer(self.image)
        self.best_image = self.image.detach().clone()
        batch = self.image.shape[0]
        self.best_per_item = torch.full((batch,), float("inf"), device=self.image.device)
        keep_average = transfer.config.ema_decay is not None
        self.average = self.image.detach().clone() if keep_average else None

    def _next_scale(self) -> None:
        """Upsample the result to the next size, re-encode the targets there, go on."""
        previous = self.result_image
        self._scale += 1
        size = self.sizes[self._scale]
        self.targets = self._transfer.encode(self._inputs, size)
        start = resize(previous, size)
        if self._transfer.config.clamp:
            start = start.clamp(0, 1)
        self._begin_scale(start)

    def __next__(self) -> StepState:
        if self.steps_done >= self.total_steps:
            raise StopIteration
        config = self._transfer.config
        if self._scale_steps == self._steps[self._scale]:
            self._next_scale()
        if self.tiled is not None:
            return self._tiled_step(self.tiled)
        before = self.image.detach().clone()
        loss = self._transfer.step(self.image, self.targets, self.optimizer)
        # The loss belongs to the image before the update; keep it if it beats the best so far.
        # NaN compares False, so a diverged step never replaces the best image.
        better = loss.per_item < self.best_per_item
        mask = better.view(-1, *([1] * (before.dim() - 1)))
        self.best_image = torch.where(mask, before, self.best_image)
        self.best_per_item = torch.where(better, loss.per_item, self.best_per_item)
        self.steps_done += 1
        self._scale_steps += 1
        if self.average is not None and config.ema_decay is not None:
            # Early on the average is the plain mean of the steps so far (no bias to the start).
            weight = max(1 - config.ema_decay, 1 / self._scale_steps)
            self.average.lerp_(self.image.detach(), weight)
        return self._state(loss)

    def _tiled_step(self, tiled: TiledScale) -> StepState:
        """One step of the current tile; the picture changes when a tile's core is written."""
        loss = tiled.step()
        self.optimizer = tiled.optimizer
        self.best_per_item = tiled.estimate
        self.steps_done += 1
        self._scale_steps += 1
        return self._state(loss, tile=tiled.visit + 1, tiles=len(tiled.tiles))

    def _state(self, loss: Loss, *, tile: int = 0, tiles: int = 0) -> StepState:
        return StepState(
            step=self.steps_done,
            total_steps=self.total_steps,
            image=self.image.detach(),
            loss=loss.total,
            terms=loss.terms,
            elapsed=time.perf_counter() - self._began,
            scale=self._scale + 1,
            scales=len(self.sizes),
            tile=tile,
            tiles=tiles,
        )

    def end_state(self, stop_reason: str | None, began: float) -> RunEnd:
        """The :class:`RunEnd` describing this run now."""
        return RunEnd(
            steps_done=self.steps_done,
            total_steps=self.total_steps,
            image=self.image.detach(),
            best_image=self.best_image,
            stop_reason=stop_reason,
            elapsed=time.perf_counter() - began,
        )


def _hw(image: Tensor) -> tuple[int, int]:
    return int(image.shape[-2]), int(image.shape[-1])
