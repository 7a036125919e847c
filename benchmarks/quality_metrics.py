"""The quality protocol's measures (issue 15): what a person sees, as plain floats.

On the output ``O`` against the content ``C`` resized to ``O``'s size and the style ``S``:

* :func:`edge_ssim`: structure kept. SSIM (Gaussian window, sigma 1.5, constants ``0.01**2`` and
  ``0.03**2``: a data range of 1) between the Sobel gradient magnitudes of the BT.601 luma of
  ``O`` and ``C``; 1 is the same outlines, near 0 none of them;
* :func:`luma_correlation`: layout kept. Pearson correlation of the luma of ``O`` and ``C``, each
  blurred by a Gaussian of sigma 2 px (reflected borders), in [-1, 1];
* :func:`color_histogram_distance`: palette taken. Total variation distance between the 8x8x8
  joint RGB histograms of ``O`` and ``S``, in [0, 1];
* :func:`gram_distance`: texture taken. Mean over the style layers of
  ``||G(O) - G(S)||_F / ||G(S)||_F`` with ``G = F F^T / (C H W)`` under a network (the bundled
  VGG16 in the report), ``S`` resized to a 512 px long side by the caller;
* :func:`face_probability` (optional, in ``benchmarks/faces.py``): the best face probability of
  MTCNN, for portraits.

The network-free measures check the network one with something the optimized network cannot
game: a result can match Gram matrices and still lose the photo's outlines or take none of the
painting's colours. No single measure decides; read them together with the pictures.

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
    "LUMA_BLUR_SIGMA",
    "SSIM_SIGMA",
    "SSIM_WINDOW",
    "color_histogram_distance",
    "edge_ssim",
    "gram_distance",
    "luma",
    "luma_correlation",
    "sobel_magnitude",
    "ssim",
]

BT601_LUMA = (0.299, 0.587, 0.114)
"""Weights of R, G, B in the luma Y' of ITU-R BT.601."""
SSIM_WINDOW = 11
"""Side of SSIM's Gaussian window in pixels (Wang et al., 2004: sigma 1.5 cut at 3.5 sigma)."""
SSIM_SIGMA = 1.5
"""Standard deviation of SSIM's Gaussian window in pixels."""
LUMA_BLUR_SIGMA = 2.0
"""Standard deviation in pixels of the blur before the luma correlation."""
_SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])


# -- under a network -------------------------------------------------------------------------------


def gram_distance(
    output: Mapping[str, Tensor], reference: Mapping[str, Tensor], layers: Sequence[str]
) -> float:
    """Mean over ``layers`` of ``||G(output) - G(reference)||_F / ||G(reference)||_F``.

    Grams are divided by ``C*H*W``, so a style image at one size compares with a result at
    another: tiling a feature map leaves its Gram, and so the distance, unchanged. Relative, so
    layers of very different magnitude count alike: 0 is the same statistics, 1 is as far as
    an all-zero map.

    Args:
        output: Layer -> feature maps of the result.
        reference: Layer -> feature maps of the style image.
        layers: The layers to average over.

    Raises:
        ShapeError: No layers, or a layer's channel counts differ.

    Example:
        >>> maps = {"relu1_1": torch.ones(1, 2, 4, 4)}
        >>> gram_distance(maps, {"relu1_1": torch.ones(1, 2, 8, 8)}, ["relu1_1"])
        0.0
    """
    return _mean(
        _relative_error(_gram(output[name]), _gram(reference[name]), name) for name in layers
    )


def _gram(features: Tensor) -> Tensor:
    return gram_matrix(features.double(), normalize="chw")


def _relative_error(value: Tensor, reference: Tensor, layer: str) -> float:
    if value.shape != reference.shape:
        raise ShapeError(
            f"{layer}: shapes differ, {tuple(value.shape)} against {tuple(reference.shape)}"
        )
    value, reference = value.double(), reference.double()
    # A dead layer (all zeros) only matches zeros: 0 / tiny when equal, huge otherwise.
    scale = reference.norm().clamp_min(torch.finfo(torch.float64).tiny)
    return float((value - reference).norm() / scale)


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
    """Gradient magnitude of ``(1, 1, H, W)`` by the plain Sobel operator, borders replicated.

    A step from 0 to 1 gives 4 along the edge; any image in [0, 1] stays in [0, 4 sqrt(2)].

    Example:
        >>> step = torch.tensor([0.0, 0.0, 1.0, 1.0]).repeat(1, 1, 4, 1)
        >>> sobel_magnitude(step)[0, 0, 0].tolist()
        [0.0, 4.0, 4.0, 0.0]
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
    inventing edges lowers it. The constants are those of a data range of 1 (``0.01**2``,
    ``0.03**2``), small beside the magnitudes' variance, so the score is close to the local
    correlation of the two edge maps.

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
    return ssim(edges, reference_edges, data_range=1.0)


def luma_correlation(image: Tensor, reference: Tensor, sigma: float = LUMA_BLUR_SIGMA) -> float:
    """Pearson correlation of the blurred BT.601 luma of two images of the same size.

    The blur (Gaussian, ``sigma`` px, cut at 4 sigma, borders reflected) leaves the layout of
    light and dark and drops the brush strokes: 1 is the same layout, 0 none of it.

    Args:
        image: The result, ``(1, 3, H, W)`` in [0, 1].
        reference: The content image resized to the result's size.

    Raises:
        ShapeError: The images differ in size or are not single RGB images.

    Example:
        >>> ramp = torch.linspace(0, 1, 16).repeat(1, 3, 16, 1)
        >>> round(luma_correlation(0.5 * ramp + 0.2, ramp), 6)
        1.0
    """
    if image.shape != reference.shape:
        raise ShapeError(
            f"luma correlation needs equal shapes, got {tuple(image.shape)} and "
            f"{tuple(reference.shape)}"
        )
    blur = _reflected_blur(sigma, image.device)
    first = blur(luma(image)).flatten()
    second = blur(luma(reference)).flatten()
    first, second = first - first.mean(), second - second.mean()
    denominator = (first.norm() * second.norm()).clamp_min(torch.finfo(torch.float64).tiny)
    return float((first * second).sum() / denominator)


def _reflected_blur(sigma: float, device: torch.device) -> Callable[[Tensor], Tensor]:
    radius = math.ceil(4 * sigma)
    blur = _gaussian_blur(2 * radius + 1, sigma, device)

    def apply(maps: Tensor) -> Tensor:
        # Reflection needs the pad to be smaller than the side; replicate beyond it.
        mode = "reflect" if min(maps.shape[-2:]) > radius else "replicate"
        return blur(F.pad(maps, (radius, radius, radius, radius), mode=mode))

    return apply


def _rgb(image: Tensor, what: str) -> Tensor:
    """The ``(3, H, W)`` float64 pixels of a single RGB image, or a ShapeError."""
    if image.dim() != 4 or image.shape[0] != 1 or image.shape[1] != 3:
        raise ShapeError(f"{what} must be one RGB image (1, 3, H, W), got {tuple(image.shape)}")
    return image[0].double()
