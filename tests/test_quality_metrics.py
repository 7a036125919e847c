"""The quality report's measures: zero (or one) for identical inputs, worse for different ones,
inside their stated ranges, and blind to what each is meant to ignore."""

from __future__ import annotations

import math
from collections.abc import Iterator
from types import ModuleType

import pytest
import torch
from tiny import benchmark_modules

from neuralstyle import ShapeError


@pytest.fixture(scope="module")
def qm() -> Iterator[ModuleType]:
    """``benchmarks/quality_metrics.py``, imported the way ``python benchmarks/quality.py`` does."""
    with benchmark_modules("quality_metrics") as modules:
        yield modules["quality_metrics"]


def _rand(*shape: int, seed: int) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def _smooth_picture(height: int = 32, width: int = 32) -> torch.Tensor:
    """A picture with a few clear edges: a bright square and a diagonal ramp on a dark field."""
    rows = torch.linspace(0, 1, height).view(height, 1)
    columns = torch.linspace(0, 1, width).view(1, width)
    picture = torch.full((3, height, width), 0.1)
    picture[:, height // 4 : height // 2, width // 4 : width // 2] = 0.9
    picture[2] += 0.5 * (rows + columns) / 2
    return picture.clamp(0, 1).unsqueeze(0)


# -- gram_distance ---------------------------------------------------------------------------------


def test_gram_distance_is_zero_for_identical_maps(qm: ModuleType) -> None:
    maps = {"relu1_1": _rand(1, 4, 6, 6, seed=2)}
    assert qm.gram_distance(maps, maps, ["relu1_1"]) == 0.0


def test_gram_distance_ignores_size_and_layout(qm: ModuleType) -> None:
    # The same texture tiled 2 x 2 (a larger image) and flipped: same statistics, same Gram.
    style = _rand(1, 4, 6, 6, seed=3)
    tiled = style.repeat(1, 1, 2, 2).flip(-1)
    distance = qm.gram_distance({"a": tiled}, {"a": style}, ["a"])
    assert distance == pytest.approx(0.0, abs=1e-12)


def test_gram_distance_measures_statistics(qm: ModuleType) -> None:
    style = {"a": _rand(1, 4, 6, 6, seed=4)}
    # Twice the features: four times the Gram, three Grams away (a Frobenius ratio, not squared).
    assert qm.gram_distance({"a": 2 * style["a"]}, style, ["a"]) == pytest.approx(3.0)
    other = qm.gram_distance({"a": _rand(1, 4, 6, 6, seed=5) ** 3}, style, ["a"])
    assert other > 0.1


def test_gram_distance_rejects_other_channel_counts(qm: ModuleType) -> None:
    with pytest.raises(ShapeError, match="a: shapes differ"):
        qm.gram_distance({"a": torch.ones(1, 2, 3, 3)}, {"a": torch.ones(1, 3, 3, 3)}, ["a"])


# -- color_histogram_distance ----------------------------------------------------------------------


def test_histogram_distance_is_zero_for_the_same_palette(qm: ModuleType) -> None:
    picture = _rand(1, 3, 12, 10, seed=6)
    assert qm.color_histogram_distance(picture, picture) == 0.0
    # Layout and size do not matter: the pixels reversed, and each one repeated 2 x 2.
    shuffled = picture.flip(-1).flip(-2)
    assert qm.color_histogram_distance(shuffled, picture) == 0.0
    enlarged = picture.repeat_interleave(2, dim=-1).repeat_interleave(2, dim=-2)
    assert qm.color_histogram_distance(enlarged, picture) == pytest.approx(0.0, abs=1e-15)


def test_histogram_distance_is_one_for_disjoint_palettes(qm: ModuleType) -> None:
    black, white = torch.zeros(1, 3, 4, 4), torch.ones(1, 3, 9, 7)
    assert qm.color_histogram_distance(black, white) == 1.0


def test_histogram_distance_counts_the_shared_fraction(qm: ModuleType) -> None:
    black = torch.zeros(1, 3, 4, 4)
    half = torch.zeros(1, 3, 4, 4)
    half[..., :2] = 1.0
    assert qm.color_histogram_distance(half, black) == 0.5


def test_histogram_distance_uses_eight_bins_per_channel(qm: ModuleType) -> None:
    # 0.1 and 0.12 share the interval [0, 1/8); 0.1 and 0.13 do not.
    assert (
        qm.color_histogram_distance(torch.full((1, 3, 2, 2), 0.1), torch.full((1, 3, 2, 2), 0.12))
        == 0.0
    )
    assert (
        qm.color_histogram_distance(torch.full((1, 3, 2, 2), 0.1), torch.full((1, 3, 2, 2), 0.13))
        == 1.0
    )


def test_histogram_distance_stays_in_range_and_grows(qm: ModuleType) -> None:
    style = _rand(1, 3, 16, 16, seed=7)
    previous = 0.0
    for strength in (0.1, 0.3, 0.6):
        # Darken the picture more and more: ever fewer pixels left in their cell.
        distance = qm.color_histogram_distance(style * (1 - strength), style)
        assert 0.0 <= distance <= 1.0
        assert distance > previous
        previous = distance


def test_histogram_distance_rejects_a_batch(qm: ModuleType) -> None:
    with pytest.raises(ShapeError, match=r"one RGB image \(1, 3, H, W\)"):
        qm.color_histogram_distance(torch.zeros(2, 3, 4, 4), torch.zeros(1, 3, 4, 4))


# -- luma, Sobel, SSIM -----------------------------------------------------------------------------


def test_luma_uses_bt601_weights(qm: ModuleType) -> None:
    primaries = torch.eye(3).view(3, 3, 1, 1).permute(1, 0, 2, 3).reshape(1, 3, 1, 3)
    assert qm.luma(primaries).flatten().tolist() == pytest.approx([0.299, 0.587, 0.114])


def test_sobel_magnitude_of_a_step_is_four(qm: ModuleType) -> None:
    # The plain Sobel kernel (1, 2, 1 weights): a step of 1 gives 1 + 2 + 1 along the edge.
    step = torch.zeros(1, 1, 6, 6, dtype=torch.float64)
    step[..., 3:] = 1.0
    magnitude = qm.sobel_magnitude(step)
    assert magnitude[0, 0, :, 2:4].flatten().tolist() == [4.0] * 12
    assert magnitude[0, 0, :, [0, 1, 4, 5]].abs().max() == 0.0


def test_sobel_magnitude_stays_in_its_range(qm: ModuleType) -> None:
    checkerboard = (torch.arange(8).view(8, 1) + torch.arange(8)).remainder(2).double()
    magnitude = qm.sobel_magnitude(checkerboard.view(1, 1, 8, 8))
    assert magnitude.max() <= 4 * math.sqrt(2) + 1e-12


def test_ssim_is_symmetric_and_bounded(qm: ModuleType) -> None:
    first, second = _rand(1, 1, 16, 16, seed=8), _rand(1, 1, 16, 16, seed=9)
    assert qm.ssim(first, second) == pytest.approx(qm.ssim(second, first))
    assert -1.0 <= qm.ssim(first, second) < 0.5
    assert qm.ssim(first, first) == pytest.approx(1.0)


def test_ssim_rejects_a_window_larger_than_the_map(qm: ModuleType) -> None:
    with pytest.raises(ShapeError, match="11-px window does not fit"):
        qm.ssim(torch.zeros(1, 1, 10, 40), torch.zeros(1, 1, 10, 40))


# -- edge_ssim -------------------------------------------------------------------------------------


def test_edge_ssim_is_one_for_identical_images(qm: ModuleType) -> None:
    picture = _smooth_picture()
    assert qm.edge_ssim(picture, picture) == pytest.approx(1.0, abs=1e-12)


def test_edge_ssim_ignores_a_uniform_brightness_change(qm: ModuleType) -> None:
    picture = 0.8 * _smooth_picture()
    assert qm.edge_ssim(picture + 0.1, picture) == pytest.approx(1.0, abs=1e-12)


def test_edge_ssim_drops_as_edges_are_lost_or_invented(qm: ModuleType) -> None:
    content = _smooth_picture()
    noise = _rand(1, 3, 32, 32, seed=10)
    blurred = torch.nn.functional.avg_pool2d(
        content, 5, stride=1, padding=2, count_include_pad=False
    )
    lightly_noisy = (0.9 * content + 0.1 * noise).clamp(0, 1)
    scores = [qm.edge_ssim(image, content) for image in (lightly_noisy, blurred, noise)]
    assert all(-1.0 <= score < 1.0 for score in scores)
    assert scores[0] > scores[2]
    assert scores[1] > scores[2]
    assert scores[2] < 0.3


def test_edge_ssim_needs_equal_sizes(qm: ModuleType) -> None:
    with pytest.raises(ShapeError, match="SSIM needs equal shapes"):
        qm.edge_ssim(torch.zeros(1, 3, 16, 16), torch.zeros(1, 3, 16, 20))


# -- luma_correlation ------------------------------------------------------------------------------


def test_luma_correlation_is_one_for_the_same_layout(qm: ModuleType) -> None:
    picture = _smooth_picture()
    assert qm.luma_correlation(picture, picture) == pytest.approx(1.0, abs=1e-12)
    # Brighter and lower in contrast, the same layout of light and dark.
    assert qm.luma_correlation(0.5 * picture + 0.3, picture) == pytest.approx(1.0, abs=1e-12)


def test_luma_correlation_is_minus_one_for_the_negative(qm: ModuleType) -> None:
    picture = _smooth_picture()
    assert qm.luma_correlation(1 - picture, picture) == pytest.approx(-1.0, abs=1e-12)


def test_luma_correlation_ignores_fine_strokes_but_not_the_layout(qm: ModuleType) -> None:
    picture = _smooth_picture(48, 48)
    # A checkerboard of 1-px strokes over the picture: the sigma-2 blur removes most of it.
    strokes = (torch.arange(48).view(48, 1) + torch.arange(48)).remainder(2).float()
    stroked = (picture + 0.3 * (strokes - 0.5)).clamp(0, 1)
    assert qm.luma_correlation(stroked, picture) > 0.95
    noise = _rand(1, 3, 48, 48, seed=11)
    assert abs(qm.luma_correlation(noise, picture)) < 0.3


def test_luma_correlation_needs_equal_sizes(qm: ModuleType) -> None:
    with pytest.raises(ShapeError, match="luma correlation needs equal shapes"):
        qm.luma_correlation(torch.zeros(1, 3, 16, 16), torch.zeros(1, 3, 16, 20))
