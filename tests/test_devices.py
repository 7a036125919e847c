"""Devices, precision and compilation: GPU checks run only where CUDA exists; compile is slow."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from tiny import random_image, tiny_extractor

from neuralstyle import LayerMap, StyleTransfer, TransferConfig

LAYERS = LayerMap(content={"relu2_1": 1.0}, style={"relu1_1": 1.0, "relu3_1": 1.0})
CONTENT = random_image(32, 32, seed=1)
STYLE = random_image(32, 32, seed=2)


@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_an_adam_step_makes_no_host_sync_on_cuda(precision: str) -> None:
    config = TransferConfig(steps=5, device="cuda", precision=precision, channels_last=True)
    transfer = StyleTransfer(LAYERS, config=config, extractor=tiny_extractor())
    targets = transfer.targets(CONTENT, STYLE)
    image = transfer.initial_image(targets)
    optimizer = transfer.make_optimizer(image)
    transfer.step(image, targets, optimizer)  # first step: lazy CUDA initialisation may sync
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(3):
            loss = transfer.step(image, targets, optimizer)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert loss.terms["style/relu1_1"].dtype == torch.float32
    assert torch.isfinite(loss.total).item()


@pytest.mark.gpu
def test_the_iterator_makes_no_host_sync_on_cuda() -> None:
    config = TransferConfig(steps=6, device="cuda")
    run = StyleTransfer(LAYERS, config=config, extractor=tiny_extractor()).start(CONTENT, STYLE)
    next(run)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        states = list(run)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert len(states) == 5


@pytest.mark.slow
def test_compiled_extractor_matches_eager() -> None:
    config = TransferConfig(steps=3, device="cpu", learning_rate=0.05)
    eager = StyleTransfer(LAYERS, config=config, extractor=tiny_extractor()).run(CONTENT, STYLE)
    compiled = StyleTransfer(
        LAYERS, config=replace(config, compile=True), extractor=tiny_extractor()
    ).run(CONTENT, STYLE)
    torch.testing.assert_close(compiled.image, eager.image, rtol=1e-4, atol=1e-5)
