"""The public Hypothesis strategies of neuralstyle.testing: shapes, bounds, dtypes, laziness."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from hypothesis import find, given
from hypothesis import strategies as st
from torch import Tensor

from neuralstyle import ConfigError, DTypeError
from neuralstyle.testing import feature_map_pairs, feature_maps, gram_targets, images

ranges = st.tuples(st.integers(1, 4), st.integers(0, 3)).map(lambda r: (r[0], r[0] + r[1]))
bounds = st.tuples(st.floats(-100, 100), st.floats(0, 50)).map(lambda b: (b[0], b[0] + b[1]))


def in_range(size: int, bounds: tuple[int, int]) -> bool:
    return bounds[0] <= size <= bounds[1]


@given(st.data(), ranges, ranges, ranges, ranges, bounds)
def test_feature_maps_respect_every_range(
    data: st.DataObject,
    batch: tuple[int, int],
    channels: tuple[int, int],
    height: tuple[int, int],
    width: tuple[int, int],
    elements: tuple[float, float],
) -> None:
    strategy = feature_maps(
        batch=batch, channels=channels, height=height, width=width, elements=elements
    )
    features = data.draw(strategy)
    assert features.dtype == torch.float64
    assert features.dim() == 4
    for size, bound in zip(features.shape, (batch, channels, height, width), strict=True):
        assert in_range(size, bound)
    assert bool(features.isfinite().all())
    assert elements[0] <= float(features.min()) <= float(features.max()) <= elements[1]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64])
@given(data=st.data())
def test_feature_maps_have_the_requested_dtype(dtype: torch.dtype, data: st.DataObject) -> None:
    features = data.draw(feature_maps(dtype=dtype, elements=(-1.0, 1.0)))
    assert features.dtype == dtype
    assert -1.0 <= float(features.min()) <= float(features.max()) <= 1.0


@given(images(batch=(2, 4), height=(3, 5), width=(1, 2)))
def test_images_are_rgb_in_the_unit_range(image: Tensor) -> None:
    assert image.shape[1] == 3
    assert in_range(image.shape[0], (2, 4))
    assert in_range(image.shape[2], (3, 5))
    assert in_range(image.shape[3], (1, 2))
    assert 0.0 <= float(image.min()) <= float(image.max()) <= 1.0


@given(gram_targets(channels=(2, 5), normalize="hw"))
def test_gram_targets_are_symmetric_positive_semidefinite(gram: Tensor) -> None:
    assert gram.shape[0] == 1
    assert gram.shape[1] == gram.shape[2]
    assert in_range(gram.shape[1], (2, 5))
    torch.testing.assert_close(gram, gram.mT)
    tolerance = 1e-10 * (1 + float(gram.abs().max()))
    assert float(torch.linalg.eigvalsh(gram).min()) >= -tolerance


def test_gram_targets_use_the_requested_normalization() -> None:
    # Maps of ones: F F^T = H*W in every entry, so "hw" gives exactly 1 and "none" H*W = 6.
    hw = find(
        gram_targets(channels=(2, 2), height=(2, 2), width=(3, 3), elements=(1, 1), normalize="hw"),
        lambda gram: True,
    )
    none = find(
        gram_targets(
            channels=(2, 2), height=(2, 2), width=(3, 3), elements=(1, 1), normalize="none"
        ),
        lambda gram: True,
    )
    assert bool((hw == 1).all())
    assert bool((none == 6).all())


@given(feature_map_pairs(dtype=torch.float32, elements=(0.0, 2.0)))
def test_feature_map_pairs_share_shape_and_dtype(pair: tuple[Tensor, Tensor]) -> None:
    first, second = pair
    assert first.shape == second.shape
    assert first.dtype == second.dtype == torch.float32
    for tensor in pair:
        assert 0.0 <= float(tensor.min()) <= float(tensor.max()) <= 2.0


def test_both_value_sources_are_reachable() -> None:
    shape = {"batch": (1, 1), "channels": (4, 4), "height": (4, 4), "width": (4, 4)}
    # Dense noise: all 64 values distinct. Hypothesis arrays: mostly one fill value.
    dense = find(feature_maps(**shape), lambda t: t.unique().numel() == t.numel())
    sparse = find(feature_maps(**shape), lambda t: 1 < t.unique().numel() < t.numel() // 2)
    assert dense.unique().numel() == 64
    assert sparse.unique().numel() < 32


def test_pairs_are_not_always_equal() -> None:
    tiny = feature_map_pairs(batch=(1, 1), channels=(1, 1), height=(1, 1), width=(1, 2))
    first, second = find(tiny, lambda pair: not torch.equal(*pair))
    assert not torch.equal(first, second)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch": (0, 2)}, r"batch must be a \(min, max\) pair of ints .* got \(0, 2\)"),
        ({"channels": (3, 2)}, r"channels must be .*1 <= min <= max, got \(3, 2\)"),
        ({"height": (1, 2, 3)}, r"height must be .* got \(1, 2, 3\)"),
        ({"width": [1, 2]}, r"width must be .* got \[1, 2\]"),
        ({"width": (1.0, 2)}, r"width must be .* got \(1.0, 2\)"),
        ({"batch": (True, 2)}, r"batch must be .* got \(True, 2\)"),
        ({"elements": (1.0, 0.0)}, r"elements must be .*low <= high, got \(1.0, 0.0\)"),
        ({"elements": (0.0, float("inf"))}, r"finite numbers .* got \(0.0, inf\)"),
        ({"elements": (float("nan"), 1.0)}, r"finite numbers .* got \(nan, 1.0\)"),
        ({"elements": 1.0}, r"elements must be .* got 1.0"),
    ],
)
def test_feature_maps_reject_bad_arguments(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        feature_maps(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=message):
        feature_map_pairs(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("dtype", [torch.int64, torch.bool, "float32"])
def test_strategies_reject_non_float_dtypes(dtype: object) -> None:
    for strategy in (feature_maps, feature_map_pairs, images, gram_targets):
        with pytest.raises(DTypeError, match=r"dtype must be a floating-point torch\.dtype"):
            strategy(dtype=dtype)  # type: ignore[operator]


def test_gram_targets_reject_unknown_normalization() -> None:
    with pytest.raises(ConfigError, match=r"normalize must be one of \('chw', 'hw', 'none'\)"):
        gram_targets(normalize="CHW")  # type: ignore[arg-type]


def test_importing_neuralstyle_or_its_testing_module_does_not_import_hypothesis() -> None:
    code = (
        "import sys\n"
        "import neuralstyle\n"
        "before = 'hypothesis' in sys.modules\n"
        "import neuralstyle.testing\n"
        "print(before, 'hypothesis' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.split() == ["False", "False"]
