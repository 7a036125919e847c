"""The objective on its own: targets from tensors, the balanced loss, use as a perceptual loss."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from tiny import random_image, tiny_extractor
from torch import nn

from neuralstyle import LayerMap, Objective, StyleTransfer, TransferConfig
from neuralstyle.errors import ConfigError, ShapeError

LAYERS = LayerMap(content={"relu2_1": 1.0}, style={"relu1_1": 1.0, "relu2_1": 1.0, "relu3_1": 1.0})
CONFIG = TransferConfig(steps=20, device="cpu", style_weight=10.0, tv_weight=1e-3)
CONTENT = random_image(24, 24, seed=0, batch=2)
STYLE = random_image(32, 32, seed=1)


def objective(config: TransferConfig = CONFIG) -> Objective:
    return Objective(LAYERS, config=config, extractor=tiny_extractor())


def test_a_run_minimizes_its_objective_exactly() -> None:
    """StyleTransfer's loss is its objective's, term by term, for targets built either way (the
    style at its own size: a run would otherwise resize it to the content's)."""
    config = replace(CONFIG, style_scale=None)
    transfer = StyleTransfer(LAYERS, config=config, extractor=tiny_extractor())
    from_run = transfer.targets(CONTENT, STYLE)
    from_tensors = transfer.objective.targets(CONTENT, [STYLE])
    image = random_image(24, 24, seed=2, batch=2)
    by_run = transfer.loss(image, from_run)
    by_objective = transfer.objective(image, from_tensors)
    assert set(by_run.terms) == {"content/relu2_1", "style/relu1_1", "style/relu2_1",
                                 "style/relu3_1", "tv"}  # fmt: skip
    for name, value in by_run.terms.items():
        torch.testing.assert_close(by_objective.terms[name], value)
    torch.testing.assert_close(by_objective.per_item.sum(), by_objective.total)


def test_training_a_feed_forward_stylizer_lowers_the_runs_loss() -> None:
    """The objective as a perceptual loss: a small network trained with it makes pictures that
    StyleTransfer's own loss scores lower than before training."""
    transfer = StyleTransfer(LAYERS, config=CONFIG, extractor=tiny_extractor())
    targets = transfer.targets(CONTENT, STYLE)
    generator = torch.Generator().manual_seed(0)
    stylizer = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 3, 3, padding=1)
    )
    with torch.no_grad():
        for parameter in stylizer.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.1)
    optimizer = torch.optim.Adam(stylizer.parameters(), lr=1e-2)
    with torch.no_grad():
        before = float(transfer.loss(torch.sigmoid(stylizer(CONTENT)), targets).total)
    for _ in range(30):
        optimizer.zero_grad(set_to_none=True)
        transfer.objective(torch.sigmoid(stylizer(CONTENT)), targets).total.backward()
        optimizer.step()
    with torch.no_grad():
        after = float(transfer.loss(torch.sigmoid(stylizer(CONTENT)), targets).total)
    assert after < 0.8 * before


def test_the_network_gets_no_gradient() -> None:
    loss = objective()
    targets = loss.targets(CONTENT, STYLE)
    image = CONTENT.clone().requires_grad_(True)
    loss(image, targets).total.backward()
    assert image.grad is not None
    assert all(p.grad is None for p in loss.extractor.parameters())


def test_style_masks_and_blends_take_tensors() -> None:
    loss = objective(replace(CONFIG, style_blend=(1.0, 3.0)))
    blended = loss.targets(CONTENT, [STYLE, random_image(32, 32, seed=5)])
    assert len(blended.styles) == 1
    masked = objective().targets(
        CONTENT, [STYLE, STYLE], style_masks=[torch.ones(1, 1, 12, 12), torch.zeros(1, 1, 12, 12)]
    )
    assert [float(region.share) for region in masked.styles] == [1.0, 0.0]


def test_bad_inputs_are_refused_with_what_to_pass() -> None:
    loss = objective()
    with pytest.raises(ShapeError, match="content"):
        loss.targets(CONTENT[0], STYLE)
    with pytest.raises(ConfigError, match="one mask per style"):
        loss.targets(CONTENT, [STYLE], style_masks=[torch.ones(1, 1, 4, 4)] * 2)
    targets = loss.targets(CONTENT, STYLE)
    with pytest.raises(ShapeError, match="content batch's shape"):
        loss(CONTENT[:1], targets)
    with pytest.raises(ConfigError, match="no term left"):
        objective(replace(CONFIG, content_weight=0.0, style_weight=0.0, tv_weight=0.0))
