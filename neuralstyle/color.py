r"""Colour control for style transfer, as pure functions on RGB images.

Two ways to keep a photo's colours (Gatys et al. 2016, *Preserving Color in Neural Artistic
Style Transfer*; 2017, *Controlling Perceptual Factors in Neural Style Transfer*):

- after the run, :func:`transfer_luminance` keeps the stylized image's luma and puts back the
  content's chroma (neural-style's ``-original_colors``);
- before the run, :func:`match_color` recolours the style image so its colour distribution
  matches the content's, by an affine map (``"covariance"``) or per-channel quantile mapping
  (``"histogram"``).

Every function takes RGB images ``(B, 3, H, W)``, works per batch item on any device, validates
its arguments by metadata only (it never reads values) and returns the first argument's dtype.
float16/bfloat16 input is computed in float32; under autocast the matrix products run in full
precision. The formulas are written down in ``docs/color.md``.
"""

from __future__ import annotations

import math
from typing import Literal, get_args

import torch
from torch import Tensor

from neuralstyle._checks import check_feature_maps, check_same_device, is_low_precision
from neuralstyle._precision import full_precision
from neuralstyle.errors import ConfigError, ShapeError
from neuralstyle.scales import resize

__all__ = [
    "ColorMatchMethod",
    "match_color",
    "rgb_to_yiq",
    "transfer_luminance",
    "yiq_to_rgb",
]

ColorMatchMethod = Literal["covariance", "histogram"]
"""How :func:`match_color` maps colours: mean and covariance (affine), or per-channel quantiles."""

_METHODS: tuple[str, ...] = get_args(ColorMatchMethod)

# NTSC YIQ as tabulated for the 1953 FCC standard:
#   Y = 0.299 R + 0.587 G + 0.114 B
#   I = 0.5959 R - 0.2746 G - 0.3213 B
#   Q = 0.2115 R - 0.5227 G + 0.3112 B
# The I and Q rows sum to zero, so they are written on R - G and B - G: a grey pixel then has
# I = Q = 0 exactly (not up to rounding), and the inverse maps I = Q = 0 back to R = G = B = Y.
_LUMA_R, _LUMA_G, _LUMA_B = 0.299, 0.587, 0.114
_I_RG, _I_BG = 0.5959, -0.3213
_Q_RG, _Q_BG = 0.2115, 0.3112
# The inverse of the 2x2 map (R - G, B - G) -> (I, Q), to full float64 precision rather than
# the usual three-digit table, so that the round trip is the identity.
_DET = _I_RG * _Q_BG - _I_BG * _Q_RG
_RG_I, _RG_Q = _Q_BG / _DET, -_I_BG / _DET
_BG_I, _BG_Q = -_Q_RG / _DET, _I_RG / _DET

_DEFAULT_EPS = 1e-6


# -- checks -----------------------------------------------------------------------------------


def _check_image(image: object, name: str, layout: str = "RGB") -> Tensor:
    tensor = check_feature_maps(image, name)
    if tensor.shape[1] != 3:
        raise ShapeError(
            f"{name} must be a {layout} image (B, 3, H, W) with 3 channels, got "
            f"{tensor.shape[1]} channel(s) in shape {tuple(tensor.shape)}; expand a grey image "
            "with .expand(-1, 3, -1, -1)"
        )
    return tensor


def _check_pair(first: Tensor, second: Tensor, names: str) -> None:
    check_same_device(first, second, names)
    if first.shape[0] != second.shape[0]:
        raise ShapeError(
            f"{names} must have the same batch size, got {first.shape[0]} and "
            f"{second.shape[0]} (shapes {tuple(first.shape)} and {tuple(second.shape)})"
        )


def _check_method(method: object) -> None:
    if method not in _METHODS:
        raise ConfigError(f"method must be one of {_METHODS}, got {method!r}")


def _check_eps(eps: object) -> float:
    if (
        isinstance(eps, (int, float))
        and not isinstance(eps, bool)
        and math.isfinite(eps)
        and eps > 0
    ):
        return float(eps)
    raise ConfigError(f"eps must be a finite number > 0, got {eps!r}")


# -- precision --------------------------------------------------------------------------------


def _working_dtype(image: Tensor) -> torch.dtype:
    return torch.float32 if is_low_precision(image) else image.dtype


# -- YIQ --------------------------------------------------------------------------------------


def _luma(rgb: Tensor) -> Tensor:
    red, green, blue = rgb.unbind(dim=1)
    return _LUMA_R * red + _LUMA_G * green + _LUMA_B * blue


def _to_yiq(rgb: Tensor) -> Tensor:
    red, green, blue = rgb.unbind(dim=1)
    red_green, blue_green = red - green, blue - green
    in_phase = _I_RG * red_green + _I_BG * blue_green
    quadrature = _Q_RG * red_green + _Q_BG * blue_green
    return torch.stack((_luma(rgb), in_phase, quadrature), dim=1)


def _to_rgb(yiq: Tensor) -> Tensor:
    luma, in_phase, quadrature = yiq.unbind(dim=1)
    red_green = _RG_I * in_phase + _RG_Q * quadrature
    blue_green = _BG_I * in_phase + _BG_Q * quadrature
    # The luma weights sum to 1, so Y = G + 0.299 (R - G) + 0.114 (B - G).
    green = luma - _LUMA_R * red_green - _LUMA_B * blue_green
    return torch.stack((green + red_green, green, green + blue_green), dim=1)


def rgb_to_yiq(image: Tensor) -> Tensor:
    r"""Convert RGB to NTSC YIQ: luma $Y$ and the two chroma components $I$, $Q$.

    $$\begin{pmatrix} Y \\ I \\ Q \end{pmatrix} =
      \begin{pmatrix} 0.299 & 0.587 & 0.114 \\ 0.5959 & -0.2746 & -0.3213 \\
                      0.2115 & -0.5227 & 0.3112 \end{pmatrix}
      \begin{pmatrix} R \\ G \\ B \end{pmatrix}$$

    Grey pixels ($R = G = B$) get $I = Q = 0$ exactly. For RGB in $[0, 1]$, $Y \in [0, 1]$,
    $|I| \le 0.5959$ and $|Q| \le 0.5227$.

    Args:
        image: RGB images of shape ``(B, 3, H, W)``, floating point.

    Returns:
        The ``(B, 3, H, W)`` YIQ images (channels Y, I, Q) in ``image``'s dtype.

    Raises:
        DTypeError: ``image`` is not a floating-point tensor.
        ShapeError: ``image`` is not 4-d, has an empty dimension or not 3 channels.

    Example:
        >>> rgb_to_yiq(torch.full((1, 3, 1, 1), 0.5)).flatten()
        tensor([0.5000, 0.0000, 0.0000])
    """
    image = _check_image(image, "image")
    return _to_yiq(image.to(_working_dtype(image))).to(image.dtype)


def yiq_to_rgb(image: Tensor) -> Tensor:
    r"""Convert NTSC YIQ back to RGB: the exact inverse of :func:`rgb_to_yiq`.

    Values are not clamped: YIQ triples outside the RGB cube map outside $[0, 1]$.

    Args:
        image: YIQ images of shape ``(B, 3, H, W)`` (channels Y, I, Q), floating point.

    Returns:
        The ``(B, 3, H, W)`` RGB images in ``image``'s dtype.

    Raises:
        DTypeError: ``image`` is not a floating-point tensor.
        ShapeError: ``image`` is not 4-d, has an empty dimension or not 3 channels.

    Example:
        >>> rgb = torch.rand(2, 3, 4, 4)
        >>> torch.allclose(yiq_to_rgb(rgb_to_yiq(rgb)), rgb, atol=1e-6)
        True
    """
    image = _check_image(image, "image", layout="YIQ")
    return _to_rgb(image.to(_working_dtype(image))).to(image.dtype)


# -- luminance transfer -----------------------------------------------------------------------


def transfer_luminance(stylized: Tensor, content: Tensor) -> Tensor:
    r"""Keep the content's colours: the luma of ``stylized`` with the chroma of ``content``.

    $$\operatorname{out} = \operatorname{clamp}_{[0,1]}\left(
      \operatorname{YIQ}^{-1}\left(Y_{\text{stylized}}, I_{\text{content}},
      Q_{\text{content}}\right)\right)$$

    This is "original colours" (Gatys et al. 2016, *Preserving Color in Neural Artistic Style
    Transfer*; neural-style's ``-original_colors``): the style's brush strokes and light, the
    photo's hues. ``content`` is resized to ``stylized``'s height and width (bicubic,
    antialiased) when they differ. Differentiable in both arguments.

    Args:
        stylized: The stylized RGB images ``(B, 3, H, W)`` in ``[0, 1]``.
        content: The content RGB images ``(B, 3, H', W')`` in ``[0, 1]``; same batch size and
            device as ``stylized``.

    Returns:
        RGB images ``(B, 3, H, W)`` in ``[0, 1]`` with ``stylized``'s dtype.

    Raises:
        DTypeError: An argument is not a floating-point tensor.
        ShapeError: An argument is not 4-d, has an empty dimension or not 3 channels, or the
            batch sizes differ.
        DeviceMismatchError: The arguments are on different devices.

    Example:
        >>> stylized, content = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 16, 16)
        >>> transfer_luminance(stylized, content).shape
        torch.Size([1, 3, 8, 8])
        >>> torch.allclose(transfer_luminance(stylized, stylized), stylized, atol=1e-6)
        True
    """
    stylized = _check_image(stylized, "stylized")
    content = _check_image(content, "content")
    _check_pair(stylized, content, "stylized and content")
    dtype = _working_dtype(stylized)
    height, width = stylized.shape[-2:]
    chroma = _to_yiq(resize(content.to(dtype), (height, width)))[:, 1:]
    luma = _luma(stylized.to(dtype)).unsqueeze(1)
    return _to_rgb(torch.cat((luma, chroma), dim=1)).clamp(0, 1).to(stylized.dtype)


# -- colour matching --------------------------------------------------------------------------


def _mean_and_covariance(pixels: Tensor) -> tuple[Tensor, Tensor]:
    # pixels: (B, 3, N). Population covariance (divide by N): defined for one pixel too.
    mean = pixels.mean(dim=2, keepdim=True)
    centered = pixels - mean
    return mean, centered @ centered.transpose(1, 2) / pixels.shape[2]


def _symmetric_power(matrix: Tensor, exponent: float, eps: float) -> Tensor:
    eigenvalues, eigenvectors = torch.linalg.eigh(matrix)
    powers = eigenvalues.clamp(min=eps).pow(exponent)
    return torch.matmul(eigenvectors * powers.unsqueeze(-2), eigenvectors.transpose(-2, -1))


def _match_covariance(source: Tensor, reference: Tensor, eps: float) -> Tensor:
    pixels = source.flatten(2)
    source_mean, source_covariance = _mean_and_covariance(pixels)
    reference_mean, reference_covariance = _mean_and_covariance(reference.flatten(2))
    # Both spectra are floored alike, so equal covariances give exactly the identity map even
    # when they are singular (a flat or grey image).
    transform = _symmetric_power(reference_covariance, 0.5, eps) @ _symmetric_power(
        source_covariance, -0.5, eps
    )
    return (transform @ (pixels - source_mean) + reference_mean).view_as(source)


def _interpolate_sorted(values: Tensor, position: Tensor) -> Tensor:
    below = position.floor()
    lower = below.long()
    upper = (lower + 1).clamp(max=values.shape[-1] - 1)
    low, high = values.gather(-1, lower), values.gather(-1, upper)
    return low + (position - below) * (high - low)


def _match_histogram(source: Tensor, reference: Tensor) -> Tensor:
    # searchsorted wants contiguous rows; flatten() of an expanded image can be a strided view.
    pixels = source.flatten(2).contiguous()
    source_sorted = pixels.sort(dim=-1).values
    reference_sorted = reference.flatten(2).sort(dim=-1).values
    source_count, reference_count = pixels.shape[-1], reference_sorted.shape[-1]
    # Equal source values share their mid-rank, so a flat area stays flat instead of becoming
    # a ramp in scan order; distinct values get ranks 0 .. N-1.
    first = torch.searchsorted(source_sorted, pixels, side="left")
    after = torch.searchsorted(source_sorted, pixels, side="right")
    rank = (first + after - 1).to(source.dtype) / 2
    # Quantile (rank + 1/2) / N_s, read at the same quantile of the reference; equal sizes give
    # position == rank exactly.
    position = ((rank + 0.5) * reference_count / source_count - 0.5).clamp(0, reference_count - 1)
    return _interpolate_sorted(reference_sorted, position).view_as(source)


def match_color(
    source: Tensor,
    reference: Tensor,
    *,
    method: ColorMatchMethod = "covariance",
    eps: float = _DEFAULT_EPS,
) -> Tensor:
    r"""Recolour ``source`` so its colour distribution matches ``reference``'s, per batch item.

    Typical use: recolour the style image to the content photo's palette before the run.

    ``"covariance"`` (linear colour transfer, Gatys et al. 2017, *Controlling Perceptual Factors
    in Neural Style Transfer*) maps every pixel $x$ by

    $$x \mapsto A (x - \mu_s) + \mu_r, \qquad A = \Sigma_r^{1/2}\, \Sigma_s^{-1/2},$$

    with the means $\mu$ and population covariances $\Sigma$ of the pixels' RGB values and
    symmetric matrix roots whose eigenvalues are floored at ``eps``. The result has the
    reference's mean and covariance (up to the floor and the final clamp).

    ``"histogram"`` maps each channel through quantiles: a source value of rank $k$ among $N_s$
    (equal values share their mid-rank) becomes the reference's value at the same quantile
    $(k + 1/2)/N_s$, linearly interpolated between the reference's sorted values. With equal
    pixel counts and distinct source values each channel gets exactly the reference's sorted
    values. Differentiable in ``reference`` only (ranks are piecewise constant in ``source``).

    Args:
        source: RGB images ``(B, 3, H, W)`` in ``[0, 1]`` to recolour.
        reference: RGB images ``(B, 3, H', W')`` in ``[0, 1]`` whose colours to take; same batch
            size and device as ``source``, any size.
        method: ``"covariance"`` (default) or ``"histogram"``.
        eps: Floor of the covariance eigenvalues (``"covariance"`` only). It bounds the gain
            on colour directions along which ``source`` barely varies at $\sqrt{\lambda_r /
            \text{eps}}$; a flat reference gives back its colour to within a few
            $\sqrt{\text{eps}}$.

    Returns:
        The recoloured images ``(B, 3, H, W)``, clamped to ``[0, 1]``, in ``source``'s dtype.

    Raises:
        DTypeError: An argument is not a floating-point tensor.
        ShapeError: An argument is not 4-d, has an empty dimension or not 3 channels, or the
            batch sizes differ.
        DeviceMismatchError: The arguments are on different devices.
        ConfigError: ``method`` is unknown or ``eps`` is not a finite number > 0.

    Example:
        >>> generator = torch.Generator().manual_seed(0)
        >>> source = torch.rand(1, 3, 8, 8, generator=generator)
        >>> reference = 0.4 + 0.2 * torch.rand(1, 3, 8, 8, generator=generator)
        >>> recoloured = match_color(source, reference)
        >>> torch.allclose(recoloured.mean((2, 3)), reference.mean((2, 3)), atol=1e-5)
        True
        >>> matched = match_color(source, reference, method="histogram")
        >>> torch.equal(matched.flatten(2).sort().values, reference.flatten(2).sort().values)
        True
    """
    source = _check_image(source, "source")
    reference = _check_image(reference, "reference")
    _check_pair(source, reference, "source and reference")
    _check_method(method)
    floor = _check_eps(eps)
    dtype = _working_dtype(source)
    with full_precision(source.device):
        working_source, working_reference = source.to(dtype), reference.to(dtype)
        if method == "covariance":
            matched = _match_covariance(working_source, working_reference, floor)
        else:
            matched = _match_histogram(working_source, working_reference)
    return matched.clamp(0, 1).to(source.dtype)
