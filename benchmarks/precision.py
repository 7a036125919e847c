"""float32 against bfloat16 autocast, side by side: ``python benchmarks/precision.py``.

The ``default`` preset with the bundled network, in one process, each precision in turn:

1. **Step cost** at each ``--sizes`` (one scale, the content at that long side, Adam): median
   seconds per step over timed blocks after warm-up (``_common.seconds_per_call``).
2. **The picture**: a whole ``default`` run of ``--pair`` at ``--picture-size`` (coarse to fine,
   the preset's steps) in each precision: seconds, the quality protocol's measures
   (``quality.Judge``: edge, luma, hist, gram) and the largest pixel difference between the two
   pictures.

``"auto"`` precision (what the presets ask for) is bfloat16 where the CPU has native bfloat16
instructions; this benchmark is how that choice is checked on a machine. The table goes to
stdout; the last line is one JSON object, also written to ``--output``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from _common import seconds_per_call
from _results import json_safe, write_results
from quality import Judge, Pair
from torch import Tensor

from neuralstyle import PRESETS, FeatureExtractor, StyleTransfer
from neuralstyle._precision import has_native_bfloat16

__all__ = ["main"]

PRECISIONS = ("float32", "bfloat16")
_MEASURES = ("edge", "luma", "hist", "gram")
DEFAULT = PRESETS["default"]
_IMAGES = Path(__file__).resolve().parents[1] / "examples" / "images"
_DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "precision.json"


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--pair", default="chelsea:starry_night", help="CONTENT:STYLE of examples/images"
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--picture-size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=None, help="the picture's steps")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--blocks", type=int, default=3)
    parser.add_argument("--block-steps", type=int, default=4)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--weights", choices=("bundled", "random"), default="bundled")
    parser.add_argument("--output", type=Path, default=_DEFAULT_OUTPUT)
    parser.add_argument("--no-write", action="store_true", help="print only")
    return parser.parse_args(argv)


def _extractor(weights: str) -> FeatureExtractor:
    chosen = "random" if weights == "random" else None
    return FeatureExtractor(DEFAULT.layer_map.layers, weights=chosen, seed=0)


def step_seconds(content: Path, style: Path, size: int, precision: str, args: Any) -> float:
    """Median seconds per Adam step of the default preset at one scale of ``size``."""
    config = replace(DEFAULT.config, size=size, start_size=None, precision=precision)
    transfer = StyleTransfer(DEFAULT.layer_map, config=config, extractor=_extractor(args.weights))
    targets = transfer.targets(str(content), str(style))
    image = transfer.initial_image(targets)
    optimizer = transfer.make_optimizer(image)
    return seconds_per_call(
        lambda: transfer.step(image, targets, optimizer),
        device=transfer.device,
        warmup=args.warmup,
        blocks=args.blocks,
        calls_per_block=args.block_steps,
    )


def picture(content: Path, style: Path, precision: str, args: Any) -> tuple[Tensor, float]:
    """A whole default run in ``precision``, and its seconds."""
    changes: dict[str, Any] = {"size": args.picture_size, "precision": precision}
    if args.steps is not None:
        changes["steps"] = args.steps
    config = replace(DEFAULT.config, **changes)
    transfer = StyleTransfer(DEFAULT.layer_map, config=config, extractor=_extractor(args.weights))
    began = time.perf_counter()
    result = transfer.run(str(content), str(style))
    return result.image.detach().float().cpu(), time.perf_counter() - began


def measures(output: Tensor, content: Path, style: Path, judge: Judge) -> dict[str, float]:
    """The quality protocol's measures of one picture; the face measure is left out."""
    measured = judge.measure(output, Pair(content, style))
    return {name: value for name, value in measured.items() if name in _MEASURES}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Measure both precisions, print the table and the JSON line."""
    args = _parse(argv)
    content_name, _, style_name = args.pair.partition(":")
    content = _IMAGES / "content" / f"{content_name}.jpg"
    style = _IMAGES / "style" / f"{style_name}.jpg"
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        steps = {
            precision: {
                str(size): step_seconds(content, style, size, precision, args)
                for size in args.sizes
            }
            for precision in PRECISIONS
        }
        judge = Judge(args.weights, faces=None)
        pictures = {precision: picture(content, style, precision, args) for precision in PRECISIONS}
    finally:
        torch.set_num_threads(threads)
    runs = {
        precision: {"seconds": seconds, **measures(image, content, style, judge)}
        for precision, (image, seconds) in pictures.items()
    }
    difference = (pictures["float32"][0] - pictures["bfloat16"][0]).abs().max().item()
    results = json_safe(
        {
            "benchmark": "precision",
            "pair": args.pair,
            "seconds_per_step": steps,
            "step_speedup": {
                size: steps["float32"][size] / steps["bfloat16"][size] for size in steps["float32"]
            },
            "picture_size": args.picture_size,
            "picture": runs,
            "picture_speedup": runs["float32"]["seconds"] / runs["bfloat16"]["seconds"],
            "max_pixel_difference": difference,
            "environment": {
                "torch": torch.__version__,
                "threads": args.threads,
                "cpu_count": os.cpu_count(),
                "native_bfloat16": has_native_bfloat16(torch.device("cpu")),
                "machine": platform.machine(),
                "load_average_1min_end": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
            },
        }
    )
    print(format_table(results))
    write_results(results, None if args.no_write else args.output)
    return dict(results)


def format_table(results: dict[str, Any]) -> str:
    """The printed table: step cost per size, then the two pictures."""
    lines = [
        "precision  "
        + "  ".join(f"{size:>5} px s/step" for size in results["seconds_per_step"]["float32"])
    ]
    for precision, sizes in results["seconds_per_step"].items():
        lines.append(f"{precision:<10} " + "  ".join(f"{v:>14.3f}" for v in sizes.values()))
    lines.append(f"\npicture ({results['pair']}, {results['picture_size']} px, whole run):")
    lines.append("precision   seconds    edge    luma    hist    gram")
    for precision, run in results["picture"].items():
        lines.append(
            f"{precision:<10} {run['seconds']:>8.1f} {run['edge']:>7.3f} {run['luma']:>7.3f} "
            f"{run['hist']:>7.3f} {run['gram']:>7.3f}"
        )
    lines.append(f"largest pixel difference: {results['max_pixel_difference']:.3f}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
    sys.exit(0)
