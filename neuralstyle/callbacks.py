"""Callbacks: watch a run, report on it, or stop it, without slowing down the loop.

The loop hands every callback a read-only :class:`StepState` after each step. Loss values in it are
device tensors: reading one (``float(state.loss)``) waits for the device, so each built-in reads
them only every ``every`` steps. Hooks run in list order; ``on_end`` always runs, even when a hook
or the loop raised; exceptions propagate.
"""

from __future__ import annotations

import math
import os
import resource
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol, runtime_checkable

import torch
from torch import Tensor

from neuralstyle.errors import ConfigError

__all__ = [
    "Callback",
    "DivergenceGuard",
    "EarlyStopping",
    "IntervalCallback",
    "LossHistory",
    "Progress",
    "RunEnd",
    "RunStart",
    "Snapshots",
    "StepState",
    "Stop",
    "peak_memory_bytes",
]


@dataclass(frozen=True)
class Stop:
    """Returned by :meth:`Callback.on_step` to end the run; ``reason`` is reported in the result."""

    reason: str


@dataclass(frozen=True)
class RunStart:
    """What a callback learns when a run starts, its inputs read and its targets encoded.

    Attributes:
        total_steps: Steps the run will do unless stopped.
        image: The starting image (at the first scale's size).
        device: Where the run computes.
        scales: How many scales the run has (1 unless ``config.start_size`` is set).
    """

    total_steps: int
    image: Tensor
    device: torch.device
    scales: int = 1


@dataclass(frozen=True)
class StepState:
    """The state after one step. Tensors are detached; do not modify them in place.

    Attributes:
        step: Steps done so far, from 1.
        total_steps: Steps the run will do unless stopped.
        image: The image after this step's update, ``(B, 3, H, W)`` RGB in [0, 1] (when clamping).
        loss: 0-d total loss of the image *before* this step's update.
        terms: Weighted 0-d loss terms (``"content/relu4_2"``, ``"style/relu1_1"``, ``"tv"``); they
            sum
            to ``loss``.
        elapsed: Host seconds since the run started; queued device work may not have finished.
        scale: Which scale of a coarse-to-fine run this step belongs to, from 1.
        scales: How many scales the run has (1 unless ``config.start_size`` is set).
        tile: At a scale optimized tile by tile (``config.tile_size``), which tile visit this
            step belongs to, from 1; 0 at an untiled scale.
        tiles: Tile visits of the current scale (0 at an untiled scale).
    """

    step: int
    total_steps: int
    image: Tensor
    loss: Tensor
    terms: Mapping[str, Tensor]
    elapsed: float
    scale: int = 1
    scales: int = 1
    tile: int = 0
    tiles: int = 0

    def peak_memory_bytes(self) -> int:
        """Peak memory of the image's device so far (see :func:`peak_memory_bytes`)."""
        return peak_memory_bytes(self.image.device)


@dataclass(frozen=True)
class RunEnd:
    """What a callback learns when a run ends, normally or not.

    Attributes:
        steps_done: Steps completed.
        total_steps: Steps the run was asked to do.
        image: The last image.
        best_image: The image with the lowest loss seen.
        stop_reason: Why the run ended early (a callback's :class:`Stop`, or an exception), else
            None.
        elapsed: Host seconds since the run started.
    """

    steps_done: int
    total_steps: int
    image: Tensor
    best_image: Tensor
    stop_reason: str | None
    elapsed: float


@runtime_checkable
class Callback(Protocol):
    """Three hooks a run calls: ``on_start`` once, ``on_step`` after each step, ``on_end``
    always."""

    def on_start(self, start: RunStart) -> None:
        """Called once before the first step."""

    def on_step(self, state: StepState) -> Stop | None:
        """Called after every step; return :class:`Stop` to end the run."""

    def on_end(self, end: RunEnd) -> None:
        """Called once when the run ends, also after an exception."""


def peak_memory_bytes(device: torch.device) -> int:
    """Peak memory used on ``device``: allocator peak on CUDA, process peak RSS on the CPU.

    Args:
        device: The device the run uses.

    Returns:
        Bytes; on MPS the driver's current allocation (no peak counter exists).
    """
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    if device.type == "mps":
        return int(torch.mps.driver_allocated_memory())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports kilobytes, macOS bytes.
    return int(peak if sys.platform == "darwin" else peak * 1024)


def _check_every(every: int) -> int:
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise ConfigError(f"every must be a positive int (steps between checks), got {every!r}")
    return every


class IntervalCallback:
    """A base for callbacks that act every ``every`` steps: override :meth:`at_interval`.

    Its ``on_start`` and ``on_end`` do nothing; ``on_step`` calls :meth:`at_interval` on the
    steps :meth:`due` picks (every ``every``-th). Reading a loss waits for the device, which is
    why acting at an interval rather than at every step matters.

    Args:
        every: Steps between calls of :meth:`at_interval`.

    Raises:
        ConfigError: ``every`` is not a positive int.
    """

    def __init__(self, every: int = 1) -> None:
        self.every = _check_every(every)

    def due(self, state: StepState) -> bool:
        """Whether :meth:`at_interval` runs at this step."""
        return state.step % self.every == 0

    def on_start(self, start: RunStart) -> None:
        """Nothing to prepare."""

    def on_step(self, state: StepState) -> Stop | None:
        """Call :meth:`at_interval` when :meth:`due`."""
        return self.at_interval(state) if self.due(state) else None

    def at_interval(self, state: StepState) -> Stop | None:
        """What to do at the interval; return :class:`Stop` to end the run."""
        return None

    def on_end(self, end: RunEnd) -> None:
        """Nothing to finish."""


class Progress(IntervalCallback):
    """Prints the step, loss and speed every ``every`` steps: a bar on a terminal, lines elsewhere.

    Args:
        every: Steps between updates (each update waits for the device once).
        stream: Where to write; standard error by default.
    """

    def __init__(self, every: int = 10, stream: IO[str] | None = None) -> None:
        super().__init__(every)
        self.stream = stream

    def _out(self) -> IO[str]:
        return self.stream if self.stream is not None else sys.stderr

    def due(self, state: StepState) -> bool:
        """At the interval and on the last step."""
        return super().due(state) or state.step == state.total_steps

    def at_interval(self, state: StepState) -> Stop | None:
        """Write one update."""
        rate = state.step / state.elapsed if state.elapsed > 0 else 0.0
        # Losses of different scales are not comparable: say which scale a value belongs to.
        scale = f"scale {state.scale}/{state.scales}  " if state.scales > 1 else ""
        if state.tiles:  # a tile's loss is that tile's alone
            scale += f"tile {state.tile}/{state.tiles}  "
        text = (
            f"step {state.step}/{state.total_steps}  {scale}loss {float(state.loss):.4g}  "
            f"{rate:.2f} steps/s"
        )
        out = self._out()
        if out.isatty():
            width = 24
            filled = width * state.step // max(state.total_steps, 1)
            out.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {text}")
        else:
            out.write(text + "\n")
        out.flush()
        return None

    def on_end(self, end: RunEnd) -> None:
        """End the bar's line and say why the run stopped early, if it did."""
        out = self._out()
        if out.isatty():
            out.write("\n")
        if end.stop_reason is not None:
            out.write(f"stopped after {end.steps_done} steps: {end.stop_reason}\n")
        out.flush()


class LossHistory(IntervalCallback):
    """Records the loss terms every ``every`` steps, on the device, and stacks them once at the end.

    Args:
        every: Steps between records.

    Pass it to :meth:`StyleTransfer.run <neuralstyle.StyleTransfer.run>` (``callbacks=[history]``);
    here it is fed two steps by hand.

    Example:
        >>> history = LossHistory(every=2)
        >>> for step in (1, 2, 3, 4):
        ...     state = StepState(
        ...         step=step, total_steps=4, image=torch.zeros(1, 3, 2, 2),
        ...         loss=torch.tensor(5.0 - step), terms={"tv": torch.tensor(0.5)}, elapsed=0.0,
        ...     )
        ...     history.on_step(state)
        >>> history.steps, history.as_lists()
        ([2, 4], {'total': [3.0, 1.0], 'tv': [0.5, 0.5]})
    """

    def __init__(self, every: int = 1) -> None:
        super().__init__(every)
        self.steps: list[int] = []
        self._records: list[Tensor] = []
        self._names: tuple[str, ...] = ()

    def on_start(self, start: RunStart) -> None:
        """Forget any earlier run."""
        self.steps, self._records, self._names = [], [], ()

    def at_interval(self, state: StepState) -> Stop | None:
        """Append this step's terms as one small device tensor (no host sync)."""
        self._names = ("total", *state.terms)
        values = [state.loss, *state.terms.values()]
        self._records.append(torch.stack([v.detach().float() for v in values]))
        self.steps.append(state.step)
        return None

    def stacked(self) -> dict[str, Tensor]:
        """Each term's values over the recorded steps, one 1-d tensor per term."""
        if not self._records:
            return {}
        table = torch.stack(self._records)
        return {name: table[:, i] for i, name in enumerate(self._names)}

    def as_lists(self) -> dict[str, list[float]]:
        """Like :meth:`stacked`, as Python floats (one host transfer for the whole history)."""
        return {name: values.cpu().tolist() for name, values in self.stacked().items()}


class Snapshots(IntervalCallback):
    """Saves the image every ``every`` steps to a folder (``step_00010.png``, ...) or hands it to a
    function.

    Args:
        every: Steps between snapshots.
        target: An existing folder, or a function called as ``target(step, image)``.

    Raises:
        ConfigError: ``target`` is a path that is not an existing folder.
    """

    def __init__(
        self, every: int, target: str | os.PathLike[str] | Callable[[int, Tensor], None]
    ) -> None:
        super().__init__(every)
        if isinstance(target, (str, os.PathLike)):
            folder = Path(target)
            if not folder.is_dir():
                raise ConfigError(
                    f"snapshot folder {str(folder)!r} does not exist; create it first or pass "
                    "a function"
                )
            self._folder: Path | None = folder
            self._function: Callable[[int, Tensor], None] | None = None
        else:
            self._folder, self._function = None, target

    def at_interval(self, state: StepState) -> Stop | None:
        """Save or hand over the image."""
        if self._function is not None:
            self._function(state.step, state.image)
        elif self._folder is not None:
            # Image I/O only when snapshots are written.
            from neuralstyle.image_output import save_image

            save_image(state.image[:1], self._folder / f"step_{state.step:05d}.png")
        return None


class EarlyStopping(IntervalCallback):
    """Stops when the loss has not improved by ``min_delta`` (relative) for ``patience`` steps.

    Args:
        patience: Steps without improvement before stopping.
        min_delta: Relative improvement that counts (0.001 = 0.1%).
        every: Steps between checks (each check waits for the device once).
    """

    def __init__(self, patience: int = 100, min_delta: float = 1e-3, every: int = 10) -> None:
        super().__init__(every)
        self.patience = _check_every(patience)
        if not math.isfinite(min_delta) or min_delta < 0:
            raise ConfigError(f"min_delta must be finite and >= 0, got {min_delta!r}")
        self.min_delta = min_delta
        self._best = math.inf
        self._best_step = 0

    def on_start(self, start: RunStart) -> None:
        """Reset for a new run."""
        self._best, self._best_step = math.inf, 0

    def at_interval(self, state: StepState) -> Stop | None:
        """Compare with the best loss."""
        loss = float(state.loss)
        if loss < self._best * (1 - self.min_delta):
            self._best, self._best_step = loss, state.step
        elif state.step - self._best_step >= self.patience:
            return Stop(
                f"early stopping: loss {loss:.4g} has not improved by {self.min_delta:.1%} "
                f"since step {self._best_step}"
            )
        return None


class DivergenceGuard(IntervalCallback):
    """Stops the run when the loss becomes NaN or infinite; the run keeps its best image.

    Args:
        every: Steps between checks (each check waits for the device once).
    """

    def __init__(self, every: int = 10) -> None:
        super().__init__(every)

    def at_interval(self, state: StepState) -> Stop | None:
        """Check the loss is finite."""
        if not bool(torch.isfinite(state.loss)):
            return Stop(
                f"diverged: the loss became {float(state.loss)} by step {state.step}; "
                "kept the best image (try a lower learning rate)"
            )
        return None
