"""GPU step cost and memory across precisions and options: ``python benchmarks/gpu.py``.

Prepared for one NVIDIA H200, run once; it stops starting new work after ``--time-guard``
seconds (default 420) so the whole run ends within 8 minutes.

For two objectives, each with Adam through ``StyleTransfer.step`` on square chelsea x
starry_night images at 512, 1024 and 2048 px:

* ``default``: the default preset's layers and config on the bundled VGG16;
* ``seed``: the SEED preset on the seeded random VGG19 of ``speed.py``;

and these variants: fp32 (TF32 off), TF32 (``torch.backends.cuda.matmul.allow_tf32`` and
``torch.backends.cudnn.allow_tf32``), bf16 autocast (``precision="bfloat16"``; its float32 Grams
on TF32), each of those two with ``channels_last``, and ``torch.compile`` on top of TF32 and of
bf16 + channels_last (512 and 1024 px only, after every eager row, since compiling takes the
longest; skipped when the guard is near).

Per row: seconds per step (``_common.seconds_per_call``: the device is synchronized at block edges
only), the first step's seconds (compilation included for compiled rows), TFLOP/s from
``count_flops`` (forward + backward, counted once per objective and size in eager float32), the
percent of the dense bf16 peak (``--peak-tflops``, default 989, H200 SXM), and the peak memory
(``torch.cuda.max_memory_allocated`` over the row: network, targets and steps).

The no-host-sync check runs ``--sync-steps`` (20) Adam steps of ``StyleTransfer.step`` for each
objective under ``torch.cuda.set_sync_debug_mode("error")`` and records pass, or fail with the
error text.

Writes ``--output`` (default ``benchmarks/results/gpu.json``: date, device name, torch version,
rows) and prints a markdown table; the last line is the JSON. Without CUDA it exits with status
2 and one line, unless ``--device cpu --tiny``: a dry run of the same code at 32 and 48 px on
CPU, where the sync check and the compiled rows are skipped and recorded as such, memory is not
measured, and nothing is written unless ``--output`` is given. Progress rows go to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import datetime
import gc
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any, Literal

import speed
import torch
from _common import count_flops, load_pixels, peak_memory, seconds_per_call, synchronize
from _results import json_safe, write_results
from torch import Tensor

from neuralstyle.config import TransferConfig
from neuralstyle.examples import example_image
from neuralstyle.features import FeatureExtractor
from neuralstyle.layers import LayerMap
from neuralstyle.presets import DEFAULT, SEED
from neuralstyle.transfer import StyleTransfer

__all__ = ["COMPILED", "EAGER", "Variant", "format_table", "main"]

GIB = 2**30
COMPILE_RESERVE_SECONDS = 90.0
"""Compiled rows start only this long before the guard: compiling can take a minute."""
_DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "gpu.json"
_TINY = {
    "sizes": [32, 48],
    "compile_sizes": [32],
    "warmup": 0,
    "blocks": 1,
    "block_pixels": 1,
    "sync_steps": 2,
    "output": None,
}


@dataclass(frozen=True)
class Variant:
    """One way of running the same steps."""

    name: str
    precision: Literal["float32", "bfloat16"]
    tf32: bool
    channels_last: bool = False
    compile: bool = False


EAGER = (
    Variant("fp32", "float32", tf32=False),
    Variant("tf32", "float32", tf32=True),
    Variant("bf16", "bfloat16", tf32=True),
    Variant("tf32+channels_last", "float32", tf32=True, channels_last=True),
    Variant("bf16+channels_last", "bfloat16", tf32=True, channels_last=True),
)
COMPILED = (
    Variant("bf16+channels_last+compile", "bfloat16", tf32=True, channels_last=True, compile=True),
    Variant("tf32+compile", "float32", tf32=True, compile=True),
)


@dataclass(frozen=True)
class Objective:
    """A layer map and config with the network they run on."""

    name: str
    layer_map: LayerMap
    config: TransferConfig
    extractor: FeatureExtractor


# -- setup -----------------------------------------------------------------------------------------


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1024, 2048])
    parser.add_argument("--compile-sizes", type=int, nargs="*", default=[512, 1024])
    parser.add_argument("--content", default=str(example_image("chelsea")))
    parser.add_argument("--style", default=str(example_image("starry_night")))
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps after the first")
    parser.add_argument("--blocks", type=int, default=5, help="timed blocks (median kept)")
    parser.add_argument(
        "--block-pixels",
        type=int,
        default=2 * 2048 * 2048,
        help="steps per block = this / side**2, at least 1",
    )
    parser.add_argument("--sync-steps", type=int, default=20, help="steps of the sync check")
    parser.add_argument("--peak-tflops", type=float, default=989.0, help="dense bf16 peak")
    parser.add_argument("--time-guard", type=float, default=420.0, help="seconds; then skip")
    parser.add_argument("--weights-seed", type=int, default=0, help="seed of the random VGG19")
    parser.add_argument("--device", default="cuda", help="'cuda', or 'cpu' with --tiny")
    parser.add_argument("--tiny", action="store_true", help="32 and 48 px, one timed step")
    parser.add_argument("--output", type=Path, default=_DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    if args.tiny:  # tiny values become the defaults; flags given explicitly still win
        parser.set_defaults(**_TINY)
        args = parser.parse_args(argv)
    for name in ("blocks", "block_pixels", "sync_steps"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.warmup < 0 or args.peak_tflops <= 0:
        parser.error("--warmup must be >= 0 and --peak-tflops > 0")
    if torch.device(args.device).type == "cpu" and not args.tiny:
        parser.error("--device cpu is a dry run only: add --tiny")
    return args


def _objectives(args: argparse.Namespace) -> list[Objective]:
    device = torch.device(args.device)
    bundled = FeatureExtractor(DEFAULT.layer_map.layers)
    seed_model, seeded = speed.seed_networks(args.weights_seed, device)
    del seed_model  # the seed's own loop is not measured here
    return [
        Objective("default", DEFAULT.layer_map, DEFAULT.config, bundled.to(device)),
        Objective("seed", SEED.layer_map, SEED.config, seeded.to(device)),
    ]


def _transfer(objective: Objective, variant: Variant, device: torch.device) -> StyleTransfer:
    """A fresh loop on its own copy of the network, in the layout the variant's config asks
    for (StyleTransfer converts only a network it builds itself)."""
    config = replace(
        objective.config,
        device=str(device),
        style_scale=None,  # the style is loaded at the content's size already
        start_size=None,  # one scale: the step at the size measured
        precision=variant.precision,
        channels_last=variant.channels_last,
        compile=variant.compile,
    )
    extractor = copy.deepcopy(objective.extractor).to(memory_format=config.memory_format(device))
    return StyleTransfer(objective.layer_map, config=config, extractor=extractor)


@contextlib.contextmanager
def _tf32(enabled: bool) -> Iterator[None]:
    """TF32 matmuls and convolutions on or off inside the block; the old settings after it."""
    before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = enabled
    torch.backends.cudnn.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


def _images(side: int, args: argparse.Namespace) -> tuple[Tensor, Tensor]:
    device = torch.device(args.device)
    content = load_pixels(args.content, (side, side)).to(device)
    style = load_pixels(args.style, (side, side)).to(device)
    return content, style


def _release(device: torch.device) -> None:
    """Free the last row's tensors so the next row's peak starts from the networks alone."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


# -- measurements ----------------------------------------------------------------------------------


def sync_check(objective: Objective, args: argparse.Namespace) -> dict[str, Any]:
    """``--sync-steps`` Adam steps under ``set_sync_debug_mode("error")``: pass, fail or skipped.

    The targets, image and optimizer are made before the mode is set: only the steps are checked.
    """
    record: dict[str, Any] = {"objective": objective.name, "steps": args.sync_steps}
    device = torch.device(args.device)
    if device.type != "cuda":
        return {**record, "status": "skipped", "reason": "needs CUDA (CPU dry run)"}
    side = min(args.sizes)
    transfer = _transfer(objective, EAGER[0], device)
    targets = transfer.targets(*_images(side, args))
    image = transfer.initial_image(targets)
    optimizer = transfer.make_optimizer(image)
    synchronize(device)
    try:
        torch.cuda.set_sync_debug_mode("error")
        for _ in range(args.sync_steps):
            transfer.step(image, targets, optimizer)
    except RuntimeError as error:
        return {**record, "size": side, "status": "fail", "error": str(error)}
    finally:
        torch.cuda.set_sync_debug_mode("default")
        synchronize(device)
    return {**record, "size": side, "status": "pass"}


def measure_row(
    objective: Objective,
    variant: Variant,
    side: int,
    args: argparse.Namespace,
    flops: dict[tuple[str, int], int],
) -> dict[str, Any]:
    """Time ``variant`` of ``objective`` at ``side`` px; fills ``flops`` on an eager row.

    Returns:
        The row: seconds per step, first step, timed steps, FLOPs, TFLOP/s, percent of the
        peak, peak memory in GiB (None on CPU).
    """
    device = torch.device(args.device)
    if variant.compile:
        torch.compiler.reset()  # compile this size afresh, not as a recompile of the last one
    memory = peak_memory(device) if device.type == "cuda" else contextlib.nullcontext()
    with _tf32(variant.tf32), memory as reading:
        transfer = _transfer(objective, variant, device)
        targets = transfer.targets(*_images(side, args))
        image = transfer.initial_image(targets)
        step = partial(transfer.step, image, targets, transfer.make_optimizer(image))
        synchronize(device)
        began = time.perf_counter()
        step()
        synchronize(device)
        first = time.perf_counter() - began
        key = (objective.name, side)
        if key not in flops and not variant.compile:
            flops[key] = count_flops(step)  # counted in eager mode, the same for every variant
        calls = max(1, round(args.block_pixels / side**2))
        seconds = seconds_per_call(
            step, device=device, warmup=args.warmup, blocks=args.blocks, calls_per_block=calls
        )
    count = flops.get(key)
    tflops = count / seconds / 1e12 if count is not None else None
    peak = reading.peak_bytes / GIB if reading is not None and reading.peak_bytes else None
    return {
        "status": "ok",
        "seconds_per_step": seconds,
        "first_step_seconds": first,
        "timed_steps": args.blocks * calls,
        "flops_per_step": count,
        "tflops": tflops,
        "percent_of_peak": 100 * tflops / args.peak_tflops if tflops is not None else None,
        "peak_memory_gib": peak,
    }


def _plan(
    objectives: Sequence[Objective], args: argparse.Namespace
) -> list[tuple[Objective, Variant, int]]:
    """Every row in the order it runs: all eager rows by size, then the compiled ones."""
    eager = [(o, v, s) for s in args.sizes for o in objectives for v in EAGER]
    compiled = [(o, v, s) for v in COMPILED for s in args.compile_sizes for o in objectives]
    return eager + compiled


def _skip_reason(variant: Variant, elapsed: float, args: argparse.Namespace) -> str | None:
    if variant.compile and torch.device(args.device).type != "cuda":
        return "dry run: torch.compile takes minutes on CPU"
    guard = args.time_guard - (COMPILE_RESERVE_SECONDS if variant.compile else 0.0)
    if elapsed > guard:
        return f"time guard: {elapsed:.0f} s elapsed, limit {guard:.0f} s for this row"
    return None


def run_rows(
    objectives: Sequence[Objective], args: argparse.Namespace, began: float
) -> list[dict[str, Any]]:
    """Measure the planned rows; record skipped and failed ones instead of stopping."""
    device = torch.device(args.device)
    flops: dict[tuple[str, int], int] = {}
    rows = []
    for objective, variant, side in _plan(objectives, args):
        row: dict[str, Any] = {
            "objective": objective.name,
            "variant": variant.name,
            "size": side,
            "precision": variant.precision,
            "tf32": variant.tf32,
            "channels_last": variant.channels_last,
            "compile": variant.compile,
        }
        reason = _skip_reason(variant, time.perf_counter() - began, args)
        if reason is not None:
            rows.append({**row, "status": "skipped", "reason": reason})
            continue
        try:
            row.update(measure_row(objective, variant, side, args, flops))
        except Exception as error:  # one failed row must not cost the rest of a one-shot run
            row.update(status="error", error=f"{type(error).__name__}: {error}"[:2000])
            torch.compiler.reset()
        _release(device)
        rows.append(row)
        print(_table_row(row), file=sys.stderr, flush=True)  # progress, should the run be cut
    return rows


# -- report ----------------------------------------------------------------------------------------

_HEADER = (
    "| objective | variant | size | status | s/step | first step s | TFLOP/s | % bf16 peak "
    "| peak GiB |"
)


def _cell(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def _table_row(row: dict[str, Any]) -> str:
    status = (
        row["status"]
        if row["status"] == "ok"
        else f"{row['status']}: " + row.get("reason", row.get("error", ""))
    )
    status = status.replace("\n", " ").replace("|", "/")[:300]  # one markdown cell
    numbers = [
        _cell(row.get("seconds_per_step"), ".5f"),
        _cell(row.get("first_step_seconds"), ".3f"),
        _cell(row.get("tflops"), ".1f"),
        _cell(row.get("percent_of_peak"), ".1f"),
        _cell(row.get("peak_memory_gib"), ".2f"),
    ]
    return f"| {row['objective']} | {row['variant']} | {row['size']} | {status} | " + (
        " | ".join(numbers) + " |"
    )


def format_table(results: dict[str, Any]) -> str:
    """The markdown table of the rows, then the sync check and the run's facts."""
    lines = [_HEADER, "|---|---|--:|---|--:|--:|--:|--:|--:|"]
    lines += [_table_row(row) for row in results["rows"]]
    lines.append("")
    for check in results["sync_check"]:
        detail = check.get("error") or check.get("reason") or f"{check['steps']} steps"
        lines.append(f"no-host-sync check, {check['objective']}: {check['status']} ({detail})")
    lines.append(
        f"{results['device']}, torch {results['torch']}, CUDA {results['cuda']}, peak "
        f"{results['peak_tflops']} TFLOP/s (dense bf16), elapsed {results['elapsed_seconds']:.0f} s"
    )
    return "\n".join(lines)


# -- main ------------------------------------------------------------------------------------------


def _no_cuda(args: argparse.Namespace) -> str | None:
    """Why this run cannot start, or None."""
    if torch.device(args.device).type == "cpu":
        return None  # the --tiny dry run (_parse refuses cpu without it)
    if not torch.cuda.is_available():
        return (
            f"no CUDA device: torch.cuda.is_available() is False (torch {torch.__version__}, "
            f"built for CUDA {torch.version.cuda}); run on a GPU machine, or add --device cpu "
            "--tiny for a dry run"
        )
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run every row and the sync check; print the table and the JSON line; write the JSON.

    Args:
        argv: Command-line arguments (``None``: ``sys.argv[1:]``).

    Returns:
        0, or 2 when there is no CUDA device (one line on stderr says so).

    Example:
        >>> main(["--device", "cpu", "--tiny", "--output", "gpu.json"])  # doctest: +SKIP
        0
    """
    began = time.perf_counter()
    args = _parse(argv)
    problem = _no_cuda(args)
    if problem is not None:
        print(problem, file=sys.stderr)
        return 2
    device = torch.device(args.device)
    objectives = _objectives(args)
    checks = [sync_check(objective, args) for objective in objectives]
    _release(device)
    print(_HEADER, file=sys.stderr, flush=True)
    rows = run_rows(objectives, args, began)
    cuda = device.type == "cuda"
    results = json_safe(
        {
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "device": torch.cuda.get_device_name(device) if cuda else "cpu (dry run)",
            "torch": torch.__version__,
            "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version() if cuda else None,  # type: ignore[no-untyped-call]
            "dry_run": not cuda,
            "peak_tflops": args.peak_tflops,
            "sizes": list(args.sizes),
            "compile_sizes": list(args.compile_sizes),
            "time_guard_seconds": args.time_guard,
            "sync_check": checks,
            "rows": rows,
            "elapsed_seconds": time.perf_counter() - began,
        }
    )
    print(format_table(results))
    write_results(results, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
