"""One scale of a run optimized tile by tile, for pictures larger than memory.

:class:`~neuralstyle.tiling.TilePlan` says where the tiles go and cuts their targets; a
:class:`TiledScale` optimizes them one after another and writes each tile's core into the picture
(see :mod:`neuralstyle.tiling` for why this gives the whole picture's result).
"""

from __future__ import annotations

import torch
from torch import Tensor

from neuralstyle import optimize
from neuralstyle.objective import Loss, Objective
from neuralstyle.targets import Targets
from neuralstyle.tiling import Tile, TilePlan, cut, relative, steps_per_tile

__all__ = ["TiledScale"]


class TiledScale:
    """One scale of a run optimized tile by tile; :meth:`step` does one step of the current tile.

    Each tile is optimized for ``steps_per_tile`` steps, then its core is written into
    :attr:`image`; :data:`PASSES` passes with shifted grids make every pixel receive about
    ``steps`` updates, as at an untiled scale. Adam's moments are kept for the whole picture, so
    each pixel's Adam goes on where its last visit stopped, as in one untiled run (a fresh Adam per
    visit restarts with full-size steps and measured a higher loss); other optimizers start afresh
    at every visit.

    Attributes:
        image: The whole picture at this scale (updated as each tile finishes).
        tiles: Every tile visit, in order.
        steps_per_tile: Steps of one visit.
        visit: Index of the tile being optimized.
        estimate: ``(B,)`` area-weighted mean of the tiles' latest losses: the whole image's loss
            as the tiles see it (losses are per-position means, so tiles of any size compare).
    """

    def __init__(
        self,
        objective: Objective,
        targets: Targets,
        plan: TilePlan,
        start: Tensor,
        steps: int,
    ) -> None:
        self._objective = objective
        self._targets = targets
        self._plan = plan
        self.image = start.detach().clone(memory_format=torch.contiguous_format)
        self.tiles = plan.visits((self.image.shape[-2], self.image.shape[-1]))
        self.steps_per_tile = steps_per_tile(steps)
        self.visit = -1
        batch = self.image.shape[0]
        self.estimate = torch.full((batch,), float("inf"), device=self.image.device)
        self._loss_area = torch.zeros(batch, device=self.image.device)
        self._area = 0
        self._moments: dict[str, Tensor] = {}  # Adam's per-pixel state at the picture's size
        self._begin_visit()

    @property
    def total_steps(self) -> int:
        """Steps of this scale: every visit's."""
        return len(self.tiles) * self.steps_per_tile

    def step(self) -> Loss:
        """One optimizer step on the current tile; its core goes into the picture at its end."""
        if self._steps_in_visit == self.steps_per_tile:
            self._begin_visit()
        loss = optimize.step(self._objective, self.crop, self.crop_targets, self.optimizer)
        self._steps_in_visit += 1
        if self._steps_in_visit == self.steps_per_tile:
            self._end_visit(loss)
        return loss

    def _begin_visit(self) -> None:
        """Cut the next tile's crop and targets and give it a fresh optimizer."""
        self.visit += 1
        tile = self.tiles[self.visit]
        self.crop_targets = self._plan.crop_targets(self._targets, tile)
        self.crop = cut(self.image, tile.crop).clone().requires_grad_(True)
        # Only the core moves: the margin is the neighbours as they are (a zero gradient leaves
        # Adam's and L-BFGS's updates zero there).
        core = torch.zeros_like(self.crop[:1, :1])
        cut(core, relative(tile.core, tile.crop)).fill_(1)
        self.crop.register_hook(lambda grad: grad * core)  # type: ignore[no-untyped-call]
        self.optimizer = optimize.make_optimizer(self.crop, self._objective.config)
        if isinstance(self.optimizer, torch.optim.Adam):
            self._resume_adam(tile, core)
        self._steps_in_visit = 0

    def _resume_adam(self, tile: Tile, core: Tensor) -> None:
        """Give the crop's Adam the moments its pixels had and the step count of its pass."""
        if not self._moments:
            return  # the first visit starts fresh
        group = self.optimizer.param_groups[0]
        on_device = group.get("fused") or group.get("capturable")
        steps = float(tile.pass_index * self.steps_per_tile)
        state: dict[str, Tensor] = {
            "step": torch.tensor(steps, device=self.crop.device if on_device else "cpu")
        }
        for key, moments in self._moments.items():
            state[key] = cut(moments, tile.crop).clone()
        # With no first moment in the margin, Adam's update there stays exactly zero.
        state["exp_avg"] *= core
        self.optimizer.state[self.crop] = state

    def _keep_adam(self, tile: Tile) -> None:
        """Store the core's Adam moments at the picture's size for the pixels' next visit."""
        state = self.optimizer.state.get(self.crop, {})
        for key in ("exp_avg", "exp_avg_sq"):
            if key in state:
                moments = self._moments.setdefault(key, torch.zeros_like(self.image))
                inner = cut(state[key], relative(tile.core, tile.crop))
                cut(moments, tile.core).copy_(inner)

    def _end_visit(self, loss: Loss) -> None:
        """Write the optimized core into the picture and fold its loss into the estimate."""
        tile = self.tiles[self.visit]
        window = cut(self.image, tile.core)
        core = cut(self.crop.detach(), relative(tile.core, tile.crop))
        if self._objective.config.clamp:
            core = core.clamp(0, 1)
        # A diverged tile (NaN/Inf) is never written: the picture keeps its last good pixels.
        window.copy_(torch.where(torch.isfinite(core), core, window))
        if isinstance(self.optimizer, torch.optim.Adam):
            self._keep_adam(tile)
        self._loss_area += loss.per_item * tile.area
        self._area += tile.area
        pixels = self.image.shape[-2] * self.image.shape[-1]
        if self._area >= pixels:  # a pass is complete: its cores cover the image once
            self.estimate = self._loss_area / self._area
            self._loss_area = torch.zeros_like(self._loss_area)
            self._area = 0
