"""How L-BFGS's progress depends on the scale of the objective (see ``neuralstyle/lbfgs.py``).

Runs L-BFGS (one evaluation per step, as ``StyleTransfer`` drives it) on one pair at one size for
each ``--length`` of the raw-gradient fallback step, and prints the loss every ``--every`` steps
side by side. The library uses ``FALLBACK_STEP_LENGTH``; the others are what it was chosen over.

    python benchmarks/lbfgs_scale.py --size 512 --init content --lengths 1 7.24 --steps 80
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import torch

import neuralstyle.lbfgs as lbfgs
from neuralstyle import StyleTransfer, get_preset
from neuralstyle.layers import LayerMap

_IMAGES = Path(__file__).resolve().parents[1] / "examples" / "images"
# The default's style layers (neural-style's balance) against content on relu4_2 alone, the map
# these trajectories were first measured with.
_LAYERS = LayerMap(content={"relu4_2": 1.0}, style=dict(get_preset("default").layer_map.style))


def trajectory(length: float, args: argparse.Namespace) -> list[float]:
    """The loss before each step of one run with the fallback step ``length``."""
    lbfgs.FALLBACK_STEP_LENGTH = length
    config = replace(
        get_preset("default").config,
        optimizer="lbfgs",
        steps=args.steps,
        start_size=None,
        size=args.size,
        style_weight=1.0,
        learning_rate=None,
        init=args.init,
    )
    content, style = (
        args.images / kind / f"{name}.jpg"
        for kind, name in zip(("content", "style"), args.pair.split(":"), strict=True)
    )
    with StyleTransfer(_LAYERS, config=config).start(str(content), str(style)) as run:
        return [float(state.loss) for state in run]


def main() -> None:
    """Print the loss trajectories side by side."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, default=_IMAGES, help="folder with content/, style/")
    parser.add_argument("--pair", default="chelsea:starry_night", help="content:style")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--init", choices=("content", "noise"), default="content")
    parser.add_argument("--lengths", type=float, nargs="+", default=[1.0, 7.24])
    parser.add_argument("--steps", type=int, default=80)
    parser.add_argument("--every", type=int, default=10)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    runs = {}
    for length in args.lengths:
        began = time.perf_counter()
        runs[length] = trajectory(length, args)
        print(f"length {length:g}: {time.perf_counter() - began:.0f} s", flush=True)
    print(f"{args.pair} at {args.size} px from {args.init}; loss before step:")
    print("| step | " + " | ".join(f"length {length:g}" for length in runs) + " |")
    print("| --- |" + " --- |" * len(runs))
    for step in [1, *range(args.every, args.steps + 1, args.every)]:
        cells = " | ".join(f"{losses[step - 1]:.4g}" for losses in runs.values())
        print(f"| {step} | {cells} |")


if __name__ == "__main__":
    main()
