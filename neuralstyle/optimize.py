"""One scale's optimization: the starting image, the optimizer, and one update of the image.

These are the loop's smallest pieces; :class:`~neuralstyle.TransferRun` strings them into a run
and :class:`~neuralstyle.StyleTransfer` exposes them as its ``initial_image``,
``make_optimizer`` and ``step``. Nothing in a step reads a value back to the host on the Adam
path, so a GPU never waits for Python.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import torch
from torch import Tensor

from neuralstyle.color import match_color
from neuralstyle.config import TransferConfig
from neuralstyle.errors import ConfigError
from neuralstyle.image import ImageSource, load_image
from neuralstyle.lbfgs import scaled_backward
from neuralstyle.objective import Loss, Objective
from neuralstyle.targets import Targets

__all__ = ["NOISE_MEAN", "NOISE_STD", "initial_image", "make_optimizer", "step"]

NOISE_MEAN = (0.485, 0.456, 0.406)
"""The colour ``init="noise"`` starts from: ImageNet's mean, a neutral grey the networks know."""
NOISE_STD = 0.001 / 256
"""The spread of ``init="noise"`` around :data:`NOISE_MEAN`: neural-style's ``-init random``
(0.001 in its 0..256 pixel units). Faint on purpose: the optimizer paints on a blank canvas, and
strong noise (uniform in [0, 1]) survives hundreds of L-BFGS steps as coloured speckle."""


def initial_image(
    targets: Targets, config: TransferConfig, *, init: ImageSource | None = None
) -> Tensor:
    """The image the optimization starts from, a leaf tensor that requires grad.

    Args:
        targets: The targets of the scale it starts at (their content image gives the size and
            the device).
        config: Its ``init`` (the content, or noise from ``seed``) applies when ``init`` is None.
        init: A given starting image, resized to the content's size.
    """
    content = targets.content_image
    if init is not None:
        start = load_image(init, size=(content.shape[-2], content.shape[-1])).to(content.device)
        start = start.expand_as(content)
    elif config.init == "recolored":
        start = _recolored(content, targets.palette)
    elif config.init == "noise":
        generator = torch.Generator().manual_seed(config.seed)
        noise = torch.randn(content.shape, generator=generator) * NOISE_STD
        start = (noise + torch.tensor(NOISE_MEAN).view(1, 3, 1, 1)).to(content.device)
    else:
        start = content
    # Always contiguous, even with channels_last (the network input is converted on the way
    # in): L-BFGS views the gradient as one flat vector, which a channels-last one is not.
    return start.detach().clone(memory_format=torch.contiguous_format).requires_grad_(True)


def _recolored(content: Tensor, palette: Tensor | None) -> Tensor:
    if palette is None:
        raise ConfigError(
            'init="recolored" needs the style\'s colours: build the targets with '
            "Objective.targets (their palette is None)"
        )
    # Per channel, not the joint covariance: on the quality pairs it took the painting's
    # palette further (histogram distance 0.373 against 0.399 on the mean of five) and kept as
    # much structure (benchmarks/results/quality-log.md).
    return match_color(content, palette, method="histogram")


def make_optimizer(image: Tensor, config: TransferConfig) -> torch.optim.Optimizer:
    """The optimizer ``config`` asks for, over ``image`` alone.

    Raises:
        ConfigError: An optimizer name other than ``"adam"`` and ``"lbfgs"``.
    """
    choice, lr = config.optimizer, config.learning_rate
    if choice == "adam":
        fused = image.device.type == "cuda"
        return torch.optim.Adam(
            [image],
            lr=lr or 0.02,
            betas=config.adam_betas,
            eps=config.adam_eps,
            fused=fused or None,
        )
    if choice == "lbfgs":
        # One evaluation per step; memory of 100 pairs as in neural-style.
        return torch.optim.LBFGS([image], lr=lr or 1.0, max_iter=1, history_size=100)
    if callable(choice):
        return choice([image])
    raise ConfigError(f"unknown optimizer {choice!r}")


def step(
    objective: Objective, image: Tensor, targets: Targets, optimizer: torch.optim.Optimizer
) -> Loss:
    """Do one optimizer update of ``image`` in place; return the loss *before* the update.

    Makes no host sync on the Adam path. L-BFGS minimizes the total times a scale it measures on
    its first step (see :mod:`neuralstyle.lbfgs`) and, like every closure-based optimizer, reads
    the loss. With ``config.clamp`` an Adam (or custom) update is clamped to [0, 1]; L-BFGS runs
    unclamped, since clamping between its steps corrupts its curvature memory.
    """
    evaluations: list[Loss] = []
    is_lbfgs = isinstance(optimizer, torch.optim.LBFGS)

    def closure() -> Tensor:
        optimizer.zero_grad(set_to_none=True)
        loss = objective(image, targets)
        evaluations.append(loss)
        if isinstance(optimizer, torch.optim.LBFGS):
            return scaled_backward(loss.total, optimizer)
        loss.total.backward()  # type: ignore[no-untyped-call]
        return loss.total

    # torch types closures as returning float; every optimizer also accepts a 0-d tensor, and
    # returning the tensor keeps the Adam path free of host syncs.
    optimizer.step(cast(Callable[[], float], closure))
    if objective.config.clamp and not is_lbfgs:
        with torch.no_grad():
            image.clamp_(0, 1)
    return evaluations[0].detached()
