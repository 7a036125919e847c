"""Does ``style_weight`` mean the same on every pair and size? ``python benchmarks/strength.py``.

The ``default`` preset with its style weight multiplied by each of ``--factors``, on each pair
of ``--pairs`` at each of ``--sizes``, measured with the quality protocol (``quality.Judge``:
edge, hist, gram, and on portraits the face probability when facenet-pytorch is installed). A
strength knob a user can turn without learning the loss scales moves the picture the same way
everywhere: more weight, more of the painting's texture (gram down) and less of the photo's
structure (edge down), on every pair at every size. The table shows each row; the summary says
whether every pair and size moved that way and how far one doubling moves gram and edge (min /
max over pairs and sizes). The last line is one JSON object, also written to ``--output``.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from _results import json_safe, write_results
from faces import face_detector
from quality import Judge, Pair

from neuralstyle import PRESETS, FeatureExtractor, StyleTransfer

__all__ = ["main"]

DEFAULT = PRESETS["default"]
_IMAGES = Path(__file__).resolve().parents[1] / "examples" / "images"
_DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "strength.json"
_MEASURES = ("edge", "hist", "gram")


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--pairs",
        nargs="+",
        default=["astronaut:the_scream", "chelsea:starry_night", "rocket:composition_vii"],
        help="CONTENT:STYLE of examples/images",
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--factors", type=float, nargs="+", default=[0.5, 1.0, 2.0])
    parser.add_argument("--steps", type=int, default=None, help="override the preset's steps")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--weights", choices=("bundled", "random"), default="bundled")
    parser.add_argument("--output", type=Path, default=_DEFAULT_OUTPUT)
    parser.add_argument("--no-faces", action="store_true", help="skip the face measure")
    parser.add_argument("--no-write", action="store_true", help="print only")
    return parser.parse_args(argv)


def run_one(pair: Pair, size: int, factor: float, judge: Judge, args: Any) -> dict[str, Any]:
    """One default run with the style weight scaled by ``factor``: its measures and seconds."""
    changes: dict[str, Any] = {"size": size, "style_weight": DEFAULT.config.style_weight * factor}
    if args.steps is not None:
        changes["steps"] = args.steps
    chosen = "random" if args.weights == "random" else None
    extractor = FeatureExtractor(DEFAULT.layer_map.layers, weights=chosen, seed=0)
    transfer = StyleTransfer(
        DEFAULT.layer_map, config=replace(DEFAULT.config, **changes), extractor=extractor
    )
    began = time.perf_counter()
    image = transfer.run(str(pair.content), str(pair.style)).image.detach().float().cpu()
    seconds = time.perf_counter() - began
    measured = judge.measure(image, pair)
    return {"seconds": seconds, "face": measured.get("face")} | {
        name: measured[name] for name in _MEASURES
    }


def doubling_effects(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per pair and size: whether gram and edge fall as the weight grows, and by how much.

    Args:
        rows: One row per pair, size and factor, in ascending factor order within each group.

    Returns:
        ``monotone`` (every group's gram and edge never rise with the weight) and, for gram and
        edge, the min and max over groups of the change per doubling of the weight.
    """
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["pair"], row["size"]), []).append(row)
    monotone = True
    per_doubling: dict[str, list[float]] = {"gram": [], "edge": []}
    for group in groups.values():
        group.sort(key=lambda row: row["factor"])
        for name in per_doubling:
            values = [row[name] for row in group]
            monotone &= all(later <= earlier for earlier, later in itertools.pairwise(values))
            doublings = torch.tensor(group[-1]["factor"] / group[0]["factor"]).log2().item()
            if doublings > 0:
                per_doubling[name].append((values[-1] - values[0]) / doublings)
    return {
        "monotone": monotone,
        "per_doubling": {
            name: {"min": min(changes), "max": max(changes)}
            for name, changes in per_doubling.items()
            if changes
        },
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run every pair, size and factor; print the table and the JSON line."""
    args = _parse(argv)
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    judge = Judge(args.weights, faces=None if args.no_faces else face_detector())
    rows: list[dict[str, Any]] = []
    print(
        f"{'pair':30} {'size':>5} {'weight':>7} {'seconds':>8} {'edge':>6} {'hist':>6} "
        f"{'gram':>6} {'face':>6}"
    )
    try:
        for name, size, factor in itertools.product(args.pairs, args.sizes, args.factors):
            content, _, style = name.partition(":")
            pair = Pair(_IMAGES / "content" / f"{content}.jpg", _IMAGES / "style" / f"{style}.jpg")
            row = {"pair": name, "size": size, "factor": factor}
            row |= {"style_weight": DEFAULT.config.style_weight * factor}
            row |= run_one(pair, size, factor, judge, args)
            rows.append(row)
            print(
                f"{name:30} {size:5d} {row['style_weight']:7.3f} {row['seconds']:8.1f} "
                f"{row['edge']:6.3f} {row['hist']:6.3f} {row['gram']:6.3f} "
                f"{'-' if row['face'] is None else format(row['face'], '6.3f'):>6}",
                flush=True,
            )
    finally:
        torch.set_num_threads(threads)
    summary = doubling_effects(rows)
    print(f"gram and edge fall with the weight on every pair and size: {summary['monotone']}")
    for name, spread in summary["per_doubling"].items():
        print(f"{name} per doubling of the weight: {spread['min']:+.3f} .. {spread['max']:+.3f}")
    results = json_safe(
        {
            "benchmark": "strength",
            "preset": "default",
            "steps": args.steps or DEFAULT.config.steps,
            "threads": args.threads,
            "rows": rows,
            **summary,
        }
    )
    write_results(results, None if args.no_write else args.output)
    return dict(results)


if __name__ == "__main__":
    main()
    sys.exit(0)
