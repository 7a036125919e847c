"""Picture quality of the presets on the example images: ``python benchmarks/quality.py``.

For each chosen preset (``--presets``, default ``default``; ``all`` for every one in
``neuralstyle.PRESETS``) and each content x style pair of ``examples/images`` (5 x 5 = 25), it
runs the transfer at ``--size`` (long side, default 512) with the bundled weights and measures:

* ``seconds``: wall time of the whole ``run()`` call, images loaded and targets encoded included
  (building the network is done once per preset and reported apart);
* ``content_distance``: ``||F(out) - F(content)||^2 / ||F(content)||^2`` on ``relu4_2`` of the
  bundled VGG16, the content at the output's size (a fixed layer, not the default preset's
  content layers, so retuning the default does not move the ruler);
* ``style_distance``: the same relative distance between Gram matrices (``C*H*W``-normalized),
  averaged over ``relu1_1``..``relu5_1``, the style image at its own size;
* ``histogram_distance``: total variation distance between the joint RGB histograms (8 x 8 x 8
  bins) of the output and the style image, in [0, 1];
* ``edge_ssim``: mean SSIM (11-px Gaussian window, sigma 1.5) between the Sobel magnitudes of
  the BT.601 luma of the output and of the content at the output's size, in [-1, 1].

Lower distances and a higher SSIM are better; content and style pull against each other, so read
them together (and look at the pictures: ``--save-images DIR``). The measures are in
``benchmarks/quality_metrics.py``.

The table goes to stdout; the last line is one JSON object, also written to ``--output`` unless
``--no-write``. ``max_seconds_512`` is the slowest run of the ``default`` preset as shipped: it is
null unless the run used size 512, the preset's own step count and the bundled weights.

Smoke use: ``--size 32 --steps 2 --weights random --pairs 2`` runs in seconds, offline.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
from _results import json_safe, write_results
from quality_metrics import color_histogram_distance, edge_ssim, feature_distance, gram_distance
from torch import Tensor

from neuralstyle import (
    PRESETS,
    FeatureExtractor,
    Preset,
    StyleTransfer,
    TransferConfig,
    load_image,
    to_pil,
)

__all__ = ["CONTENT_LAYERS", "STYLE_LAYERS", "Pair", "Record", "main"]

CONTENT_LAYERS = ("relu4_2",)
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
TARGET_SECONDS_512 = 300.0
"""The issue's target: the default preset at 512 px in at most 5 minutes per image (2-core CPU)."""
_ROOT = Path(__file__).resolve().parents[1]
_IMAGES = _ROOT / "examples" / "images"
_DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "quality.json"
_METRICS = ("seconds", "content_distance", "style_distance", "histogram_distance", "edge_ssim")


@dataclass(frozen=True)
class Pair:
    """One content image and one style image."""

    content: Path
    style: Path

    @property
    def name(self) -> str:
        """``<content>__<style>``, the stem of the saved result."""
        return f"{self.content.stem}__{self.style.stem}"


@dataclass(frozen=True)
class Record:
    """One run of one preset on one pair, with its measures."""

    preset: str
    content: str
    style: str
    height: int
    width: int
    steps: int
    stop_reason: str | None
    seconds: float
    seconds_targets: float
    content_distance: float
    style_distance: float
    histogram_distance: float
    edge_ssim: float


# -- setup -----------------------------------------------------------------------------------------


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--presets",
        nargs="+",
        default=["default"],
        metavar="NAME",
        help=f"presets to run, or 'all' (one of: {', '.join(PRESETS)})",
    )
    parser.add_argument("--images", type=Path, default=_IMAGES, help="folder with content/, style/")
    parser.add_argument("--contents", nargs="+", metavar="NAME", help="only these content images")
    parser.add_argument("--styles", nargs="+", metavar="NAME", help="only these style images")
    parser.add_argument("--pairs", type=int, default=None, help="only the first N pairs")
    parser.add_argument("--size", type=int, default=512, help="long side of the output (px)")
    parser.add_argument("--steps", type=int, default=None, help="override every preset's steps")
    parser.add_argument(
        "--weights",
        choices=("bundled", "random"),
        default="bundled",
        help="'random': seeded random VGG16 for transfer and measures (smoke tests only)",
    )
    parser.add_argument("--device", default=None, help="torch device (default: the preset's)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--save-images", type=Path, default=None, metavar="DIR")
    parser.add_argument("--output", type=Path, default=_DEFAULT_OUTPUT)
    parser.add_argument("--no-write", action="store_true", help="print only, write no JSON file")
    args = parser.parse_args(argv)
    args.presets = _preset_names(parser, args.presets)
    for option in ("pairs", "size", "steps", "threads"):
        value = getattr(args, option)
        if value is not None and value < 1:
            parser.error(f"--{option} must be a positive int, got {value}")
    args.pair_list = _pairs(parser, args)
    return args


def _preset_names(parser: argparse.ArgumentParser, names: list[str]) -> list[str]:
    if "all" in names:
        return list(PRESETS)
    unknown = [name for name in names if name not in PRESETS]
    if unknown:
        parser.error(f"unknown preset(s) {', '.join(unknown)}; choose from {', '.join(PRESETS)}")
    return list(dict.fromkeys(names))


def _images(parser: argparse.ArgumentParser, folder: Path, only: list[str] | None) -> list[Path]:
    """The JPEGs of ``folder`` in name order, restricted to the stems in ``only``."""
    found = sorted(folder.glob("*.jpg"))
    if not found:
        parser.error(f"no .jpg images in {folder}")
    if only is None:
        return found
    stems = {path.stem: path for path in found}
    unknown = [name for name in only if name not in stems]
    if unknown:
        parser.error(
            f"no image named {', '.join(unknown)} in {folder}; available: {', '.join(stems)}"
        )
    return [stems[name] for name in dict.fromkeys(only)]


def _pairs(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[Pair]:
    contents = _images(parser, args.images / "content", args.contents)
    styles = _images(parser, args.images / "style", args.styles)
    pairs = [Pair(content, style) for content in contents for style in styles]
    return pairs[: args.pairs]


def _transfer(preset: Preset, args: argparse.Namespace) -> StyleTransfer:
    """The preset at ``--size``, with ``--steps`` and ``--device`` if given."""
    changes: dict[str, Any] = {"size": args.size}
    if args.steps is not None:
        changes["steps"] = args.steps
    if args.device is not None:
        changes["device"] = args.device
    extractor = None
    if args.weights == "random":
        extractor = FeatureExtractor(preset.layer_map.layers, weights="random", seed=0)
    config = replace(preset.config, **changes)
    return StyleTransfer(preset.layer_map, config=config, extractor=extractor)


# -- measuring -------------------------------------------------------------------------------------


class Judge:
    """The measuring network and the features of the reference images, each encoded once.

    Args:
        weights: ``"bundled"`` or ``"random"`` (the same choice as the transfer's).
        device: Where to run the network.
    """

    def __init__(self, weights: str, device: torch.device) -> None:
        layers = [*STYLE_LAYERS, *CONTENT_LAYERS]
        chosen = "random" if weights == "random" else None
        self.network = FeatureExtractor(layers, weights=chosen).to(device)
        self.device = device
        self._cache: dict[tuple[Path, tuple[int, int] | None], dict[str, Tensor]] = {}

    @torch.no_grad()
    def features(self, image: Tensor) -> dict[str, Tensor]:
        """Feature maps of ``image`` on every measured layer."""
        return dict(self.network(image.to(self.device)))

    def reference(self, path: Path, size: tuple[int, int] | None) -> dict[str, Tensor]:
        """Features of an image file at ``(height, width)`` (None: its own size), cached."""
        key = (path, size)
        if key not in self._cache:
            self._cache[key] = self.features(load_image(path, size=size))
        return self._cache[key]

    def measure(self, output: Tensor, pair: Pair) -> dict[str, float]:
        """The four quality measures of one result (see the module docstring)."""
        size = (output.shape[-2], output.shape[-1])
        content = load_image(pair.content, size=size)
        style = load_image(pair.style)
        measured = self.features(output)
        return {
            "content_distance": feature_distance(
                measured, self.reference(pair.content, size), CONTENT_LAYERS
            ),
            "style_distance": gram_distance(
                measured, self.reference(pair.style, None), STYLE_LAYERS
            ),
            "histogram_distance": color_histogram_distance(output.cpu(), style),
            "edge_ssim": edge_ssim(output.cpu(), content),
        }


def run_pair(
    transfer: StyleTransfer, preset: str, pair: Pair, judge: Judge, save: Path | None
) -> Record:
    """Run one transfer, save its picture if asked, and measure it."""
    began = time.perf_counter()
    result = transfer.run(str(pair.content), str(pair.style))
    seconds = time.perf_counter() - began
    output = result.image.detach().float().cpu()
    if save is not None:
        folder = save / preset
        folder.mkdir(parents=True, exist_ok=True)
        to_pil(output).save(folder / f"{pair.name}.jpg", format="JPEG", quality=90)
    return Record(
        preset=preset,
        content=pair.content.stem,
        style=pair.style.stem,
        height=output.shape[-2],
        width=output.shape[-1],
        steps=result.steps_done,
        stop_reason=result.stop_reason,
        seconds=seconds,
        seconds_targets=result.seconds_targets,
        **judge.measure(output, pair),
    )


def run_preset(
    name: str, args: argparse.Namespace, judge: Judge, report: Callable[[Record], None]
) -> tuple[list[Record], float]:
    """Every pair with one preset; returns the records and the seconds spent building it."""
    began = time.perf_counter()
    transfer = _transfer(PRESETS[name], args)
    setup = time.perf_counter() - began
    records = []
    for pair in args.pair_list:
        record = run_pair(transfer, name, pair, judge, args.save_images)
        report(record)
        records.append(record)
    return records, setup


# -- summary ---------------------------------------------------------------------------------------


def _means(records: Sequence[Record]) -> dict[str, float]:
    values = {key: [float(getattr(r, key)) for r in records] for key in _METRICS}
    means = {key: statistics.fmean(column) for key, column in values.items()}
    return {**means, "max_seconds": max(values["seconds"])}


def _max_seconds_512(records: Sequence[Record], args: argparse.Namespace) -> float | None:
    """The slowest run of the default preset as shipped at 512 px, or None if there was none."""
    own_steps = args.steps in (None, PRESETS["default"].config.steps)
    shipped = args.size == 512 and args.weights == "bundled" and own_steps
    seconds = [r.seconds for r in records if r.preset == "default"]
    return max(seconds) if shipped and seconds else None


def summarize(
    records: Sequence[Record], setup: Mapping[str, float], args: argparse.Namespace
) -> dict[str, Any]:
    """The JSON object of the report."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {
        "benchmark": "quality",
        "pairs": len(args.pair_list),
        "max_seconds_512": _max_seconds_512(records, args),
        "target_seconds_512": TARGET_SECONDS_512,
        "size": args.size,
        "steps": args.steps,
        "weights": args.weights,
        "presets": list(args.presets),
        "measures": {
            "content_distance": f"relative feature distance, mean over {', '.join(CONTENT_LAYERS)}",
            "style_distance": (
                f"relative Gram (CHW) distance, mean over {', '.join(STYLE_LAYERS)}, style image "
                "at its own size"
            ),
            "histogram_distance": "TV distance of joint RGB histograms (8x8x8) to the style",
            "edge_ssim": "SSIM (11 px Gaussian, sigma 1.5) of Sobel |grad| of BT.601 luma",
        },
        "means": {
            name: {**_means([r for r in records if r.preset == name]), "setup_seconds": setup[name]}
            for name in args.presets
        },
        "runs": [asdict(record) for record in records],
        "environment": {
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "cpu_count": os.cpu_count(),
            "machine": platform.machine(),
            "load_average_1min_end": load,
        },
    }


_COLUMNS = (
    ("preset", 10, "{}"),
    ("pair", 34, "{}"),
    ("seconds", 9, "{:.2f}"),
    ("content", 9, "{:.4f}"),
    ("style", 9, "{:.4f}"),
    ("hist", 7, "{:.3f}"),
    ("edge SSIM", 10, "{:.3f}"),
)


def _line(cells: Sequence[object]) -> str:
    parts = []
    for (_, width, form), cell in zip(_COLUMNS, cells, strict=True):
        text = form.format(cell) if isinstance(cell, float) else str(cell)
        parts.append(f"{text:<{width}}" if width >= 10 else f"{text:>{width}}")
    return " ".join(parts).rstrip()


def header() -> str:
    """The table's column titles."""
    return _line([title for title, _, _ in _COLUMNS])


def format_record(record: Record) -> str:
    """One table row."""
    return _line(
        [
            record.preset,
            f"{record.content}__{record.style}",
            record.seconds,
            record.content_distance,
            record.style_distance,
            record.histogram_distance,
            record.edge_ssim,
        ]
    )


def format_means(results: Mapping[str, Any]) -> str:
    """Per-preset means under the table, and the 512 px time against the target."""
    rows = ["mean over pairs"]
    for name, means in results["means"].items():
        cells = [name, f"({results['pairs']} pairs)", *(means[key] for key in _METRICS)]
        rows.append(_line(cells))
    slowest = results["max_seconds_512"]
    if slowest is None:
        rows.append("max seconds (default, 512 px): n/a (not the default preset as shipped)")
    else:
        verdict = "met" if slowest <= TARGET_SECONDS_512 else "MISSED"
        rows.append(
            f"max seconds (default, 512 px): {slowest:.1f} s, "
            f"target <= {TARGET_SECONDS_512:.0f} s: {verdict}"
        )
    return "\n".join(rows)


# -- main ------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run every preset on every pair, print the table and the JSON line, write the JSON file.

    Args:
        argv: Command-line arguments (``None``: ``sys.argv[1:]``).

    Returns:
        The results (as written to ``--output``).

    Example:
        >>> _ = main(["--size", "32", "--steps", "2", "--weights", "random", "--pairs", "1",
        ...           "--no-write"])  # doctest: +SKIP
    """
    args = _parse(argv)
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        # The preset's own rule ("auto": CUDA, MPS, then CPU) unless --device names one.
        judge = Judge(args.weights, TransferConfig(device=args.device or "auto").resolved_device())
        print(header(), flush=True)
        records: list[Record] = []
        setup: dict[str, float] = {}
        for name in args.presets:
            done, setup[name] = run_preset(
                name, args, judge, lambda r: print(format_record(r), flush=True)
            )
            records.extend(done)
        results = json_safe(summarize(records, setup, args))
    finally:
        torch.set_num_threads(threads)
    print(format_means(results))
    write_results(results, None if args.no_write else args.output)
    return dict(results)


if __name__ == "__main__":
    main()
    sys.exit(0)
