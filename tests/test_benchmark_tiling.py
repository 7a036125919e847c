"""The tiling benchmark runs end to end at a tiny size, and its seam measure finds a seam.

Not a timing test: what is checked is that both stages run in their own processes, the JSON has
the keys the issue names with sensible values, the pictures are written, and the seam ratio is
about 1 where there is no seam and far above 1 where the tile borders carry an edge.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import torch
from PIL import Image
from tiny import benchmark_modules

from neuralstyle.tiling import TilePlan


@pytest.fixture(scope="module")
def tiling() -> Iterator[ModuleType]:
    """``benchmarks/tiling.py``, imported the way ``python benchmarks/tiling.py`` finds it."""
    with benchmark_modules("tiling") as modules:
        yield modules["tiling"]


PLAN = TilePlan(128, 16, 8, {"relu1_1": 1})  # 3 x 3 tiles over 200 x 200


def test_the_seam_ratio_is_about_one_without_a_seam(tiling: ModuleType) -> None:
    generator = torch.Generator().manual_seed(0)
    noise = torch.rand(1, 3, 200, 200, generator=generator)
    assert tiling.seam_ratio(noise, PLAN)["seam_ratio"] == pytest.approx(1.0, abs=0.05)


def test_the_seam_ratio_finds_edges_along_the_tile_borders(tiling: ModuleType) -> None:
    generator = torch.Generator().manual_seed(0)
    image = torch.rand(1, 3, 200, 200, generator=generator) * 0.1
    # A checkerboard of brightness over the first pass's cores: a step across each of its borders.
    for index, tile in enumerate(PLAN.layout((200, 200), 0)):
        top, bottom, left, right = tile.core
        image[..., top:bottom, left:right] += 0.8 * (index % 2)
    ratios = tiling.seam_ratio(image, PLAN)
    assert ratios["seam_ratio_pass_0"] > 3
    assert ratios["seam_ratio_pass_0"] > ratios["seam_ratio_pass_1"]


def test_a_tiny_run_writes_the_record_and_the_pictures(tiling: ModuleType, tmp_path: Path) -> None:
    output = tmp_path / "tiling.json"
    argv = [
        "--sizes", "96", "--tile", "64", "--start-picture", "32", "--steps-start", "1",
        "--from-size", "64", "--steps", "2", "--weights", "random", "--threads", "1",
        "--pictures", str(tmp_path / "pictures"), "--output", str(output),
    ]  # fmt: skip
    results = tiling.main(argv)
    assert json.loads(output.read_text()) == results
    for key in ("width", "height", "peak_memory_gib", "seconds", "seam_ratio"):
        assert results[key] > 0, key
    assert (results["width"], results["height"]) == (96, 96)
    assert results["runs"][0]["estimated_gib"] > 0
    assert results["runs"][0]["steps_done"] > 0
    with Image.open(tmp_path / "pictures" / "tiled-96x96.jpg") as picture:
        assert picture.size == (96, 96)
