"""Coarse to fine: the sizes a run passes through, and moving an image between them.

Optimizing first at a small size settles the large structures of the picture cheaply (a step at
half the side costs a quarter); each larger size then only refines. Sizes grow geometrically by
at most sqrt(2), as in crowsonkb's style-transfer-pytorch, and the last one is the output's.
"""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor

__all__ = ["resize", "scale_sizes"]

_MAX_RATIO = math.sqrt(2)


def scale_sizes(height: int, width: int, start_size: int | None) -> list[tuple[int, int]]:
    """The ``(height, width)`` of every scale, ending at ``(height, width)``.

    ``start_size`` is the first scale's long side; None (or a start at least the output's long
    side) gives the output size alone.

    Example:
        >>> scale_sizes(300, 400, 200)
        [(150, 200), (212, 283), (300, 400)]
    """
    long_side = max(height, width)
    if start_size is None or start_size >= long_side:
        return [(height, width)]
    count = math.ceil(math.log(long_side / start_size) / math.log(_MAX_RATIO) - 1e-9)
    sizes = []
    for index in range(count + 1):
        side = start_size * (long_side / start_size) ** (index / count)
        factor = side / long_side
        sizes.append((max(1, round(height * factor)), max(1, round(width * factor))))
    sizes[-1] = (height, width)
    return sizes


def spatial_size(image: Tensor) -> tuple[int, int]:
    """``(height, width)`` of a ``(..., H, W)`` tensor, as ints."""
    return int(image.shape[-2]), int(image.shape[-1])


def resize(image: Tensor, size: tuple[int, int], *, mode: str = "bicubic") -> Tensor:
    """Resize ``(B, C, H, W)`` to ``size``; every resize of a picture in the library uses it.

    Antialiased, so shrinking a large photo does not alias fine texture into moire. Bicubic keeps
    strokes sharper than bilinear but can overshoot: clamp images afterwards.
    """
    if spatial_size(image) == tuple(size):
        return image
    return F.interpolate(image, size=size, mode=mode, antialias=True, align_corners=False)
