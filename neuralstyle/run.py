"""TransferRun: one run in progress, step by step and scale by scale, with its callbacks.

:meth:`StyleTransfer.start <neuralstyle.StyleTransfer.start>` returns one; iterating it does one
optimizer step per item and, in a coarse-to-fine run, moves to the next scale when a scale's
steps are done (upsampling the result, re-encoding the targets, starting a fresh optimizer). It
keeps the lowest-loss image and, when asked, the moving average of the iterates, without reading
anything back to the host. A scale larger than ``config.tile_size`` is optimized tile by
tile (:class:`~neuralstyle.tiled_scale.TiledScale`): there a step is one step of the current
tile, and the image is the whole picture as the finished tiles left it.

The run calls its callbacks itself: ``on_start`` when it is created, ``on_step`` after every
step (a :class:`~neuralstyle.callbacks.Stop` ends the iteration after that step), and
``on_end`` once, when the iteration ends, fails, or the run is closed early (:meth:`close`,
or leaving a ``with`` block). :meth:`StyleTransfer.run <neuralstyle.StyleTransfer.run>` is
this loop driven to its end.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator, Sequence
from types import TracebackType

import torch
from torch import Tensor

from neuralstyle import optimize
from neuralstyle.callbacks import Callback, RunEnd, RunStart, StepState
from neuralstyle.image import ImageSource
from neuralstyle.inputs import encode
from neuralstyle.memory import check_fits
from neuralstyle.objective import Loss, Objective
from neuralstyle.scales import resize, scale_sizes, spatial_size
from neuralstyle.targets import RunInputs
from neuralstyle.tiled_scale import TiledScale
from neuralstyle.tiling import steps_per_tile

__all__ = ["TransferRun", "steps_per_scale"]


class TransferRun(Iterator[StepState]):
    """An ongoing run: iterate it for one :class:`StepState` per step, stop whenever you like.

    Breaking out of the loop early leaves the run open: call :meth:`close` (or iterate inside
    ``with transfer.start(...) as run:``) so the callbacks' ``on_end`` runs.

    Attributes:
        sizes: ``(height, width)`` of every scale, the output's last.
        image: The image being optimized at the current scale (a leaf tensor that requires
            grad), or at a tiled scale the whole picture as the finished tiles left it.
        targets: The current scale's targets (at a tiled scale, of the whole picture; each
            tile's are cut from them).
        optimizer: The current scale's optimizer (at a tiled scale, the current tile's).
        best_image: The lowest-loss image seen so far at the current scale (per batch item); at
            a tiled scale, whose tile losses do not compare, the picture itself.
        tiled: The current scale's :class:`~neuralstyle.tiled_scale.TiledScale`, or None.
        average: The moving average of the iterates (``config.ema_decay``), else None.
        steps_done: Steps completed, over all scales.
        stop_reason: Why the run ended early (a callback's :class:`Stop`, or an exception), or
            None.
    """

    def __init__(
        self,
        objective: Objective,
        inputs: RunInputs,
        init: ImageSource | None,
        callbacks: Sequence[Callback] = (),
    ) -> None:
        began = time.perf_counter()
        self._objective = objective
        config = objective.config
        self._inputs = inputs
        self.sizes = scale_sizes(*spatial_size(inputs.content_image), config.start_size)
        # Refuse a size that will not fit before any work (config.check_memory turns it off).
        check_fits(
            objective, *spatial_size(inputs.content_image), int(inputs.content_image.shape[0])
        )
        # config.steps is the whole run's; each scale gets its share (a tiled scale gives each
        # tile visit part of it, see _steps_at).
        self._shares = steps_per_scale(config.steps, len(self.sizes))
        self._steps = [
            self._steps_at(size, share)
            for size, share in zip(self.sizes, self._shares, strict=True)
        ]
        self._scale = 0
        self.tiled: TiledScale | None = None
        self.targets = encode(objective, inputs, self.sizes[0])
        self._begin_scale(optimize.initial_image(self.targets, config, init=init))
        self.steps_done = 0
        self.stop_reason: str | None = None
        self.seconds_targets = time.perf_counter() - began
        self._began = time.perf_counter()
        self._hooks = tuple(callbacks)
        self._started: list[Callback] = []
        self._closed = False
        info = RunStart(
            self.total_steps, self.image.detach(), self.image.device, scales=len(self.sizes)
        )
        try:
            for hook in self._hooks:
                self._started.append(hook)
                hook.on_start(info)
        except BaseException as error:
            self.close(error)
            raise

    @property
    def total_steps(self) -> int:
        """Steps of the whole run: ``config.steps``, shared among the scales (at a tiled scale,
        every tile visit's steps count, so each pixel still gets its scale's share)."""
        return sum(self._steps)

    def _steps_at(self, size: tuple[int, int], steps: int) -> int:
        plan = self._objective.tile_plan
        if plan is None or not plan.needed(size):
            return steps
        return len(plan.visits(size)) * steps_per_tile(steps)

    @property
    def result_image(self) -> Tensor:
        """What the run gives as its image now: the moving average if kept, else the iterate."""
        return self.image.detach() if self.average is None else self.average

    def _begin_scale(self, start: Tensor) -> None:
        objective = self._objective
        self._scale_steps = 0
        plan = objective.tile_plan
        size = spatial_size(start)
        if plan is not None and plan.needed(size):
            share = self._shares[self._scale]
            self.tiled = TiledScale(objective, self.targets, plan, start, share)
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
        self.optimizer = optimize.make_optimizer(self.image, objective.config)
        self.best_image = self.image.detach().clone()
        batch = self.image.shape[0]
        self.best_per_item = torch.full((batch,), float("inf"), device=self.image.device)
        keep_average = objective.config.ema_decay is not None
        self.average = self.image.detach().clone() if keep_average else None

    def _next_scale(self) -> None:
        """Upsample the result to the next size, re-encode the targets there, go on."""
        previous = self.result_image
        self._scale += 1
        size = self.sizes[self._scale]
        self.targets = encode(self._objective, self._inputs, size)
        start = resize(previous, size)
        if self._objective.config.clamp:
            start = start.clamp(0, 1)
        self._begin_scale(start)

    def __next__(self) -> StepState:
        if self._closed:
            raise StopIteration
        if self.stop_reason is not None or self.steps_done >= self.total_steps:
            self.close()
            raise StopIteration
        try:
            state = self._advance()
            for hook in self._hooks:
                signal = hook.on_step(state)
                if signal is not None:
                    self.stop_reason = signal.reason
                    break
        except BaseException as error:
            self.close(error)
            raise
        return state

    def close(self, failure: BaseException | None = None) -> None:
        """End the run: call every callback's ``on_end`` once (later calls do nothing).

        Args:
            failure: The error that ended the run, if one did; it becomes the stop reason, and
                an ``on_end`` that raises too is added to it as a note instead of replacing it.
        """
        if self._closed:
            return
        self._closed = True
        if failure is not None and self.stop_reason is None:
            self.stop_reason = f"{type(failure).__name__}: {failure}"
        _end_all(self._started, self.end_state(), failure)

    def __enter__(self) -> TransferRun:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close(error)

    def _advance(self) -> StepState:
        """One step of the loop, moving to the next scale first when this one is done."""
        config = self._objective.config
        if self._scale_steps == self._steps[self._scale]:
            self._next_scale()
        if self.tiled is not None:
            return self._tiled_step(self.tiled)
        before = self.image.detach().clone()
        loss = optimize.step(self._objective, self.image, self.targets, self.optimizer)
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

    def end_state(self) -> RunEnd:
        """The :class:`RunEnd` describing this run now."""
        return RunEnd(
            steps_done=self.steps_done,
            total_steps=self.total_steps,
            image=self.image.detach(),
            best_image=self.best_image,
            stop_reason=self.stop_reason,
            elapsed=time.perf_counter() - self._began,
        )


def steps_per_scale(steps: int, scales: int) -> list[int]:
    """Share a run's ``steps`` among its scales: equal parts, the remainder to the last ones.

    Every scale gets at least one step, so a run does ``max(steps, scales)`` steps in all.

    Example:
        >>> steps_per_scale(300, 5), steps_per_scale(10, 3), steps_per_scale(2, 3)
        ([60, 60, 60, 60, 60], [3, 3, 4], [1, 1, 1])
    """
    base, extra = divmod(steps, scales)
    return [max(1, base + (index >= scales - extra)) for index in range(scales)]


def _end_all(hooks: Sequence[Callback], end: RunEnd, failure: BaseException | None) -> None:
    """Call every ``on_end``, even when one raises; then raise the first hook error.

    When the run itself already failed (``failure``), that error is the one the caller sees;
    a hook's error is added to it as a note instead of replacing it.
    """
    first_error: BaseException | None = None
    for hook in hooks:
        try:
            hook.on_end(end)
        except BaseException as error:
            first_error = first_error or error
    if first_error is None:
        return
    if failure is None:
        raise first_error
    note = f"an on_end hook also raised {type(first_error).__name__}: {first_error}"
    if sys.version_info >= (3, 11):
        failure.add_note(note)
