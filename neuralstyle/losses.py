"""The loss math of neural style transfer, as pure functions on tensors.

Every function takes feature maps shaped ``(B, C, H, W)`` (or an image, for total variation),
works batched on any device, validates its arguments by metadata only (it never reads tensor
values, so it never forces a device sync) and returns a 0-d tensor, or a ``(B,)`` tensor with
``reduction="none"``. The conventions and their relation to the paper's formulas are written
down in ``docs/math.md``.

Precision: Gram matrices and Gaussian statistics of float16/bfloat16 features, or of any
features under autocast, are accumulated in float32 and returned as float32; float32 and
float64 inputs keep their dtype.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, get_args

import torch
import torch.nn.functional as F
from torch import Tensor

from neuralstyle._checks import (
    check_feature_maps,
    check_float_tensor,
    check_rank,
    check_same_device,
    is_low_precision,
)
from neuralstyle._precision import autocast_enabled, full_precision
from neuralstyle.errors import ConfigError, DTypeError, NumericalError, ShapeError

__all__ = [
    "GaussianStatistics",
    "GramNormalization",
    "Reduction",
    "blend_statistics",
    "content_loss",
    "gaussian_statistics",
    "gram_matrix",
    "style_loss",
    "total_variation",
    "wasserstein_style_loss",
]

GramNormalization = Literal["chw", "hw", "none"]
"""How :func:`gram_matrix` divides ``F F^T``: by ``C*H*W`` (default), by ``H*W``, or not at all."""

Reduction = Literal["mean", "sum", "none"]
"""How a loss reduces its terms: their mean, their sum, or one value per batch item ``(B,)``."""

_NORMALIZATIONS: tuple[str, ...] = get_args(GramNormalization)
_REDUCTIONS: tuple[str, ...] = get_args(Reduction)


# -- option and shape checks ------------------------------------------------------------------


def _check_normalize(normalize: object) -> None:
    if normalize not in _NORMALIZATIONS:
        raise ConfigError(f"normalize must be one of {_NORMALIZATIONS}, got {normalize!r}")


def _check_reduction(reduction: object) -> None:
    if reduction not in _REDUCTIONS:
        raise ConfigError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def _check_batch(target_batch: int, batch: int, name: str, shape: tuple[int, ...]) -> None:
    # A batch of one is a single target shared by every input item.
    if target_batch not in (1, batch):
        raise ShapeError(
            f"{name} must have batch size 1 or {batch} (the input's), got {target_batch} "
            f"in shape {shape}"
        )


def _check_content_target(input: Tensor, target: Tensor) -> None:
    check_same_device(input, target, "input and target")
    if target.shape[1:] != input.shape[1:]:
        raise ShapeError(
            f"target must have the input's (C, H, W) = {tuple(input.shape[1:])}, got "
            f"{tuple(target.shape[1:])} in shape {tuple(target.shape)}"
        )
    _check_batch(target.shape[0], input.shape[0], "target", tuple(target.shape))


def _check_gram_target(input: Tensor, target: object) -> Tensor:
    gram = check_float_tensor(target, "target")
    if gram.dim() not in (2, 3):
        raise ShapeError(
            "target must be a Gram matrix of shape (C, C), (1, C, C) or (B, C, C), got "
            f"{gram.dim()}-d with shape {tuple(gram.shape)}"
        )
    check_same_device(input, gram, "input and target")
    channels = input.shape[1]
    if gram.shape[-2:] != (channels, channels):
        raise ShapeError(
            f"target must be a ({channels}, {channels}) Gram matrix for input with "
            f"{channels} channels, got shape {tuple(gram.shape)}"
        )
    if gram.dim() == 2:
        return gram.unsqueeze(0)
    _check_batch(gram.shape[0], input.shape[0], "target", tuple(gram.shape))
    return gram


# -- precision helpers ------------------------------------------------------------------------


def _accumulation_dtype(features: Tensor) -> torch.dtype:
    return torch.float32 if is_low_precision(features) else features.dtype


def _common_dtype(first: Tensor, second: Tensor) -> tuple[Tensor, Tensor]:
    dtype = torch.promote_types(first.dtype, second.dtype)
    if is_low_precision(first) or is_low_precision(second):
        dtype = torch.promote_types(dtype, torch.float32)
    return first.to(dtype), second.to(dtype)


def _check_mask(mask: object, features: Tensor) -> Tensor:
    """A ``(1 or B, 1, H, W)`` float mask on the features' device and spatial size."""
    checked = check_float_tensor(mask, "mask")
    check_rank(checked, "mask", 4, "(B, 1, H, W)")
    batch, _, height, width = features.shape
    if checked.shape[1] != 1 or checked.shape[0] not in (1, batch):
        raise ShapeError(
            f"mask must have shape (1, 1, H, W) or (B, 1, H, W) with B={batch}, got "
            f"{tuple(checked.shape)}"
        )
    if checked.shape[-2:] != (height, width):
        raise ShapeError(
            f"mask must have the features' spatial size {(height, width)}, got "
            f"{tuple(checked.shape[-2:])}; resize it to each layer (see neuralstyle.masks)"
        )
    check_same_device(features, checked, "features and mask")
    return checked


def _mask_weights(mask: Tensor, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """Flattened mask ``(B, 1, N)`` and its total weight ``(B, 1)`` (never 0: no NaN)."""
    weights = mask.to(dtype).flatten(2)
    return weights, weights.sum(dim=2).clamp_min(torch.finfo(dtype).tiny)


# -- Gram matrix ------------------------------------------------------------------------------


def _gram_divisor(shape: torch.Size, normalize: GramNormalization) -> int:
    _, channels, height, width = shape
    if normalize == "chw":
        return channels * height * width
    if normalize == "hw":
        return height * width
    return 1


class _GramProduct(torch.autograd.Function):
    """``alpha * F F^T`` for ``F`` of shape ``(B, C, N)``, with a one-GEMM backward.

    Autograd's own backward of ``bmm(F, F^T)`` runs two GEMMs, scales both results and adds
    one through a transposed, strided view of ``F``'s gradient. The gradient is
    ``alpha (G' + G'^T) F``: one GEMM, as cheap as the forward. Measured on this project's
    2-core CPU (1 thread, float32): forward+backward 12 ms instead of 49 ms for
    ``(1, 64, 256*256)``, 7 ms instead of 12 ms for ``(1, 512, 32*32)``. The backward is made
    of differentiable operations, so double backward still works.
    """

    @staticmethod
    def forward(flat: Tensor, alpha: float) -> Tensor:
        # beta=0 ignores the uninitialised input; alpha scales inside the GEMM, which saves
        # the separate division kernel of bmm(...).div(...).
        return torch.baddbmm(flat.new_empty(()), flat, flat.transpose(1, 2), beta=0.0, alpha=alpha)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Tensor, float], output: Tensor) -> None:
        flat, alpha = inputs
        ctx.save_for_backward(flat)
        ctx.alpha = alpha

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        (flat,) = ctx.saved_tensors
        # backward() may run inside the caller's autocast region: keep the forward's precision.
        with full_precision(grad.device):
            symmetric = (grad + grad.transpose(1, 2)).to(flat.dtype)
            if flat.stride(1) == 1 and flat.shape[1] > 1:
                # Channels-last features: produce the gradient in the same layout, (F^T S)^T
                # with S symmetric, so the ReLU and convolution backward that consume it stay
                # on their fast channels-last kernels instead of converting layouts.
                transposed = flat.transpose(1, 2)
                flat_grad = torch.baddbmm(
                    flat.new_empty(()), transposed, symmetric, beta=0.0, alpha=ctx.alpha
                ).transpose(1, 2)
            else:
                flat_grad = torch.baddbmm(
                    flat.new_empty(()), symmetric, flat, beta=0.0, alpha=ctx.alpha
                )
        return flat_grad, None


def _gram(flat: Tensor, divisor: int) -> Tensor:
    product: Tensor = _GramProduct.apply(flat, 1.0 / divisor)
    return product


def gram_matrix(
    features: Tensor, *, normalize: GramNormalization = "chw", mask: Tensor | None = None
) -> Tensor:
    r"""Gram matrices of a batch of feature maps.

    With ``F_b`` the ``(C, H*W)`` matrix of item ``b``:

    $$G_b = \frac{F_b F_b^\top}{n}, \qquad
      n = CHW \text{ (chw)},\ HW \text{ (hw)},\ 1 \text{ (none)}.$$

    float16/bfloat16 input, or any input under autocast, is multiplied in float32 (autocast is
    switched off locally) and the result is float32; float32/float64 input keeps its dtype.

    Args:
        features: Feature maps of shape ``(B, C, H, W)``, floating point, non-empty.
        normalize: ``"chw"`` divides by ``C*H*W`` (the default), ``"hw"`` by ``H*W``,
            ``"none"`` not at all.
        mask: Optional non-negative weights of the positions, shape ``(1, 1, H, W)`` or
            ``(B, 1, H, W)`` (a region mask in [0, 1]): each position's outer product
            ``f f^T`` is weighted by its mask value and ``H*W`` in the normalization becomes
            the mask's sum. A mask of ones gives the plain Gram; a binary mask, the Gram of the
            positions inside it; an all-zero mask, zeros.

    Returns:
        The Gram matrices, shape ``(B, C, C)``, symmetric positive semi-definite.

    Raises:
        DTypeError: ``features`` is not a floating-point tensor.
        ShapeError: ``features`` is not 4-d or has an empty dimension, or ``mask`` does not fit.
        ConfigError: ``normalize`` is not one of ``"chw"``, ``"hw"``, ``"none"``.

    Example:
        >>> gram_matrix(torch.ones(1, 2, 3, 3), normalize="hw")
        tensor([[[1., 1.],
                 [1., 1.]]])
    """
    features = check_feature_maps(features, "features")
    _check_normalize(normalize)
    if mask is not None:
        mask = _check_mask(mask, features)
    if not (is_low_precision(features) or autocast_enabled(features.device)):
        return _gram_of(features, normalize, mask)
    with full_precision(features.device):
        return _gram_of(features.to(_accumulation_dtype(features)), normalize, mask)


def _gram_of(features: Tensor, normalize: GramNormalization, mask: Tensor | None) -> Tensor:
    flat = features.flatten(2)
    if mask is None:
        return _gram(flat, _gram_divisor(features.shape, normalize))
    # sum_p m_p f_p f_p^T = (F sqrt(m)) (F sqrt(m))^T: still one GEMM.
    weights, total = _mask_weights(mask, flat.dtype)
    channels = features.shape[1] if normalize == "chw" else 1
    gram = _gram(flat * weights.sqrt(), channels)
    return gram if normalize == "none" else gram / total.unsqueeze(-1)


# -- content and style losses -----------------------------------------------------------------


def _is_channels_last(tensor: Tensor) -> bool:
    """Whether ``tensor`` is a 4-d channels-last map (and not also plainly contiguous)."""
    return (
        tensor.dim() == 4
        and not tensor.is_contiguous()
        and tensor.is_contiguous(memory_format=torch.channels_last)
    )


def _reduce_squared_error(input: Tensor, target: Tensor, reduction: Reduction) -> Tensor:
    input, target = _common_dtype(input, target)
    target = target.expand_as(input)
    if _is_channels_last(input):
        # The same memory seen as (B, H, W, C) is contiguous: mse_loss's backward runs about 4x
        # faster there than on channels-last strides (measured on a (1, 64, 256, 256) map).
        input, target = input.permute(0, 2, 3, 1), target.permute(0, 2, 3, 1)
    if reduction != "none":
        return F.mse_loss(input, target, reduction=reduction)
    if input.shape[0] == 1:
        # The common single-image case: the fused mean kernel has a much cheaper backward
        # than an elementwise loss followed by a reduction (a third of the step's
        # non-convolution time on the CPU).
        return F.mse_loss(input, target, reduction="mean").reshape(1)
    # Mean over every non-batch dimension at once: flatten(1) would copy channels-last maps.
    squared = F.mse_loss(input, target, reduction="none")
    return squared.mean(dim=tuple(range(1, squared.dim())))


def content_loss(input: Tensor, target: Tensor, *, reduction: Reduction = "mean") -> Tensor:
    r"""Mean squared error between feature maps.

    $$L_{content} = \frac{1}{BCHW} \sum_{b,c,h,w} (F_{bchw} - P_{bchw})^2$$

    Args:
        input: Feature maps of the image being optimized, shape ``(B, C, H, W)``.
        target: Content feature maps, shape ``(1, C, H, W)`` (shared by every item) or
            ``(B, C, H, W)``, on the same device.
        reduction: ``"mean"`` over all ``B*C*H*W`` terms, ``"sum"`` of them, or ``"none"``:
            the mean per batch item, shape ``(B,)``.

    Returns:
        A 0-d tensor, or shape ``(B,)`` for ``reduction="none"``. float16/bfloat16 inputs are
        compared in float32.

    Raises:
        DTypeError: An argument is not a floating-point tensor.
        ShapeError: Wrong rank, empty dimensions, or ``target`` does not match ``input``.
        DeviceMismatchError: ``input`` and ``target`` are on different devices.
        ConfigError: ``reduction`` is unknown.

    Example:
        >>> content_loss(torch.zeros(1, 1, 2, 2), torch.ones(1, 1, 2, 2))
        tensor(1.)
    """
    input = check_feature_maps(input, "input")
    target = check_feature_maps(target, "target")
    _check_reduction(reduction)
    _check_content_target(input, target)
    return _reduce_squared_error(input, target, reduction)


def style_loss(
    input: Tensor,
    target: Tensor,
    *,
    normalize: GramNormalization = "chw",
    reduction: Reduction = "mean",
    mask: Tensor | None = None,
) -> Tensor:
    r"""Mean squared error between the Gram matrices of ``input`` and a precomputed target Gram.

    $$L_{style} = \frac{1}{BC^2} \sum_{b,i,j} \big(G(F)_{bij} - A_{bij}\big)^2$$

    Compute ``target`` once with :func:`gram_matrix` and the same ``normalize``.

    Args:
        input: Feature maps of the image being optimized, shape ``(B, C, H, W)``.
        target: Target Gram matrix, shape ``(C, C)``, ``(1, C, C)`` (both shared by every
            item) or ``(B, C, C)``, on the same device.
        normalize: The Gram normalization of :func:`gram_matrix`; must match ``target``'s.
        reduction: ``"mean"`` over all ``B*C*C`` entries, ``"sum"`` of them, or ``"none"``:
            the mean per batch item, shape ``(B,)``.
        mask: Measure the input's Gram only where this region mask is (see
            :func:`gram_matrix`); the target stays as given.

    Returns:
        A 0-d tensor, or shape ``(B,)`` for ``reduction="none"``; float32 at least for
        float16/bfloat16 input or under autocast.

    Raises:
        DTypeError: An argument is not a floating-point tensor.
        ShapeError: Wrong rank, empty dimensions, a target whose size does not fit, or a mask
            that does not fit.
        DeviceMismatchError: ``input`` and ``target`` are on different devices.
        ConfigError: ``normalize`` or ``reduction`` is unknown.

    Example:
        >>> features = torch.ones(1, 2, 2, 2)
        >>> style_loss(features, gram_matrix(features))
        tensor(0.)
    """
    input = check_feature_maps(input, "input")
    _check_normalize(normalize)
    _check_reduction(reduction)
    gram_target = _check_gram_target(input, target)
    gram = gram_matrix(input, normalize=normalize, mask=mask)
    return _reduce_squared_error(gram, gram_target, reduction)


# -- total variation --------------------------------------------------------------------------


def _squared_differences(image: Tensor, dim: int) -> Tensor | None:
    # A direction of size 1 has no neighbours: it contributes nothing (not a NaN mean).
    if image.shape[dim] < 2:
        return None
    return torch.diff(image, dim=dim).square()


def _reduce_tv(terms: list[Tensor], reduction: Reduction) -> Tensor:
    if reduction == "sum":
        return torch.stack([term.sum() for term in terms]).sum()
    per_item = torch.stack([term.flatten(1).mean(dim=1) for term in terms]).sum(dim=0)
    return per_item if reduction == "none" else per_item.mean()


def total_variation(image: Tensor, *, reduction: Reduction = "mean") -> Tensor:
    r"""Squared (L2, anisotropic) total variation of a batch of images or feature maps.

    Per item, the mean squared difference between horizontal neighbours plus the mean squared
    difference between vertical neighbours:

    $$TV_b = \frac{1}{C H (W-1)} \sum (x_{c,h,w+1} - x_{c,h,w})^2
            + \frac{1}{C (H-1) W} \sum (x_{c,h+1,w} - x_{c,h,w})^2$$

    When ``W == 1`` (or ``H == 1``) the horizontal (vertical) term has no pairs and counts as
    zero; one of ``H``, ``W`` must be at least 2.

    Args:
        image: Images or feature maps of shape ``(B, C, H, W)``.
        reduction: ``"mean"``: the mean of ``TV_b`` over the batch; ``"none"``: ``TV_b`` per
            item, shape ``(B,)``; ``"sum"``: the plain sum of all squared differences (both
            directions, all items), the classic unnormalized form.

    Returns:
        A 0-d tensor, or shape ``(B,)`` for ``reduction="none"``; float32 for float16/bfloat16
        input.

    Raises:
        DTypeError: ``image`` is not a floating-point tensor.
        ShapeError: Not 4-d, an empty dimension, or ``H == W == 1``.
        ConfigError: ``reduction`` is unknown.

    Example:
        >>> total_variation(torch.tensor([[[[0.0, 1.0], [0.0, 1.0]]]]))
        tensor(1.)
    """
    image = check_feature_maps(image, "image")
    _check_reduction(reduction)
    image = image.to(_accumulation_dtype(image))
    candidates = (_squared_differences(image, 3), _squared_differences(image, 2))
    terms = [term for term in candidates if term is not None]
    if not terms:
        raise ShapeError(
            f"image must have H >= 2 or W >= 2 for total variation, got shape {tuple(image.shape)}"
        )
    return _reduce_tv(terms, reduction)


# -- mean and covariance (2-Wasserstein) style loss -------------------------------------------


def _check_statistics_shapes(mean: Tensor, covariance: Tensor, covariance_sqrt: Tensor) -> None:
    check_rank(mean, "mean", 2, "(B, C)")
    check_rank(covariance, "covariance", 3, "(B, C, C)")
    check_rank(covariance_sqrt, "covariance_sqrt", 3, "(B, C, C)")
    batch, channels = mean.shape
    for name, matrix in (("covariance", covariance), ("covariance_sqrt", covariance_sqrt)):
        if matrix.shape != (batch, channels, channels):
            raise ShapeError(
                f"{name} must have shape (B, C, C) = {(batch, channels, channels)} to match "
                f"mean of shape {tuple(mean.shape)}, got {tuple(matrix.shape)}"
            )


@dataclass(frozen=True, eq=False)
class GaussianStatistics:
    """A Gaussian fit ``N(mean, covariance)`` of feature maps: the target of the W2 style loss.

    Build it once per style layer with :func:`gaussian_statistics` (under ``torch.no_grad()``).
    Construction checks shapes and devices, not values. ``eq=False``: tensors have no single
    truth value, so instances compare by identity.

    Attributes:
        mean: Per-channel means, shape ``(B, C)``.
        covariance: Channel covariances (divided by ``H*W``), shape ``(B, C, C)``.
        covariance_sqrt: The symmetric positive semi-definite square root of ``covariance``,
            shape ``(B, C, C)``.

    Example:
        >>> stats = gaussian_statistics(torch.ones(1, 2, 3, 3))
        >>> stats.mean
        tensor([[1., 1.]])
    """

    mean: Tensor
    covariance: Tensor
    covariance_sqrt: Tensor

    def __post_init__(self) -> None:
        mean = check_float_tensor(self.mean, "mean")
        covariance = check_float_tensor(self.covariance, "covariance")
        covariance_sqrt = check_float_tensor(self.covariance_sqrt, "covariance_sqrt")
        _check_statistics_shapes(mean, covariance, covariance_sqrt)
        check_same_device(mean, covariance, "mean and covariance")
        check_same_device(mean, covariance_sqrt, "mean and covariance_sqrt")
        if mean.numel() == 0:
            raise ShapeError(f"mean must have non-empty dimensions (B, C), got {tuple(mean.shape)}")


def _centered(features: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor]:
    """Per-item means ``(B, C)`` and centred, scaled features ``X`` ``(B, C, N)``: the
    covariance is ``X X^T`` (positions weighted by the mask, divided by its total)."""
    flat = features.flatten(2).to(_accumulation_dtype(features))
    if mask is None:
        mean = flat.mean(dim=2)
        # Population covariance (divide by H*W): defined for a single pixel as well.
        return mean, (flat - mean.unsqueeze(2)) / math.sqrt(flat.shape[2])
    weights, total = _mask_weights(mask, flat.dtype)
    mean = (flat * weights).sum(dim=2) / total
    return mean, (flat - mean.unsqueeze(2)) * (weights / total.unsqueeze(-1)).sqrt()


def _mean_and_covariance(features: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor]:
    mean, centered = _centered(features, mask)
    return mean, _gram(centered, 1)


_Solved = TypeVar("_Solved")


def _solve_symmetric(solver: Callable[[Tensor], _Solved], matrix: Tensor, what: str) -> _Solved:
    """Apply an eigensolver to symmetric ``(B, n, n)`` ``matrix`` in float64.

    Covariances of real feature maps are often rank-deficient (fewer positions than channels,
    constant channels, ReLU zeros); LAPACK's float32 solver can fail to converge on them. In
    float64 it does not in practice; should it still fail (``torch.linalg.LinAlgError``, a
    ``RuntimeError``), a jitter of ``1e-12`` times the trace on the diagonal (below float32
    resolution) is tried once before giving up with a :class:`NumericalError`.
    """
    wide = matrix.double()
    wide = (wide + wide.mT) / 2
    try:
        return solver(wide)
    except RuntimeError:
        jitter = 1e-12 * _trace(wide).abs().clamp_min(1.0)
        eye = torch.eye(wide.shape[-1], dtype=wide.dtype, device=wide.device)
        try:
            return solver(wide + jitter[..., None, None] * eye)
        except RuntimeError as error:
            size = wide.shape[-1]
            raise NumericalError(
                f"{what} of a {size}x{size} covariance could not be computed (its values are "
                "not finite or out of range); check the features for NaN or Inf, or use "
                "style_loss='gram'"
            ) from error


def _symmetric_eigenvalues(matrix: Tensor) -> Tensor:
    """Eigenvalues of symmetric ``(B, n, n)`` in ascending order, float64."""
    values: Tensor = _solve_symmetric(torch.linalg.eigvalsh, matrix, "the eigenvalues")
    return values


def _psd_sqrt(matrix: Tensor) -> Tensor:
    """The symmetric PSD square root of a covariance, from a float64 eigendecomposition."""
    eigenvalues, eigenvectors = _solve_symmetric(torch.linalg.eigh, matrix, "the square root")
    roots = eigenvalues.clamp(min=0).sqrt()
    root = torch.matmul(eigenvectors * roots.unsqueeze(-2), eigenvectors.mT)
    return root.to(matrix.dtype)


def _trace(matrix: Tensor) -> Tensor:
    return matrix.diagonal(dim1=-2, dim2=-1).sum(dim=-1)


def gaussian_statistics(features: Tensor, *, mask: Tensor | None = None) -> GaussianStatistics:
    r"""Fit a Gaussian to each item's feature vectors (one per pixel).

    $$\mu_b = \frac{1}{HW} \sum_p f_{bp}, \qquad
      \Sigma_b = \frac{1}{HW} \sum_p (f_{bp} - \mu_b)(f_{bp} - \mu_b)^\top$$

    and the square root $\Sigma_b^{1/2}$ from an eigendecomposition with eigenvalues clamped
    at 0. Accumulates in float32 for float16/bfloat16 input or under autocast.

    Args:
        features: Feature maps of shape ``(B, C, H, W)``.
        mask: Optional non-negative position weights ``(1 or B, 1, H, W)``: the weighted mean
            and covariance (sums weighted by the mask, divided by its total), so a binary mask
            fits only the positions inside it.

    Returns:
        The statistics, with ``mean`` ``(B, C)`` and both matrices ``(B, C, C)``.

    Raises:
        DTypeError: ``features`` is not a floating-point tensor.
        ShapeError: ``features`` is not 4-d or has an empty dimension, or ``mask`` does not fit.

    Example:
        >>> gaussian_statistics(torch.ones(1, 1, 2, 2)).covariance
        tensor([[[0.]]])
    """
    features = check_feature_maps(features, "features")
    if mask is not None:
        mask = _check_mask(mask, features)
    with full_precision(features.device):
        mean, covariance = _mean_and_covariance(features, mask)
        return GaussianStatistics(mean, covariance, _psd_sqrt(covariance))


def blend_statistics(
    statistics: Sequence[GaussianStatistics], weights: Sequence[float]
) -> GaussianStatistics:
    r"""The Gaussian fit of a weighted mixture of several styles' features.

    With normalized weights $w_i$: $\mu = \sum_i w_i \mu_i$ and
    $\Sigma = \sum_i w_i (\Sigma_i + \mu_i \mu_i^\top) - \mu \mu^\top$ (the mixture's moments).

    Args:
        statistics: One :class:`GaussianStatistics` per style, all with the same shapes.
        weights: One non-negative weight per style, not all zero.

    Returns:
        The blended statistics, with its covariance square root recomputed.

    Raises:
        ShapeError: No statistics.
        ConfigError: A weight count other than the statistics', a negative or non-finite
            weight, or weights that are all zero.

    Example:
        >>> a = gaussian_statistics(torch.zeros(1, 1, 2, 2))
        >>> b = gaussian_statistics(torch.full((1, 1, 2, 2), 2.0))
        >>> blended = blend_statistics([a, b], [1.0, 1.0])
        >>> blended.mean, blended.covariance
        (tensor([[1.]]), tensor([[[1.]]]))
    """
    if not statistics:
        raise ShapeError("blend_statistics needs at least one GaussianStatistics")
    if len(weights) != len(statistics):
        raise ConfigError(
            f"blend_statistics got {len(weights)} weights for {len(statistics)} statistics; "
            "give one weight per style"
        )
    for weight in weights:
        valid = isinstance(weight, (int, float)) and not isinstance(weight, bool)
        if not valid or not math.isfinite(weight) or weight < 0:
            raise ConfigError(f"blend weights must be finite numbers >= 0, got {weight!r}")
    total = float(sum(weights))
    if total == 0:
        raise ConfigError(
            f"blend weights are all zero {tuple(weights)!r}; give one style a weight > 0"
        )
    # Mixture moments subtract two large, nearly equal terms: float64 keeps the difference exact
    # enough for float32 statistics.
    means = [s.mean.double() for s in statistics]
    seconds = [
        s.covariance.double() + m.unsqueeze(-1) * m.unsqueeze(-2)
        for s, m in zip(statistics, means, strict=True)
    ]
    mean = torch.stack([w / total * m for w, m in zip(weights, means, strict=True)]).sum(0)
    second = torch.stack([w / total * m for w, m in zip(weights, seconds, strict=True)]).sum(0)
    covariance = second - mean.unsqueeze(-1) * mean.unsqueeze(-2)
    dtype = statistics[0].mean.dtype
    return GaussianStatistics(mean.to(dtype), covariance.to(dtype), _psd_sqrt(covariance).to(dtype))


def _check_statistics_target(input: Tensor, target: object) -> GaussianStatistics:
    if not isinstance(target, GaussianStatistics):
        raise DTypeError(
            "target must be a GaussianStatistics (build it with gaussian_statistics(features)), "
            f"got {type(target).__name__}"
        )
    check_same_device(input, target.mean, "input and target")
    batch, channels = target.mean.shape
    if channels != input.shape[1]:
        raise ShapeError(
            f"target must describe {input.shape[1]} channels (the input's), got {channels} "
            f"in mean of shape {tuple(target.mean.shape)}"
        )
    _check_batch(batch, input.shape[0], "target", tuple(target.mean.shape))
    return target


def _trace_sqrt_product(centered: Tensor, target_sqrt: Tensor) -> Tensor:
    """``tr (S X X^T S)^(1/2)`` for ``S = target_sqrt``: the sum of the singular values of
    ``S X``, from the eigenvalues of the smaller of ``(S X)(S X)^T`` and ``(S X)^T (S X)``."""
    product = torch.matmul(target_sqrt, centered)
    channels, positions = product.shape[-2:]
    small = product.mT @ product if positions < channels else product @ product.mT
    eigenvalues = _symmetric_eigenvalues(small)
    # Roots below eps * the largest root (negative eigenvalues too) count as 0: the gradient
    # of sqrt stays finite, 1 / (2 sqrt(floor)) at most. Zeroing them, rather than raising them
    # to the floor, adds no bias to the value.
    finfo = torch.finfo(centered.dtype)
    floor = eigenvalues[..., -1:].detach().clamp(min=0) * finfo.eps**2 + finfo.tiny
    kept = torch.where(eigenvalues > floor, eigenvalues, torch.zeros_like(eigenvalues))
    roots: Tensor = kept.sqrt()
    return roots.sum(dim=-1).to(centered.dtype)


def _wasserstein_per_item(input: Tensor, target: GaussianStatistics, mask: Tensor | None) -> Tensor:
    mean, centered = _centered(input, mask)
    target_mean, target_covariance = target.mean.to(mean.dtype), target.covariance.to(mean.dtype)
    target_sqrt = target.covariance_sqrt.to(mean.dtype)
    distance = (
        (mean - target_mean).square().sum(dim=-1)
        + centered.square().sum(dim=(-2, -1))
        + _trace(target_covariance)
        - 2 * _trace_sqrt_product(centered, target_sqrt)
    )
    return distance / input.shape[1]


def wasserstein_style_loss(
    input: Tensor,
    target: GaussianStatistics,
    *,
    reduction: Reduction = "mean",
    mask: Tensor | None = None,
) -> Tensor:
    r"""Squared 2-Wasserstein distance between Gaussian fits, divided by the channel count.

    With $(\mu, \Sigma)$ the statistics of ``input`` (as :func:`gaussian_statistics`) and
    $(\mu_t, \Sigma_t)$ the target's:

    $$W_b = \frac{1}{C}\Big(\lVert \mu - \mu_t \rVert^2 + \operatorname{tr}\Sigma
          + \operatorname{tr}\Sigma_t
          - 2 \operatorname{tr}\big(\Sigma_t^{1/2} \Sigma\, \Sigma_t^{1/2}\big)^{1/2}\Big)$$

    Dividing by ``C`` keeps the scale from growing with the channel count (both traces grow
    linearly in ``C``). The last trace is the sum of the singular values of
    $\Sigma_t^{1/2} X$ (with $\Sigma = X X^\top$), the square roots of the eigenvalues of the
    smaller of its two Gram matrices, ``min(C, H*W)`` square, from ``torch.linalg.eigvalsh`` in
    float64: covariances of real feature maps are often rank-deficient (fewer positions than
    channels, dead ReLU channels), where float32 solvers fail to converge. Eigenvalues are
    clamped at 0, and roots below ``eps`` times the largest root count as 0, so the gradient
    stays finite. Rounding can leave a result slightly below zero.

    Cost: one float64 eigendecomposition per layer and step; with the classic five layers on
    this project's 2-core CPU a step took about 1.25 times a Gram step's time at 256 px and
    1.55 times at 512 px (one thread; 512-channel layers dominate). On CUDA, ``eigvalsh``
    synchronizes with the host once per call.

    Args:
        input: Feature maps of the image being optimized, shape ``(B, C, H, W)``.
        target: Statistics from :func:`gaussian_statistics`, batch size 1 (shared) or ``B``.
        reduction: ``"mean"`` or ``"sum"`` of ``W_b`` over the batch, or ``"none"``: ``W_b``
            per item, shape ``(B,)``.
        mask: Fit the input's statistics only where this region mask is (see
            :func:`gaussian_statistics`).

    Returns:
        A 0-d tensor, or shape ``(B,)`` for ``reduction="none"``; float32 at least for
        float16/bfloat16 input or under autocast.

    Raises:
        DTypeError: ``input`` is not a floating-point tensor, or ``target`` is not a
            :class:`GaussianStatistics`.
        ShapeError: Wrong rank, empty dimensions, or a target of another channel count or
            batch size.
        DeviceMismatchError: ``input`` and ``target`` are on different devices.
        ConfigError: ``reduction`` is unknown.

    Example:
        >>> features = torch.arange(8.0).reshape(1, 2, 2, 2)
        >>> wasserstein_style_loss(features + 1, gaussian_statistics(features))
        tensor(1.)
    """
    input = check_feature_maps(input, "input")
    _check_reduction(reduction)
    target = _check_statistics_target(input, target)
    if mask is not None:
        mask = _check_mask(mask, input)
    with full_precision(input.device):
        per_item = _wasserstein_per_item(input, target, mask)
    if reduction == "none":
        return per_item
    return per_item.sum() if reduction == "sum" else per_item.mean()
