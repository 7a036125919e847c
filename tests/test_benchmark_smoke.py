"""The speed benchmark runs end to end at a tiny size, and its instruments measure what they claim.

Not a timing test: the numbers at 32 px say nothing about speed. What is checked is that every
part runs, the JSON has the promised keys with finite values, and the things that must hold at
any size do hold (the two objectives agree, our step does less work than the seed's).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch
from tiny import benchmark_modules, one_thread
from torch import nn

from neuralstyle.examples import example_image
from neuralstyle.losses import gram_matrix

HEADLINES = ("step_ratio_vs_seed", "conv_efficiency", "time_to_seed_loss_ratio")


@pytest.fixture(scope="module")
def bench() -> Iterator[dict[str, ModuleType]]:
    """The benchmark modules, imported the way ``python benchmarks/speed.py`` finds them."""
    with benchmark_modules("_common", "seed_baseline", "speed") as modules:
        yield modules


@dataclass(frozen=True)
class Run:
    results: dict[str, Any]
    output: Path
    printed: str


@pytest.fixture(scope="module")
def run(bench: dict[str, ModuleType], tmp_path_factory: pytest.TempPathFactory) -> Run:
    """One tiny run of the whole benchmark: 32 px, 3 seed steps, one timed step."""
    output = tmp_path_factory.mktemp("bench") / "speed.json"
    # One thread: at this size threading buys nothing, and two OpenMP threads on cores shared with
    # the rest of the suite stall each other (several times slower).
    argv = [
        "--content", str(example_image("chelsea")),
        "--style", str(example_image("starry_night")),
        "--step-size", "32",
        "--quality-size", "32",
        "--seed-steps", "3",
        "--warmup", "1",
        "--blocks", "1",
        "--block-steps", "1",
        "--conv-channels", "32",
        "--conv-size", "16",
        "--conv-repeats", "2",
        "--time-limit", "1000",
        "--max-steps", "200",
        "--threads", "1",
        "--output", str(output),
    ]  # fmt: skip
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        results: dict[str, Any] = bench["speed"].main(argv)
    return Run(results, output, printed.getvalue())


def test_json_has_finite_headlines(run: Run) -> None:
    for key in HEADLINES:
        value = run.results[key]
        assert isinstance(value, float), key
        assert math.isfinite(value), key
        assert value > 0, key


def test_json_file_is_the_last_printed_line(run: Run) -> None:
    lines = run.printed.strip().splitlines()
    assert json.loads(lines[-1]) == run.results
    assert json.loads(run.output.read_text()) == run.results
    assert run.results["step"]["timed_steps"] == 1
    assert run.results["quality"]["seed"]["steps"] == 3


def test_table_comes_before_the_json(run: Run) -> None:
    table = run.printed.strip().splitlines()[:-1]
    assert any(line.startswith("seed step (32x32, Adam)") for line in table)
    assert any("ours, lbfgs" in line for line in table)
    assert any(line.startswith("time ratio ours / seed") for line in table)


def test_objectives_agree(run: Run) -> None:
    assert run.results["objective_rel_diff"] < 1e-4


def test_our_step_does_less_work_than_the_seeds(run: Run) -> None:
    step = run.results["step"]
    # Frozen, truncated network and targets encoded once: well under half the seed's FLOPs.
    assert 0 < step["our_flops"] < step["seed_flops"] / 2


def test_both_optimizers_reach_the_seed_loss(run: Run) -> None:
    quality = run.results["quality"]
    goal = quality["seed"]["final_loss"]
    assert set(quality["ours"]) == {"adam", "lbfgs"}
    for name, reach in quality["ours"].items():
        assert reach["reached"], name
        assert reach["best_loss"] <= goal, name
        assert reach["evaluations"] >= reach["steps"] >= 1, name


def test_seed_gram_is_the_library_chw_gram(bench: dict[str, ModuleType]) -> None:
    features = torch.randn(1, 5, 4, 3, generator=torch.Generator().manual_seed(0))
    seed_gram = bench["seed_baseline"].gram_matrix(features)
    torch.testing.assert_close(seed_gram, gram_matrix(features, normalize="chw")[0])


def test_seed_normalization_round_trips(bench: dict[str, ModuleType]) -> None:
    seed = bench["seed_baseline"]
    pixels = torch.rand(1, 3, 4, 4, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(seed.denormalize(seed.normalize(pixels)), pixels)
    expected = (0.5 - 0.485) / 0.229
    normalized = seed.normalize(torch.full((1, 3, 1, 1), 0.5))
    assert normalized[0, 0, 0, 0].item() == pytest.approx(expected)


def test_count_flops_counts_a_matmul(bench: dict[str, ModuleType]) -> None:
    left, right = torch.ones(2, 3), torch.ones(3, 4)
    assert bench["_common"].count_flops(lambda: left @ right) == 2 * 2 * 3 * 4


def test_conv_throughput_flops_are_those_of_a_3x3_conv(bench: dict[str, ModuleType]) -> None:
    measured = bench["_common"].measure_conv_throughput(
        torch.device("cpu"), channels=4, size=5, warmup=0, repeats=1
    )
    assert measured.flops == 2 * 4 * 4 * 9 * 5 * 5
    assert measured.seconds > 0
    assert "4->4" in measured.description


@pytest.fixture(scope="module")
def seed_net(bench: dict[str, ModuleType]) -> tuple[nn.Sequential, bool]:
    """The seed's network, and whether building it left the global RNG state alone."""
    before = torch.random.get_rng_state()
    model = bench["seed_baseline"].seed_model(0, torch.device("cpu"))
    return model, torch.equal(torch.random.get_rng_state(), before)


def test_seeded_weights_leave_the_global_rng_alone(seed_net: tuple[nn.Sequential, bool]) -> None:
    model, untouched = seed_net
    assert untouched
    assert len(model) == 37


def test_seed_collects_relu_outputs(
    bench: dict[str, ModuleType], seed_net: tuple[nn.Sequential, bool]
) -> None:
    model = seed_net[0]
    image = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    with torch.no_grad(), one_thread():
        features = bench["seed_baseline"].get_feature_maps(image, model)
        relu1_1 = torch.relu(model[0](image))
    assert [f.shape[1] for f in features] == [64, 128, 256, 512, 512]
    # The in-place ReLU after each collected conv overwrote it: the seed's "conv" maps are ReLUs.
    torch.testing.assert_close(features[0], relu1_1)
    assert all(f.min() >= 0 for f in features)


def test_seed_step_computes_weight_gradients(
    bench: dict[str, ModuleType], seed_net: tuple[nn.Sequential, bool]
) -> None:
    seed, model = bench["seed_baseline"], seed_net[0]
    generator = torch.Generator().manual_seed(3)
    content, style = torch.randn(2, 1, 3, 32, 32, generator=generator)
    target = content.clone()
    before = target.clone()
    with one_thread():
        seed.seed_step(model, content, style, target, seed.make_optimizer(target))
    # Parameters are not frozen, as in the seed: its backward pays for weight gradients too.
    assert model[0].weight.grad is not None
    assert model[28].weight.grad is not None
    assert not torch.equal(target, before)
