"""Region masks: the masked loss math, loading masks, and what they do to a run."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tiny import random_image, tiny_extractor

from neuralstyle import (
    LayerMap,
    StyleTransfer,
    TransferConfig,
    gaussian_statistics,
    gram_matrix,
    load_mask,
    style_loss,
    wasserstein_style_loss,
)
from neuralstyle.errors import ConfigError, DTypeError, ImageError, ShapeError
from neuralstyle.masks import mask_at

FEATURES = torch.randn(2, 5, 6, 7, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


def left_half(height: int = 6, width: int = 7) -> torch.Tensor:
    mask = torch.zeros(1, 1, height, width, dtype=torch.float64)
    mask[..., : width // 2] = 1
    return mask


# -- the loss math ----------------------------------------------------------------------------


@pytest.mark.parametrize("normalize", ["chw", "hw", "none"])
def test_a_mask_of_ones_gives_the_plain_gram(normalize: str) -> None:
    ones = torch.ones(1, 1, 6, 7, dtype=torch.float64)
    masked = gram_matrix(FEATURES, normalize=normalize, mask=ones)  # type: ignore[arg-type]
    torch.testing.assert_close(masked, gram_matrix(FEATURES, normalize=normalize))  # type: ignore[arg-type]


def test_a_binary_mask_gives_the_gram_of_the_pixels_inside() -> None:
    inside = FEATURES[..., :3]  # left_half keeps columns 0..2
    expected = gram_matrix(inside.contiguous(), normalize="chw")
    torch.testing.assert_close(gram_matrix(FEATURES, mask=left_half()), expected)


def test_the_normalized_gram_ignores_the_masks_overall_scale() -> None:
    soft = torch.rand(2, 1, 6, 7, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    torch.testing.assert_close(
        gram_matrix(FEATURES, normalize="hw", mask=soft),
        gram_matrix(FEATURES, normalize="hw", mask=3 * soft),
    )


def test_gaussian_statistics_under_a_binary_mask_fit_the_pixels_inside() -> None:
    inside = gaussian_statistics(FEATURES[..., :3].contiguous())
    masked = gaussian_statistics(FEATURES, mask=left_half())
    torch.testing.assert_close(masked.mean, inside.mean)
    torch.testing.assert_close(masked.covariance, inside.covariance)


@pytest.mark.parametrize("kind", ["gram", "wasserstein"])
def test_style_gradients_vanish_outside_a_binary_mask(kind: str) -> None:
    features = FEATURES.clone().requires_grad_(True)
    mask = left_half()
    if kind == "gram":
        loss = style_loss(features, gram_matrix(FEATURES.flip(-1)), mask=mask)
    else:
        loss = wasserstein_style_loss(features, gaussian_statistics(FEATURES.flip(-1)), mask=mask)
    loss.backward()
    assert features.grad is not None
    assert torch.count_nonzero(features.grad[..., 3:]) == 0
    assert torch.count_nonzero(features.grad[..., :3]) > 0


def test_an_all_zero_mask_gives_a_zero_gram_not_nan() -> None:
    gram = gram_matrix(FEATURES, mask=torch.zeros(1, 1, 6, 7, dtype=torch.float64))
    assert torch.equal(gram, torch.zeros_like(gram))


@pytest.mark.parametrize(
    ("mask", "error", "fragment"),
    [
        (torch.ones(1, 2, 6, 7), ShapeError, "(1, 1, H, W) or (B, 1, H, W)"),
        (torch.ones(3, 1, 6, 7), ShapeError, "B=2"),
        (torch.ones(1, 1, 5, 7), ShapeError, "spatial size (6, 7)"),
        (torch.ones(6, 7), ShapeError, "4-d"),
        (torch.ones(1, 1, 6, 7, dtype=torch.int64), DTypeError, "floating-point"),
    ],
)
def test_a_mask_that_does_not_fit_is_refused(
    mask: torch.Tensor, error: type[Exception], fragment: str
) -> None:
    with pytest.raises(error, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        gram_matrix(FEATURES, mask=mask)


def test_mask_at_averages_areas_down_to_a_layers_size() -> None:
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., :4] = 1
    small = mask_at(mask, (2, 2))
    assert torch.equal(small, torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]]))


# -- loading ----------------------------------------------------------------------------------


def test_load_mask_reads_files_pil_images_and_uint8_arrays(tmp_path: Path) -> None:
    pixels = np.zeros((20, 30), dtype=np.uint8)
    pixels[:, :15] = 255
    path = tmp_path / "mask.png"
    Image.fromarray(pixels).save(path)
    for source in (path, Image.fromarray(pixels), pixels):
        mask = load_mask(source, size=(10, 15))
        assert mask.shape == (1, 1, 10, 15)
        assert float(mask[..., :6].min()) == 1.0
        assert float(mask[..., 9:].max()) == 0.0


def test_load_mask_refuses_another_aspect_ratio() -> None:
    with pytest.raises(ShapeError, match="aspect ratio"):
        load_mask(torch.ones(10, 10), size=(10, 20), name="style mask 1")


def test_load_mask_refuses_values_outside_the_unit_range_and_names_the_mask() -> None:
    with pytest.raises(ImageError, match="content mask"):
        load_mask(torch.full((4, 4), 2.0), size=(4, 4), name="content mask")


# -- in a run ---------------------------------------------------------------------------------

LAYERS = LayerMap(content={"relu2_1": 1.0}, style={"relu1_1": 1.0, "relu2_1": 1.0, "relu3_1": 1.0})
CONFIG = TransferConfig(steps=15, device="cpu", learning_rate=0.05, style_weight=10.0)
CONTENT = random_image(24, 32, seed=1)
STYLE_A = random_image(20, 28, seed=2)
STYLE_B = 1 - random_image(20, 28, seed=3)


def make(config: TransferConfig = CONFIG) -> StyleTransfer:
    return StyleTransfer(LAYERS, config=config, extractor=tiny_extractor())


def test_a_content_mask_keeps_the_content_outside_it_exactly() -> None:
    mask = torch.zeros(24, 32)
    mask[:, :16] = 1
    result = make().run(CONTENT, STYLE_A, content_mask=mask)
    assert torch.equal(result.image[..., 16:], CONTENT[..., 16:])
    assert (result.image[..., :16] - CONTENT[..., :16]).abs().mean() > 0.01


def test_a_style_mask_of_ones_is_the_unmasked_run() -> None:
    ones = torch.ones(24, 32)
    plain = make().run(CONTENT, STYLE_A)
    masked = make().run(CONTENT, [STYLE_A], style_masks=[ones])
    torch.testing.assert_close(masked.image, plain.image, rtol=0, atol=1e-5)


def test_two_style_masks_pull_each_region_towards_its_own_style() -> None:
    left = torch.zeros(24, 32)
    left[:, :16] = 1
    transfer = make(replace(CONFIG, steps=40))
    result = transfer.run(CONTENT, [STYLE_A, STYLE_B], style_masks=[left, 1 - left])
    # STYLE_B is the negative of STYLE_A: its region ends up brighter on average where A's is
    # dark, so the two halves move in opposite directions from the same content.
    moved = result.image - CONTENT
    assert float(moved[..., :16].mean()) < float(moved[..., 16:].mean())


def test_style_masks_need_one_mask_per_style_and_no_blend_weights() -> None:
    mask = torch.ones(24, 32)
    with pytest.raises(ConfigError, match="one mask per style image"):
        make().targets(CONTENT, [STYLE_A, STYLE_B], style_masks=[mask])
    blended = make(replace(CONFIG, style_blend=(1.0, 1.0)))
    with pytest.raises(ConfigError, match="one or the other"):
        blended.targets(CONTENT, [STYLE_A, STYLE_B], style_masks=[mask, mask])


def test_a_mask_of_the_wrong_shape_is_refused_before_any_work() -> None:
    with pytest.raises(ShapeError, match="style mask 1"):
        make().run(CONTENT, STYLE_A, style_masks=[torch.ones(24, 24)])
