"""Colour control: YIQ, luminance transfer and colour matching, against docs/color.md."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import Tensor

from neuralstyle import ConfigError, DeviceMismatchError, DTypeError, ShapeError
from neuralstyle.color import match_color, rgb_to_yiq, transfer_luminance, yiq_to_rgb
from neuralstyle.testing import feature_maps, images

seeds = st.integers(min_value=0, max_value=2**31 - 1)
methods = st.sampled_from(["covariance", "histogram"])
small_images = images(batch=(1, 3), height=(1, 6), width=(1, 6))


def close(actual: Tensor, expected: Tensor, tolerance: float = 1e-12) -> None:
    torch.testing.assert_close(actual, expected, rtol=0.0, atol=tolerance)


def uniform(shape: tuple[int, ...], seed: int, low: float = 0.0, high: float = 1.0) -> Tensor:
    """Dense float64 noise in [low, high]: distinct values with probability 1."""
    noise = torch.rand(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return low + (high - low) * noise


def correlated(batch: int, size: int, seed: int, spread: float) -> Tensor:
    """Mid-grey images whose channels are mixed by a well-conditioned random 3x3 matrix."""
    generator = torch.Generator().manual_seed(seed)
    mixing = torch.eye(3, dtype=torch.float64) + 0.8 * (
        torch.rand(batch, 3, 3, generator=generator, dtype=torch.float64) - 0.5
    )
    noise = torch.rand(batch, 3, size * size, generator=generator, dtype=torch.float64) - 0.5
    return (0.5 + spread * mixing @ noise).reshape(batch, 3, size, size)


def mean_and_covariance(image: Tensor) -> tuple[Tensor, Tensor]:
    pixels = image.flatten(2)
    centered = pixels - pixels.mean(dim=2, keepdim=True)
    return pixels.mean(dim=2), centered @ centered.transpose(1, 2) / pixels.shape[2]


def unclamped(image: Tensor) -> Tensor:
    """(B, H, W) mask of pixels the final clamp left alone: every channel strictly in (0, 1)."""
    return ((image > 0) & (image < 1)).all(dim=1)


# -- YIQ --------------------------------------------------------------------------------------


@given(small_images)
def test_rgb_yiq_rgb_round_trip_is_the_identity(image: Tensor) -> None:
    close(yiq_to_rgb(rgb_to_yiq(image)), image)


@given(feature_maps(channels=(3, 3), elements=(-1.0, 1.0)))
def test_yiq_rgb_yiq_round_trip_is_the_identity(yiq: Tensor) -> None:
    close(rgb_to_yiq(yiq_to_rgb(yiq)), yiq)


def test_primaries_give_the_ntsc_table() -> None:
    primaries = torch.eye(3, dtype=torch.float64).reshape(3, 3, 1, 1)  # red, green, blue
    table = torch.tensor(
        [[0.299, 0.5959, 0.2115], [0.587, -0.2746, -0.5227], [0.114, -0.3213, 0.3112]],
        dtype=torch.float64,
    )
    close(rgb_to_yiq(primaries).flatten(1), table)


@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=6))
def test_grey_has_exactly_zero_chroma_both_ways(levels: list[float]) -> None:
    grey = torch.tensor(levels, dtype=torch.float64).reshape(1, 1, 1, -1).expand(1, 3, 1, -1)
    yiq = rgb_to_yiq(grey)
    assert torch.equal(yiq[:, 1:], torch.zeros_like(yiq[:, 1:]))
    close(yiq[:, 0], grey[:, 0], 1e-15)
    back = yiq_to_rgb(torch.cat((grey[:, :1], torch.zeros_like(grey[:, 1:])), dim=1))
    assert torch.equal(back, grey)


@given(small_images)
def test_yiq_of_rgb_stays_in_the_documented_ranges(image: Tensor) -> None:
    luma, in_phase, quadrature = rgb_to_yiq(image).unbind(dim=1)
    slack = 1e-12
    assert bool(((luma >= -slack) & (luma <= 1 + slack)).all())
    assert bool((in_phase.abs() <= 0.5959 + slack).all())
    assert bool((quadrature.abs() <= 0.5227 + slack).all())


# -- transfer_luminance -----------------------------------------------------------------------


@given(small_images, seeds)
def test_luminance_transfer_keeps_stylized_luma_and_content_chroma(
    stylized: Tensor, seed: int
) -> None:
    content = uniform(tuple(stylized.shape), seed)
    result = transfer_luminance(stylized, content)
    assert bool(((result >= 0) & (result <= 1)).all())
    kept = unclamped(result).unsqueeze(1).expand_as(result)
    expected = torch.cat((rgb_to_yiq(stylized)[:, :1], rgb_to_yiq(content)[:, 1:]), dim=1)
    close(rgb_to_yiq(result)[kept], expected[kept])


def test_luminance_transfer_is_exact_without_clamping() -> None:
    # Mid-range inputs keep every output channel inside (0, 1): the check covers all pixels.
    stylized = uniform((2, 3, 5, 7), seed=1, low=0.4, high=0.6)
    content = uniform((2, 3, 5, 7), seed=2, low=0.4, high=0.6)
    result = transfer_luminance(stylized, content)
    assert bool(unclamped(result).all())
    close(rgb_to_yiq(result)[:, 0], rgb_to_yiq(stylized)[:, 0])
    close(rgb_to_yiq(result)[:, 1:], rgb_to_yiq(content)[:, 1:])


@given(small_images)
def test_luminance_transfer_of_an_image_onto_itself_is_the_identity(image: Tensor) -> None:
    close(transfer_luminance(image, image), image)


def test_content_of_another_size_is_resized_to_the_stylized_size() -> None:
    colour = torch.tensor([0.2, 0.5, 0.7], dtype=torch.float64).reshape(1, 3, 1, 1)
    content = colour.expand(2, 3, 15, 13)
    stylized = uniform((2, 3, 6, 5), seed=3, low=0.4, high=0.6)
    result = transfer_luminance(stylized, content)
    assert result.shape == stylized.shape
    assert bool(unclamped(result).all())
    close(rgb_to_yiq(result)[:, 1:], rgb_to_yiq(colour)[:, 1:].expand(2, 2, 6, 5))


def test_shrinking_the_content_is_antialiased() -> None:
    # A 1-pixel red/blue checkerboard shrunk 3x: sampling without a low-pass filter lands on
    # single pixels and keeps a full-contrast checkerboard; antialiasing blends it to purple.
    parity = (torch.arange(15).reshape(-1, 1) + torch.arange(15)) % 2
    red, blue = torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 0.0, 1.0])
    checkerboard = torch.where(parity.bool(), red.reshape(3, 1, 1), blue.reshape(3, 1, 1))
    stylized = torch.full((1, 3, 5, 5), 0.5)
    chroma = rgb_to_yiq(transfer_luminance(stylized, checkerboard.unsqueeze(0)))[:, 1:]
    purple = rgb_to_yiq(torch.tensor([0.5, 0.0, 0.5]).reshape(1, 3, 1, 1))[:, 1:]
    assert float((chroma[..., 1:-1, 1:-1] - purple).abs().max()) < 0.02
    assert float((chroma - purple).abs().max()) < 0.1


# -- match_color: covariance ------------------------------------------------------------------


@given(st.integers(1, 3), st.integers(4, 7), st.integers(4, 7), seeds)
def test_covariance_matching_gives_the_reference_mean_and_covariance(
    batch: int, source_size: int, reference_size: int, seed: int
) -> None:
    source = correlated(batch, source_size, seed, spread=0.3)
    reference = correlated(batch, reference_size, seed + 1, spread=0.1)
    result = match_color(source, reference, method="covariance")
    assert result.shape == source.shape
    assert bool(unclamped(result).all())  # precondition: the clamp changed nothing
    result_mean, result_covariance = mean_and_covariance(result)
    reference_mean, reference_covariance = mean_and_covariance(reference)
    close(result_mean, reference_mean, 1e-10)
    close(result_covariance, reference_covariance, 1e-10)


@given(small_images)
def test_covariance_matching_an_image_to_itself_is_the_identity(image: Tensor) -> None:
    # Includes flat and grey images, whose covariance is singular.
    close(match_color(image, image, method="covariance"), image, 1e-10)


def test_covariance_matching_a_nearly_grey_image_to_itself_is_the_identity() -> None:
    # Chroma variance (~1e-8) below the eigenvalue floor: flooring both covariances alike keeps
    # the map the identity instead of shrinking the faint colour by sqrt(variance / eps).
    grey = uniform((1, 1, 6, 6), seed=20).expand(1, 3, 6, 6)
    image = grey + 1e-4 * (uniform((1, 3, 6, 6), seed=21) - 0.5)
    close(match_color(image, image, method="covariance"), image, 1e-10)


def test_covariance_matching_to_a_flat_reference_gives_its_colour() -> None:
    source = uniform((1, 3, 8, 8), seed=4)
    colour = torch.tensor([0.3, 0.6, 0.2], dtype=torch.float64).reshape(1, 3, 1, 1)
    result = match_color(source, colour.expand(1, 3, 5, 5))
    # Only the eigenvalue floor (sqrt(1e-6) per whitened unit) remains.
    close(result, colour.expand_as(result), 5e-3)


def test_covariance_matching_is_an_affine_map_of_the_pixels() -> None:
    # Unlike histogram matching, equal source colours stay equal and the map is the same for
    # every pixel: a pixel's result depends on its own colour only.
    source = uniform((1, 3, 6, 6), seed=5, low=0.3, high=0.7)
    reference = correlated(1, 6, seed=6, spread=0.1)
    doubled = torch.cat((source, source), dim=3)
    result = match_color(doubled, reference)
    close(result[..., :6], result[..., 6:])


# -- match_color: histogram -------------------------------------------------------------------


@given(st.integers(1, 3), st.integers(1, 5), st.integers(1, 5), seeds)
def test_histogram_matching_gives_the_reference_sorted_values(
    batch: int, height: int, width: int, seed: int
) -> None:
    source = uniform((batch, 3, height, width), seed)
    reference = uniform((batch, 3, width, height), seed + 1)  # same count, other shape
    result = match_color(source, reference, method="histogram")
    assert torch.equal(result.flatten(2).sort().values, reference.flatten(2).sort().values)


@given(small_images, small_images)
def test_histogram_matching_preserves_order_and_ties(source: Tensor, other: Tensor) -> None:
    reference = other[:1].expand(source.shape[0], -1, -1, -1)
    result = match_color(source, reference, method="histogram").flatten(2)
    values, order = source.flatten(2).sort(dim=-1, stable=True)
    mapped = result.gather(-1, order)
    steps = mapped.diff(dim=-1)
    assert bool((steps >= 0).all())
    assert bool((steps[values.diff(dim=-1) == 0] == 0).all())
    low = reference.flatten(2).amin(dim=-1, keepdim=True)
    high = reference.flatten(2).amax(dim=-1, keepdim=True)
    assert bool(((result >= low) & (result <= high)).all())


@given(small_images, seeds)
def test_histogram_matching_keeps_equal_values_equal(source: Tensor, seed: int) -> None:
    # A distinct-valued reference: tied source values could only stay equal by sharing a rank.
    reference = uniform((source.shape[0], 3, 4, 4), seed)
    result = match_color(source, reference, method="histogram").flatten(2)
    values, order = source.flatten(2).sort(dim=-1, stable=True)
    ties = values.diff(dim=-1) == 0
    assert bool((result.gather(-1, order).diff(dim=-1)[ties] == 0).all())


def test_a_flat_source_maps_to_the_reference_median() -> None:
    source = torch.full((1, 3, 3, 3), 0.9, dtype=torch.float64)
    reference = torch.tensor([0.1, 0.2, 0.4, 0.8, 0.5], dtype=torch.float64)
    result = match_color(
        source, reference.reshape(1, 1, 1, 5).expand(1, 3, 1, 5), method="histogram"
    )
    close(result, torch.full_like(source, 0.4))


@given(small_images)
def test_histogram_matching_an_image_to_itself_is_the_identity(image: Tensor) -> None:
    assert torch.equal(match_color(image, image, method="histogram"), image)


def test_histogram_matching_reads_the_reference_at_mid_quantiles() -> None:
    reference = torch.tensor([0.9, 0.1, 0.3, 0.2], dtype=torch.float64).reshape(1, 1, 2, 2)
    reference = reference.expand(1, 3, 2, 2)
    one_pixel = torch.full((1, 3, 1, 1), 0.7, dtype=torch.float64)
    # Quantile 1/2 of four sorted values sits halfway between the 2nd and 3rd.
    close(
        match_color(one_pixel, reference, method="histogram").flatten(),
        torch.full((3,), 0.25, dtype=torch.float64),
    )
    two_pixels = (
        torch.tensor([0.8, 0.4], dtype=torch.float64).reshape(1, 1, 1, 2).expand(1, 3, 1, 2)
    )
    # Quantiles 1/4 and 3/4: positions 0.5 and 2.5 among 0.1, 0.2, 0.3, 0.9.
    expected = torch.tensor([0.6, 0.15], dtype=torch.float64).expand(1, 3, 2)
    close(match_color(two_pixels, reference, method="histogram").flatten(2), expected)


# -- shared properties ------------------------------------------------------------------------

FUNCTIONS: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "transfer_luminance": transfer_luminance,
    "covariance": lambda x, y: match_color(x, y, method="covariance"),
    "histogram": lambda x, y: match_color(x, y, method="histogram"),
}


@pytest.mark.parametrize("name", FUNCTIONS)
@given(seed=seeds, sizes=st.tuples(st.integers(1, 5), st.integers(1, 5)))
def test_batch_items_are_independent(name: str, seed: int, sizes: tuple[int, int]) -> None:
    function = FUNCTIONS[name]
    first = uniform((3, 3, *sizes), seed)
    second = uniform((3, 3, 4, 4), seed + 1)
    together = function(first, second)
    for item in range(3):
        alone = function(first[item : item + 1], second[item : item + 1])
        close(together[item : item + 1], alone, 1e-10)


@pytest.mark.parametrize("name", FUNCTIONS)
@given(source=small_images, seed=seeds)
def test_results_are_valid_images(name: str, source: Tensor, seed: int) -> None:
    result = FUNCTIONS[name](source, uniform((source.shape[0], 3, 3, 2), seed))
    assert result.shape == source.shape
    assert bool(((result >= 0) & (result <= 1)).all())


@pytest.mark.parametrize("name", FUNCTIONS)
def test_dtypes_follow_the_first_argument(name: str) -> None:
    function = FUNCTIONS[name]
    image = uniform((1, 3, 4, 4), seed=7)
    assert function(image.bfloat16(), image).dtype == torch.bfloat16
    result = function(image.float(), image)
    assert result.dtype == torch.float32
    close(result, function(image, image).float(), 1e-5)


@pytest.mark.parametrize("name", FUNCTIONS)
def test_autocast_does_not_lower_the_precision(name: str) -> None:
    function = FUNCTIONS[name]
    source = uniform((1, 3, 6, 6), seed=8).float()
    reference = correlated(1, 5, seed=9, spread=0.1).float()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        result = function(source, reference)
    assert result.dtype == torch.float32
    close(result, function(source, reference), 1e-6)


@pytest.mark.parametrize("name", FUNCTIONS)
def test_non_contiguous_inputs_give_the_same_result(name: str) -> None:
    function = FUNCTIONS[name]
    source = uniform((2, 3, 5, 6), seed=10)
    reference = uniform((2, 3, 4, 4), seed=11)
    expected = function(source, reference)
    close(function(source.to(memory_format=torch.channels_last), reference), expected)
    flat = torch.tensor([0.2, 0.4, 0.6], dtype=torch.float64).reshape(1, 3, 1, 1)
    close(
        function(flat.expand(2, 3, 5, 6), reference), function(flat.repeat(2, 1, 5, 6), reference)
    )


def test_gradients_flow_to_both_images() -> None:
    stylized = uniform((1, 3, 3, 3), seed=12, low=0.4, high=0.6).requires_grad_()
    content = uniform((1, 3, 4, 5), seed=13, low=0.4, high=0.6).requires_grad_()
    assert torch.autograd.gradcheck(transfer_luminance, (stylized, content))
    source = correlated(1, 3, seed=14, spread=0.3).requires_grad_()
    reference = correlated(1, 3, seed=15, spread=0.1).requires_grad_()
    assert torch.autograd.gradcheck(FUNCTIONS["covariance"], (source, reference))
    histogram = FUNCTIONS["histogram"]
    assert torch.autograd.gradcheck(lambda r: histogram(source.detach(), r), (reference,))


# -- errors -----------------------------------------------------------------------------------

GOOD = torch.rand(2, 3, 4, 4)

# Each public function with one image argument free and every other argument valid.
ARGUMENTS: dict[str, tuple[str, Callable[[Any], Tensor]]] = {
    "rgb_to_yiq": ("image", rgb_to_yiq),
    "yiq_to_rgb": ("image", yiq_to_rgb),
    "transfer_luminance/stylized": ("stylized", lambda x: transfer_luminance(x, GOOD)),
    "transfer_luminance/content": ("content", lambda x: transfer_luminance(GOOD, x)),
    "match_color/source": ("source", lambda x: match_color(x, GOOD)),
    "match_color/reference": ("reference", lambda x: match_color(GOOD, x, method="histogram")),
}

BAD_IMAGES: list[tuple[str, object, type[Exception], str]] = [
    ("rank 3", torch.rand(3, 4, 4), ShapeError, r"must be a 4-d tensor \(B, C, H, W\), got 3-d"),
    ("rank 5", torch.rand(1, 2, 3, 4, 4), ShapeError, r"got 5-d with shape \(1, 2, 3, 4, 4\)"),
    ("1 channel", torch.rand(2, 1, 4, 4), ShapeError, r"3 channels, got 1 channel\(s\)"),
    ("4 channels", torch.rand(2, 4, 4, 4), ShapeError, r"\(B, 3, H, W\) with 3 channels, got 4"),
    ("int64", torch.ones(2, 3, 4, 4, dtype=torch.int64), DTypeError, "floating-point.*int64"),
    ("uint8", torch.ones(2, 3, 4, 4, dtype=torch.uint8), DTypeError, "floating-point.*uint8"),
    ("list", [[0.5, 0.5, 0.5]], DTypeError, "must be a torch.Tensor, got list"),
    ("empty", torch.rand(2, 3, 0, 4), ShapeError, r"non-empty dimensions.*\(2, 3, 0, 4\)"),
]


@pytest.mark.parametrize("function", ARGUMENTS)
@pytest.mark.parametrize(
    ("bad", "error", "message"),
    [case[1:] for case in BAD_IMAGES],
    ids=[case[0] for case in BAD_IMAGES],
)
def test_bad_images_raise_typed_errors(
    function: str, bad: object, error: type[Exception], message: str
) -> None:
    name, call = ARGUMENTS[function]
    with pytest.raises(error, match=message) as raised:
        call(bad)
    assert str(raised.value).startswith(name)


PAIRS: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "stylized and content": transfer_luminance,
    "source and reference": match_color,
}


@pytest.mark.parametrize("names", PAIRS)
def test_mismatched_batch_sizes_raise_shape_error(names: str) -> None:
    with pytest.raises(ShapeError, match=rf"{names} must have the same batch size, got 2 and 3"):
        PAIRS[names](GOOD, torch.rand(3, 3, 4, 4))


@pytest.mark.parametrize("names", PAIRS)
def test_images_on_different_devices_raise_device_mismatch(names: str) -> None:
    with pytest.raises(DeviceMismatchError, match=rf"{names} must be on the same device.*meta"):
        PAIRS[names](GOOD, torch.empty(2, 3, 4, 4, device="meta"))


def test_unknown_method_raises_config_error() -> None:
    with pytest.raises(ConfigError, match=r"method must be one of \('covariance', 'histogram'\)"):
        match_color(GOOD, GOOD, method="reinhard")  # type: ignore[arg-type]


@pytest.mark.parametrize("eps", [0.0, -1e-3, float("nan"), float("inf"), True, "1e-6"])
def test_bad_eps_raises_config_error(eps: object) -> None:
    with pytest.raises(ConfigError, match="eps must be a finite number > 0"):
        match_color(GOOD, GOOD, eps=eps)  # type: ignore[arg-type]


# -- devices ----------------------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.parametrize("name", FUNCTIONS)
def test_cuda_matches_cpu(name: str) -> None:
    function = FUNCTIONS[name]
    source = uniform((2, 3, 33, 31), seed=16).float()
    reference = correlated(2, 20, seed=17, spread=0.1).float()
    result = function(source.cuda(), reference.cuda())
    assert result.device.type == "cuda"
    close(result.cpu(), function(source, reference), 1e-5)


@pytest.mark.gpu
@pytest.mark.parametrize("name", ["transfer_luminance", "histogram"])
def test_no_host_sync_on_cuda(name: str) -> None:
    function = FUNCTIONS[name]
    source = uniform((1, 3, 16, 16), seed=18).float().cuda()
    reference = uniform((1, 3, 12, 12), seed=19).float().cuda()
    function(source, reference)  # first call: lazy CUDA initialisation may sync
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        function(source, reference)
    finally:
        torch.cuda.set_sync_debug_mode("default")
