"""Hypothesis strategies for property tests of style-transfer math, ours and yours.

Importing this module does not import Hypothesis: each function imports it when called, so
Hypothesis stays a test-only dependency (``pip install neuralstyle[test]``).

Sizes are inclusive ``(min, max)`` ranges; pass ``(n, n)`` for a fixed size. Values are bounded
by ``elements`` and never NaN or infinite. Each tensor comes from one of two sources, so that
both edge cases and generic data are covered: a Hypothesis-built array (mostly one fill value
with a few drawn elements, which shrinks to readable counterexamples: zeros, repeats, extremes)
or dense uniform noise from a drawn seed. No strategy filters with ``assume``.

Example:
    >>> import torch
    >>> from hypothesis import given
    >>> from neuralstyle import gram_matrix
    >>> from neuralstyle.testing import feature_maps
    >>> @given(feature_maps(channels=(2, 4)))
    ... def test_gram_is_symmetric(features):
    ...     gram = gram_matrix(features)
    ...     assert torch.allclose(gram, gram.mT)
    >>> test_gram_is_symmetric()
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, get_args

import torch
from torch import Tensor

from neuralstyle.errors import ConfigError, DTypeError
from neuralstyle.layers import LayerMap
from neuralstyle.losses import GramNormalization, gram_matrix

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

__all__ = [
    "SizeRange",
    "feature_map_pairs",
    "feature_maps",
    "gram_targets",
    "images",
    "layer_maps",
]

SizeRange = tuple[int, int]
"""An inclusive ``(min, max)`` range for one dimension's size."""

Shape = tuple[int, int, int, int]

_SEED_MAX = 2**32 - 1


# -- argument checks --------------------------------------------------------------------------


def _check_size_range(size: object, name: str) -> SizeRange:
    valid = (
        isinstance(size, tuple)
        and len(size) == 2
        and all(isinstance(bound, int) and not isinstance(bound, bool) for bound in size)
        and 1 <= size[0] <= size[1]
    )
    if not valid:
        raise ConfigError(
            f"{name} must be a (min, max) pair of ints with 1 <= min <= max, got {size!r}"
        )
    return size  # type: ignore[return-value]


def _check_elements(elements: object) -> tuple[float, float]:
    if isinstance(elements, tuple) and len(elements) == 2:
        low, high = elements
        numbers = all(isinstance(bound, (int, float)) for bound in (low, high))
        if numbers and math.isfinite(low) and math.isfinite(high) and low <= high:
            return float(low), float(high)
    raise ConfigError(
        f"elements must be a (low, high) pair of finite numbers with low <= high, got {elements!r}"
    )


def _check_dtype(dtype: object) -> torch.dtype:
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise DTypeError(f"dtype must be a floating-point torch.dtype, got {dtype!r}")
    return dtype


# -- building blocks --------------------------------------------------------------------------


def _shapes(
    batch: SizeRange, channels: SizeRange, height: SizeRange, width: SizeRange
) -> SearchStrategy[Shape]:
    from hypothesis import strategies as st

    def sizes(size: SizeRange) -> SearchStrategy[int]:
        return st.integers(min_value=size[0], max_value=size[1])

    return st.tuples(sizes(batch), sizes(channels), sizes(height), sizes(width))


def _sparse_values(
    shape: Shape, dtype: torch.dtype, low: float, high: float
) -> SearchStrategy[Tensor]:
    import numpy as np
    from hypothesis import strategies as st
    from hypothesis.extra.numpy import arrays

    # Drawn in float64 and rounded to ``dtype`` by the cast: bounds such as 0.1 need not be
    # representable in float32.
    elements = st.floats(min_value=low, max_value=high, allow_nan=False, allow_infinity=False)
    return arrays(np.float64, shape, elements=elements).map(
        lambda array: torch.from_numpy(array).to(dtype)
    )


def _dense_values(
    shape: Shape, dtype: torch.dtype, low: float, high: float
) -> SearchStrategy[Tensor]:
    from hypothesis import strategies as st

    def uniform(seed: int) -> Tensor:
        generator = torch.Generator().manual_seed(seed)
        noise = torch.rand(shape, generator=generator, dtype=torch.float64)
        return (low + (high - low) * noise).clamp(low, high).to(dtype)

    return st.integers(min_value=0, max_value=_SEED_MAX).map(uniform)


def _values(shape: Shape, dtype: torch.dtype, low: float, high: float) -> SearchStrategy[Tensor]:
    from hypothesis import strategies as st

    return st.one_of(
        _sparse_values(shape, dtype, low, high), _dense_values(shape, dtype, low, high)
    )


def _checked_shapes(
    batch: object, channels: object, height: object, width: object
) -> SearchStrategy[Shape]:
    return _shapes(
        _check_size_range(batch, "batch"),
        _check_size_range(channels, "channels"),
        _check_size_range(height, "height"),
        _check_size_range(width, "width"),
    )


# -- public strategies ------------------------------------------------------------------------


def feature_maps(
    *,
    batch: SizeRange = (1, 3),
    channels: SizeRange = (1, 8),
    height: SizeRange = (1, 8),
    width: SizeRange = (1, 8),
    dtype: torch.dtype = torch.float64,
    elements: tuple[float, float] = (-10.0, 10.0),
) -> SearchStrategy[Tensor]:
    """Feature maps of shape ``(B, C, H, W)`` with every size drawn from its range.

    Args:
        batch: Inclusive range of ``B``.
        channels: Inclusive range of ``C``.
        height: Inclusive range of ``H``.
        width: Inclusive range of ``W``.
        dtype: Floating-point dtype of the tensors (values are drawn in float64, then rounded).
        elements: Inclusive bounds of the values.

    Returns:
        A strategy of CPU tensors.

    Raises:
        ConfigError: A range is not ``(min, max)`` with ``1 <= min <= max``, or ``elements``
            is not a finite ``(low, high)`` with ``low <= high``.
        DTypeError: ``dtype`` is not a floating-point dtype.

    Example:
        >>> from hypothesis import find
        >>> strategy = feature_maps(batch=(2, 2), channels=(4, 4), height=(3, 3), width=(3, 3))
        >>> find(strategy, lambda features: True).shape
        torch.Size([2, 4, 3, 3])
    """
    shapes = _checked_shapes(batch, channels, height, width)
    low, high = _check_elements(elements)
    checked_dtype = _check_dtype(dtype)
    return shapes.flatmap(lambda shape: _values(shape, checked_dtype, low, high))


def images(
    *,
    batch: SizeRange = (1, 3),
    height: SizeRange = (1, 8),
    width: SizeRange = (1, 8),
    dtype: torch.dtype = torch.float64,
) -> SearchStrategy[Tensor]:
    """RGB images of shape ``(B, 3, H, W)`` with values in ``[0, 1]``.

    Args:
        batch: Inclusive range of ``B``.
        height: Inclusive range of ``H``.
        width: Inclusive range of ``W``.
        dtype: Floating-point dtype of the tensors.

    Returns:
        A strategy of CPU tensors.

    Raises:
        ConfigError: A range is not ``(min, max)`` with ``1 <= min <= max``.
        DTypeError: ``dtype`` is not a floating-point dtype.

    Example:
        >>> from hypothesis import find
        >>> image = find(images(height=(4, 4), width=(5, 5)), lambda image: bool(image.max() > 0.5))
        >>> image.shape[1:], bool(image.min() >= 0), bool(image.max() <= 1)
        (torch.Size([3, 4, 5]), True, True)
    """
    return feature_maps(
        batch=batch, channels=(3, 3), height=height, width=width, dtype=dtype, elements=(0.0, 1.0)
    )


def gram_targets(
    *,
    batch: SizeRange = (1, 1),
    channels: SizeRange = (1, 8),
    height: SizeRange = (1, 8),
    width: SizeRange = (1, 8),
    dtype: torch.dtype = torch.float64,
    elements: tuple[float, float] = (-10.0, 10.0),
    normalize: GramNormalization = "chw",
) -> SearchStrategy[Tensor]:
    """Gram matrices ``(B, C, C)`` of drawn feature maps: valid targets for ``style_loss``.

    Args:
        batch: Inclusive range of ``B`` (one shared target by default).
        channels: Inclusive range of ``C``; pass ``(c, c)`` to match given features.
        height: Inclusive range of the source maps' ``H``.
        width: Inclusive range of the source maps' ``W``.
        dtype: Floating-point dtype of the source maps (low precision gives float32 Grams).
        elements: Inclusive bounds of the source maps' values.
        normalize: The Gram normalization, as in :func:`neuralstyle.gram_matrix`.

    Returns:
        A strategy of symmetric positive semi-definite CPU tensors.

    Raises:
        ConfigError: A range or ``elements`` is invalid, or ``normalize`` is unknown.
        DTypeError: ``dtype`` is not a floating-point dtype.

    Example:
        >>> from hypothesis import find
        >>> find(gram_targets(channels=(5, 5)), lambda gram: True).shape
        torch.Size([1, 5, 5])
    """
    if normalize not in get_args(GramNormalization):
        raise ConfigError(
            f"normalize must be one of {get_args(GramNormalization)}, got {normalize!r}"
        )
    maps = feature_maps(
        batch=batch, channels=channels, height=height, width=width, dtype=dtype, elements=elements
    )
    return maps.map(lambda features: gram_matrix(features, normalize=normalize))


def feature_map_pairs(
    *,
    batch: SizeRange = (1, 3),
    channels: SizeRange = (1, 8),
    height: SizeRange = (1, 8),
    width: SizeRange = (1, 8),
    dtype: torch.dtype = torch.float64,
    elements: tuple[float, float] = (-10.0, 10.0),
) -> SearchStrategy[tuple[Tensor, Tensor]]:
    """Two independent feature maps of one drawn shape ``(B, C, H, W)`` and dtype.

    Args:
        batch: Inclusive range of ``B``.
        channels: Inclusive range of ``C``.
        height: Inclusive range of ``H``.
        width: Inclusive range of ``W``.
        dtype: Floating-point dtype of both tensors.
        elements: Inclusive bounds of the values.

    Returns:
        A strategy of pairs of CPU tensors with equal shapes.

    Raises:
        ConfigError: A range or ``elements`` is invalid.
        DTypeError: ``dtype`` is not a floating-point dtype.

    Example:
        >>> from hypothesis import find
        >>> first, second = find(feature_map_pairs(channels=(2, 2)), lambda pair: True)
        >>> first.shape == second.shape
        True
    """
    from hypothesis import strategies as st

    shapes = _checked_shapes(batch, channels, height, width)
    low, high = _check_elements(elements)
    checked_dtype = _check_dtype(dtype)
    return shapes.flatmap(
        lambda shape: st.tuples(
            _values(shape, checked_dtype, low, high), _values(shape, checked_dtype, low, high)
        )
    )


def layer_maps(
    layers: Sequence[str],
    *,
    max_weight: float = 10.0,
) -> SearchStrategy[LayerMap]:
    """Valid :class:`~neuralstyle.LayerMap` s over ``layers``: some content and some style layers,
    each with a weight in ``[0, max_weight]``, at least one weight positive.

    Zero weights are drawn too (a layer switched off), and the same layer may carry both
    content and style.

    Args:
        layers: The layer names to choose from (e.g. a feature extractor's ``layers``).
        max_weight: Inclusive upper bound of the weights, finite and > 0.

    Returns:
        A strategy of layer maps.

    Raises:
        ConfigError: No layers, or ``max_weight`` is not a finite number > 0.

    Example:
        >>> from hypothesis import find
        >>> chosen = find(layer_maps(["relu1_1", "relu4_2"]), lambda m: len(m.layers) == 2)
        >>> sorted(chosen.layers)
        ['relu1_1', 'relu4_2']
    """
    from hypothesis import strategies as st

    names = list(dict.fromkeys(layers))
    if not names or not all(isinstance(name, str) for name in names):
        raise ConfigError(f"layers must be a non-empty sequence of layer names, got {layers!r}")
    valid = isinstance(max_weight, (int, float)) and not isinstance(max_weight, bool)
    if not valid or not math.isfinite(max_weight) or max_weight <= 0:
        raise ConfigError(f"max_weight must be a finite number > 0, got {max_weight!r}")
    weights = st.one_of(st.just(0.0), st.floats(min_value=0.0, max_value=float(max_weight)))
    side = st.dictionaries(st.sampled_from(names), weights, max_size=len(names))
    # One positive weight is put in by construction, so nothing is filtered away.
    anchor = st.tuples(
        st.sampled_from(["content", "style"]),
        st.sampled_from(names),
        st.floats(min_value=float(max_weight) / 1000, max_value=float(max_weight)),
    )

    def build(parts: tuple[dict[str, float], dict[str, float], tuple[str, str, float]]) -> LayerMap:
        content, style, (kind, name, weight) = parts
        (content if kind == "content" else style)[name] = weight
        return LayerMap(content=content, style=style)

    return st.tuples(side, side, anchor).map(build)
