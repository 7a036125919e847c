"""Devices, precision and compilation: GPU checks run only where CUDA exists; compile is slow."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from tiny import random_image, tiny_extractor

from neuralstyle import PRESETS, LayerMap, StyleTransfer, TransferConfig, _precision

LAYERS = LayerMap(content={"relu2_1": 1.0}, style={"relu1_1": 1.0, "relu3_1": 1.0})
CONTENT = random_image(32, 32, seed=1)
STYLE = random_image(32, 32, seed=2)


@pytest.mark.parametrize(
    ("flags", "device", "expected"),
    [
        ({"avx512f", "avx512_bf16"}, "cpu", "bfloat16"),
        ({"amx_bf16"}, "cpu", "bfloat16"),
        ({"avx512f", "avx2"}, "cpu", "float32"),
        (set(), "cpu", "float32"),
        ({"avx512_bf16"}, "cuda", "float32"),
        ({"avx512_bf16"}, "meta", "float32"),
    ],
)
def test_auto_precision_is_bfloat16_only_where_the_cpu_has_it(
    monkeypatch: pytest.MonkeyPatch, flags: set[str], device: str, expected: str
) -> None:
    monkeypatch.setattr(_precision, "_cpu_flags", lambda: frozenset(flags))
    assert _precision.resolve_precision("auto", torch.device(device)) == expected
    config = TransferConfig(precision="auto")
    dtype = config.autocast_dtype(torch.device(device))
    assert dtype == (torch.bfloat16 if expected == "bfloat16" else None)


@pytest.mark.parametrize("precision", ["float32", "bfloat16", "float16"])
def test_a_chosen_precision_is_kept_whatever_the_cpu(
    monkeypatch: pytest.MonkeyPatch, precision: str
) -> None:
    monkeypatch.setattr(_precision, "_cpu_flags", lambda: frozenset({"avx512_bf16"}))
    assert _precision.resolve_precision(precision, torch.device("cpu")) == precision


def test_the_presets_take_the_fastest_precision_except_the_seed_reproduction() -> None:
    assert {name: p.config.precision for name, p in PRESETS.items()} == {
        "default": "auto",
        "neural-style": "auto",
        "gatys": "auto",
        "seed": "float32",
    }


def test_an_auto_precision_run_is_finite_on_this_machine() -> None:
    config = TransferConfig(steps=3, precision="auto")
    result = StyleTransfer(LAYERS, config=config, extractor=tiny_extractor()).run(CONTENT, STYLE)
    assert torch.isfinite(result.image).all()
    assert result.image.dtype == torch.float32


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
