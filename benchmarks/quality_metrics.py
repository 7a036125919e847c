"""The quality report's measures: two distances under a network and two that need none.

Every measure compares a result with what it should resemble and is a plain float:

* :func:`feature_distance`: content kept, relative squared error of feature maps (0 is equal);
* :func:`gram_distance`: style taken, relative squared error of Gram matrices (0 is equal);
* :func:`color_histogram_distance`: palette taken, total variation distance of joint RGB
  histograms, in [0, 1] (0 is the same palette);
* :func:`edge_ssim`: structure kept, SSIM of the luma edge maps, in [-1, 1] (1 is identical).

The two network-free measures check the network ones with something the optimized network
cannot game: a result can match Gram matrices and still lose the photo's outlines or take none
of the painting's colours.

Images are ``(1, 3, H, W)`` RGB floats in [0, 1]; feature maps are ``(1, C, h, w)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from neuralstyle import ShapeError, gram_matrix

__all__ = [
    "BT601_LUMA",
    "SSIM_SIGMA",
    "SSIM_WINDOW",
    "color_histogram_distance",
    "edge_ssim",
    "feature_distance",
    "gram_distance",
    "luma",
    "sobel_magnitude",
    "ssim",
]

BT601_LUMA = (0.299, 0.587, 0.114)
"""Weights of R, G, B in the luma Y' of ITU-R BT.601."""
SSIM_WINDOW = 11
"""Side of SSIM's Gaussian window in pixels (Wang et al., 2004)."""
SSIM_SIGMA = 1.5
"""Standard deviation of SSIM's Gaussian window in pixels."""
# Sobel kernels divided by 8 (the sum of their absolute weights): a step from 0 to 1 gives a
# gradient of 0.5 on either axis, so the magnitude lies in [0, sqrt(0.5)] for images in [0, 1].
_SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]) / 8
_SOBEL_RANGE = math.sqrt(0.5)


# -- under a network -------------------------------------------------------------------------------


def feature_distance(
    output: Mapping[str, Tensor], reference: Mapping[str, Tensor], layers: Sequence[str]
) -> float:
    """Mean over ``layers`` of ``||F(output) - F(reference)||^2 / ||F(reference)||^2``.

    Relative, so layers of very different magnitude count alike and the number means the same on
    every network: 0 is identical features, 1 is as far as an all-zero map.

    Args:
        output: Layer -> feature maps of the result.
        reference: Layer -> feature maps of the content image, at the result's size.
        layers: The layers to average over.

    Raises:
        ShapeError: No layers, or a layer's maps differ in shape.

    Example:
        >>> maps = {"relu4_2": torch.ones(1, 2, 3, 3)}
        >>> feature_distance({"relu4_2": torch.zeros(1, 2, 3, 3)}, maps, ["relu4_2"])
        1.0
    """
    return _mean(_relative_squared_error(output[name], reference[name], name) for name in layers)


def gram_distance(
    output: Mapping[str, Tensor], reference: Mapping[str, Tensor], layers: Sequence[str]
) -> float:
    """Mean over ``layers`` of ``||G(output) - G(reference)||^2 / ||G(reference)||^2``.

    Grams are divided by ``C*H*W``, so a style image at its own size compares with a result at
    another size: tiling a feature map leaves its Gram, and so the distance, unchanged.

    Args:
        output: Layer -> feature maps of the result.
        reference: Layer -> feature maps of the style image, at any size.
        layers: The layers to average over.

    Raises:
        ShapeError: No layers, or a layer's channel counts differ.

    Example:
        >>> maps = {"relu1_1": torch.ones(1, 2, 4, 4)}
        >>> gram_distance(maps, {"relu1_1": torch.ones(1, 2, 8, 8)}, ["relu1_1"])
        0.0
    """
    return _mean(
        _relative_squared_error(_gram(output[name]), _gram(reference[name]), name)
        for name in layers
    )


def _gram(features: Tensor) -> Tensor:
    return gram_matrix(features.double(), normalize="chw")


def _relative_squared_error(value: Tensor, reference: Tensor, layer: str) -> float:
    if value.shape != reference.shape:
        raise ShapeError(
            f"{layer}: shapes differ, {tuple(value.shape)} against {tuple(reference.shape)}"
        )
    value, reference = value.double(), reference.double()
    error = (value - reference).square().sum()
    # A dead layer (all zeros) only matches zeros: 0 / tiny when equal, huge otherwise.
    scale = reference.square().sum().clamp_min(torch.finfo(torch.float64).tiny)
    return float(error / scale)


def _mean(values: Iterable[float]) -> float:
    collected = list(values)
    if not collected:
        raise ShapeError("no layers to average over; name at least one")
    return sum(collected) / len(collected)


# -- without a network -----------------------------------------------------------------------------


def color_histogram_distance(image: Tensor, reference: Tensor, bins: int = 8) -> float:
    """Total variation distance between the joint RGB histograms of two images, in [0, 1].

    Each channel is cut into ``bins`` equal intervals (``bins**3`` cells in all) and each
    histogram is divided by its pixel count, so the images may differ in size. The distance is
    half the L1 distance of the two histograms: 0 for the same palette whatever the layout, 1
    when no cell holds pixels of both.

    Args:
        image: ``(1, 3, H, W)`` in [0, 1].
        reference: ``(1, 3, H', W')`` in [0, 1].
        bins: Intervals per channel.

    Raises:
        ShapeError: Either image is not a single RGB image.

    Example:
        >>> color_histogram_distance(torch.zeros(1, 3, 2, 2), torch.ones(1, 3, 5, 5))
        1.0
    """
    first, second = _histogram(image, bins), _histogram(reference, bins)
    return float((first - second).abs().sum() / 2)


def _histogram(image: Tensor, bins: int) -> Tensor:
    pixels = _rgb(image, "image").flatten(1)
    # Value 1.0 falls in the last interval, not past it.
    levels = (pixels * bins).long().clamp(0, bins - 1)
    cells = (levels[0] * bins + levels[1]) * bins + levels[2]
    counts = torch.bincount(cells, minlength=bins**3).double()
    return counts / counts.sum()


def luma(image: Tensor) -> Tensor:
    """BT.601 luma ``Y' = 0.299 R + 0.587 G + 0.114 B`` of ``(1, 3, H, W)``, as ``(1, 1, H, W)``.

    Example:
        >>> luma(torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1)).item()
        0.299
    """
    weights = torch.tensor(BT601_LUMA, dtype=torch.float64, device=image.device)
    return (_rgb(image, "image") * weights.view(3, 1, 1)).sum(0).view(1, 1, *image.shape[-2:])


def sobel_magnitude(gray: Tensor) -> Tensor:
    """Gradient magnitude of ``(1, 1, H, W)`` by the Sobel operator / 8, borders replicated.

    A step from 0 to 1 gives 0.5 along the edge; any image in [0, 1] stays in [0, sqrt(0.5)].

    Example:
        >>> step = torch.tensor([0.0, 0.0, 1.0, 1.0]).repeat(1, 1, 4, 1)
        >>> sobel_magnitude(step)[0, 0, 0].tolist()
        [0.0, 0.5, 0.5, 0.0]
    """
    kernel_x = _SOBEL_X.to(gray)
    kernels = torch.stack([kernel_x, kernel_x.T]).unsqueeze(1)
    gradients = F.conv2d(F.pad(gray, (1, 1, 1, 1), mode="replicate"), kernels)
    return gradients.square().sum(1, keepdim=True).sqrt()


def ssim(
    first: Tensor,
    second: Tensor,
    *,
    data_range: float = 1.0,
    window: int = SSIM_WINDOW,
    sigma: float = SSIM_SIGMA,
) -> float:
    """Mean structural similarity (Wang et al., 2004) of two ``(1, 1, H, W)`` maps.

    Local means, variances and covariance under a Gaussian window, over the positions where the
    window fits inside the image (no padding); constants ``(0.01 L)^2`` and ``(0.03 L)^2`` with
    ``L = data_range``. Symmetric; 1 when the maps are equal.

    Raises:
        ShapeError: The maps differ in shape or are smaller than the window.

    Example:
        >>> flat = torch.zeros(1, 1, 16, 16)
        >>> ssim(flat, flat)
        1.0
    """
    if first.shape != second.shape:
        raise ShapeError(
            f"SSIM needs equal shapes, got {tuple(first.shape)} and {tuple(second.shape)}"
        )
    if min(first.shape[-2:]) < window:
        raise ShapeError(
            f"SSIM's {window}-px window does not fit in {tuple(first.shape[-2:])}; "
            "use a larger size"
        )
    x, y = first.double(), second.double()
    blur = _gaussian_blur(window, sigma, x.device)
    mean_x, mean_y = blur(x), blur(y)
    var_x = blur(x * x) - mean_x.square()
    var_y = blur(y * y) - mean_y.square()
    covariance = blur(x * y) - mean_x * mean_y
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    numerator = (2 * mean_x * mean_y + c1) * (2 * covariance + c2)
    denominator = (mean_x.square() + mean_y.square() + c1) * (var_x + var_y + c2)
    return float((numerator / denominator).mean())


def _gaussian_blur(window: int, sigma: float, device: torch.device) -> Callable[[Tensor], Tensor]:
    offsets = torch.arange(window, dtype=torch.float64, device=device) - (window - 1) / 2
    weights = torch.exp(-offsets.square() / (2 * sigma**2))
    weights = weights / weights.sum()
    rows, columns = weights.view(1, 1, 1, window), weights.view(1, 1, window, 1)
    return lambda maps: F.conv2d(F.conv2d(maps, rows), columns)


def edge_ssim(image: Tensor, reference: Tensor) -> float:
    """SSIM of the Sobel magnitudes of the BT.601 luma of two images of the same size.

    Compares outlines only: colour and a uniform change of brightness leave it at 1, losing or
    inventing edges lowers it. ``data_range`` is the magnitude's range, ``sqrt(0.5)``.

    Args:
        image: The result, ``(1, 3, H, W)`` in [0, 1].
        reference: The content image resized to the result's size.

    Raises:
        ShapeError: The images differ in size, are smaller than the SSIM window, or are not
            single RGB images.

    Example:
        >>> picture = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
        >>> round(edge_ssim(picture, picture), 6)
        1.0
    """
    edges = sobel_magnitude(luma(image))
    reference_edges = sobel_magnitude(luma(reference))
    return ssim(edges, reference_edges, data_range=_SOBEL_RANGE)


def _rgb(image: Tensor, what: str) -> Tensor:
    """The ``(3, H, W)`` float64 pixels of a single RGB image, or a ShapeError."""
    if image.dim() != 4 or image.shape[0] != 1 or image.shape[1] != 3:
        raise ShapeError(f"{what} must be one RGB image (1, 3, H, W), got {tuple(image.shape)}")
    return image[0].double()
