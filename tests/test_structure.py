"""The content weight that follows the photo's local detail (``content_structure``)."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from tiny import random_image, tiny_extractor

from neuralstyle import LayerMap, Objective, StyleTransfer, TransferConfig
from neuralstyle.errors import ConfigError
from neuralstyle.structure import content_weight_maps, structure_map

LAYERS = LayerMap(content={"relu2_1": 1.0}, style={"relu1_1": 1.0})
CONFIG = TransferConfig(steps=4, device="cpu", content_structure=8.0)


def square_on_grey(size: int = 64) -> torch.Tensor:
    """A flat grey picture with a white square in its top-left quarter."""
    image = torch.full((1, 3, size, size), 0.5)
    image[..., 4 : size // 3, 4 : size // 3] = 1.0
    return image


@settings(max_examples=25, deadline=None)
@given(
    height=st.integers(1, 48),
    width=st.integers(1, 48),
    batch=st.integers(1, 3),
    seed=st.integers(0, 2**16),
)
def test_the_structure_map_averages_one_per_item_and_is_never_negative(
    height: int, width: int, batch: int, seed: int
) -> None:
    found = structure_map(random_image(height, width, seed=seed, batch=batch))
    assert found.shape == (batch, 1, height, width)
    assert bool((found >= 0).all())
    torch.testing.assert_close(found.mean(dim=(1, 2, 3)), torch.ones(batch))


def test_a_flat_picture_has_the_same_structure_everywhere() -> None:
    assert torch.equal(structure_map(torch.full((2, 3, 20, 30), 0.3)), torch.ones(2, 1, 20, 30))


def test_detail_weighs_more_than_flat_ground() -> None:
    found = structure_map(square_on_grey())
    near_the_square_edge, far_corner = found[0, 0, 4, 12], found[0, 0, 60, 60]
    assert float(near_the_square_edge) > 5 * float(far_corner)


def test_the_map_means_the_same_at_every_scale() -> None:
    """The blur is a fixed fraction of the long side: half the picture gives the map halved."""
    large = structure_map(square_on_grey(128))
    small = structure_map(
        torch.nn.functional.interpolate(square_on_grey(128), size=(64, 64), mode="area")
    )
    halved = torch.nn.functional.interpolate(large, size=(64, 64), mode="area")
    assert float((halved - small).abs().mean()) < 0.1


@pytest.mark.parametrize("strength", [0.0, 1.0, 8.0])
def test_layer_maps_keep_a_mean_of_one_at_every_layer_size(strength: float) -> None:
    maps = content_weight_maps(square_on_grey(), {"a": (64, 64), "b": (16, 16)}, strength)
    assert maps["a"].shape == (1, 1, 64, 64)
    assert maps["b"].shape == (1, 1, 16, 16)
    for found in maps.values():
        torch.testing.assert_close(found.mean(), torch.tensor(1.0))
    if strength == 0:
        assert torch.equal(maps["a"], torch.ones(1, 1, 64, 64))


def test_an_error_costs_more_on_detail_than_on_flat_ground() -> None:
    """The same change of the picture, in a detailed region or on flat ground: with
    content_structure the first costs more than the second, and more than it costs with every
    position weighed alike (the second less)."""
    content = square_on_grey()
    content = torch.cat([content, content.flip(-1)], dim=-1)  # squares top-left and top-right
    content[..., 32:, 96:] = 0.5  # ...and the right square gone: flat on the right
    style = random_image(32, 32, seed=1)
    change = torch.zeros_like(content)
    on_detail, on_flat = change.clone(), change.clone()
    on_detail[..., 8:16, 8:16] = 0.2
    on_flat[..., 48:56, 100:108] = 0.2

    def cost(strength: float, delta: torch.Tensor) -> float:
        config = replace(CONFIG, content_structure=strength)
        objective = Objective(LAYERS, config=config, extractor=tiny_extractor())
        targets = objective.targets(content, style)
        return float(objective(content + delta, targets).terms["content/relu2_1"])

    assert cost(8.0, on_detail) > 2 * cost(8.0, on_flat)
    assert cost(8.0, on_detail) > cost(0.0, on_detail)
    assert cost(8.0, on_flat) < cost(0.0, on_flat)


def test_tiles_cut_the_whole_pictures_weights() -> None:
    run = StyleTransfer(LAYERS, config=replace(CONFIG, tile_size=32), extractor=tiny_extractor())
    content, style = random_image(72, 56, seed=1), random_image(40, 40, seed=2)
    targets = run.targets(content, style)
    assert run.tile_plan is not None
    assert targets.content_weights is not None
    tile = run.tile_plan.layout((72, 56), 1)[4]
    cropped = run.tile_plan.crop_targets(targets, tile)
    assert cropped.content_weights is not None
    top, bottom, left, right = tile.crop
    stride = run.tile_plan.strides["relu2_1"]
    whole = targets.content_weights["relu2_1"]
    expected = whole[..., top // stride : bottom // stride, left // stride : right // stride]
    assert torch.equal(cropped.content_weights["relu2_1"], expected)
    assert cropped.content_weights["relu2_1"].shape[-2:] == cropped.content["relu2_1"].shape[-2:]


def test_a_run_with_content_structure_completes_and_zero_switches_it_off() -> None:
    content, style = random_image(24, 24, seed=1), random_image(24, 24, seed=2)
    run = StyleTransfer(LAYERS, config=CONFIG, extractor=tiny_extractor())
    assert run.targets(content, style).content_weights is not None
    assert bool(torch.isfinite(run.run(content, style).image).all())
    off = StyleTransfer(
        LAYERS, config=replace(CONFIG, content_structure=0.0), extractor=tiny_extractor()
    )
    assert off.targets(content, style).content_weights is None


@pytest.mark.parametrize("value", [-1.0, float("nan"), float("inf")])
def test_a_negative_or_non_finite_strength_is_refused(value: float) -> None:
    with pytest.raises(ConfigError, match="content_structure must be a finite number >= 0"):
        TransferConfig(content_structure=value)
