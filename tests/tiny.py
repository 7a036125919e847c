"""Tiny networks and images for end-to-end tests.

The loop's behaviour does not depend on the network's size, so tests use a three-block random CNN
on 16-32 px images and the whole suite stays fast on two cores.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from neuralstyle import FeatureExtractor

TINY_LAYERS = {
    "conv1_1": "0",
    "relu1_1": "1",
    "conv2_1": "3",
    "relu2_1": "4",
    "conv3_1": "6",
    "relu3_1": "7",
}


def tiny_network(seed: int = 0) -> nn.Sequential:
    """A small VGG-like stack with seeded weights (no global RNG involved)."""
    network = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.AvgPool2d(2),
        nn.Conv2d(8, 12, 3, padding=1),
        nn.ReLU(),
        nn.AvgPool2d(2),
        nn.Conv2d(12, 16, 3, padding=1),
        nn.ReLU(),
    )
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in network.parameters():
            fan_in = parameter[0].numel() if parameter.dim() > 1 else 1
            parameter.copy_(torch.randn(parameter.shape, generator=generator) / fan_in**0.5)
    return network


def tiny_extractor(layers: Sequence[str] = tuple(TINY_LAYERS), seed: int = 0) -> FeatureExtractor:
    """A FeatureExtractor over :func:`tiny_network` providing ``layers``."""
    return FeatureExtractor(
        list(layers),
        backbone=tiny_network(seed),
        layer_names=dict(TINY_LAYERS),
        convention="identity",
    )


def random_image(
    height: int = 24, width: int = 24, *, seed: int = 0, batch: int = 1
) -> torch.Tensor:
    """A seeded RGB image batch in [0, 1]."""
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, height, width, generator=generator)


def picture(path: Path, seed: int = 0, size: tuple[int, int] = (40, 32)) -> Path:
    """A random RGB image file of ``size`` (width, height); the suffix picks the format."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (hidden temporary files included) and its bytes."""
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run tiny convolutions on one thread: on shared cores a second OpenMP thread only waits."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@contextlib.contextmanager
def benchmark_modules(*names: str) -> Iterator[dict[str, ModuleType]]:
    """Import ``benchmarks/<name>.py`` modules the way ``python benchmarks/x.py`` finds them;
    afterwards drop every module imported from that folder, so no test sees another's copy."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(BENCHMARKS))
        try:
            yield {name: importlib.import_module(name) for name in names}
        finally:
            for name, module in list(sys.modules.items()):
                if str(getattr(module, "__file__", "") or "").startswith(str(BENCHMARKS)):
                    del sys.modules[name]
