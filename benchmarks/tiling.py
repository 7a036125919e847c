"""Outputs larger than memory by tiling: ``python benchmarks/tiling.py``.

Each run happens in a fresh interpreter, so its peak resident memory (``ru_maxrss``, the whole
process: Python, torch, weights and all) is the run's own. The recipe, for every ``--sizes``:

1. a stylized start: the default preset at ``--start-picture`` px (coarse to fine from 128 px,
   its own 60 steps per scale), timed apart;
2. the tiled run: the default preset at the output size with ``tile_size=--tile``, coarse to
   fine from ``--from-size`` with ``--steps`` per scale, starting from picture 1 (upsampled).

Measured per size: seconds of the tiled run (targets included), peak memory in GiB, and the
seam ratio: the mean luma gradient magnitude across the tile borders of the last scale (every
pass's cuts) divided by the mean everywhere else; 1 means the borders are like any other place.

With ``--compare N`` it also runs one scale of N px whole and tiled (tile N*2/3) from the same
start and reports both whole-image losses, to show what tiling costs in the objective.

The table goes to stdout, the last line is one JSON object (also written to ``--output``,
default ``benchmarks/results/tiling.json``); ``--pictures DIR`` saves the outputs and a
full-resolution crop around a tile corner. Smoke use: ``--sizes 96 --tile 64 --start-picture 48
--from-size 64 --steps 2 --weights random``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from _results import write_results
from torch import Tensor

from neuralstyle import FeatureExtractor, StyleTransfer, load_image, save_image
from neuralstyle.memory import estimate_peak_bytes
from neuralstyle.presets import DEFAULT
from neuralstyle.tiling import PASSES, TilePlan

__all__ = ["main", "seam_ratio"]

ROOT = Path(__file__).resolve().parents[1]
CONTENT = ROOT / "examples" / "images" / "content" / "astronaut.jpg"
STYLE = ROOT / "examples" / "images" / "style" / "starry_night.jpg"


def seam_ratio(image: Tensor, plan: TilePlan) -> dict[str, float]:
    """Mean luma gradient magnitude across ``plan``'s core borders over the mean elsewhere.

    ``image`` is ``(1, 3, H, W)``. A border between columns ``c - 1`` and ``c`` is measured by
    ``|Y[:, c] - Y[:, c - 1]|``; rows likewise. Returns the ratio over every pass's borders
    (``"seam_ratio"``) and for each pass alone (``"seam_ratio_pass_K"``).
    """
    weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    luma = (image.float().cpu() * weights).sum(1)[0]
    across_columns = (luma[:, 1:] - luma[:, :-1]).abs()  # column j: between j and j + 1
    across_rows = (luma[1:, :] - luma[:-1, :]).abs()
    size = (int(luma.shape[0]), int(luma.shape[1]))
    results: dict[str, float] = {}
    every: tuple[set[int], set[int]] = (set(), set())
    for index in range(PASSES):
        tiles = plan.layout(size, index)
        rows = {tile.core[0] for tile in tiles} - {0}
        cols = {tile.core[2] for tile in tiles} - {0}
        every[0].update(rows)
        every[1].update(cols)
        results[f"seam_ratio_pass_{index}"] = _ratio(across_rows, across_columns, rows, cols)
    results["seam_ratio"] = _ratio(across_rows, across_columns, *every)
    return results


def _ratio(across_rows: Tensor, across_columns: Tensor, rows: set[int], cols: set[int]) -> float:
    row_mask = torch.zeros(across_rows.shape[0], dtype=torch.bool)
    col_mask = torch.zeros(across_columns.shape[1], dtype=torch.bool)
    row_mask[[row - 1 for row in rows]] = True
    col_mask[[col - 1 for col in cols]] = True
    on_border = torch.cat([across_rows[row_mask].flatten(), across_columns[:, col_mask].flatten()])
    elsewhere = torch.cat(
        [across_rows[~row_mask].flatten(), across_columns[:, ~col_mask].flatten()]
    )
    return float(on_border.mean() / elsewhere.mean())


def _extractor(weights: str) -> FeatureExtractor | None:
    if weights == "bundled":
        return None
    return FeatureExtractor(list(DEFAULT.layer_map.layers), weights=None)


def _peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 2**30


def child_start(args: argparse.Namespace) -> dict[str, Any]:
    """Stage 1: the stylized start picture, saved to ``args.start_path``."""
    config = replace(DEFAULT.config, size=args.start_picture, device="cpu")
    if args.steps_start:
        config = replace(config, steps=args.steps_start)
    began = time.perf_counter()
    transfer = StyleTransfer(DEFAULT.layer_map, config=config, extractor=_extractor(args.weights))
    result = transfer.run(CONTENT, STYLE)
    save_image(result.image, args.start_path)
    return {"seconds": time.perf_counter() - began, "peak_memory_gib": _peak_gib()}


def child_tiled(args: argparse.Namespace) -> dict[str, Any]:
    """Stage 2: the tiled run at ``args.size``; its seconds, peak memory and seams."""
    config = replace(
        DEFAULT.config,
        size=args.size,
        tile_size=args.tile,
        start_size=args.from_size,
        steps=args.steps,
        device="cpu",
    )
    began = time.perf_counter()
    transfer = StyleTransfer(DEFAULT.layer_map, config=config, extractor=_extractor(args.weights))
    result = transfer.run(CONTENT, STYLE, init=args.start_path)
    seconds = time.perf_counter() - began
    assert transfer.tile_plan is not None
    record: dict[str, Any] = {
        "width": int(result.image.shape[-1]),
        "height": int(result.image.shape[-2]),
        "tile": args.tile,
        "steps_per_scale": args.steps,
        "from_size": args.from_size,
        "steps_done": result.steps_done,
        "seconds": seconds,
        "peak_memory_gib": _peak_gib(),
        "estimated_gib": estimate_peak_bytes(transfer, args.size, args.size) / 2**30,
        **seam_ratio(result.image, transfer.tile_plan),
    }
    if args.pictures:
        _save_pictures(result.image, transfer.tile_plan, Path(args.pictures))
    return record


def _save_pictures(image: Tensor, plan: TilePlan, folder: Path) -> None:
    """The output (JPEG) and a 512 px crop at full resolution around a corner of the last pass."""
    folder.mkdir(parents=True, exist_ok=True)
    height, width = int(image.shape[-2]), int(image.shape[-1])
    save_image(image, folder / f"tiled-{width}x{height}.jpg", overwrite=True)
    corner = next(tile for tile in plan.layout((height, width), PASSES - 1) if tile.core[0] > 0)
    top = max(0, min(height - 512, corner.core[0] - 256))
    left = max(0, min(width - 512, corner.core[3] - 256))
    crop = image[..., top : top + 512, left : left + 512]
    save_image(crop, folder / f"tiled-{width}x{height}-crop.png", overwrite=True)


def child_compare(args: argparse.Namespace) -> dict[str, Any]:
    """One scale of ``args.size`` px, whole and tiled, from the same start: both losses."""
    base = replace(DEFAULT.config, size=args.size, start_size=None, steps=args.steps, device="cpu")
    judge = StyleTransfer(DEFAULT.layer_map, config=base, extractor=_extractor(args.weights))
    targets = judge.targets(CONTENT, STYLE)
    start = load_image(args.start_path, size=tuple(targets.content_image.shape[-2:]))
    record: dict[str, Any] = {
        "size": args.size,
        "steps": args.steps,
        "start_loss": float(judge.loss(start, targets).total),
    }
    for label, tile in (("whole", None), ("tiled", args.tile)):
        transfer = StyleTransfer(
            DEFAULT.layer_map, config=replace(base, tile_size=tile), extractor=judge.extractor
        )
        began = time.perf_counter()
        result = transfer.run(CONTENT, STYLE, init=start)
        record[f"{label}_seconds"] = time.perf_counter() - began
        record[f"{label}_loss"] = float(judge.loss(result.image, targets).total)
    record["tile"] = args.tile
    return record


def _spawn(stage: str, options: list[str]) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", stage, *options]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{stage} run failed:\n{done.stderr[-3000:]}")
    record: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return record


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2048, 4096])
    parser.add_argument("--tile", type=int, default=1024)
    parser.add_argument("--start-picture", type=int, default=512)
    parser.add_argument("--steps-start", type=int, default=0, help="0: the preset's own")
    parser.add_argument("--from-size", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--compare", type=int, default=0, help="size of the whole/tiled check")
    parser.add_argument("--weights", choices=["bundled", "random"], default="bundled")
    parser.add_argument("--threads", type=int, default=0, help="0: torch's default")
    parser.add_argument("--pictures", default="")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks/results/tiling.json")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--child", choices=["start", "tiled", "compare"], default=None)
    parser.add_argument("--size", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--start-path", default="", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def _common_options(args: argparse.Namespace, start_path: Path) -> list[str]:
    options = [
        "--tile", str(args.tile), "--start-picture", str(args.start_picture),
        "--steps-start", str(args.steps_start), "--from-size", str(args.from_size),
        "--steps", str(args.steps), "--weights", args.weights, "--threads", str(args.threads),
        "--start-path", str(start_path),
    ]  # fmt: skip
    if args.pictures:
        options += ["--pictures", args.pictures]
    return options


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark (or one child stage) and return its results."""
    args = _parse(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.child is not None:
        stage = {"start": child_start, "tiled": child_tiled, "compare": child_compare}
        record = stage[args.child](args)
        print(json.dumps(record))
        return record
    workdir = Path(args.pictures or ROOT / "benchmarks" / "results")
    start_path = workdir / f"tiling-start-{args.start_picture}.png"
    start_path.parent.mkdir(parents=True, exist_ok=True)
    options = _common_options(args, start_path)
    results: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "start": _spawn("start", options),
        "runs": [_spawn("tiled", [*options, "--size", str(size)]) for size in args.sizes],
    }
    if args.compare:
        compare = [*options, "--size", str(args.compare), "--tile", str(args.compare * 2 // 3)]
        results["compare"] = _spawn("compare", compare)
    # The headline keys belong to the largest run.
    results.update({key: results["runs"][-1][key] for key in _HEADLINE})
    print(format_table(results))
    write_results(results, None if args.no_write else args.output)
    return results


_HEADLINE = ("width", "height", "peak_memory_gib", "seconds", "seam_ratio")


def format_table(results: dict[str, Any]) -> str:
    """A markdown table of the runs."""
    start = results["start"]
    lines = [
        f"start picture: {start['seconds']:.1f} s, peak {start['peak_memory_gib']:.2f} GiB",
        "",
        "| output | tile | steps/scale | steps | seconds | peak GiB (estimated) "
        "| seam ratio (pass 0 / 1) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for run in results["runs"]:
        lines.append(
            f"| {run['width']}x{run['height']} | {run['tile']} | {run['steps_per_scale']} | "
            f"{run['steps_done']} | {run['seconds']:.1f} | {run['peak_memory_gib']:.2f} "
            f"({run['estimated_gib']:.2f}) | "
            f"{run['seam_ratio']:.3f} ({run['seam_ratio_pass_0']:.3f} / "
            f"{run['seam_ratio_pass_1']:.3f}) |"
        )
    if "compare" in results:
        c = results["compare"]
        lines += [
            "",
            f"one scale of {c['size']} px, {c['steps']} steps from the start picture "
            f"(loss {c['start_loss']:.3f}): whole {c['whole_loss']:.3f} in "
            f"{c['whole_seconds']:.1f} s, tiled ({c['tile']} px) {c['tiled_loss']:.3f} in "
            f"{c['tiled_seconds']:.1f} s",
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
