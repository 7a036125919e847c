"""Region masks: where each style applies, and where the content may change.

A mask is a ``(1, 1, H, W)`` float tensor in [0, 1] at the image's size: 1 inside the region, 0
outside, values between for a soft edge. It enters as a greyscale (or RGB: the channel mean)
image file, a PIL image, a numpy array or a tensor, and is carried to every layer's resolution by
area averaging, so a soft edge stays soft and a region keeps its share of each feature map.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from neuralstyle.errors import ImageError, ShapeError
from neuralstyle.image import ImageSource, load_image

__all__ = ["load_mask", "mask_at"]


def load_mask(source: ImageSource, *, size: tuple[int, int], name: str = "mask") -> Tensor:
    """Load a region mask and resize it to ``size``.

    Args:
        source: A path, PIL image, numpy array (``uint8`` 0-255 or float in [0, 1]) or tensor
            (``(H, W)``, ``(1, H, W)`` or ``(1, 1, H, W)``, float in [0, 1]). White is inside.
        size: ``(height, width)`` of the image the mask belongs to.
        name: What to call the mask in error messages (``"style mask 2"``).

    Returns:
        The mask, ``(1, 1, height, width)`` float32 in [0, 1].

    Raises:
        ShapeError: The mask's aspect ratio is not the image's (it would be stretched), or its
            tensor has an unusable shape.
        ImageError: The file cannot be read, or values lie outside [0, 1] or are NaN.

    Example:
        >>> load_mask(torch.ones(4, 6), size=(2, 3)).shape
        torch.Size([1, 1, 2, 3])
    """
    if isinstance(source, Tensor) and source.dim() == 2:
        source = source.unsqueeze(0)
    try:
        native = load_image(source)
    except (ImageError, ShapeError) as error:
        # Same type (ImageNotFoundError stays one), with the mask named.
        raise type(error)(f"{name}: {error}") from None
    _check_aspect(native.shape[-2], native.shape[-1], size, name)
    resized = load_image(native, size=size)
    # A resampling filter can ring slightly past [0, 1] at a hard edge.
    return resized.mean(dim=1, keepdim=True).clamp_(0, 1)


def _check_aspect(height: int, width: int, size: tuple[int, int], name: str) -> None:
    """Refuse a mask whose shape would be stretched by more than a pixel to fit ``size``."""
    target_height, target_width = size
    if abs(height * target_width - target_height * width) > max(width, target_width):
        raise ShapeError(
            f"{name} is {width}x{height} pixels but the image is {target_width}x{target_height}: "
            "a mask must have the image's aspect ratio (make it at the content image's size)"
        )


def mask_at(mask: Tensor, size: tuple[int, int] | torch.Size) -> Tensor:
    """Area-average ``mask`` ``(B, 1, H, W)`` down (or up) to a feature map's ``(h, w)``.

    Example:
        >>> mask_at(torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]]), (1, 1))
        tensor([[[[0.5000]]]])
    """
    height, width = int(size[0]), int(size[1])
    if tuple(mask.shape[-2:]) == (height, width):
        return mask
    return F.adaptive_avg_pool2d(mask, (height, width))
