"""How step cost and memory grow with the image: ``python benchmarks/scale.py``.

On the seed's objective (the SEED preset: relu1_1..relu5_1, Gram / CHW, content weight 1e-2,
style weight 1e4) with the seeded random VGG19 of ``speed.py``, content chelsea and style
starry_night both resized to ``side x side``, for each size of ``--sizes`` (default 128 256 512
1024) and each loop: ours with Adam, ours with L-BFGS (one loss evaluation per step), and the
seed's loop (``seed_baseline.seed_step``):

* **seconds per step**: ``_common.seconds_per_call`` (median over ``--blocks`` blocks, no host
  sync inside a block); a block holds ``--block-pixels / side**2`` steps, at least one, so the
  1024 px seed runs 3 timed steps by default;
* **FLOP floor**: the step's FLOPs (``count_flops``, forward + backward) over the measured
  throughput of one VGG 3x3 convolution, and the measured time as a multiple of it ("x floor");
* **peak memory** of ``--memory-steps`` steps above what the process held just before them (the
  network, images, targets). On CPU each loop and size runs in a fresh process, forked from a
  server that has only imported the modules, after one step at 32 px to page the code in; the
  peak is the resident high-water mark ``VmHWM``, reset first (``ru_maxrss`` would include the
  parent's size, see ``_common.peak_memory``). On CUDA: ``torch.cuda.max_memory_allocated``.
  L-BFGS's history is not in it after two steps: its full size (100 pairs of image-sized
  vectors) is reported apart.

It also prints the time to the seed's loss as ``benchmarks/results/speed.json`` recorded it (and
any extractor-build timing found there), with a fresh timing of the default extractor's build
(``extractor_build.py``), each labelled with where it came from.

Writes ``--output`` (JSON; also the last printed line) and ``--plot`` (PNG: seconds per step and
peak memory against pixels, log-log), after a markdown table and the elapsed time. The default
run should take about 7-8 minutes on a quiet 2-core CPU (estimated from speed.py's step times).

Smoke use: ``--tiny`` (32 and 64 px, one timed step, nothing written unless ``--output`` or
``--plot`` is given) runs in seconds.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import math
import multiprocessing
import os
import platform
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

import seed_baseline as seed
import speed
import torch
from _common import (
    ConvThroughput,
    count_flops,
    load_pixels,
    load_vgg19_features,
    measure_conv_throughput,
    peak_memory,
    seconds_per_call,
    synchronize,
)
from _results import json_safe, write_results
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor, nn

from neuralstyle.examples import example_image
from neuralstyle.features import FeatureExtractor
from neuralstyle.presets import SEED

if TYPE_CHECKING:  # POSIX only, and only a type here
    from multiprocessing.context import ForkServerContext

__all__ = ["COLOURS", "LOOPS", "PLOT_SIZE", "draw_plot", "format_table", "from_speed_json", "main"]

LOOPS: dict[str, str] = {"adam": "ours Adam", "lbfgs": "ours L-BFGS", "seed": "seed loop"}
"""Loop key -> label in the table and the plot."""
PLOT_SIZE = (900, 1040)
"""Width and height of the PNG: two panels, one above the other, readable at 900 px wide."""
MIN_SIDE = 32
"""The seed runs all of ``vgg19().features``: five 2x poolings need at least 32 px."""
GIB = 2**30
_RESULTS = Path(__file__).resolve().parent / "results"
_TINY = {
    "sizes": [32, 64],
    "warmup": 0,
    "blocks": 1,
    "block_pixels": 1,
    "memory_steps": 1,
    "conv_channels": 32,
    "conv_size": 16,
    "conv_repeats": 2,
    "build_repeats": 1,
    "output": None,
    "plot": None,
}

Networks = tuple[nn.Sequential, FeatureExtractor]
"""The seed's whole VGG19 and our extractor, with the same weights."""


@dataclass(frozen=True)
class Timing:
    """Step cost of one loop at one size."""

    loop: str
    size: int
    seconds_per_step: float
    timed_steps: int
    flops_per_step: int


# -- setup -----------------------------------------------------------------------------------------


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256, 512, 1024])
    parser.add_argument("--loops", nargs="+", choices=list(LOOPS), default=list(LOOPS))
    parser.add_argument("--content", default=str(example_image("chelsea")))
    parser.add_argument("--style", default=str(example_image("starry_night")))
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps after the FLOP count")
    parser.add_argument("--blocks", type=int, default=3, help="timed blocks (median kept)")
    parser.add_argument(
        "--block-pixels",
        type=int,
        default=512 * 512,
        help="steps per block = this / side**2, at least 1 (fewer steps where they are slow)",
    )
    parser.add_argument("--memory-steps", type=int, default=2, help="steps of a memory probe")
    parser.add_argument("--conv-channels", type=int, default=256)
    parser.add_argument("--conv-size", type=int, default=64)
    parser.add_argument("--conv-repeats", type=int, default=15)
    parser.add_argument("--build-repeats", type=int, default=5, help="extractor builds timed")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--weights-seed", type=int, default=0, help="seed of the random VGG19")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--speed-json", type=Path, default=_RESULTS / "speed.json")
    parser.add_argument("--output", type=Path, default=_RESULTS / "scale.json")
    parser.add_argument("--plot", type=Path, default=_RESULTS / "scale.png")
    parser.add_argument("--tiny", action="store_true", help="smoke run: 32 and 64 px, one step")
    args = parser.parse_args(argv)
    if args.tiny:  # tiny values become the defaults; flags given explicitly still win
        parser.set_defaults(**_TINY)
        args = parser.parse_args(argv)
    _check_args(parser, args)
    return args


def _check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    positive = ("blocks", "block_pixels", "memory_steps", "build_repeats", "threads")
    for name in positive:
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.warmup < 0:
        parser.error("--warmup must be >= 0")
    if min(args.sizes) < MIN_SIDE:
        parser.error(f"--sizes must be >= {MIN_SIDE} (the seed runs all five VGG19 poolings)")


def _images(side: int, args: argparse.Namespace) -> tuple[Tensor, Tensor]:
    device = torch.device(args.device)
    content = load_pixels(args.content, (side, side)).to(device)
    style = load_pixels(args.style, (side, side)).to(device)
    return content, style


def _step_fn(
    loop: str, side: int, networks: Networks, args: argparse.Namespace
) -> tuple[Callable[[], object], int]:
    """One step of ``loop`` at ``side`` px, ready to call, and L-BFGS's full history in bytes.

    Everything a run holds before its first step (images, targets, optimizer) is built here, so
    the callable's cost is the step alone.
    """
    content, style = _images(side, args)
    model, extractor = networks
    if loop == "seed":
        content_n, style_n = seed.normalize(content), seed.normalize(style)
        target = content_n.clone()
        optimizer = seed.make_optimizer(target)
        return partial(seed.seed_step, model, content_n, style_n, target, optimizer), 0
    transfer = speed.seed_objective_transfer(
        extractor, torch.device(args.device), "lbfgs" if loop == "lbfgs" else "adam"
    )
    targets = transfer.targets(content, style)
    image = transfer.initial_image(targets)
    ours = transfer.make_optimizer(image)
    history = 0
    if isinstance(ours, torch.optim.LBFGS):
        # Two image-sized vectors per remembered step, once the history is full.
        history = 2 * int(ours.defaults["history_size"]) * image.numel() * image.element_size()
    return partial(transfer.step, image, targets, ours), history


# -- measurements ----------------------------------------------------------------------------------


def measure_step(loop: str, side: int, networks: Networks, args: argparse.Namespace) -> Timing:
    """Seconds and FLOPs per step of ``loop`` at ``side`` px.

    The FLOP count runs the first step, which doubles as a warm-up; ``--warmup`` more follow.
    """
    step, _ = _step_fn(loop, side, networks, args)
    flops = count_flops(step)
    calls = max(1, round(args.block_pixels / side**2))
    seconds = seconds_per_call(
        step,
        device=torch.device(args.device),
        warmup=args.warmup,
        blocks=args.blocks,
        calls_per_block=calls,
    )
    return Timing(loop, side, seconds, args.blocks * calls, flops)


def probe_memory(
    loop: str, side: int, networks: Networks, args: argparse.Namespace
) -> dict[str, Any]:
    """Peak memory of ``--memory-steps`` steps above what the process held before them."""
    device = torch.device(args.device)
    step, history = _step_fn(loop, side, networks, args)
    synchronize(device)
    with peak_memory(device) as reading:
        for _ in range(args.memory_steps):
            step()
    return {
        "loop": loop,
        "size": side,
        "added_bytes": reading.added_bytes,
        "baseline_bytes": reading.baseline_bytes,
        "method": reading.method,
        "lbfgs_history_bytes": history,
    }


def _probe_fresh(loop: str, side: int, weights: Path, args: argparse.Namespace) -> dict[str, Any]:
    """One memory probe in a process that has run nothing before."""
    torch.set_num_threads(args.threads)
    model = load_vgg19_features(weights).eval()
    extractor = FeatureExtractor(
        SEED.layer_map.layers, backbone="vgg19", weights=weights, convention="imagenet"
    )
    networks = (model, extractor)
    # A fresh process pages in the code and kernels of its first step (about 100 MB of shared
    # libraries and buffers): take that step at the smallest size first, so the probe counts what
    # the step itself holds.
    warm_up, _ = _step_fn(loop, MIN_SIDE, networks, args)
    warm_up()
    del warm_up
    gc.collect()
    return probe_memory(loop, side, networks, args)


def _probe_worker(send: Connection, *probe: Any) -> None:
    """Process target: run :func:`_probe_fresh` and send back its result or the traceback."""
    try:
        send.send(("ok", _probe_fresh(*probe)))
    except BaseException:
        send.send(("error", traceback.format_exc()))
        raise


def _probe_in_fresh_process(
    context: ForkServerContext, loop: str, side: int, weights: Path, args: argparse.Namespace
) -> dict[str, Any]:
    receive, send = context.Pipe(duplex=False)
    process = context.Process(target=_probe_worker, args=(send, loop, side, weights, args))
    process.start()
    send.close()  # the child holds the only writer: recv() ends when it exits
    with receive:
        try:
            status, value = receive.recv()
        except EOFError:
            status, value = "error", "the process ended without a result"
    process.join()
    if status != "ok" or process.exitcode != 0:
        raise RuntimeError(
            f"memory probe of {loop} at {side} px failed (exit code {process.exitcode}):\n{value}"
        )
    result: dict[str, Any] = value
    result["method"] = "fresh process per probe, " + result["method"]
    return result


def measure_memory(networks: Networks, args: argparse.Namespace) -> list[dict[str, Any]]:
    """One memory probe per loop and size: fresh processes on CPU, in process on CUDA.

    A process's resident set keeps what earlier work touched, so on CPU only a process that has
    done nothing else gives a clean baseline. Each probe gets its own process, forked from a
    server that has imported torch, torchvision and neuralstyle but run nothing
    (``forkserver``): as clean as ``python scale.py`` started afresh, without paying seconds of
    imports per probe. CUDA's allocator counts tensors exactly, in process.
    """
    pairs = [(loop, side) for side in args.sizes for loop in args.loops]
    if torch.device(args.device).type != "cpu":
        return [probe_memory(loop, side, networks, args) for loop, side in pairs]
    context = multiprocessing.get_context("forkserver")
    # Installed packages only: a forkserver of Python < 3.12 ignores sys.path.
    context.set_forkserver_preload(["torch", "torchvision", "PIL.Image", "neuralstyle"])
    with tempfile.TemporaryDirectory() as folder:
        weights = Path(folder) / "vgg19_features.pt"
        torch.save(networks[0].state_dict(), weights)
        return [_probe_in_fresh_process(context, loop, side, weights, args) for loop, side in pairs]


def extractor_build_times(repeats: int) -> dict[str, Any]:
    """A fresh timing of the default extractor's build, with ``extractor_build.py`` if it loads."""
    try:
        import extractor_build
    except ImportError:
        layers = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu4_2", "relu5_1"]
        FeatureExtractor(layers)  # warm-up: the cold build is extractor_build.py's business
        times = []
        for _ in range(repeats):
            began = time.perf_counter()
            FeatureExtractor(layers)
            times.append(time.perf_counter() - began)
        source = f"measured now: FeatureExtractor({layers}), warm, {repeats} repeats"
    else:
        layers = list(extractor_build.LAYERS)
        times = extractor_build.timed(lambda: FeatureExtractor(layers), repeats)
        source = (
            f"measured now: extractor_build.timed(FeatureExtractor({layers})), warm, "
            f"{repeats} repeats"
        )
    return {"source": source, "min_seconds": min(times), "median_seconds": statistics.median(times)}


def _keys_containing(data: Any, word: str, prefix: str = "") -> dict[str, Any]:
    """Every ``dotted.key -> value`` of nested dicts whose key contains ``word``."""
    found: dict[str, Any] = {}
    if isinstance(data, Mapping):
        for key, value in data.items():
            path = f"{prefix}{key}"
            if word in str(key):
                found[path] = value
            else:
                found.update(_keys_containing(value, word, path + "."))
    return found


def from_speed_json(path: Path) -> dict[str, Any]:
    """The time to the seed's loss (and any extractor-build entry) recorded by ``speed.py``.

    Args:
        path: ``speed.py``'s JSON output.

    Returns:
        ``found`` False when the file does not exist; otherwise the recorded seconds of the seed
        and of each of our optimizers, their ratio, and ``extractor_build``: every entry whose key
        contains "build" (empty when speed.py records none).
    """
    if not path.is_file():
        return {"source": str(path), "found": False}
    data = json.loads(path.read_text())
    quality = data.get("quality", {})
    ours = quality.get("ours", {})
    return {
        "source": str(path),
        "found": True,
        "time_to_seed_loss_ratio": data.get("time_to_seed_loss_ratio"),
        "content_shape": quality.get("content_shape"),
        "seed_seconds": quality.get("seed", {}).get("seconds"),
        "seed_steps": quality.get("seed", {}).get("steps"),
        "ours_seconds": {name: run.get("seconds") for name, run in ours.items()},
        "ours_reached": {name: run.get("reached") for name, run in ours.items()},
        "extractor_build": _keys_containing(data, "build"),
    }


# -- results ---------------------------------------------------------------------------------------


def _rows(
    timings: Iterable[Timing], memory: Iterable[Mapping[str, Any]], conv: ConvThroughput
) -> list[dict[str, Any]]:
    by_pair = {(probe["loop"], probe["size"]): probe for probe in memory}
    rows = []
    for timing in timings:
        floor = timing.flops_per_step / conv.flops_per_second
        probe = by_pair.get((timing.loop, timing.size), {})
        row: dict[str, Any] = {
            "loop": timing.loop,
            "label": LOOPS[timing.loop],
            "size": timing.size,
            "pixels": timing.size**2,
            "seconds_per_step": timing.seconds_per_step,
            "timed_steps": timing.timed_steps,
            "flops_per_step": timing.flops_per_step,
            "floor_seconds": floor,
            "x_floor": timing.seconds_per_step / floor if floor > 0 else math.inf,
            "peak_memory_gib": probe["added_bytes"] / GIB if probe else None,
        }
        if timing.loop == "lbfgs":
            row["lbfgs_history_gib"] = probe.get("lbfgs_history_bytes", 0) / GIB
        rows.append(row)
    return rows


def _environment(args: argparse.Namespace) -> dict[str, Any]:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {
        "torch": torch.__version__,
        "device": args.device,
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "load_average_1min_end": load,
    }


def _cell(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def format_table(results: Mapping[str, Any]) -> str:
    """The markdown table of the rows, then the conv, memory, speed.json and build lines."""
    lines = [
        "| size | loop | s/step | GFLOP/step | floor s | x floor | peak GiB | timed steps |",
        "|-----:|------|-------:|-----------:|--------:|--------:|---------:|------------:|",
    ]
    for row in results["rows"]:
        lines.append(
            f"| {row['size']} | {row['label']} | {_cell(row['seconds_per_step'], '.4f')} "
            f"| {row['flops_per_step'] / 1e9:.2f} | {_cell(row['floor_seconds'], '.4f')} "
            f"| {_cell(row['x_floor'], '.2f')} | {_cell(row['peak_memory_gib'], '.3f')} "
            f"| {row['timed_steps']} |"
        )
    conv = results["conv"]
    lines += [
        "",
        f"conv throughput: {conv['flops_per_second'] / 1e9:.1f} GFLOP/s ({conv['description']}); "
        "floor = step FLOPs / that throughput",
        f"peak memory: {results['memory_method']}, {results['memory_steps']} steps, above the "
        "process before its first step",
    ]
    history = [
        f"{row['size']} px {row['lbfgs_history_gib']:.3f} GiB"
        for row in results["rows"]
        if row.get("lbfgs_history_gib")
    ]
    if history:
        lines.append("L-BFGS history once full (100 pairs), not in its peak: " + ", ".join(history))
    lines += [*_speed_json_lines(results["speed_json"]), _build_line(results["extractor_build"])]
    lines.append(f"elapsed: {results['elapsed_seconds']:.1f} s")
    return "\n".join(lines)


def _speed_json_lines(recorded: Mapping[str, Any]) -> list[str]:
    source = recorded["source"]
    if not recorded["found"]:
        return [f"time to the seed's loss: n/a ({source} not found)"]
    ours = ", ".join(
        f"{name} {_cell(seconds, '.1f')} s"
        + ("" if recorded["ours_reached"].get(name) else " (not reached)")
        for name, seconds in recorded["ours_seconds"].items()
    )
    lines = [
        f"time to the seed's loss (from {source}, content {recorded['content_shape']}): seed "
        f"{_cell(recorded['seed_seconds'], '.1f')} s for {recorded['seed_steps']} steps; ours "
        f"{ours}; ratio {_cell(recorded['time_to_seed_loss_ratio'], '.4f')}"
    ]
    builds = recorded["extractor_build"]
    shown = ", ".join(f"{key} = {value}" for key, value in builds.items()) or "none recorded there"
    lines.append(f"extractor build (from {source}): {shown}")
    return lines


def _build_line(build: Mapping[str, Any]) -> str:
    return (
        f"extractor build ({build['source']}): min {build['min_seconds'] * 1e3:.1f} ms, "
        f"median {build['median_seconds'] * 1e3:.1f} ms"
    )


# -- plot ------------------------------------------------------------------------------------------

COLOURS: dict[str, tuple[int, int, int]] = {
    "adam": (31, 119, 180),
    "lbfgs": (255, 127, 14),
    "seed": (214, 39, 40),
    "floor": (100, 100, 100),
}
"""Line colour of each loop (and of the FLOP floor) in the plot."""
_INK = (30, 30, 30)
_GRID = (225, 225, 225)
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


@dataclass(frozen=True)
class _Series:
    label: str
    colour: tuple[int, int, int]
    points: list[tuple[float, float]]
    dashed: bool = False


def _font(size: int) -> Font:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has one bitmap size
        return ImageFont.load_default()


def _text_size(draw: ImageDraw.ImageDraw, text: str, font: Font) -> tuple[int, int]:
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    return int(right - left), int(bottom - top)


def _log_range(values: Sequence[float], margin: float) -> tuple[float, float]:
    low, high = math.log10(min(values)), math.log10(max(values))
    pad = max((high - low) * margin, 0.15)
    return low - pad, high + pad


def _ticks(low: float, high: float) -> list[float]:
    """1-2-5 ticks between ``10**low`` and ``10**high``, decades only when they are many."""
    decades = range(math.floor(low) - 1, math.ceil(high) + 1)
    ticks = [m * 10.0**k for k in decades for m in (1, 2, 5)]
    inside = [t for t in ticks if low <= math.log10(t) <= high]
    if len(inside) > 8:
        inside = [t for t in inside if math.isclose(math.log10(t) % 1, 0, abs_tol=1e-9)]
    return inside


def _dashed(
    draw: ImageDraw.ImageDraw,
    points: Sequence[tuple[float, float]],
    colour: tuple[int, int, int],
) -> None:
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        length = math.hypot(x1 - x0, y1 - y0)
        for start in range(0, int(length), 16):
            end = min(start + 9, length)
            a, b = start / length, end / length
            draw.line(
                [
                    (x0 + (x1 - x0) * a, y0 + (y1 - y0) * a),
                    (x0 + (x1 - x0) * b, y0 + (y1 - y0) * b),
                ],
                fill=colour,
                width=3,
            )


def _panel(
    image: Image.Image,
    box: tuple[int, int, int, int],
    title: str,
    y_label: str,
    series: Sequence[_Series],
    sizes: Sequence[int],
) -> None:
    """One log-log panel in ``box`` (left, top, right, bottom): axes, ticks, lines, legend."""
    draw = ImageDraw.Draw(image)
    font, small = _font(18), _font(15)
    left, top, right, bottom = box[0] + 95, box[1] + 80, box[2] - 20, box[3] - 70
    draw.text((box[0] + 95, box[1] + 10), title, fill=_INK, font=font)
    ys = [y for s in series for _, y in s.points]
    if not ys:
        draw.text((left + 20, top + 20), "no data", fill=_INK, font=font)
        return
    x_low, x_high = _log_range([side**2 for side in sizes], 0.08)
    y_low, y_high = _log_range(ys, 0.08)

    def to_pixel(x: float, y: float) -> tuple[float, float]:
        u = (math.log10(x) - x_low) / (x_high - x_low)
        v = (math.log10(y) - y_low) / (y_high - y_low)
        return left + u * (right - left), bottom - v * (bottom - top)

    for tick in _ticks(y_low, y_high):
        _, py = to_pixel(10**x_low, tick)
        draw.line([(left, py), (right, py)], fill=_GRID, width=1)
        label = f"{tick:g}"
        width, height = _text_size(draw, label, small)
        draw.text((left - width - 8, py - height / 2 - 3), label, fill=_INK, font=small)
    for side in sizes:
        px, _ = to_pixel(side**2, 10**y_low)
        draw.line([(px, top), (px, bottom)], fill=_GRID, width=1)
        label = f"{side}x{side}"
        width, _ = _text_size(draw, label, small)
        draw.text((px - width / 2, bottom + 8), label, fill=_INK, font=small)
    draw.rectangle([left, top, right, bottom], outline=_INK, width=2)
    x_label = "image size (pixels, log scale)"
    width, _ = _text_size(draw, x_label, font)
    draw.text(((left + right - width) / 2, bottom + 36), x_label, fill=_INK, font=font)
    _vertical_text(image, y_label, font, (box[0] + 8, (top + bottom) // 2))
    for s in series:
        points = [to_pixel(x, y) for x, y in s.points]
        if s.dashed:
            _dashed(draw, points, s.colour)
        elif len(points) > 1:
            draw.line(points, fill=s.colour, width=3)
        for px, py in points:
            draw.ellipse([px - 5, py - 5, px + 5, py + 5], fill=s.colour)
    _legend(draw, series, (left, box[1] + 44), small)


def _vertical_text(image: Image.Image, text: str, font: Font, centre_left: tuple[int, int]) -> None:
    probe = ImageDraw.Draw(image)
    width, height = _text_size(probe, text, font)
    label = Image.new("RGB", (width + 4, height + 8), "white")
    ImageDraw.Draw(label).text((2, 0), text, fill=_INK, font=font)
    turned = label.rotate(90, expand=True)
    image.paste(turned, (centre_left[0], centre_left[1] - turned.height // 2))


def _legend(
    draw: ImageDraw.ImageDraw, series: Sequence[_Series], start: tuple[int, int], font: Font
) -> None:
    """One row of line samples and labels above the plot, where it hides no data."""
    x, y = start
    for s in series:
        sample = [(x, y + 10), (x + 32, y + 10)]
        if s.dashed:
            _dashed(draw, sample, s.colour)
        else:
            draw.line(sample, fill=s.colour, width=3)
        _, height = _text_size(draw, s.label, font)
        draw.text((x + 40, y + 10 - height / 2 - 3), s.label, fill=_INK, font=font)
        x += 40 + _text_size(draw, s.label, font)[0] + 28


def _series(rows: Sequence[Mapping[str, Any]], key: str) -> list[_Series]:
    out = []
    for loop, label in LOOPS.items():
        points = [
            (float(row["pixels"]), float(row[key]))
            for row in rows
            if row["loop"] == loop and row.get(key) is not None and row[key] > 0
        ]
        if points:
            out.append(_Series(label, COLOURS[loop], points))
    return out


def draw_plot(results: Mapping[str, Any], path: Path) -> None:
    """Seconds per step (with the FLOP floor of ours Adam) and peak memory against pixels.

    Args:
        results: :func:`main`'s results (``rows``, ``sizes``, ``environment``).
        path: The PNG to write, :data:`PLOT_SIZE`.
    """
    rows, sizes = results["rows"], results["sizes"]
    image = Image.new("RGB", PLOT_SIZE, "white")
    env = results["environment"]
    heading = (
        f"Seed objective, chelsea x starry_night, seeded random VGG19 - {env['device']}, "
        f"threads: {env['threads']}, torch {env['torch']}"
    )
    ImageDraw.Draw(image).text((20, 10), heading, fill=_INK, font=_font(16))
    floor = [
        (float(row["pixels"]), float(row["floor_seconds"]))
        for row in rows
        if row["loop"] == "adam" and row.get("floor_seconds")
    ]
    timing = _series(rows, "seconds_per_step")
    if floor:
        timing.append(_Series("FLOP floor (ours Adam)", COLOURS["floor"], floor, dashed=True))
    half = (PLOT_SIZE[1] - 40) // 2
    width = PLOT_SIZE[0]
    _panel(image, (0, 40, width, 40 + half), "Seconds per step", "seconds / step", timing, sizes)
    memory = _series(rows, "peak_memory_gib")
    _panel(
        image,
        (0, 40 + half, width, PLOT_SIZE[1]),
        "Peak memory of a step (above the state before it)",
        "GiB",
        memory,
        sizes,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


# -- main ------------------------------------------------------------------------------------------


def _measure(args: argparse.Namespace, began: float) -> dict[str, Any]:
    device = torch.device(args.device)
    networks = speed.seed_networks(args.weights_seed, device)
    conv = measure_conv_throughput(
        device, channels=args.conv_channels, size=args.conv_size, repeats=args.conv_repeats
    )
    timings = [
        measure_step(loop, side, networks, args) for side in args.sizes for loop in args.loops
    ]
    build = extractor_build_times(args.build_repeats)
    memory = measure_memory(networks, args)
    return {
        "sizes": list(args.sizes),
        "rows": _rows(timings, memory, conv),
        "conv": {**asdict(conv), "flops_per_second": conv.flops_per_second},
        "memory_method": memory[0]["method"] if memory else None,
        "memory_steps": args.memory_steps,
        "speed_json": from_speed_json(args.speed_json),
        "extractor_build": build,
        "environment": _environment(args),
        "elapsed_seconds": time.perf_counter() - began,
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Measure every loop at every size; print the table, the elapsed time and the JSON line.

    Args:
        argv: Command-line arguments (``None``: ``sys.argv[1:]``).

    Returns:
        The results (also written to ``--output``; the plot goes to ``--plot``).

    Example:
        >>> _ = main(["--tiny"])  # doctest: +SKIP
    """
    began = time.perf_counter()
    args = _parse(argv)
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        results: dict[str, Any] = json_safe(_measure(args, began))
    finally:
        torch.set_num_threads(threads)
    print(format_table(results))
    if args.plot is not None:
        draw_plot(results, args.plot)
        print(f"plot: {args.plot}")
    write_results(results, args.output)
    return results


if __name__ == "__main__":
    main()
    sys.exit(0)
