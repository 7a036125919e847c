"""Where a photo has structure: the per-position weight of the content loss.

A uniform content weight asks every part of the photo to survive equally, so a flat sky and a
face pay the same price for taking the painting's strokes. With ``content_structure`` set, each
content layer's squared error is weighted per position by

    e = (1 + k * g / mean(g)) / (1 + k)

where ``g`` is the Sobel gradient magnitude of the content's luma, blurred with a Gaussian whose
sigma is 1/64 of the long side (a neighbourhood's amount of detail, not single edges), and ``k``
the strength. ``e`` averages 1, so the total content weight stays what the config says: the
content moves from flat regions, which take more of the style, to detailed ones (eyes, windows,
lettering), which keep more of the photo. Being relative to the image's own size and mean, the
map means the same at every scale of a coarse-to-fine run and on every photo.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["content_weight_maps", "structure_map"]

_LUMA = (0.299, 0.587, 0.114)  # BT.601
_BLUR_FRACTION = 1 / 64  # sigma of the neighbourhood, as a fraction of the long side


def structure_map(image: Tensor) -> Tensor:
    """``(B, 1, H, W)`` amount of local detail of an RGB batch ``(B, 3, H, W)``, mean 1 per item.

    A flat image (no gradient anywhere) gives 1 everywhere.
    """
    image = image.float()
    luma = torch.einsum("bchw,c->bhw", image, image.new_tensor(_LUMA)).unsqueeze(1)
    sobel = image.new_tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
    kernels = torch.stack([sobel, sobel.T]).unsqueeze(1)  # (2, 1, 3, 3): d/dx, d/dy
    gradients = F.conv2d(F.pad(luma, (1, 1, 1, 1), mode="replicate"), kernels)
    magnitude = gradients.square().sum(1, keepdim=True).sqrt()
    detail = _gaussian_blur(magnitude, sigma=max(image.shape[-2:]) * _BLUR_FRACTION)
    mean = detail.mean(dim=(1, 2, 3), keepdim=True)
    return torch.where(mean > 0, detail / mean.clamp_min(1e-12), torch.ones_like(detail))


def content_weight_maps(
    image: Tensor, shapes: Mapping[str, tuple[int, int]], strength: float
) -> dict[str, Tensor]:
    """Layer -> ``(B, 1, h, w)`` content-loss weight per feature position, mean 1.

    Args:
        image: The content batch ``(B, 3, H, W)`` at the output's size.
        shapes: Each content layer's feature map size ``(h, w)``.
        strength: ``k`` in the module's formula; 0 weighs every position alike.
    """
    weights = (1 + strength * structure_map(image)) / (1 + strength)
    # Area averaging keeps the mean of 1 at every layer's resolution.
    return {name: F.interpolate(weights, size=shape, mode="area") for name, shape in shapes.items()}


def _gaussian_blur(image: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur of ``(B, 1, H, W)``, edges replicated."""
    radius = max(1, round(3 * sigma))
    offsets = torch.arange(-radius, radius + 1, dtype=image.dtype, device=image.device)
    kernel = torch.exp(-offsets.square() / (2 * sigma**2))
    # Replicate padding must be narrower than the image; a larger radius adds nothing there.
    pad_w = min(radius, image.shape[-1] - 1)
    pad_h = min(radius, image.shape[-2] - 1)
    row = kernel[radius - pad_w : radius + pad_w + 1]
    column = kernel[radius - pad_h : radius + pad_h + 1]
    row, column = row / row.sum(), column / column.sum()
    image = F.conv2d(F.pad(image, (pad_w, pad_w, 0, 0), mode="replicate"), row.view(1, 1, 1, -1))
    return F.conv2d(F.pad(image, (0, 0, pad_h, pad_h), mode="replicate"), column.view(1, 1, -1, 1))
