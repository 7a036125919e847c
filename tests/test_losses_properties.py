"""Property tests of the loss math (float64, Hypothesis), against the formulas of docs/math.md."""

from __future__ import annotations

import math
from typing import get_args

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import Tensor

from neuralstyle import (
    GramNormalization,
    Reduction,
    content_loss,
    gaussian_statistics,
    gram_matrix,
    style_loss,
    total_variation,
    wasserstein_style_loss,
)
from neuralstyle.testing import feature_map_pairs, feature_maps, gram_targets, images

NORMALIZATIONS: tuple[GramNormalization, ...] = get_args(GramNormalization)
normalizations = st.sampled_from(NORMALIZATIONS)
seeds = st.integers(min_value=0, max_value=2**31 - 1)
# Small maps keep gradcheck (two evaluations per input element) fast.
small_maps = feature_maps(batch=(1, 2), channels=(1, 3), height=(1, 3), width=(1, 3))


def close(actual: Tensor, expected: Tensor, scale: float | Tensor = 1.0) -> None:
    """Equal up to float64 rounding, relative to ``scale`` (the magnitude of the terms summed)."""
    torch.testing.assert_close(actual, expected, rtol=1e-9, atol=1e-9 * (1 + float(scale)))


def spatial_permutation(features: Tensor, seed: int) -> Tensor:
    """The same random shuffle of the H*W positions applied to every channel."""
    batch, channels, height, width = features.shape
    order = torch.randperm(height * width, generator=torch.Generator().manual_seed(seed))
    return features.flatten(2)[:, :, order].reshape(batch, channels, height, width)


def generic_maps(seed: int, shape: tuple[int, int, int, int]) -> Tensor:
    """Gaussian noise: full-rank covariances when H*W > C, as smooth W2 gradients need."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=generator, dtype=torch.float64)


def einsum_gram(features: Tensor, normalize: GramNormalization) -> Tensor:
    _, channels, height, width = features.shape
    divisor = {"chw": channels * height * width, "hw": height * width, "none": 1}[normalize]
    return torch.einsum("bchw,bdhw->bcd", features, features) / divisor


# -- Gram matrix ------------------------------------------------------------------------------


@given(feature_maps(), normalizations)
def test_gram_equals_einsum_reference(features: Tensor, normalize: GramNormalization) -> None:
    gram = gram_matrix(features, normalize=normalize)
    expected = einsum_gram(features, normalize)
    assert gram.shape == (features.shape[0], features.shape[1], features.shape[1])
    assert gram.dtype == torch.float64
    close(gram, expected, expected.abs().max())


@given(feature_maps(), normalizations)
def test_gram_is_symmetric(features: Tensor, normalize: GramNormalization) -> None:
    gram = gram_matrix(features, normalize=normalize)
    close(gram, gram.mT, gram.abs().max())


@given(feature_maps(), normalizations)
def test_gram_is_positive_semidefinite(features: Tensor, normalize: GramNormalization) -> None:
    gram = gram_matrix(features, normalize=normalize)
    eigenvalues = torch.linalg.eigvalsh(gram)
    tolerance = 1e-10 * (1 + gram.abs().amax(dim=(1, 2)))
    assert bool((eigenvalues.min(dim=1).values >= -tolerance).all())


@given(feature_maps())
def test_gram_diagonal_is_channel_energy(features: Tensor) -> None:
    gram = gram_matrix(features, normalize="none")
    energy = features.square().sum(dim=(2, 3))
    close(gram.diagonal(dim1=1, dim2=2), energy, energy.max())


@given(feature_maps())
def test_gram_normalizations_differ_by_their_divisors(features: Tensor) -> None:
    _, channels, height, width = features.shape
    none = gram_matrix(features, normalize="none")
    close(gram_matrix(features, normalize="hw") * (height * width), none, none.abs().max())
    close(
        gram_matrix(features, normalize="chw") * (channels * height * width), none, none.abs().max()
    )


@given(feature_maps(), st.floats(min_value=-4.0, max_value=4.0), normalizations)
def test_gram_is_quadratic_in_scale(
    features: Tensor, factor: float, normalize: GramNormalization
) -> None:
    gram = gram_matrix(features, normalize=normalize)
    scaled = gram_matrix(factor * features, normalize=normalize)
    close(scaled, factor**2 * gram, factor**2 * gram.abs().max())


@given(feature_maps(), seeds, normalizations)
def test_gram_is_invariant_to_one_spatial_permutation_of_all_channels(
    features: Tensor, seed: int, normalize: GramNormalization
) -> None:
    gram = gram_matrix(features, normalize=normalize)
    shuffled = gram_matrix(spatial_permutation(features, seed), normalize=normalize)
    close(shuffled, gram, gram.abs().max())


@given(feature_maps(), st.data(), normalizations)
def test_gram_is_equivariant_to_channel_permutation(
    features: Tensor, data: st.DataObject, normalize: GramNormalization
) -> None:
    order = data.draw(st.permutations(range(features.shape[1])))
    gram = gram_matrix(features, normalize=normalize)
    permuted = gram_matrix(features[:, order], normalize=normalize)
    close(permuted, gram[:, order][:, :, order], gram.abs().max())


@given(feature_maps(), normalizations)
def test_gram_under_2x2_tiling(features: Tensor, normalize: GramNormalization) -> None:
    # Tiling repeats every pixel 4 times: F F^T grows 4x; chw and hw divide by 4x more pixels.
    factor = {"chw": 1.0, "hw": 1.0, "none": 4.0}[normalize]
    gram = gram_matrix(features, normalize=normalize)
    tiled = gram_matrix(features.repeat(1, 1, 2, 2), normalize=normalize)
    close(tiled, factor * gram, factor * gram.abs().max())


@given(feature_maps(batch=(2, 3)), normalizations)
def test_gram_items_are_independent(features: Tensor, normalize: GramNormalization) -> None:
    batched = gram_matrix(features, normalize=normalize)
    for index in range(features.shape[0]):
        alone = gram_matrix(features[index : index + 1], normalize=normalize)
        close(batched[index : index + 1], alone, alone.abs().max())


def test_gram_matches_the_seed_code_for_batch_one() -> None:
    # The seed blog post: view(a*b, c*d), mm with its transpose, divide by a*b*c*d (a = 1).
    features = generic_maps(0, (1, 4, 3, 5))
    a, b, c, d = features.shape
    flat = features.view(a * b, c * d)
    seed_gram = torch.mm(flat, flat.t()).div(a * b * c * d)
    close(gram_matrix(features)[0], seed_gram)


@given(small_maps, normalizations)
def test_gram_gradcheck(features: Tensor, normalize: GramNormalization) -> None:
    features.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: gram_matrix(x, normalize=normalize), (features,))


@given(small_maps, normalizations)
def test_gram_gradgradcheck(features: Tensor, normalize: GramNormalization) -> None:
    # The custom one-GEMM backward is itself differentiable.
    features.requires_grad_(True)
    assert torch.autograd.gradgradcheck(lambda x: gram_matrix(x, normalize=normalize), (features,))


@given(feature_map_pairs(dtype=torch.float32, elements=(-2.0, 2.0)))
def test_gram_gradient_is_the_closed_form(pair: tuple[Tensor, Tensor]) -> None:
    # d/dF <W, F F^T / n> = (W + W^T) F / n, also when backward runs under autocast.
    features, other = pair
    _, channels, height, width = features.shape
    # Not symmetric, so a backward that forgot the transpose term would fail.
    weights = other.flatten(2)[:, :, :1] * torch.arange(channels, dtype=torch.float32)
    features.requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        (gram_matrix(features, normalize="hw") * weights).sum().backward()
    flat = features.detach().flatten(2)
    expected = ((weights + weights.mT) @ flat / (height * width)).view_as(features)
    assert features.grad is not None
    assert features.grad.dtype == torch.float32
    torch.testing.assert_close(features.grad, expected, rtol=1e-5, atol=1e-4)


@given(feature_maps(dtype=torch.float32, elements=(-2.0, 2.0)), normalizations)
def test_gram_under_cpu_autocast_is_float32(features: Tensor, normalize: GramNormalization) -> None:
    reference = gram_matrix(features, normalize=normalize)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        autocast = gram_matrix(features, normalize=normalize)
        from_bfloat16 = gram_matrix(features.bfloat16(), normalize=normalize)
    assert autocast.dtype == torch.float32
    assert from_bfloat16.dtype == torch.float32
    torch.testing.assert_close(autocast, reference)
    # bfloat16 rounds each input to 8 significant bits; the float32 sum adds no more error.
    scale = features.abs().max().square() * (1 if normalize != "none" else features[0, 0].numel())
    torch.testing.assert_close(from_bfloat16, reference, rtol=2e-2, atol=2e-2 * float(scale) + 1e-6)


@given(feature_maps(dtype=torch.float32, elements=(-2.0, 2.0)))
def test_gram_of_low_precision_input_accumulates_in_float32(features: Tensor) -> None:
    for dtype in (torch.bfloat16, torch.float16):
        rounded = features.to(dtype)
        gram = gram_matrix(rounded)
        assert gram.dtype == torch.float32
        torch.testing.assert_close(gram, gram_matrix(rounded.float()))


# -- content loss -----------------------------------------------------------------------------


@given(feature_map_pairs())
def test_content_loss_is_the_mean_squared_error(pair: tuple[Tensor, Tensor]) -> None:
    first, second = pair
    expected = (first - second).square().mean()
    close(content_loss(first, second), expected, expected)


@given(feature_maps())
def test_content_loss_is_zero_at_its_target(features: Tensor) -> None:
    for reduction in ("mean", "sum", "none"):
        loss = content_loss(features, features.clone(), reduction=reduction)
        assert bool((loss == 0).all())


@given(feature_map_pairs())
def test_content_loss_is_non_negative_and_symmetric(pair: tuple[Tensor, Tensor]) -> None:
    first, second = pair
    forward = content_loss(first, second, reduction="none")
    assert bool((forward >= 0).all())
    close(content_loss(second, first, reduction="none"), forward, forward.max())


@given(feature_map_pairs())
def test_content_loss_reductions_agree(pair: tuple[Tensor, Tensor]) -> None:
    first, second = pair
    mean = content_loss(first, second)
    total = content_loss(first, second, reduction="sum")
    per_item = content_loss(first, second, reduction="none")
    assert per_item.shape == (first.shape[0],)
    close(mean, total / first.numel(), total)
    close(per_item.mean(), mean, total)
    close(per_item, (first - second).square().flatten(1).mean(dim=1), total)


@given(feature_map_pairs(batch=(2, 3)))
def test_content_target_of_batch_one_is_shared(pair: tuple[Tensor, Tensor]) -> None:
    features, other = pair
    target = other[:1]
    shared = content_loss(features, target, reduction="none")
    expanded = content_loss(features, target.expand_as(features).clone(), reduction="none")
    close(shared, expanded, shared.max())


@given(feature_map_pairs(batch=(2, 3)))
def test_content_loss_items_are_independent(pair: tuple[Tensor, Tensor]) -> None:
    first, second = pair
    batched = content_loss(first, second, reduction="none")
    for index in range(first.shape[0]):
        alone = content_loss(first[index : index + 1], second[index : index + 1])
        close(batched[index], alone, alone)


@given(feature_map_pairs(batch=(1, 1)))
def test_content_loss_maps_to_the_seed_half_sum(pair: tuple[Tensor, Tensor]) -> None:
    # docs/math.md: seed 1/2 sum (F - P)^2 == (C H W / 2) * content_loss(mean).
    first, second = pair
    seed = 0.5 * (first - second).square().sum()
    ours = content_loss(first, second) * first[0].numel() / 2
    close(ours, seed, seed)


@given(feature_map_pairs(batch=(1, 2), channels=(1, 3), height=(1, 3), width=(1, 3)))
def test_content_loss_gradcheck(pair: tuple[Tensor, Tensor]) -> None:
    first, second = (tensor.requires_grad_(True) for tensor in pair)
    assert torch.autograd.gradcheck(content_loss, (first, second))


# -- style loss -------------------------------------------------------------------------------


@given(feature_maps(), normalizations)
def test_style_loss_is_zero_at_its_own_target(
    features: Tensor, normalize: GramNormalization
) -> None:
    target = gram_matrix(features, normalize=normalize)
    loss = style_loss(features, target, normalize=normalize, reduction="none")
    assert bool((loss == 0).all())


@given(feature_map_pairs(), normalizations)
def test_style_loss_is_mse_of_grams(
    pair: tuple[Tensor, Tensor], normalize: GramNormalization
) -> None:
    features, other = pair
    target = einsum_gram(other, normalize)
    expected = (einsum_gram(features, normalize) - target).square()
    loss = style_loss(features, target, normalize=normalize, reduction="none")
    close(loss, expected.flatten(1).mean(dim=1), expected.max())
    close(style_loss(features, target, normalize=normalize), expected.mean(), expected.max())
    summed = style_loss(features, target, normalize=normalize, reduction="sum")
    close(summed, expected.sum(), expected.sum())


@given(feature_maps(channels=(3, 3)), gram_targets(channels=(3, 3)), seeds)
def test_style_loss_is_invariant_to_spatial_permutation(
    features: Tensor, target: Tensor, seed: int
) -> None:
    loss = style_loss(features, target, reduction="none")
    shuffled = style_loss(spatial_permutation(features, seed), target, reduction="none")
    close(shuffled, loss, loss.max())


@given(feature_maps(batch=(2, 3), channels=(4, 4)), gram_targets(channels=(4, 4)))
def test_style_target_shapes_broadcast_alike(features: Tensor, target: Tensor) -> None:
    shared = style_loss(features, target, reduction="none")
    close(style_loss(features, target[0], reduction="none"), shared, shared.max())
    expanded = target.expand(features.shape[0], 4, 4).clone()
    close(style_loss(features, expanded, reduction="none"), shared, shared.max())
    for index in range(features.shape[0]):
        alone = style_loss(features[index : index + 1], target)
        close(shared[index], alone, alone)


@given(feature_maps(channels=(2, 2)), gram_targets(channels=(2, 2)), st.floats(-3.0, 3.0))
def test_style_loss_is_quartic_in_scale(features: Tensor, target: Tensor, factor: float) -> None:
    loss = style_loss(features, target)
    scaled = style_loss(factor * features, factor**2 * target)
    close(scaled, factor**4 * loss, factor**4 * loss)


@given(feature_map_pairs(batch=(1, 1)))
def test_style_loss_maps_to_the_seed_layer_error(pair: tuple[Tensor, Tensor]) -> None:
    # docs/math.md: E_l = 1/(4 N^2 M^2) sum (G - A)^2 on raw Grams == (C^2 / 4) * style_loss.
    features, style = pair
    _, channels, height, width = features.shape
    raw = einsum_gram(features, "none") - einsum_gram(style, "none")
    seed = raw.square().sum() / (4 * channels**2 * (height * width) ** 2)
    ours = style_loss(features, gram_matrix(style)) * channels**2 / 4
    close(ours, seed, seed)
    close(style_loss(features, gram_matrix(style), reduction="sum") / 4, seed, seed)
    hw = style_loss(features, gram_matrix(style, normalize="hw"), normalize="hw") / 4
    close(hw, seed, seed)


@given(
    feature_maps(batch=(1, 2), channels=(2, 2), height=(1, 3), width=(1, 3)),
    gram_targets(channels=(2, 2)),
    normalizations,
)
def test_style_loss_gradcheck(
    features: Tensor, target: Tensor, normalize: GramNormalization
) -> None:
    features.requires_grad_(True)
    target.requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda x, t: style_loss(x, t, normalize=normalize), (features, target)
    )


def test_style_loss_under_cpu_autocast_is_float32() -> None:
    features = generic_maps(1, (2, 3, 4, 4)).float()
    target = gram_matrix(generic_maps(2, (1, 3, 4, 4)).float())
    reference = style_loss(features, target)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = style_loss(features, target)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, reference)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_losses_of_low_precision_input_are_float32(dtype: torch.dtype) -> None:
    features = generic_maps(7, (2, 3, 4, 4)).float()
    target = generic_maps(8, (1, 3, 4, 4)).float()
    low, low_target = features.to(dtype), target.to(dtype)
    for loss, reference in [
        (content_loss(low, low_target), content_loss(low.float(), low_target.float())),
        (content_loss(low, target), content_loss(low.float(), target)),
        (style_loss(low, gram_matrix(low_target)), style_loss(low.float(), gram_matrix(target))),
        (total_variation(low), total_variation(low.float())),
    ]:
        assert loss.dtype == torch.float32
        torch.testing.assert_close(loss, reference, rtol=3e-2, atol=1e-3)


def test_content_loss_under_cpu_autocast_is_float32() -> None:
    features = generic_maps(9, (2, 3, 4, 4)).float()
    target = generic_maps(10, (1, 3, 4, 4)).float()
    reference = content_loss(features, target)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = content_loss(features, target)
        low = content_loss(features.bfloat16(), target.bfloat16())
    assert loss.dtype == low.dtype == torch.float32
    torch.testing.assert_close(loss, reference)
    torch.testing.assert_close(low, reference, rtol=3e-2, atol=1e-3)


# -- total variation --------------------------------------------------------------------------


def reference_tv(image: Tensor) -> Tensor:
    """Per-item TV by explicit slicing; a missing direction counts as 0."""
    horizontal = image[..., :, 1:] - image[..., :, :-1]
    vertical = image[..., 1:, :] - image[..., :-1, :]
    total = torch.zeros(image.shape[0], dtype=image.dtype)
    for term in (horizontal, vertical):
        if term.numel():
            total = total + term.square().flatten(1).mean(dim=1)
    return total


rgb = images(height=(1, 6), width=(2, 6))


@given(rgb)
def test_total_variation_matches_the_slicing_reference(image: Tensor) -> None:
    expected = reference_tv(image)
    close(total_variation(image, reduction="none"), expected, expected.max())
    close(total_variation(image), expected.mean(), expected.max())


@given(rgb)
def test_total_variation_sum_is_the_plain_sum_of_squared_differences(image: Tensor) -> None:
    expected = torch.diff(image, dim=2).square().sum() + torch.diff(image, dim=3).square().sum()
    close(total_variation(image, reduction="sum"), expected, expected)


@given(rgb, st.floats(min_value=-5.0, max_value=5.0))
def test_total_variation_is_invariant_to_adding_a_constant(image: Tensor, shift: float) -> None:
    loss = total_variation(image, reduction="none")
    close(total_variation(image + shift, reduction="none"), loss, 1 + abs(shift))


@given(st.floats(min_value=-5.0, max_value=5.0), st.integers(1, 3), st.integers(2, 5))
def test_total_variation_of_a_constant_image_is_zero(value: float, batch: int, size: int) -> None:
    image = torch.full((batch, 3, size, size + 1), value, dtype=torch.float64)
    assert bool((total_variation(image, reduction="none") == 0).all())
    assert total_variation(image, reduction="sum") == 0


@given(feature_maps(height=(1, 1), width=(2, 6)))
def test_total_variation_of_a_single_row_has_only_the_horizontal_term(row: Tensor) -> None:
    expected = torch.diff(row, dim=3).square().flatten(1).mean(dim=1)
    loss = total_variation(row, reduction="none")
    close(loss, expected, expected.max())
    close(total_variation(row.mT, reduction="none"), expected, expected.max())


@given(images(batch=(2, 3), width=(2, 6)))
def test_total_variation_items_are_independent(image: Tensor) -> None:
    batched = total_variation(image, reduction="none")
    for index in range(image.shape[0]):
        close(batched[index], total_variation(image[index : index + 1]))


@given(feature_maps(batch=(1, 2), channels=(1, 2), height=(1, 3), width=(2, 3)))
def test_total_variation_gradcheck(image: Tensor) -> None:
    image.requires_grad_(True)
    for reduction in ("mean", "sum", "none"):
        assert torch.autograd.gradcheck(
            lambda x, r=reduction: total_variation(x, reduction=r), (image,)
        )


# -- Gaussian statistics and the W2 style loss ------------------------------------------------


def w2_tolerance(*features: Tensor) -> float:
    """The float64 error bound of a W2 value, from the magnitudes of the maps involved.

    The cross term sums the square roots of the eigenvalues of ``S^1/2 Sigma S^1/2``. Rounding
    moves an eigenvalue by about ``eps * lambda_max``, and so a root near zero by up to
    ``sqrt(eps * lambda_max)``: over ``C`` roots, divided by ``C`` and doubled, the loss moves
    by ``2 sqrt(eps * lambda_max)``, with ``lambda_max <= tr Sigma * tr Sigma_t <= (1 + T)^2``
    for ``T`` the sum of the maps' largest traces. The other terms are sums of squares whose
    rounding is ``~eps`` relative to the means and traces. A factor 4 covers the target's own
    square root, computed the same way.
    """
    eps = torch.finfo(torch.float64).eps
    trace = sum(float(f.var(dim=(2, 3), correction=0).sum(dim=1).max()) for f in features)
    means = sum(float(f.mean(dim=(2, 3)).square().sum(dim=1).max()) for f in features)
    return 4 * math.sqrt(eps) * (1 + trace) + 64 * eps * (1 + trace + means)


@given(feature_maps())
def test_gaussian_statistics_match_torch_cov(features: Tensor) -> None:
    stats = gaussian_statistics(features)
    flat = features.flatten(2)
    close(stats.mean, flat.mean(dim=2), features.abs().max())
    expected = torch.stack([torch.cov(item, correction=0) for item in flat]).reshape(
        stats.covariance.shape
    )
    close(stats.covariance, expected, expected.abs().max())
    square = stats.covariance_sqrt @ stats.covariance_sqrt
    torch.testing.assert_close(
        square, expected, rtol=1e-6, atol=1e-6 * (1 + float(expected.abs().max()))
    )
    close(stats.covariance_sqrt, stats.covariance_sqrt.mT, expected.abs().max())


@given(feature_maps())
def test_wasserstein_is_zero_at_own_statistics(features: Tensor) -> None:
    loss = wasserstein_style_loss(features, gaussian_statistics(features), reduction="none")
    tolerance = w2_tolerance(features)
    assert bool((loss.abs() <= tolerance).all()), (loss, tolerance)


@given(feature_map_pairs())
def test_wasserstein_is_non_negative(pair: tuple[Tensor, Tensor]) -> None:
    features, style = pair
    loss = wasserstein_style_loss(features, gaussian_statistics(style), reduction="none")
    assert bool((loss >= -w2_tolerance(features, style)).all())


@given(feature_map_pairs(), seeds)
def test_wasserstein_is_invariant_to_spatial_permutation(
    pair: tuple[Tensor, Tensor], seed: int
) -> None:
    features, style = pair
    target = gaussian_statistics(style)
    loss = wasserstein_style_loss(features, target, reduction="none")
    shuffled = wasserstein_style_loss(spatial_permutation(features, seed), target, reduction="none")
    torch.testing.assert_close(shuffled, loss, rtol=0, atol=w2_tolerance(features, style))


@given(feature_map_pairs(), st.data())
def test_wasserstein_translation_moves_only_the_mean_term(
    pair: tuple[Tensor, Tensor], data: st.DataObject
) -> None:
    features, style = pair
    channels = features.shape[1]
    shift = torch.tensor(
        data.draw(st.lists(st.floats(-5.0, 5.0), min_size=channels, max_size=channels)),
        dtype=torch.float64,
    ).view(1, channels, 1, 1)
    target = gaussian_statistics(style)
    before = wasserstein_style_loss(features, target, reduction="none")
    after = wasserstein_style_loss(features + shift, target, reduction="none")
    mean = features.mean(dim=(2, 3))
    mean_term_change = (
        (mean + shift.view(1, channels) - target.mean).square().sum(dim=1)
        - (mean - target.mean).square().sum(dim=1)
    ) / channels
    torch.testing.assert_close(
        after - before, mean_term_change, rtol=1e-9, atol=w2_tolerance(features, style)
    )


@given(feature_map_pairs(channels=(1, 1)))
def test_wasserstein_in_one_channel_is_the_closed_form(pair: tuple[Tensor, Tensor]) -> None:
    # For scalars: W2^2 = (mu - mu_t)^2 + (sigma - sigma_t)^2.
    features, style = pair[0], pair[1][:1]
    loss = wasserstein_style_loss(features, gaussian_statistics(style), reduction="none")
    mu, sigma = features.mean(dim=(1, 2, 3)), features.std(dim=(1, 2, 3), correction=0)
    mu_t, sigma_t = style.mean(), style.std(correction=0)
    expected = (mu - mu_t).square() + (sigma - sigma_t).square()
    torch.testing.assert_close(loss, expected, rtol=1e-7, atol=w2_tolerance(features, style))


@given(seeds, st.integers(1, 4), st.integers(1, 3))
def test_wasserstein_matches_an_eigh_reference(seed: int, channels: int, batch: int) -> None:
    features = generic_maps(seed, (batch, channels, 3, 3))
    style = 2 * generic_maps(seed + 1, (1, channels, 3, 3)) + 1

    def sqrtm(matrix: Tensor) -> Tensor:
        values, vectors = torch.linalg.eigh(matrix)
        return vectors @ torch.diag_embed(values.clamp(min=0).sqrt()) @ vectors.mT

    def stats(x: Tensor) -> tuple[Tensor, Tensor]:
        flat = x.flatten(2)
        centered = flat - flat.mean(dim=2, keepdim=True)
        return flat.mean(dim=2), centered @ centered.mT / flat.shape[2]

    mu, cov = stats(features)
    mu_t, cov_t = stats(style)
    root_t = sqrtm(cov_t)
    cross = sqrtm(root_t @ cov @ root_t).diagonal(dim1=1, dim2=2).sum(dim=1)
    trace = cov.diagonal(dim1=1, dim2=2).sum(dim=1) + cov_t.diagonal(dim1=1, dim2=2).sum(dim=1)
    expected = ((mu - mu_t).square().sum(dim=1) + trace - 2 * cross) / channels
    loss = wasserstein_style_loss(features, gaussian_statistics(style), reduction="none")
    torch.testing.assert_close(loss, expected, rtol=1e-8, atol=1e-8)


@given(feature_map_pairs(batch=(2, 3)))
def test_wasserstein_reductions_and_batch_independence(pair: tuple[Tensor, Tensor]) -> None:
    features, style = pair
    target = gaussian_statistics(style[:1])
    per_item = wasserstein_style_loss(features, target, reduction="none")
    tolerance = w2_tolerance(features, style)
    assert per_item.shape == (features.shape[0],)
    mean = wasserstein_style_loss(features, target)
    total = wasserstein_style_loss(features, target, reduction="sum")
    torch.testing.assert_close(mean, per_item.mean(), rtol=0, atol=tolerance)
    torch.testing.assert_close(total, per_item.sum(), rtol=0, atol=len(per_item) * tolerance)
    for index in range(features.shape[0]):
        alone = wasserstein_style_loss(features[index : index + 1], target)
        torch.testing.assert_close(per_item[index], alone, rtol=0, atol=tolerance)


@given(feature_map_pairs(batch=(2, 3)))
def test_wasserstein_target_batch_matches_per_item(pair: tuple[Tensor, Tensor]) -> None:
    features, style = pair
    per_item = wasserstein_style_loss(features, gaussian_statistics(style), reduction="none")
    for index in range(features.shape[0]):
        alone = wasserstein_style_loss(
            features[index : index + 1], gaussian_statistics(style[index : index + 1])
        )
        torch.testing.assert_close(
            per_item[index], alone, rtol=0, atol=w2_tolerance(features, style)
        )


@given(seeds, st.integers(1, 3), st.sampled_from(["mean", "sum", "none"]))
def test_wasserstein_gradcheck(seed: int, channels: int, reduction: str) -> None:
    features = generic_maps(seed, (2, channels, 2, 3)).requires_grad_(True)
    target = gaussian_statistics(generic_maps(seed + 1, (1, channels, 3, 2)))
    assert torch.autograd.gradcheck(
        lambda x: wasserstein_style_loss(x, target, reduction=reduction),  # type: ignore[arg-type]
        (features,),
    )


def test_wasserstein_gradient_is_finite_for_rank_deficient_covariance() -> None:
    # One pixel per item: zero covariance, every eigenvalue is 0 and sqrt'(0) is infinite.
    features = generic_maps(3, (2, 4, 1, 1)).requires_grad_(True)
    target = gaussian_statistics(generic_maps(4, (1, 4, 1, 1)))
    wasserstein_style_loss(features, target).backward()
    assert features.grad is not None
    assert bool(features.grad.isfinite().all())


@given(seeds, st.integers(7, 16))
def test_wasserstein_in_float32_with_rank_deficient_covariance(seed: int, channels: int) -> None:
    # 6 pixels < C channels: most eigenvalues are rounding noise. float32 keeps ~1e-3 of the
    # trace scale (measured worst case 7e-4 over 600 draws), not the 1e-6 of float32 sums.
    features = 3 * generic_maps(seed, (1, channels, 2, 3)).float()
    target = gaussian_statistics(features)
    scale = 1 + float(target.covariance.diagonal(dim1=1, dim2=2).sum()) / channels
    at_target = wasserstein_style_loss(features, target)
    shifted = wasserstein_style_loss(features + 1, target)
    assert at_target.dtype == torch.float32
    assert abs(float(at_target)) <= 2e-3 * scale
    assert abs(float(shifted) - 1) <= 2e-3 * scale


def maps_of_rank(rank: int, channels: int, positions: int, seed: int) -> Tensor:
    """``(1, C, 1, N)`` maps whose covariance has exactly ``rank`` (0: every channel constant)."""
    generator = torch.Generator().manual_seed(seed)
    mean = torch.rand(1, channels, 1, 1, generator=generator, dtype=torch.float64)
    if rank == 0:
        return mean.expand(1, channels, 1, positions).clone()
    basis = torch.randn(channels, rank, generator=generator, dtype=torch.float64)
    codes = torch.randn(rank, positions, generator=generator, dtype=torch.float64)
    return mean + (basis @ codes).view(1, channels, 1, positions)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    ("rank", "channels", "positions"), [(0, 6, 9), (1, 6, 9), (3, 6, 9), (15, 512, 16)]
)
def test_wasserstein_with_rank_deficient_covariances(
    rank: int, channels: int, positions: int, dtype: torch.dtype
) -> None:
    # What real pictures give: constant channels (rank 0), fewer positions than channels
    # (relu5_1 of a 64 px image: 16 positions, 512 channels, rank 15). The square root squares
    # back to the covariance, the loss is 0 at its own statistics and its gradient is finite.
    style = maps_of_rank(rank, channels, positions, seed=rank).to(dtype)
    features = maps_of_rank(rank, channels, positions, seed=rank + 100).to(dtype)
    target = gaussian_statistics(style)
    scale = 1 + float(target.covariance.diagonal(dim1=1, dim2=2).sum())
    resolution = torch.finfo(dtype).eps
    squared = target.covariance_sqrt @ target.covariance_sqrt
    torch.testing.assert_close(squared, target.covariance, rtol=0, atol=64 * resolution * scale)
    at_target = wasserstein_style_loss(style, target)
    assert abs(float(at_target)) <= 8 * math.sqrt(resolution) * scale
    features.requires_grad_(True)
    loss = wasserstein_style_loss(features, target)
    loss.backward()
    assert bool(torch.isfinite(loss))
    assert features.grad is not None
    assert bool(features.grad.isfinite().all())


@given(seeds)
def test_wasserstein_on_relu5_1_like_maps(seed: int) -> None:
    # relu5_1 of a 64 px picture: 512 channels at 2 x 4 positions, ReLU zeros, half the channels
    # dead. LAPACK's float32 eigensolver failed to converge on such covariances (issue 14).
    generator = torch.Generator().manual_seed(seed)
    alive = (torch.rand(1, 512, 1, 1, generator=generator) > 0.5).float()
    style = torch.relu(30 * torch.randn(1, 512, 2, 4, generator=generator)) * alive
    features = torch.relu(30 * torch.randn(1, 512, 2, 4, generator=generator)).requires_grad_()
    target = gaussian_statistics(style)
    scale = 1 + float(target.covariance.diagonal(dim1=1, dim2=2).sum())
    squared = target.covariance_sqrt @ target.covariance_sqrt
    torch.testing.assert_close(squared, target.covariance, rtol=0, atol=1e-5 * scale)
    assert abs(float(wasserstein_style_loss(style, target))) <= 2e-3 * scale / 512
    loss = wasserstein_style_loss(features, target)
    loss.backward()
    assert bool(torch.isfinite(loss))
    assert features.grad is not None
    assert bool(features.grad.isfinite().all())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_wasserstein_gradient_is_finite_at_an_exact_zero_eigenvalue(dtype: torch.dtype) -> None:
    # Target covariance I, input channel 1 constant: the product has an exact 0 eigenvalue.
    style = torch.tensor([[[[1.0, -1.0], [1.0, -1.0]], [[1.0, 1.0], [-1.0, -1.0]]]], dtype=dtype)
    features = torch.tensor([[[[0.0, 1.0], [2.0, 3.0]], [[5.0, 5.0], [5.0, 5.0]]]], dtype=dtype)
    features.requires_grad_(True)
    target = gaussian_statistics(style)
    torch.testing.assert_close(target.covariance[0], torch.eye(2, dtype=dtype))
    wasserstein_style_loss(features, target).backward()
    assert features.grad is not None
    assert bool(features.grad.isfinite().all()), features.grad


def test_wasserstein_under_cpu_autocast_is_float32() -> None:
    features = generic_maps(5, (2, 3, 4, 4)).float()
    target = gaussian_statistics(generic_maps(6, (1, 3, 4, 4)).float())
    reference = wasserstein_style_loss(features, target)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = wasserstein_style_loss(features, target)
        low = wasserstein_style_loss(features.bfloat16(), target)
        stats = gaussian_statistics(features.bfloat16())
    assert loss.dtype == low.dtype == stats.covariance.dtype == torch.float32
    torch.testing.assert_close(loss, reference)
    torch.testing.assert_close(low, reference, rtol=5e-2, atol=5e-2)


# -- any device -------------------------------------------------------------------------------


@pytest.mark.parametrize("normalize", NORMALIZATIONS)
def test_losses_run_on_the_meta_device(normalize: GramNormalization) -> None:
    features = torch.empty(2, 3, 4, 5, device="meta")
    target = torch.empty(1, 3, 4, 5, device="meta")
    assert gram_matrix(features, normalize=normalize).shape == (2, 3, 3)
    gram = gram_matrix(target, normalize=normalize)
    assert style_loss(features, gram, normalize=normalize, reduction="none").shape == (2,)
    assert content_loss(features, target).device.type == "meta"
    assert total_variation(features, reduction="none").shape == (2,)


@pytest.mark.gpu
def test_gram_losses_never_sync_on_cuda() -> None:
    device = torch.device("cuda")
    generator = torch.Generator(device).manual_seed(0)
    features = torch.randn(2, 8, 16, 16, device=device, generator=generator).requires_grad_()
    content = torch.randn(1, 8, 16, 16, device=device, generator=generator)
    target = gram_matrix(torch.randn(1, 8, 16, 16, device=device, generator=generator))
    torch.cuda.synchronize()
    previous = torch.cuda.get_sync_debug_mode()
    torch.cuda.set_sync_debug_mode("error")
    try:
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = content_loss(features, content) + style_loss(features, target)
            loss = loss + total_variation(features)
            autocast_gram = gram_matrix(features)
        loss.backward()
    finally:
        torch.cuda.set_sync_debug_mode(previous)
    assert autocast_gram.dtype == loss.dtype == torch.float32
    torch.testing.assert_close(autocast_gram, gram_matrix(features), rtol=1e-3, atol=1e-5)


@given(feature_maps(channels=(2, 8), height=(2, 6), width=(2, 6)))
def test_channels_last_input_gives_the_same_gram_and_gradient(features: torch.Tensor) -> None:
    dense = features.clone().requires_grad_(True)
    last = features.contiguous(memory_format=torch.channels_last).requires_grad_(True)
    weights = torch.linspace(-1, 1, features.shape[1] ** 2, dtype=features.dtype)
    for x in (dense, last):
        (gram_matrix(x).flatten(1) * weights).sum().backward()
    assert dense.grad is not None
    assert last.grad is not None
    torch.testing.assert_close(gram_matrix(last), gram_matrix(dense))
    torch.testing.assert_close(last.grad, dense.grad)


@given(
    feature_maps(channels=(2, 8), height=(2, 6), width=(2, 6)),
    st.sampled_from(["mean", "sum", "none"]),
)
def test_channels_last_input_gives_the_same_content_loss_and_gradient(
    features: torch.Tensor, reduction: Reduction
) -> None:
    target = torch.roll(features, 1, dims=1)
    dense = features.clone().requires_grad_(True)
    last = features.contiguous(memory_format=torch.channels_last).requires_grad_(True)
    losses = []
    for x in (dense, last):
        value = content_loss(
            x, target.contiguous(memory_format=torch.channels_last), reduction=reduction
        )
        value.sum().backward()
        losses.append(value.detach())
    assert dense.grad is not None
    assert last.grad is not None
    torch.testing.assert_close(losses[1], losses[0])
    torch.testing.assert_close(last.grad, dense.grad)
    # The gradient keeps the input's layout, so the convolution backward that consumes it stays
    # on its channels-last kernel.
    assert last.grad.is_contiguous(memory_format=torch.channels_last)
