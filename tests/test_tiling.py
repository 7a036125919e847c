"""Tiling: layouts cover the image, crops line up with the whole image, and a tiled run keeps its
promises (only cores move, global targets, content masks, divergence, determinism)."""

from __future__ import annotations

import io
from dataclasses import replace

import pytest
import torch
from tiny import random_image, tiny_extractor
from torch import nn

from neuralstyle import (
    ConfigError,
    FeatureExtractor,
    LayerMap,
    ShapeError,
    StyleTransfer,
    TransferConfig,
)
from neuralstyle.callbacks import Progress
from neuralstyle.lbfgs import _SCALE_KEY
from neuralstyle.tiling import PASSES, Tile, TilePlan

LAYERS = LayerMap(content={"relu2_1": 1.0}, style={"relu1_1": 1.0, "relu2_1": 1.0, "relu3_1": 1.0})


def transfer(tile_size: int | None = 32, **options: object) -> StyleTransfer:
    config = TransferConfig(steps=4, device="cpu", style_weight=10.0, tile_size=tile_size)
    return StyleTransfer(LAYERS, config=replace(config, **options), extractor=tiny_extractor())


def plan(tile: int = 64, margin: int = 8, align: int = 4) -> TilePlan:
    return TilePlan(tile, margin, align, {"relu1_1": 1, "relu2_1": 2, "relu3_1": align})


def covered(tiles: list[Tile], size: tuple[int, int]) -> torch.Tensor:
    """How many cores of ``tiles`` cover each pixel."""
    count = torch.zeros(size, dtype=torch.int64)
    for tile in tiles:
        top, bottom, left, right = tile.core
        count[top:bottom, left:right] += 1
    return count


# -- layout -------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(200, 200), (130, 67), (64, 300), (257, 129)])
@pytest.mark.parametrize("pass_index", range(PASSES))
def test_the_cores_of_a_pass_cover_the_image_exactly_once(
    size: tuple[int, int], pass_index: int
) -> None:
    tiles = plan().layout(size, pass_index)
    assert torch.equal(covered(tiles, size), torch.ones(size, dtype=torch.int64))


@pytest.mark.parametrize("size", [(200, 200), (130, 67), (257, 129)])
def test_crops_hold_their_core_stay_in_the_tile_and_start_on_the_stride(
    size: tuple[int, int],
) -> None:
    layout = plan()
    for tile in layout.visits(size):
        top, bottom, left, right = tile.crop
        core_top, core_bottom, core_left, core_right = tile.core
        assert top <= core_top < core_bottom <= bottom
        assert left <= core_left < core_right <= right
        assert bottom - top <= layout.tile
        assert right - left <= layout.tile
        assert top % layout.align == 0
        assert left % layout.align == 0
        assert top >= 0
        assert bottom <= size[0]
        assert left >= 0
        assert right <= size[1]


def test_the_second_pass_moves_every_inner_cut_of_the_first() -> None:
    layout = plan()
    first, second = (layout.layout((200, 200), index) for index in range(2))
    cuts = [{tile.core[0] for tile in tiles} - {0} for tiles in (first, second)]
    assert cuts[0]
    assert cuts[1]
    assert not cuts[0] & cuts[1]


def test_an_image_within_one_tile_is_one_tile() -> None:
    layout = plan()
    assert not layout.needed((64, 40))
    assert layout.layout((64, 40), 1) == [Tile((0, 64, 0, 40), (0, 64, 0, 40), 1)]


def test_the_probe_finds_the_strides_and_refuses_a_tile_too_small() -> None:
    run = transfer(tile_size=32)
    assert run.tile_plan is not None
    strides = run.tile_plan.strides
    assert (strides["relu1_1"], strides["relu2_1"], strides["relu3_1"]) == (1, 2, 4)
    assert run.tile_plan.align == 4
    with pytest.raises(ConfigError, match="tile_size 8 is too small"):
        _ = transfer(tile_size=8).tile_plan


# -- targets ------------------------------------------------------------------------------------


def test_content_maps_from_tiles_match_the_whole_image_given_enough_context() -> None:
    """With 8 px of context a core's features see what the whole image's do (the tiny network's
    receptive field reaches 7 px), so the assembled maps equal one whole forward pass."""
    run = transfer(tile_size=32)
    assert run.tile_plan is not None
    wide = TilePlan(32, 8, 4, run.tile_plan.strides)
    image = random_image(72, 56, seed=3)
    with torch.no_grad():
        whole = run.features(image)
    assembled = wide.content_maps(run.features, image, ["relu1_1", "relu3_1"])
    for name in ("relu1_1", "relu3_1"):
        assert assembled[name].shape == whole[name].shape
        torch.testing.assert_close(assembled[name], whole[name], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("style_loss", "normalize"),
    [("gram", "chw"), ("gram", "hw"), ("gram", "none"), ("wasserstein", "chw")],
)
def test_a_style_image_larger_than_a_tile_gets_its_whole_image_targets(
    style_loss: str, normalize: str
) -> None:
    """Grams and Gaussian fits pooled over tile cores equal those of one whole forward pass
    (a margin of 8 px covers the tiny network's receptive field)."""
    run = transfer(tile_size=32, style_loss=style_loss, gram_normalize=normalize)
    assert run.tile_plan is not None
    whole_run = transfer(tile_size=None, style_loss=style_loss, gram_normalize=normalize)
    style = random_image(80, 64, seed=4)
    # Enough context: the objective caches its plan, so this one is used.
    run.objective.__dict__["tile_plan"] = TilePlan(32, 8, 4, run.tile_plan.strides)
    pooled = run.objective.targets(style, style).styles[0].targets
    whole = whole_run.objective.targets(style, style).styles[0].targets
    for name in LAYERS.style:
        got, want = pooled[name], whole[name]
        if isinstance(want, torch.Tensor):
            assert isinstance(got, torch.Tensor)
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)
        else:
            assert not isinstance(got, torch.Tensor)
            torch.testing.assert_close(got.mean, want.mean, rtol=1e-4, atol=1e-6)
            torch.testing.assert_close(got.covariance, want.covariance, rtol=1e-4, atol=1e-6)


def test_crop_targets_count_the_core_and_keep_global_style_targets() -> None:
    run = transfer(tile_size=32)
    content, style = random_image(72, 56, seed=1), random_image(40, 40, seed=2)
    targets = run.targets(content, style)
    assert run.tile_plan is not None
    tile = run.tile_plan.layout((72, 56), 1)[4]
    cropped = run.tile_plan.crop_targets(targets, tile)
    top, bottom, left, right = tile.crop
    assert torch.equal(cropped.content_image, content[..., top:bottom, left:right])
    assert cropped.counted is not None
    core_pixels = (tile.core[1] - tile.core[0]) * (tile.core[3] - tile.core[2])
    assert float(cropped.counted["relu1_1"].sum()) == core_pixels
    region = cropped.styles[0]
    assert region.targets is targets.styles[0].targets  # the whole style image's Grams
    assert region.masks is not None
    assert torch.equal(region.masks["relu2_1"], cropped.counted["relu2_1"])


def test_a_style_region_gets_its_share_of_the_core() -> None:
    run = transfer(tile_size=32)
    content = random_image(72, 56, seed=1)
    left_half = torch.zeros(1, 1, 72, 56)
    left_half[..., :28] = 1
    targets = run.targets(
        content,
        [random_image(40, 40, seed=2), random_image(40, 40, seed=5)],
        style_masks=[left_half, 1 - left_half],
    )
    assert run.tile_plan is not None
    for tile in run.tile_plan.visits((72, 56)):
        shares = [
            float(region.share) for region in run.tile_plan.crop_targets(targets, tile).styles
        ]
        top, bottom, left, right = tile.core
        expected = float(left_half[..., top:bottom, left:right].mean())
        assert shares[0] == pytest.approx(expected)
        assert sum(shares) == pytest.approx(1.0)


# -- runs ---------------------------------------------------------------------------------------


def test_a_tiled_run_visits_every_tile_and_counts_its_steps() -> None:
    run = transfer(tile_size=32).start(random_image(72, 56, seed=1), random_image(40, 40, seed=2))
    states = list(run)
    assert run.tiled is not None
    assert len(states) == run.total_steps == len(run.tiled.tiles) * run.tiled.steps_per_tile
    assert [state.tile for state in states[:: run.tiled.steps_per_tile]] == list(
        range(1, len(run.tiled.tiles) + 1)
    )
    assert all(state.tiles == len(run.tiled.tiles) for state in states)
    assert states[-1].image.shape == (1, 3, 72, 56)
    assert torch.isfinite(run.best_per_item).all()


def test_a_tile_moves_only_its_core_and_the_loss_falls() -> None:
    run = transfer(tile_size=32, steps=8).start(
        random_image(72, 56, seed=1), random_image(40, 40, seed=2)
    )
    assert run.tiled is not None
    before = run.image.clone()
    tile = run.tiled.tiles[0]
    losses = [float(next(run).loss) for _ in range(run.tiled.steps_per_tile)]
    top, bottom, left, right = tile.core
    changed = (run.image != before).any(dim=1)[0]
    assert changed[top:bottom, left:right].any()
    changed[top:bottom, left:right] = False
    assert not changed.any()
    assert losses[-1] < losses[0]


def test_a_tiled_run_is_deterministic() -> None:
    images = []
    for _ in range(2):
        run = transfer(tile_size=32).run(random_image(72, 56, seed=1), random_image(40, 40, seed=2))
        images.append(run.image)
    assert torch.equal(images[0], images[1])


def test_a_tile_size_above_the_image_is_an_untiled_run() -> None:
    content, style = random_image(40, 32, seed=1), random_image(40, 40, seed=2)
    tiled = transfer(tile_size=64).run(content, style)
    plain = transfer(tile_size=None).run(content, style)
    assert torch.equal(tiled.image, plain.image)


def test_a_tiled_run_gets_closer_to_the_style_than_its_start() -> None:
    """The whole picture's loss (measured untiled) falls, so the tiles pull the same way."""
    ramp = torch.linspace(0, 1, 56).expand(1, 3, 72, 56)
    content, style = ramp.contiguous(), random_image(40, 40, seed=2)
    judge = transfer(tile_size=None)
    targets = judge.targets(content, style)
    result = transfer(tile_size=32, steps=10).run(content, style)
    assert float(judge.loss(result.image, targets).total) < float(
        judge.loss(content, targets).total
    )


def test_outside_the_content_mask_a_tiled_run_keeps_the_content() -> None:
    content = random_image(72, 56, seed=1)
    mask = torch.zeros(1, 1, 72, 56)
    mask[..., 20:50, 10:40] = 1
    result = transfer(tile_size=32).run(content, random_image(40, 40, seed=2), content_mask=mask)
    outside = (mask == 0).expand_as(content)
    assert torch.equal(result.image[outside], content[outside])
    assert not torch.equal(result.image[~outside], content[~outside])


def test_coarse_to_fine_tiles_only_the_scales_above_the_tile() -> None:
    run = transfer(tile_size=40, start_size=24, steps=2).start(
        random_image(72, 56, seed=1), random_image(40, 40, seed=2)
    )
    tiled_scales = set()
    for state in run:
        if state.tiles:
            tiled_scales.add(state.scale)
    big = [index + 1 for index, size in enumerate(run.sizes) if max(size) > 40]
    assert big
    assert tiled_scales == set(big)


def test_a_diverged_tile_is_not_written() -> None:
    run = transfer(tile_size=32, steps=2).start(
        random_image(72, 56, seed=1), random_image(40, 40, seed=2)
    )
    assert run.tiled is not None
    before = run.image.clone()
    with torch.no_grad():
        run.tiled.crop.fill_(float("nan"))
    for _ in range(run.tiled.steps_per_tile):
        next(run)
    assert torch.isfinite(run.image).all()
    assert torch.equal(run.image, before)


def test_progress_names_the_tile() -> None:
    stream = io.StringIO()
    run = transfer(tile_size=32, steps=2)
    run.run(
        random_image(72, 56, seed=1),
        random_image(40, 40, seed=2),
        callbacks=[Progress(every=1, stream=stream)],
    )
    assert "tile 1/" in stream.getvalue()


def test_a_network_whose_maps_shrink_unevenly_is_refused() -> None:
    """Unpadded convolutions lose a border, so a crop's map cannot line up with the whole's."""
    network = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AvgPool2d(2), nn.Conv2d(4, 4, 3))
    extractor = FeatureExtractor(
        ["relu1_1", "conv2_1"],
        backbone=network,
        layer_names={"relu1_1": "1", "conv2_1": "3"},
        convention="identity",
    )
    layers = LayerMap(content={"conv2_1": 1.0}, style={"relu1_1": 1.0})
    config = TransferConfig(steps=1, device="cpu", tile_size=32)
    with pytest.raises(ShapeError, match="tiling needs feature maps"):
        StyleTransfer(layers, config=config, extractor=extractor).run(
            random_image(72, 56), random_image(32, 32)
        )


def test_a_tiled_lbfgs_run_measures_each_tile_visits_own_scale() -> None:
    run = transfer(tile_size=32, optimizer="lbfgs", steps=6).start(
        random_image(72, 56, seed=1), random_image(40, 40, seed=2)
    )
    assert run.tiled is not None
    scales = set()
    for state in run:
        assert torch.isfinite(state.loss)
        (crop,) = run.tiled.optimizer.param_groups[0]["params"]
        scales.add(float(run.tiled.optimizer.state[crop][_SCALE_KEY]))
    assert len(scales) > 1  # each visit's fresh optimizer measured its crop
    assert torch.isfinite(run.image).all()
