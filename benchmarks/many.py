"""Many pictures, four ways, side by side: ``python benchmarks/many.py``.

The same N content x style pairs of ``examples/images`` at a small size, with the ``default``
preset's recipe (``--steps`` and ``--size`` shortened), made:

1. **one by one, reloading**: one ``neuralstyle`` command per pair, as a shell loop runs it
   (each process imports torch and builds the network again);
2. **network once**: ``stylize_many`` in this process, one pair after another;
3. **batched**: ``stylize_many`` with ``in_process(transfer, batch_size=N)``: each style's
   contents (of one shape at ``--size``) stacked into one batch of one run;
4. **Ray, 2 workers**: ``stylize_many`` with ``on_ray`` on a local Ray started with 2 CPUs, one
   pair per CPU (skipped when Ray is not installed).

Each way gets the same threads in all (``--threads``; Ray's workers one each). Reported: wall
seconds and pictures per minute, and the speed-up over the shell loop. Then the batch curve:
``--frames`` copies of the first content with the first style at each ``--batch-sizes``, on
``--device`` (``cuda`` on a GPU machine). The table goes to stdout;
the last line is one JSON object, also written to ``--output``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from _results import json_safe, write_results

from neuralstyle import PRESETS, FeatureExtractor, StyleTransfer
from neuralstyle.many import Pair, every_pair, in_process, stylize_many

__all__ = ["main"]

_IMAGES = Path(__file__).resolve().parents[1] / "examples" / "images"
_DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "many.json"
WAYS = ("one_by_one_reloading", "network_once", "batched", "ray_2_workers")


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contents", nargs="+", default=["chelsea", "coffee"])
    parser.add_argument("--styles", nargs="+", default=["starry_night", "the_scream"])
    parser.add_argument("--size", type=int, default=128, help="long side of every picture (px)")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--weights", choices=("bundled", "random"), default="bundled")
    parser.add_argument("--no-ray", action="store_true", help="leave the Ray way out")
    parser.add_argument(
        "--batch-sizes",
        nargs="*",
        type=int,
        default=[1, 2, 4, 8],
        help="the batch curve: --frames copies of the first content with the first style at "
        "each batch size (none: leave the curve out)",
    )
    parser.add_argument("--frames", type=int, default=8, help="pictures in the batch curve")
    parser.add_argument(
        "--device", default="cpu", help="where the batch curve runs (cuda on a GPU)"
    )
    parser.add_argument("--output", type=Path, default=_DEFAULT_OUTPUT)
    parser.add_argument("--no-write", action="store_true", help="print only")
    return parser.parse_args(argv)


def _transfer(args: argparse.Namespace, device: str = "cpu") -> StyleTransfer:
    preset = PRESETS["default"]
    config = replace(preset.config, size=args.size, steps=args.steps, device=device)
    extractor = FeatureExtractor(preset.layer_map.layers, weights=args.weights)
    return StyleTransfer(preset.layer_map, config=config, extractor=extractor)


def one_by_one(args: argparse.Namespace, pairs: Sequence[Pair], folder: Path) -> float:
    """A shell loop: one ``neuralstyle`` process per pair."""
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    start = time.perf_counter()
    for pair in pairs:
        command = [sys.executable, "-m", "neuralstyle", str(pair.content), str(pair.style)]
        command += ["-o", str(folder / pair.output_name), "--size", str(args.size)]
        command += ["--steps", str(args.steps), "--weights", args.weights, "--quiet"]
        subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def network_once(args: argparse.Namespace, pairs: Sequence[Pair], folder: Path) -> float:
    """``stylize_many`` in-process (the network built once, inside the timing)."""
    start = time.perf_counter()
    report = stylize_many(pairs, folder, transfer=_transfer(args))
    seconds = time.perf_counter() - start
    if not report.ok:
        raise RuntimeError(f"network_once: {report.failed[0].reason}")
    return seconds


def batched(args: argparse.Namespace, pairs: Sequence[Pair], folder: Path) -> float:
    """``stylize_many`` with each style's contents in one batch (``in_process(batch_size=)``;
    chelsea and coffee come to one shape at every ``--size``)."""
    start = time.perf_counter()
    transfer = _transfer(args)
    runner = in_process(transfer, batch_size=len(pairs))
    report = stylize_many(pairs, folder, transfer=transfer, runner=runner)
    seconds = time.perf_counter() - start
    if not report.ok:
        raise RuntimeError(f"batched: {report.failed[0].reason}")
    return seconds


def on_ray_workers(args: argparse.Namespace, pairs: Sequence[Pair], folder: Path) -> float:
    """``stylize_many`` on a local Ray with 2 CPUs (started outside the timing)."""
    import ray

    from neuralstyle.many_ray import on_ray

    os.environ["OMP_NUM_THREADS"] = "1"  # each worker one thread: 2 workers fill 2 cores
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        transfer = _transfer(args)
        start = time.perf_counter()
        report = stylize_many(pairs, folder, transfer=transfer, runner=on_ray(transfer, cpus=1))
        seconds = time.perf_counter() - start
    finally:
        ray.shutdown()
    if not report.ok:
        raise RuntimeError(f"ray: {report.failed[0].reason}")
    return seconds


def batch_curve(args: argparse.Namespace, scratch: Path) -> dict[str, dict[str, float]]:
    """Pictures per minute at each ``--batch-sizes``: ``--frames`` copies of the first content
    (frames of a still video) with the first style, ``stylize_many`` with
    ``in_process(batch_size=)`` on ``--device``, one network for the whole curve."""
    content = _IMAGES / "content" / f"{args.contents[0]}.jpg"
    style = _IMAGES / "style" / f"{args.styles[0]}.jpg"
    frames = scratch / "frames"
    frames.mkdir()
    copies = [
        shutil.copy(content, frames / f"frame{index:03d}.jpg") for index in range(args.frames)
    ]
    pairs = every_pair([Path(copy) for copy in copies], [style])
    transfer = _transfer(args, args.device)
    curve = {}
    for size in args.batch_sizes:
        folder = scratch / f"batch{size}"
        runner = in_process(transfer, batch_size=size)
        start = time.perf_counter()
        report = stylize_many(pairs, folder, transfer=transfer, runner=runner)
        if transfer.device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        if not report.ok:
            raise RuntimeError(f"batch size {size}: {report.failed[0].reason}")
        curve[str(size)] = {"seconds": seconds, "pictures_per_minute": 60 * len(pairs) / seconds}
    return curve


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run every way on the same pairs and report pictures per minute side by side."""
    args = _parse(argv)
    torch.set_num_threads(args.threads)
    contents = [_IMAGES / "content" / f"{name}.jpg" for name in args.contents]
    styles = [_IMAGES / "style" / f"{name}.jpg" for name in args.styles]
    pairs = every_pair(contents, styles)
    ways = {
        "one_by_one_reloading": one_by_one,
        "network_once": network_once,
        "batched": batched,
        "ray_2_workers": on_ray_workers,
    }
    if args.no_ray:
        del ways["ray_2_workers"]
    seconds: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for name, way in ways.items():
            folder = Path(scratch) / name
            folder.mkdir()
            seconds[name] = way(args, pairs, folder)
        curve = batch_curve(args, Path(scratch)) if args.batch_sizes else {}
    base = seconds["one_by_one_reloading"]
    print(f"{len(pairs)} pairs at {args.size} px, {args.steps} steps, {args.threads} threads")
    print(f"{'way':<24}{'seconds':>10}{'pictures/min':>14}{'vs shell loop':>15}")
    rows = {}
    for name, value in seconds.items():
        per_minute = 60 * len(pairs) / value
        rows[name] = {"seconds": value, "pictures_per_minute": per_minute, "speedup": base / value}
        print(f"{name:<24}{value:>10.1f}{per_minute:>14.2f}{base / value:>14.2f}x")
    if curve:
        print(f"\nbatch curve: {args.frames} frames on {args.device}")
        print(f"{'batch size':<24}{'seconds':>10}{'pictures/min':>14}")
        for size, row in curve.items():
            print(f"{size:<24}{row['seconds']:>10.1f}{row['pictures_per_minute']:>14.2f}")
    results = json_safe(
        {
            "benchmark": "many",
            "pairs": len(pairs),
            "size": args.size,
            "steps": args.steps,
            "threads": args.threads,
            "weights": args.weights,
            "cpu": torch.backends.cpu.get_cpu_capability(),
            "ways": rows,
            "batch_curve": {"frames": args.frames, "device": args.device, "sizes": curve},
        }
    )
    write_results(results, None if args.no_write else args.output)
    return dict(results)


if __name__ == "__main__":
    main()
    sys.exit(0)
