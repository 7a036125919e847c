"""Speed of the StyleTransfer loop against the seed's loop: ``python benchmarks/speed.py``.

Three measurements, all on the seed's objective (relu1_1..relu5_1, Gram / CHW, mean squared
errors, content weight 1e-2, style weight 1e4) with the same seeded random VGG19 weights:

1. **Step cost** (``--step-size``, default 256x256, Adam): the seed's step against ours, timed
   without host syncs (median over blocks, after warm-up) -> ``step_ratio_vs_seed`` (target
   <= 0.25).
2. **Convolution efficiency**: FLOPs of our step (``FlopCounterMode``, forward + backward) per
   second of our step, over the measured throughput of one representative VGG 3x3 convolution
   -> ``conv_efficiency`` (target >= 0.75).
3. **Time to quality** (chelsea + starry_night, short side ``--quality-size``, default 128 as the
   seed's ``transforms.Resize(128)``): the seed runs ``--seed-steps`` Adam steps (default 2000);
   each of our optimizers (Adam with the seed preset, L-BFGS on the same objective) runs until it
   reaches the loss of the seed's final image -> ``time_to_seed_loss_ratio`` = our best seconds
   / the seed's seconds (target <= 0.05). Our seconds include encoding the targets.
   The loop reads the loss back every step to know when to stop (a benchmark's privilege); the
   sync-free step cost is item 1.

It also checks that the two objectives agree: our ``loss()`` of the seed's final image (in pixel
space) against the seed's own loss of it.

The table goes to stdout; the last line is one JSON object, also written to ``--output``.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

import seed_baseline as seed
import torch
from _common import (
    ConvThroughput,
    count_flops,
    load_pixels,
    measure_conv_throughput,
    seconds_per_call,
    synchronize,
)
from _results import json_safe, write_results
from torch import Tensor, nn

from neuralstyle.features import FeatureExtractor
from neuralstyle.presets import SEED
from neuralstyle.transfer import StyleTransfer

__all__ = ["main", "seed_networks", "seed_objective_transfer"]

TARGET_STEP_RATIO = 0.25
TARGET_CONV_EFFICIENCY = 0.75
TARGET_TIME_RATIO = 0.05
_IMAGES = Path(__file__).resolve().parent.parent / "examples" / "images"
_DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "speed.json"

OptimizerName = Literal["adam", "lbfgs"]


@dataclass(frozen=True)
class StepTiming:
    """Per-step cost at the step-timing size."""

    height: int
    width: int
    seed_seconds: float
    our_seconds: float
    seed_flops: int
    our_flops: int
    timed_steps: int


@dataclass(frozen=True)
class SeedRun:
    """The seed's loop on the quality pair."""

    steps: int
    seconds: float
    final_loss: float

    @property
    def seconds_per_step(self) -> float:
        """Mean wall time of one of the seed's steps."""
        return self.seconds / self.steps


@dataclass(frozen=True)
class Reach:
    """How one of our optimizers did at reaching the seed's final loss."""

    optimizer: str
    reached: bool
    steps: int
    evaluations: int
    seconds: float
    best_loss: float

    @property
    def seconds_per_step(self) -> float:
        """Mean wall time of a step, targets included, per-step loss read-back included."""
        return self.seconds / max(self.steps, 1)


# -- setup -----------------------------------------------------------------------------------------


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--content", default=str(_IMAGES / "content" / "chelsea.jpg"))
    parser.add_argument("--style", default=str(_IMAGES / "style" / "starry_night.jpg"))
    parser.add_argument("--step-size", type=int, default=256, help="square side for step timing")
    parser.add_argument(
        "--quality-size", type=int, default=128, help="short side for time to quality"
    )
    parser.add_argument("--seed-steps", type=int, default=2000, help="Adam steps of the seed")
    parser.add_argument(
        "--max-steps", type=int, default=None, help="our step cap (default 2x --seed-steps)"
    )
    parser.add_argument(
        "--time-limit",
        type=float,
        default=1.0,
        help="stop one of our runs after this multiple of the seed's seconds (a miss anyway)",
    )
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps before timing")
    parser.add_argument("--blocks", type=int, default=5, help="timed blocks (median kept)")
    parser.add_argument("--block-steps", type=int, default=4, help="steps per timed block")
    parser.add_argument("--conv-channels", type=int, default=256)
    parser.add_argument("--conv-size", type=int, default=64)
    parser.add_argument("--conv-repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--weights-seed", type=int, default=0, help="seed of the random VGG19")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--output", type=Path, default=_DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    _check_args(parser, args)
    return args


def _check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    positive = ("step_size", "quality_size", "seed_steps", "blocks", "block_steps", "threads")
    for name in positive:
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.max_steps is not None and args.max_steps < 1:
        parser.error("--max-steps must be >= 1")
    if args.warmup < 0 or args.time_limit <= 0:
        parser.error("--warmup must be >= 0 and --time-limit > 0")


def seed_networks(
    weights_seed: int, device: torch.device
) -> tuple[nn.Sequential, FeatureExtractor]:
    """The seed's whole VGG19 and our extractor, loaded with the very same weights."""
    model = seed.seed_model(weights_seed, device)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "vgg19_features.pt"
        torch.save(model.state_dict(), path)
        extractor = FeatureExtractor(
            SEED.layer_map.layers, backbone="vgg19", weights=path, convention="imagenet"
        )
    return model, extractor


def seed_objective_transfer(
    extractor: FeatureExtractor, device: torch.device, optimizer: OptimizerName
) -> StyleTransfer:
    """Our loop on the seed's objective (SEED preset) with ``optimizer``, on ``extractor``."""
    config = replace(SEED.config, device=str(device), style_scale=None)
    if optimizer == "lbfgs":
        config = replace(config, optimizer="lbfgs", learning_rate=None)
    # What StyleTransfer does to a network it builds itself (a given one keeps its layout).
    extractor.to(memory_format=config.memory_format(device))
    return StyleTransfer(SEED.layer_map, config=config, extractor=extractor)


# -- step cost -------------------------------------------------------------------------------------


def _time_seed_step(
    model: nn.Sequential, content: Tensor, style: Tensor, args: argparse.Namespace
) -> tuple[float, int]:
    """Seconds and FLOPs of one seed step on normalized images."""
    target = content.clone()
    optimizer = seed.make_optimizer(target)

    def step() -> object:
        return seed.seed_step(model, content, style, target, optimizer)

    seconds = _time(step, args)
    return seconds, count_flops(step)


def _time_our_step(
    transfer: StyleTransfer, content: Tensor, style: Tensor, args: argparse.Namespace
) -> tuple[float, int]:
    """Seconds and FLOPs of one of our steps on pixel images."""
    targets = transfer.targets(content, style)
    image = transfer.initial_image(targets)
    optimizer = transfer.make_optimizer(image)

    def step() -> object:
        return transfer.step(image, targets, optimizer)

    seconds = _time(step, args)
    return seconds, count_flops(step)


def _time(step: Callable[[], object], args: argparse.Namespace) -> float:
    return seconds_per_call(
        step,
        device=torch.device(args.device),
        warmup=args.warmup,
        blocks=args.blocks,
        calls_per_block=args.block_steps,
    )


def measure_steps(
    model: nn.Sequential, extractor: FeatureExtractor, args: argparse.Namespace
) -> StepTiming:
    """Seed step against our step (Adam, seed preset) on square ``--step-size`` images.

    Args:
        model: The seed's network.
        extractor: Ours, with the same weights.
        args: Parsed flags (sizes, warm-up, blocks, device).

    Returns:
        Median sync-free seconds per step and FLOPs per step of both loops.
    """
    device = torch.device(args.device)
    side = args.step_size
    content = load_pixels(args.content, (side, side)).to(device)
    style = load_pixels(args.style, (side, side)).to(device)
    seed_seconds, seed_flops = _time_seed_step(
        model, seed.normalize(content), seed.normalize(style), args
    )
    our_seconds, our_flops = _time_our_step(
        seed_objective_transfer(extractor, device, "adam"), content, style, args
    )
    return StepTiming(
        height=side,
        width=side,
        seed_seconds=seed_seconds,
        our_seconds=our_seconds,
        seed_flops=seed_flops,
        our_flops=our_flops,
        timed_steps=args.blocks * args.block_steps,
    )


# -- time to quality -------------------------------------------------------------------------------


def run_seed(
    model: nn.Sequential, content: Tensor, style: Tensor, args: argparse.Namespace
) -> tuple[SeedRun, Tensor]:
    """The seed's loop for ``--seed-steps`` steps, timed after a separate warm-up.

    Args:
        model: The seed's network.
        content: Content pixels ``(1, 3, H, W)`` in [0, 1].
        style: Style pixels in [0, 1].
        args: Parsed flags.

    Returns:
        The run's numbers (its loss is that of the final image) and that image in pixel space.
    """
    device = torch.device(args.device)
    content_n, style_n = seed.normalize(content), seed.normalize(style)
    seed.run_neural_style_transfer(model, content_n, style_n, content_n.clone(), args.warmup)
    synchronize(device)
    began = time.perf_counter()
    result = seed.run_neural_style_transfer(
        model, content_n, style_n, content_n.clone(), args.seed_steps
    )
    synchronize(device)
    seconds = time.perf_counter() - began
    with torch.no_grad():
        final_loss = seed.seed_loss(model, result, content_n, style_n)[0].item()
    return SeedRun(args.seed_steps, seconds, final_loss), seed.denormalize(result.detach())


def _warm_up(transfer: StyleTransfer, content: Tensor, style: Tensor, steps: int) -> None:
    targets = transfer.targets(content, style)
    image = transfer.initial_image(targets)
    optimizer = transfer.make_optimizer(image)
    for _ in range(steps):
        transfer.step(image, targets, optimizer)


def reach_loss(
    transfer: StyleTransfer,
    content: Tensor,
    style: Tensor,
    goal: float,
    *,
    max_steps: int,
    max_seconds: float,
) -> Reach:
    """Run our loop until a step's loss is at most ``goal``; the clock includes the targets.

    ``step()`` returns the loss of the image before its update, so the image that reached
    ``goal`` exists when the loop stops.

    Args:
        transfer: Our loop, already warmed up at this size.
        content: Content pixels ``(1, 3, H, W)`` in [0, 1].
        style: Style pixels in [0, 1].
        goal: The loss to reach (the seed's final loss).
        max_steps: Give up after this many steps.
        max_seconds: Give up after this long (past the target ratio it is a miss anyway).

    Returns:
        Whether and when ``goal`` was reached: ``step()`` calls, loss evaluations, seconds.
    """
    began = time.perf_counter()
    targets = transfer.targets(content, style)
    image = transfer.initial_image(targets)
    optimizer = transfer.make_optimizer(image)
    best = math.inf
    steps = 0
    reached = False
    while steps < max_steps and not reached:
        value = float(transfer.step(image, targets, optimizer).total)
        steps += 1
        best = min(best, value)
        reached = value <= goal
        if time.perf_counter() - began > max_seconds:
            break
    seconds = time.perf_counter() - began
    evaluations = _evaluations(optimizer, image, steps)
    name = str(transfer.config.optimizer)
    return Reach(name, reached, steps, evaluations, seconds, best)


def _evaluations(optimizer: torch.optim.Optimizer, image: Tensor, steps: int) -> int:
    """Loss evaluations: L-BFGS keeps its own count; Adam evaluates once per step."""
    if isinstance(optimizer, torch.optim.LBFGS):
        return int(optimizer.state[image].get("func_evals", steps))
    return steps


def objective_gap(
    transfer: StyleTransfer, content: Tensor, style: Tensor, run: SeedRun, final_pixels: Tensor
) -> float:
    """Relative difference of our loss of the seed's final image and the seed's own value.

    Both objectives must agree for the time comparison to mean anything: ``final_pixels`` is the
    seed's normalized image mapped back (``x * std + mean``), which our extractor normalizes again.
    """
    targets = transfer.targets(content, style)
    with torch.no_grad():
        ours = transfer.loss(final_pixels, targets).total.item()
    return abs(ours - run.final_loss) / abs(run.final_loss)


# -- report ----------------------------------------------------------------------------------------


def _verdict(value: float | None, target: float, *, at_most: bool) -> str:
    if value is None:
        return "MISS"
    ok = value <= target if at_most else value >= target
    return "PASS" if ok else "MISS"


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else math.inf


def summarize(
    steps: StepTiming,
    conv: ConvThroughput,
    seed_run: SeedRun,
    reaches: Sequence[Reach],
    gap: float,
    quality_shapes: tuple[tuple[int, ...], tuple[int, ...]],
    args: argparse.Namespace,
    load_start: float | None,
) -> dict[str, Any]:
    """Everything measured, as one JSON-ready dictionary (headline ratios first)."""
    reached = [r.seconds for r in reaches if r.reached]
    time_ratio = _ratio(min(reached), seed_run.seconds) if reached else None
    efficiency = steps.our_flops / steps.our_seconds / conv.flops_per_second
    return {
        "step_ratio_vs_seed": steps.our_seconds / steps.seed_seconds,
        "conv_efficiency": efficiency,
        "time_to_seed_loss_ratio": time_ratio,
        "targets": {
            "step_ratio_vs_seed": TARGET_STEP_RATIO,
            "conv_efficiency": TARGET_CONV_EFFICIENCY,
            "time_to_seed_loss_ratio": TARGET_TIME_RATIO,
        },
        "objective_rel_diff": gap,
        "step": asdict(steps),
        "conv": {**asdict(conv), "flops_per_second": conv.flops_per_second},
        "quality": {
            "content_shape": list(quality_shapes[0]),
            "style_shape": list(quality_shapes[1]),
            "seed": {**asdict(seed_run), "seconds_per_step": seed_run.seconds_per_step},
            "ours": {
                r.optimizer: {**asdict(r), "seconds_per_step": r.seconds_per_step} for r in reaches
            },
        },
        "environment": {
            "torch": torch.__version__,
            "device": args.device,
            "threads": torch.get_num_threads(),
            "cpu_count": os.cpu_count(),
            "machine": platform.machine(),
            # A busy shared machine slows whichever loop runs at the time: say how busy it was.
            "load_average_1min_start": load_start,
            "load_average_1min_end": _load_average(),
        },
    }


def _load_average() -> float | None:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


def _row(label: str, value: str, notes: str = "") -> str:
    return f"{label:<32} {value:>16}  {notes}".rstrip()


def _headline_rows(results: dict[str, Any]) -> list[str]:
    step, conv = results["step"], results["conv"]
    size = f"{step['height']}x{step['width']}"
    efficiency, step_ratio = results["conv_efficiency"], results["step_ratio_vs_seed"]
    return [
        _row("measurement", "value", "notes"),
        _row(
            f"seed step ({size}, Adam)",
            f"{step['seed_seconds']:.4f} s",
            f"{step['seed_flops'] / 1e9:.1f} GFLOP/step",
        ),
        _row(
            f"our step ({size}, Adam)",
            f"{step['our_seconds']:.4f} s",
            f"sync-free, median of blocks, {step['timed_steps']} timed steps",
        ),
        _row(
            "conv throughput", f"{conv['flops_per_second'] / 1e9:.1f} GFLOP/s", conv["description"]
        ),
        _row(
            "FLOPs / our step", f"{step['our_flops'] / 1e9:.2f} GFLOP", "FlopCounterMode, fwd+bwd"
        ),
        _row(
            "efficiency",
            f"{efficiency:.3f}",
            f"target >= {TARGET_CONV_EFFICIENCY}: "
            + _verdict(efficiency, TARGET_CONV_EFFICIENCY, at_most=False),
        ),
        _row(
            "step ratio ours / seed",
            f"{step_ratio:.3f}",
            f"target <= {TARGET_STEP_RATIO}: "
            + _verdict(step_ratio, TARGET_STEP_RATIO, at_most=True),
        ),
        _row(
            "objective |ours / seed - 1|",
            f"{results['objective_rel_diff']:.2e}",
            "our loss() of the seed's final image",
        ),
    ]


def _quality_rows(results: dict[str, Any]) -> list[str]:
    quality = results["quality"]
    seed_run, ratio = quality["seed"], results["time_to_seed_loss_ratio"]
    rows = [
        f"time to the seed's loss: content {quality['content_shape']}, "
        f"style {quality['style_shape']}",
        _row(
            "  seed, Adam",
            f"{seed_run['seconds']:.2f} s",
            f"{seed_run['steps']} steps, final loss {seed_run['final_loss']:.6g}",
        ),
    ]
    for name, reach in quality["ours"].items():
        status = "reached" if reach["reached"] else "NOT reached"
        rows.append(
            _row(
                f"  ours, {name}",
                f"{reach['seconds']:.2f} s",
                f"{status}: {reach['steps']} steps, {reach['evaluations']} loss evaluations, "
                f"{reach['seconds_per_step']:.4f} s/step (synced), best {reach['best_loss']:.6g}",
            )
        )
    shown = "n/a" if ratio is None else f"{ratio:.4f}"
    verdict = _verdict(ratio, TARGET_TIME_RATIO, at_most=True)
    rows.append(_row("time ratio ours / seed", shown, f"target <= {TARGET_TIME_RATIO}: {verdict}"))
    return rows


def _environment_row(results: dict[str, Any]) -> str:
    env = results["environment"]
    start, end = env["load_average_1min_start"], env["load_average_1min_end"]
    load = "n/a" if start is None or end is None else f"{start:.2f} -> {end:.2f}"
    notes = (
        f"torch {env['torch']}, {env['device']}, {env['threads']} threads, {env['cpu_count']} cpus"
    )
    return _row("load average (1 min)", load, notes)


def format_table(results: dict[str, Any]) -> str:
    """The human-readable table of :func:`summarize`'s result."""
    rows = [*_headline_rows(results), *_quality_rows(results), _environment_row(results)]
    return "\n".join(rows)


# -- main ------------------------------------------------------------------------------------------


def _quality(
    model: nn.Sequential, extractor: FeatureExtractor, args: argparse.Namespace
) -> tuple[SeedRun, list[Reach], float, tuple[tuple[int, ...], tuple[int, ...]]]:
    device = torch.device(args.device)
    content = load_pixels(args.content, args.quality_size).to(device)
    style = load_pixels(args.style, args.quality_size).to(device)
    seed_run, final_pixels = run_seed(model, content, style, args)
    max_steps = args.max_steps if args.max_steps is not None else 2 * args.seed_steps
    reaches = []
    for name in ("adam", "lbfgs"):
        transfer = seed_objective_transfer(extractor, device, name)
        _warm_up(transfer, content, style, args.warmup)
        reaches.append(
            reach_loss(
                transfer,
                content,
                style,
                seed_run.final_loss,
                max_steps=max_steps,
                max_seconds=args.time_limit * seed_run.seconds,
            )
        )
    gap = objective_gap(
        seed_objective_transfer(extractor, device, "adam"), content, style, seed_run, final_pixels
    )
    return seed_run, reaches, gap, (tuple(content.shape), tuple(style.shape))


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run every measurement, print the table and the JSON line, write the JSON file.

    Args:
        argv: Command-line arguments (``None``: ``sys.argv[1:]``).

    Returns:
        The results written to ``--output``.

    Example:
        >>> _ = main(["--step-size", "32", "--seed-steps", "3"])  # doctest: +SKIP
    """
    args = _parse(argv)
    load_start = _load_average()
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        device = torch.device(args.device)
        model, extractor = seed_networks(args.weights_seed, device)
        conv = measure_conv_throughput(
            device, channels=args.conv_channels, size=args.conv_size, repeats=args.conv_repeats
        )
        steps = measure_steps(model, extractor, args)
        seed_run, reaches, gap, shapes = _quality(model, extractor, args)
        results = json_safe(
            summarize(steps, conv, seed_run, reaches, gap, shapes, args, load_start)
        )
    finally:
        torch.set_num_threads(threads)
    print(format_table(results))
    write_results(results, args.output)
    return dict(results)


if __name__ == "__main__":
    main()
    sys.exit(0)
