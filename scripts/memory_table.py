"""Check the memory estimate against measured peaks: ``python scripts/memory_table.py``.

    python scripts/memory_table.py               # both tables (about 5 minutes on 2 cores)
    python scripts/memory_table.py --tiled       # and a tiled run (about 2 minutes more)
    python scripts/memory_table.py --only-bytes  # the bytes-per-pixel table alone (seconds)

Prints two markdown tables (docs/howto/performance.md, "Memory before a run", shows them):

* **bytes per pixel** of the default layer map on VGG16 and VGG19, float32 and bfloat16: what one
  more output pixel costs a run (Adam; L-BFGS with its full 100-pair memory), and the two phases
  whose larger one sets the peak, a step and the targets' encoding;
* **calibration**: for the ``default`` and ``seed`` presets, Adam and L-BFGS, at 256 and 512 px
  (1024 px for the default with Adam, 256 px in bfloat16 once), the estimate next to the peak
  measured in a fresh process on one thread. Measured: the peak resident memory during the run
  (the kernel's high-water mark, reset just before it) less the resident memory just before it,
  when PyTorch, the network and the inputs are loaded and the estimate has been made, as
  :func:`neuralstyle.memory.check_fits` makes it before it reads the free memory; so it is
  compared with the estimate less the network's weights. Each run's config asks for 3 steps (a
  coarse-to-fine run still does at least one at every scale), and the estimate is of that
  config, so L-BFGS's memory holds 2 pairs here.

The estimate should be above every measured peak and at most about 1.5 times it.
"""

from __future__ import annotations

import argparse
import gc
import json
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal, cast

import torch

from neuralstyle import FeatureExtractor, StyleTransfer, get_preset
from neuralstyle.memory import estimate_memory, estimate_peak_bytes

__all__ = ["RUNS", "Run", "bytes_per_pixel_rows", "calibration_rows", "main", "measure"]

ROOT = Path(__file__).resolve().parent.parent
GIB = 2**30
STEPS = 3
Optimizer = Literal["adam", "lbfgs"]
Precision = Literal["float32", "bfloat16", "float16"]


@dataclass(frozen=True)
class Run:
    """One measured setup: a preset with an optimizer, a square size, a precision, tiles."""

    preset: str
    optimizer: Optimizer
    size: int
    precision: Precision = "float32"
    tile: int | None = None

    def arguments(self) -> list[str]:
        """The setup as ``--measure`` arguments."""
        tile = "none" if self.tile is None else str(self.tile)
        return [self.preset, self.optimizer, str(self.size), self.precision, tile]

    @classmethod
    def parse(cls, words: Sequence[str]) -> Run:
        """The setup from ``--measure`` arguments."""
        preset, optimizer, size, precision, tile = words
        return cls(
            preset,
            cast(Optimizer, optimizer),
            int(size),
            cast(Precision, precision),
            None if tile == "none" else int(tile),
        )

    def transfer(self) -> StyleTransfer:
        """The setup's StyleTransfer (3 steps, no memory check)."""
        return build(self.preset, self.optimizer, precision=self.precision, tile_size=self.tile)


RUNS = [
    Run("default", "adam", 256),
    Run("default", "adam", 512),
    Run("default", "adam", 1024),
    Run("default", "lbfgs", 256),
    Run("default", "lbfgs", 512),
    Run("seed", "adam", 256),
    Run("seed", "adam", 512),
    Run("seed", "lbfgs", 256),
    Run("seed", "lbfgs", 512),
    # bfloat16 autocast is about 4x slower on a CPU: once, small.
    Run("default", "adam", 256, "bfloat16"),
]
# With --tiled: the tiled loop (two scales above 512 px of 7), about 2 more minutes.
TILED_RUNS = [Run("default", "adam", 1024, tile=512)]


def build(
    preset: str,
    optimizer: Optimizer,
    *,
    backbone: Literal["vgg16", "vgg19"] = "vgg16",
    precision: Precision = "float32",
    steps: int = STEPS,
    tile_size: int | None = None,
) -> StyleTransfer:
    """The preset on the CPU with ``optimizer``, ``steps`` steps and no memory check."""
    chosen = get_preset(preset)
    config = replace(
        chosen.config,
        optimizer=optimizer,
        steps=steps,
        precision=precision,
        device="cpu",
        check_memory=False,
        tile_size=tile_size,
    )
    extractor = None
    if backbone != "vgg16":
        # Memory does not depend on the weights' values: random weights keep this offline.
        extractor = FeatureExtractor(chosen.layer_map.layers, backbone=backbone, weights="random")
    return StyleTransfer(chosen.layer_map, config=config, extractor=extractor)


def _status(field: str) -> int:
    """A ``/proc/self/status`` field in bytes (VmRSS, VmHWM)."""
    status = Path("/proc/self/status").read_text()
    found = re.search(rf"^{field}:\s+(\d+) kB", status, re.MULTILINE)
    if found is None:
        raise RuntimeError(f"no {field} in /proc/self/status (Linux only)")
    return int(found.group(1)) * 1024


def measure(run: Run) -> dict[str, Any]:
    """Run 3 steps of a square and return its measured peak (in this process: call it
    in a fresh one)."""
    torch.set_num_threads(1)
    transfer = run.transfer()
    # As check_fits does before it reads the free memory: the estimate's probe has run (and
    # warmed the libraries up).
    estimate_peak_bytes(transfer, run.size, run.size)
    generator = torch.Generator().manual_seed(0)
    content, style = torch.rand(2, 1, 3, run.size, run.size, generator=generator)
    gc.collect()
    # Writing 5 resets the high-water mark to the current resident size (Linux >= 4.0).
    Path("/proc/self/clear_refs").write_text("5")
    before = _status("VmRSS")
    began = time.perf_counter()
    steps = transfer.start(content, style)
    for _ in steps:
        pass
    return {
        "measured": _status("VmHWM") - before,
        "steps": steps.steps_done,
        "seconds": time.perf_counter() - began,
    }


def calibration_rows(runs: Sequence[Run]) -> list[dict[str, Any]]:
    """Measure every run in a fresh process and put its estimate beside it."""
    rows = []
    for run in runs:
        command = [sys.executable, __file__, "--measure", *run.arguments()]
        done = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT)
        measured = json.loads(done.stdout.strip().splitlines()[-1])
        transfer = run.transfer()
        weights = sum(p.numel() * p.element_size() for p in transfer.extractor.parameters())
        estimate = estimate_peak_bytes(transfer, run.size, run.size) - weights
        rows.append(
            {
                **asdict(run),
                "estimate": estimate,
                "ratio": estimate / measured["measured"],
                **measured,
            }
        )
        print(f"  measured {rows[-1]}", file=sys.stderr)
    return rows


def bytes_per_pixel_rows() -> list[dict[str, Any]]:
    """What one more output pixel costs, per backbone and precision, for the default layer map."""
    rows = []
    small, large = 1024, 2048
    backbones: tuple[Literal["vgg16", "vgg19"], ...] = ("vgg16", "vgg19")
    precisions: tuple[Literal["float32", "bfloat16"], ...] = ("float32", "bfloat16")
    for backbone in backbones:
        for precision in precisions:
            row: dict[str, Any] = {"backbone": backbone, "precision": precision}
            runs: tuple[tuple[Optimizer, int], ...] = (("adam", 300), ("lbfgs", 500))
            for optimizer, steps in runs:
                transfer = build(
                    "default", optimizer, backbone=backbone, precision=precision, steps=steps
                )
                low = estimate_peak_bytes(transfer, small, small)
                high = estimate_peak_bytes(transfer, large, large)
                row[optimizer] = (high - low) / (large**2 - small**2)
            parts = estimate_memory(transfer, large, large)
            row["step"] = parts.step / large**2
            row["encode"] = parts.encode / large**2
            rows.append(row)
    return rows


def _bytes_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| backbone | precision | run, Adam | run, L-BFGS (100 pairs) | one step | encoding |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        lines.append(
            f"| {row['backbone']} | {row['precision']} | {row['adam']:.0f} | "
            f"{row['lbfgs']:.0f} | {row['step']:.0f} | {row['encode']:.0f} |"
        )
    return "\n".join(lines)


def _calibration_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| preset | optimizer | precision | size | tile | steps | estimated GiB | measured GiB "
        "| ratio | seconds |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        lines.append(
            f"| {row['preset']} | {row['optimizer']} | {row['precision']} | {row['size']} | "
            f"{row['tile'] or '-'} | {row['steps']} | "
            f"{row['estimate'] / GIB:.3f} | {row['measured'] / GIB:.3f} | {row['ratio']:.2f} | "
            f"{row['seconds']:.0f} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Print the tables; ``--measure PRESET OPTIMIZER SIZE PRECISION TILE`` measures one run (a
    JSON line; TILE is a side or ``none``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--measure", nargs=5, metavar=("PRESET", "OPTIMIZER", "SIZE", "PRECISION", "TILE")
    )
    parser.add_argument("--tiled", action="store_true", help="also measure a tiled run")
    parser.add_argument("--only-bytes", action="store_true", help="skip the measured runs")
    args = parser.parse_args(argv)
    if args.measure:
        print(json.dumps(measure(Run.parse(args.measure))))
        return 0
    torch.set_num_threads(1)
    print("Bytes per output pixel (default layer map):\n")
    print(_bytes_table(bytes_per_pixel_rows()))
    if not args.only_bytes:
        print("\nEstimate against measured peak (CPU, one thread):\n")
        runs = RUNS + (TILED_RUNS if args.tiled else [])
        print(_calibration_table(calibration_rows(runs)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
