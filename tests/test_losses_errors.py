"""Every loss function against every class of bad input: exact error type and message."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import Tensor

from neuralstyle import (
    ConfigError,
    DeviceMismatchError,
    DTypeError,
    GaussianStatistics,
    ShapeError,
    blend_statistics,
    content_loss,
    gaussian_statistics,
    gram_matrix,
    style_loss,
    total_variation,
    wasserstein_style_loss,
)

FEATURES = torch.ones(2, 3, 4, 5)
GRAM = gram_matrix(FEATURES[:1])
STATS = gaussian_statistics(FEATURES[:1])

# Each function with its first argument free and every other argument valid.
FIRST_ARGUMENT: dict[str, tuple[str, Callable[[Any], Tensor | GaussianStatistics]]] = {
    "gram_matrix": ("features", gram_matrix),
    "gaussian_statistics": ("features", gaussian_statistics),
    "total_variation": ("image", total_variation),
    "content_loss": ("input", lambda x: content_loss(x, FEATURES)),
    "style_loss": ("input", lambda x: style_loss(x, GRAM)),
    "wasserstein_style_loss": ("input", lambda x: wasserstein_style_loss(x, STATS)),
}

BAD_FEATURES: list[tuple[str, object, type[Exception], str]] = [
    ("rank 3", torch.ones(3, 4, 5), ShapeError, r"must be a 4-d tensor \(B, C, H, W\), got 3-d"),
    ("rank 5", torch.ones(1, 2, 3, 4, 5), ShapeError, r"got 5-d with shape \(1, 2, 3, 4, 5\)"),
    ("int64", torch.ones(2, 3, 4, 5, dtype=torch.int64), DTypeError, "floating-point.*torch.int64"),
    ("uint8", torch.ones(2, 3, 4, 5, dtype=torch.uint8), DTypeError, "floating-point.*torch.uint8"),
    ("bool", torch.ones(2, 3, 4, 5, dtype=torch.bool), DTypeError, "floating-point.*torch.bool"),
    ("list", [[1.0, 2.0]], DTypeError, "must be a torch.Tensor, got list"),
    ("numpy", FEATURES.numpy(), DTypeError, "must be a torch.Tensor, got ndarray"),
    ("empty H", torch.ones(2, 3, 0, 5), ShapeError, r"non-empty dimensions.*\(2, 3, 0, 5\)"),
    ("empty W", torch.ones(2, 3, 4, 0), ShapeError, r"non-empty dimensions.*\(2, 3, 4, 0\)"),
    ("empty C", torch.ones(2, 0, 4, 5), ShapeError, r"non-empty dimensions.*\(2, 0, 4, 5\)"),
    ("empty B", torch.ones(0, 3, 4, 5), ShapeError, r"non-empty dimensions.*\(0, 3, 4, 5\)"),
]


@pytest.mark.parametrize("function", FIRST_ARGUMENT.keys())
@pytest.mark.parametrize(
    ("bad", "error", "message"),
    [case[1:] for case in BAD_FEATURES],
    ids=[case[0] for case in BAD_FEATURES],
)
def test_bad_feature_maps_are_rejected(
    function: str, bad: object, error: type[Exception], message: str
) -> None:
    name, call = FIRST_ARGUMENT[function]
    with pytest.raises(error, match=f"^{name} .*{message}"):
        call(bad)


# -- content_loss targets ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "error", "message"),
    [
        (torch.ones(3, 4, 5), ShapeError, r"target must be a 4-d tensor .* got 3-d"),
        (torch.ones(2, 4, 4, 5), ShapeError, r"\(C, H, W\) = \(3, 4, 5\), got \(4, 4, 5\)"),
        (torch.ones(2, 3, 5, 5), ShapeError, r"\(C, H, W\) = \(3, 4, 5\), got \(3, 5, 5\)"),
        (torch.ones(2, 3, 4, 6), ShapeError, r"\(C, H, W\) = \(3, 4, 5\), got \(3, 4, 6\)"),
        (torch.ones(3, 3, 4, 5), ShapeError, r"batch size 1 or 2 \(the input's\), got 3"),
        (torch.ones(2, 3, 4, 5, dtype=torch.int32), DTypeError, "target must be a floating"),
        (torch.ones(2, 3, 4, 5, dtype=torch.bool), DTypeError, "target must be a floating"),
        ("features", DTypeError, "target must be a torch.Tensor, got str"),
        (torch.ones(2, 3, 0, 5), ShapeError, "target must have non-empty dimensions"),
        (torch.ones(2, 3, 4, 5, device="meta"), DeviceMismatchError, "cpu and meta"),
    ],
    ids=["rank", "channels", "height", "width", "batch", "int", "bool", "str", "empty", "device"],
)
def test_content_loss_rejects_bad_targets(
    target: object, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        content_loss(FEATURES, target)  # type: ignore[arg-type]


def test_content_target_may_not_have_the_larger_batch() -> None:
    with pytest.raises(ShapeError, match=r"batch size 1 or 1 \(the input's\), got 2"):
        content_loss(FEATURES[:1], FEATURES)


# -- style_loss targets -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "error", "message"),
    [
        (torch.ones(3), ShapeError, r"\(C, C\), \(1, C, C\) or \(B, C, C\), got 1-d"),
        (torch.ones(1, 1, 3, 3), ShapeError, r"\(C, C\), \(1, C, C\) or \(B, C, C\), got 4-d"),
        (torch.ones(1, 4, 4), ShapeError, r"\(3, 3\) Gram matrix for input with 3 channels"),
        (torch.ones(3, 4), ShapeError, r"\(3, 3\) Gram matrix .* got shape \(3, 4\)"),
        (torch.ones(3, 3, 3), ShapeError, r"batch size 1 or 2 \(the input's\), got 3"),
        (torch.ones(1, 3, 3, dtype=torch.int64), DTypeError, "target must be a floating"),
        (torch.ones(1, 3, 3, dtype=torch.bool), DTypeError, "target must be a floating"),
        ([[1.0]], DTypeError, "target must be a torch.Tensor, got list"),
        (torch.ones(1, 3, 3, device="meta"), DeviceMismatchError, "cpu and meta"),
    ],
    ids=["rank 1", "rank 4", "channels", "not square", "batch", "int", "bool", "list", "device"],
)
def test_style_loss_rejects_bad_targets(
    target: object, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        style_loss(FEATURES, target)  # type: ignore[arg-type]


# -- wasserstein_style_loss targets and GaussianStatistics ------------------------------------


def test_wasserstein_target_must_be_statistics() -> None:
    with pytest.raises(DTypeError, match=r"target must be a GaussianStatistics .* got Tensor"):
        wasserstein_style_loss(FEATURES, GRAM)  # type: ignore[arg-type]


def test_wasserstein_target_channels_must_match() -> None:
    target = gaussian_statistics(torch.ones(1, 4, 2, 2))
    with pytest.raises(ShapeError, match=r"describe 3 channels \(the input's\), got 4"):
        wasserstein_style_loss(FEATURES, target)


def test_wasserstein_target_batch_must_be_one_or_the_inputs() -> None:
    target = gaussian_statistics(torch.ones(3, 3, 2, 2))
    with pytest.raises(ShapeError, match=r"batch size 1 or 2 \(the input's\), got 3"):
        wasserstein_style_loss(FEATURES, target)


def test_wasserstein_target_must_be_on_the_inputs_device() -> None:
    target = GaussianStatistics(
        torch.ones(1, 3, device="meta"),
        torch.ones(1, 3, 3, device="meta"),
        torch.ones(1, 3, 3, device="meta"),
    )
    with pytest.raises(DeviceMismatchError, match=r"input and target .* cpu and meta"):
        wasserstein_style_loss(FEATURES, target)


@pytest.mark.parametrize(
    ("fields", "error", "message"),
    [
        (
            (torch.ones(3), torch.ones(1, 3, 3), torch.ones(1, 3, 3)),
            ShapeError,
            "mean must be a 2-d",
        ),
        (
            (torch.ones(1, 3), torch.ones(3, 3), torch.ones(1, 3, 3)),
            ShapeError,
            "covariance must be a 3-d",
        ),
        (
            (torch.ones(1, 3), torch.ones(1, 3, 3), torch.ones(1, 3, 3, 1)),
            ShapeError,
            "covariance_sqrt must be a 3-d",
        ),
        (
            (torch.ones(1, 3), torch.ones(1, 4, 4), torch.ones(1, 3, 3)),
            ShapeError,
            r"covariance must have shape \(B, C, C\) = \(1, 3, 3\) .* got \(1, 4, 4\)",
        ),
        (
            (torch.ones(1, 3), torch.ones(1, 3, 3), torch.ones(2, 3, 3)),
            ShapeError,
            r"covariance_sqrt must have shape \(B, C, C\) = \(1, 3, 3\) .* got \(2, 3, 3\)",
        ),
        (
            (torch.ones(1, 0), torch.ones(1, 0, 0), torch.ones(1, 0, 0)),
            ShapeError,
            "mean must have non-empty dimensions",
        ),
        (
            (torch.ones(1, 3, dtype=torch.int64), torch.ones(1, 3, 3), torch.ones(1, 3, 3)),
            DTypeError,
            "mean must be a floating-point tensor",
        ),
        (
            (torch.ones(1, 3), torch.ones(1, 3, 3, dtype=torch.bool), torch.ones(1, 3, 3)),
            DTypeError,
            "covariance must be a floating-point tensor",
        ),
        (
            (torch.ones(1, 3), torch.ones(1, 3, 3), "sqrt"),
            DTypeError,
            "covariance_sqrt must be a torch.Tensor, got str",
        ),
        (
            (torch.ones(1, 3), torch.ones(1, 3, 3, device="meta"), torch.ones(1, 3, 3)),
            DeviceMismatchError,
            "mean and covariance must be on the same device",
        ),
        (
            (torch.ones(1, 3), torch.ones(1, 3, 3), torch.ones(1, 3, 3, device="meta")),
            DeviceMismatchError,
            "mean and covariance_sqrt must be on the same device",
        ),
    ],
    ids=[
        "mean rank",
        "covariance rank",
        "sqrt rank",
        "covariance size",
        "sqrt batch",
        "empty",
        "int",
        "bool",
        "str",
        "covariance device",
        "sqrt device",
    ],
)
def test_gaussian_statistics_validate_on_construction(
    fields: tuple[object, object, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        GaussianStatistics(*fields)  # type: ignore[arg-type]


# -- options and special shapes ---------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda: gram_matrix(FEATURES, normalize="CHW"),  # type: ignore[arg-type]
        lambda: style_loss(FEATURES, GRAM, normalize="hwc"),  # type: ignore[arg-type]
    ],
    ids=["gram_matrix", "style_loss"],
)
def test_unknown_normalization_is_a_config_error(call: Callable[[], Tensor]) -> None:
    with pytest.raises(ConfigError, match=r"normalize must be one of \('chw', 'hw', 'none'\)"):
        call()


@pytest.mark.parametrize(
    "call",
    [
        lambda: content_loss(FEATURES, FEATURES, reduction="avg"),  # type: ignore[arg-type]
        lambda: style_loss(FEATURES, GRAM, reduction="avg"),  # type: ignore[arg-type]
        lambda: total_variation(FEATURES, reduction="avg"),  # type: ignore[arg-type]
        lambda: wasserstein_style_loss(FEATURES, STATS, reduction="avg"),  # type: ignore[arg-type]
    ],
    ids=["content_loss", "style_loss", "total_variation", "wasserstein_style_loss"],
)
def test_unknown_reduction_is_a_config_error(call: Callable[[], Tensor]) -> None:
    with pytest.raises(ConfigError, match=r"one of \('mean', 'sum', 'none'\), got 'avg'"):
        call()


def test_total_variation_needs_two_pixels_in_some_direction() -> None:
    with pytest.raises(ShapeError, match=r"H >= 2 or W >= 2 .* got shape \(2, 3, 1, 1\)"):
        total_variation(torch.ones(2, 3, 1, 1))


def test_errors_are_also_the_builtin_exceptions() -> None:
    with pytest.raises(ValueError, match="4-d"):
        gram_matrix(torch.ones(3, 4, 5))
    with pytest.raises(TypeError, match="floating-point"):
        gram_matrix(torch.ones(1, 3, 4, 5, dtype=torch.int64))
    with pytest.raises(ValueError, match="same device"):
        content_loss(FEATURES, FEATURES.to("meta"))


def test_options_are_keyword_only() -> None:
    with pytest.raises(TypeError, match="positional"):
        gram_matrix(FEATURES, "hw")  # type: ignore[misc]
    with pytest.raises(TypeError, match="positional"):
        content_loss(FEATURES, FEATURES, "sum")  # type: ignore[misc]


@pytest.mark.parametrize(
    ("weights", "error", "fragment"),
    [
        pytest.param([0.0, 0.0], ConfigError, "blend weights are all zero", id="all-zero"),
        pytest.param([1.0, -1.0], ConfigError, "finite numbers >= 0, got -1.0", id="negative"),
        pytest.param([1.0, float("nan")], ConfigError, "finite numbers >= 0, got nan", id="nan"),
        pytest.param([1.0], ConfigError, "1 weights for 2 statistics", id="count"),
    ],
)
def test_blend_statistics_checks_its_weights(
    weights: list[float], error: type[Exception], fragment: str
) -> None:
    with pytest.raises(error, match=fragment):
        blend_statistics([STATS, STATS], weights)


def test_blend_statistics_needs_statistics() -> None:
    with pytest.raises(ShapeError, match="at least one GaussianStatistics"):
        blend_statistics([], [])
