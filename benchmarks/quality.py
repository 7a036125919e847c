"""The quality protocol: ``python benchmarks/quality.py [--presets default neural-style]``.

Runs each chosen preset on content x style pairs of ``examples/images`` (all 25 by default,
``--pairs chelsea:starry_night ...`` for some) at ``--size`` (512) with the bundled weights, and
measures every picture the way a person would judge it (``benchmarks/quality_metrics.py``):

* ``edge``: SSIM of the Sobel edge maps of output and content (structure kept, higher is better);
* ``luma``: correlation of the blurred luma of output and content (layout kept, higher);
* ``hist``: distance of the joint RGB histograms of output and style (palette taken, lower);
* ``gram``: relative Gram distance of output and style under the bundled VGG16 (texture taken,
  lower), the style at a 512 px long side;
* ``face``: MTCNN's best face probability in the output, for contents where it finds a face
  (``benchmarks/faces.py``; left out when facenet-pytorch is not installed);
* ``seconds``: wall time of the whole ``run()`` call, images loaded and targets encoded.

Records accumulate: the JSON file (``--output``) keeps each (preset, pair) record until a later
run measures the same one again, so slow presets can be run on some pairs and fast ones on all
(``--fresh`` starts over). Every run then rewrites, from all records:

* the table and the JSON (last printed line): per-preset means, seconds min/mean/max, and the
  issue's targets checked on the records (edge floor, faces kept, the default against the
  ``neural-style`` preset on the pairs both ran, seconds);
* a contact sheet (``--sheet``): a row per pair, content | style | each preset, then a crop of
  each preset's picture at full size;
* a scatter plot of edge against gram per preset (``--plot``).

Pictures go to ``--pictures DIR/<preset>/<content>__<style>.png`` (the sheet is made from them).
No single measure decides: look at the sheet.

Smoke use: ``--size 32 --steps 2 --weights random --pairs chelsea:starry_night`` runs in seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import torch
from _results import json_safe, write_results
from faces import INSTALL_HINT, FaceDetector, face_detector
from PIL import Image, ImageDraw, ImageFont
from quality_metrics import color_histogram_distance, edge_ssim, gram_distance, luma_correlation
from torch import Tensor

from neuralstyle import PRESETS, FeatureExtractor, StyleTransfer, load_image, to_pil
from neuralstyle._precision import resolve_precision

__all__ = ["STYLE_LAYERS", "TARGETS", "Judge", "Pair", "Record", "main", "summarize"]

STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
STYLE_SIDE = 512
"""The style image's long side when measuring its Gram matrices."""
TARGETS = {
    "min_edge": 0.03,
    "min_face": 0.9,
    "max_seconds": 300.0,
}
"""Issue 15's targets for the ``default`` preset at 512 px."""
_ROOT = Path(__file__).resolve().parents[1]
_IMAGES = _ROOT / "examples" / "images"
_RESULTS = Path(__file__).resolve().parent / "results"
_MEASURES = ("seconds", "edge", "luma", "hist", "gram", "face")
_BETTER_HIGH = ("edge", "luma", "face")


@dataclass(frozen=True)
class Pair:
    """One content image and one style image."""

    content: Path
    style: Path

    @property
    def name(self) -> str:
        """``<content>__<style>``, the stem of the saved picture."""
        return f"{self.content.stem}__{self.style.stem}"


@dataclass(frozen=True)
class Record:
    """One run of one preset on one pair, with its measures (``face`` None when not measured).

    ``shipped``: the preset as it ships (its own steps, the bundled weights), so its record
    counts towards the targets.
    """

    preset: str
    content: str
    style: str
    size: int
    height: int
    width: int
    steps: int
    stop_reason: str | None
    precision: str
    seconds: float
    seconds_targets: float
    edge: float
    luma: float
    hist: float
    gram: float
    face: float | None
    content_face: float | None
    shipped: bool

    @property
    def pair(self) -> str:
        """``content:style``, as ``--pairs`` spells it."""
        return f"{self.content}:{self.style}"


# -- arguments -------------------------------------------------------------------------------------


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--presets",
        nargs="+",
        default=["default"],
        metavar="NAME",
        help=f"presets to run, or 'all' (of: {', '.join(PRESETS)})",
    )
    parser.add_argument("--images", type=Path, default=_IMAGES, help="folder with content/, style/")
    parser.add_argument(
        "--pairs", nargs="+", metavar="CONTENT:STYLE", help="only these pairs (default: all)"
    )
    parser.add_argument("--size", type=int, default=512, help="long side of the output (px)")
    parser.add_argument("--steps", type=int, default=None, help="override every preset's steps")
    parser.add_argument(
        "--precision",
        choices=("auto", "float32", "bfloat16"),
        default=None,
        help="override every preset's precision (records of another precision are not shipped)",
    )
    parser.add_argument(
        "--weights",
        choices=("bundled", "random"),
        default="bundled",
        help="'random': seeded random VGG16 for transfer and measures (smoke tests only)",
    )
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--no-faces", action="store_true", help="skip the face measure")
    parser.add_argument("--output", type=Path, default=_RESULTS / "quality.json")
    parser.add_argument("--pictures", type=Path, default=_ROOT / "out" / "quality")
    parser.add_argument("--sheet", type=Path, default=_RESULTS / "quality-sheet.jpg")
    parser.add_argument("--plot", type=Path, default=_RESULTS / "quality-plot.png")
    parser.add_argument("--fresh", action="store_true", help="forget the records in --output")
    parser.add_argument("--no-write", action="store_true", help="print only, write no files")
    args = parser.parse_args(argv)
    args.presets = _preset_names(parser, args.presets)
    for option in ("size", "steps", "threads"):
        value = getattr(args, option)
        if value is not None and value < 1:
            parser.error(f"--{option} must be a positive int, got {value}")
    args.pair_list = _pairs(parser, args.images, args.pairs)
    return args


def _preset_names(parser: argparse.ArgumentParser, names: list[str]) -> list[str]:
    if "all" in names:
        return list(PRESETS)
    unknown = [name for name in names if name not in PRESETS]
    if unknown:
        parser.error(f"unknown preset(s) {', '.join(unknown)}; choose from {', '.join(PRESETS)}")
    return list(dict.fromkeys(names))


def _pairs(parser: argparse.ArgumentParser, folder: Path, chosen: list[str] | None) -> list[Pair]:
    """Every content x style pair of ``folder``, or the ``content:style`` pairs chosen."""
    contents = {path.stem: path for path in sorted((folder / "content").glob("*.jpg"))}
    styles = {path.stem: path for path in sorted((folder / "style").glob("*.jpg"))}
    if not contents or not styles:
        parser.error(f"no .jpg images in {folder}/content and {folder}/style")
    if chosen is None:
        return [Pair(c, s) for c in contents.values() for s in styles.values()]
    pairs = []
    for text in dict.fromkeys(chosen):
        content, _, style = text.partition(":")
        if content not in contents or style not in styles:
            parser.error(
                f"no pair {text!r}: give CONTENT:STYLE with CONTENT one of "
                f"{', '.join(contents)} and STYLE one of {', '.join(styles)}"
            )
        pairs.append(Pair(contents[content], styles[style]))
    return pairs


# -- measuring -------------------------------------------------------------------------------------


class Judge:
    """The measuring network, the style references and the face detector, each built once.

    Args:
        weights: ``"bundled"`` or ``"random"`` (the same choice as the transfer's).
        faces: The face detector, or None to leave the face measure out.
    """

    def __init__(self, weights: str, faces: FaceDetector | None) -> None:
        chosen = "random" if weights == "random" else None
        self.network = FeatureExtractor(list(STYLE_LAYERS), weights=chosen, seed=0)
        self.faces = faces
        self._styles: dict[Path, dict[str, Tensor]] = {}
        self._content_faces: dict[Path, float | None] = {}

    @torch.no_grad()
    def _style(self, path: Path) -> dict[str, Tensor]:
        if path not in self._styles:
            self._styles[path] = dict(self.network(load_image(path, size=STYLE_SIDE)))
        return self._styles[path]

    def content_face(self, path: Path) -> float | None:
        """The best face probability in the content photo itself (cached), or None."""
        if self.faces is None:
            return None
        if path not in self._content_faces:
            self._content_faces[path] = self.faces(load_image(path))
        return self._content_faces[path]

    @torch.no_grad()
    def measure(self, output: Tensor, pair: Pair) -> dict[str, float | None]:
        """The measures of one picture (see the module docstring)."""
        content = load_image(pair.content, size=(output.shape[-2], output.shape[-1]))
        style = load_image(pair.style, size=STYLE_SIDE)
        found = self.content_face(pair.content)
        portrait = found is not None and found >= TARGETS["min_face"]
        return {
            "edge": edge_ssim(output, content),
            "luma": luma_correlation(output, content),
            "hist": color_histogram_distance(output, style),
            "gram": gram_distance(
                dict(self.network(output)), self._style(pair.style), STYLE_LAYERS
            ),
            "face": self.faces(output) if portrait and self.faces is not None else None,
            "content_face": found,
        }


def _transfer(name: str, args: argparse.Namespace) -> StyleTransfer:
    """The preset at ``--size``, with ``--steps`` if given."""
    preset = PRESETS[name]
    changes: dict[str, Any] = {"size": args.size}
    if args.steps is not None:
        changes["steps"] = args.steps
    if args.precision is not None:
        changes["precision"] = args.precision
    extractor = None
    if args.weights == "random":
        extractor = FeatureExtractor(
            preset.layer_map.layers,
            weights="random",
            seed=0,
        )
    config = replace(preset.config, **changes)
    return StyleTransfer(preset.layer_map, config=config, extractor=extractor)


def run_pair(
    transfer: StyleTransfer,
    preset: str,
    pair: Pair,
    judge: Judge,
    pictures: Path | None,
    shipped: bool,
) -> Record:
    """Run one transfer, save its picture if asked, and measure it."""
    began = time.perf_counter()
    result = transfer.run(str(pair.content), str(pair.style))
    seconds = time.perf_counter() - began
    output = result.image.detach().float().cpu()
    if pictures is not None:
        folder = pictures / preset
        folder.mkdir(parents=True, exist_ok=True)
        to_pil(output).save(folder / f"{pair.name}.png")
    return Record(
        preset=preset,
        content=pair.content.stem,
        style=pair.style.stem,
        size=transfer.config.size or max(output.shape[-2:]),
        height=output.shape[-2],
        width=output.shape[-1],
        steps=result.steps_done,
        stop_reason=result.stop_reason,
        precision=resolve_precision(transfer.config.precision, transfer.device),
        seconds=seconds,
        seconds_targets=result.seconds_targets,
        shipped=shipped,
        **judge.measure(output, pair),  # type: ignore[arg-type]
    )


# -- records and summary ---------------------------------------------------------------------------


def load_records(path: Path) -> list[Record]:
    """The records an earlier run wrote to ``path`` (none if it is missing or of another form)."""
    if not path.is_file():
        return []
    try:
        runs = json.loads(path.read_text())["runs"]
        names = {field.name for field in fields(Record)}
        # Records from before precision was recorded ran in float32.
        return [
            Record(
                **{
                    key: run.get(key, "float32") if key == "precision" else run[key]
                    for key in names
                }
            )
            for run in runs
        ]
    except (KeyError, TypeError, ValueError):
        return []


def merged(old: Iterable[Record], new: Iterable[Record]) -> list[Record]:
    """``old`` with every (preset, pair, size) that ``new`` measured again replaced.

    Smoke runs (random weights, other steps) never mix with shipped records: they replace
    each other only among themselves.
    """
    table = {(r.preset, r.pair, r.size, r.shipped): r for r in old}
    table.update({(r.preset, r.pair, r.size, r.shipped): r for r in new})
    return sorted(table.values(), key=lambda r: (r.preset, r.content, r.style, r.size))


def _mean(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.fmean(present) if present else None


def _means(records: Sequence[Record]) -> dict[str, Any]:
    seconds = [r.seconds for r in records]
    return {
        "pairs": len(records),
        **{key: _mean(getattr(r, key) for r in records) for key in _MEASURES},
        "seconds_min": min(seconds),
        "seconds_max": max(seconds),
        "edge_min": min(r.edge for r in records),
    }


def _faces_kept(records: Sequence[Record]) -> bool | None:
    portraits = [r for r in records if r.face is not None]
    if not portraits:
        return None
    return all(r.face is not None and r.face >= TARGETS["min_face"] for r in portraits)


def compare(records: Sequence[Record], first: str, second: str) -> dict[str, Any] | None:
    """Means of two presets over the pairs both ran, and whether ``first`` Pareto-dominates.

    Dominates: edge at least as high, gram and hist at most as high, on the means.
    """
    shipped = [r for r in records if r.shipped]
    by_pair = {(r.preset, r.pair, r.size): r for r in shipped}
    shared = sorted(
        {(r.pair, r.size) for r in shipped if r.preset == first}
        & {(r.pair, r.size) for r in shipped if r.preset == second}
    )
    if not shared:
        return None
    means = {
        name: _means([by_pair[(name, pair, size)] for pair, size in shared])
        for name in (first, second)
    }
    a, b = means[first], means[second]
    dominates = a["edge"] >= b["edge"] and a["gram"] <= b["gram"] and a["hist"] <= b["hist"]
    return {"pairs": [pair for pair, _ in shared], "means": means, "dominates": dominates}


def summarize(records: Sequence[Record], args: argparse.Namespace) -> dict[str, Any]:
    """The JSON object of the report, from every record."""
    presets = list(dict.fromkeys(r.preset for r in records))
    default = [r for r in records if r.preset == "default" and r.size == 512 and r.shipped]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    checks: dict[str, Any] = {}
    if default:
        checks = {
            "default_min_edge": min(r.edge for r in default),
            "default_min_edge_met": min(r.edge for r in default) >= TARGETS["min_edge"],
            "default_faces_kept": _faces_kept(default),
            "default_max_seconds": max(r.seconds for r in default),
            "default_max_seconds_met": max(r.seconds for r in default) <= TARGETS["max_seconds"],
        }
    return {
        "benchmark": "quality",
        "targets": TARGETS,
        "measures": {
            "edge": "SSIM (Gaussian sigma 1.5, C1 0.01^2, C2 0.03^2) of Sobel |grad| of BT.601 "
            "luma, output vs content",
            "luma": "Pearson correlation of BT.601 luma blurred with sigma 2 px, output vs content",
            "hist": "TV distance of 8x8x8 joint RGB histograms, output vs style",
            "gram": "mean over relu1_1..relu5_1 of ||G(O)-G(S)||_F / ||G(S)||_F, G = FF^T/(CHW), "
            f"bundled VGG16, style at a {STYLE_SIDE} px long side",
            "face": "MTCNN best face probability, outputs of contents where it finds a face",
            "seconds": "wall time of run(), images loaded and targets encoded",
        },
        "means": {name: _means([r for r in records if r.preset == name]) for name in presets},
        "default_vs_neural_style": compare(records, "default", "neural-style"),
        "checks": checks,
        "runs": [{**asdict(r), "pair": r.pair} for r in records],
        "environment": {
            "torch": torch.__version__,
            "threads": args.threads,
            "cpu_count": os.cpu_count(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "machine": platform.machine(),
            "load_average_1min_end": load,
        },
    }


# -- printing --------------------------------------------------------------------------------------


_COLUMNS = (
    ("preset", 17, "{}"),
    ("pair", 30, "{}"),
    ("seconds", 8, "{:.1f}"),
    ("edge", 7, "{:.3f}"),
    ("luma", 7, "{:.3f}"),
    ("hist", 7, "{:.3f}"),
    ("gram", 7, "{:.3f}"),
    ("face", 7, "{:.3f}"),
)


def _line(cells: Sequence[object]) -> str:
    parts = []
    for (_, width, form), cell in zip(_COLUMNS, cells, strict=True):
        text = (
            form.format(cell) if isinstance(cell, float) else ("-" if cell is None else str(cell))
        )
        parts.append(f"{text:<{width}}" if width >= 17 else f"{text:>{width}}")
    return " ".join(parts).rstrip()


def header() -> str:
    """The table's column titles."""
    return _line([title for title, _, _ in _COLUMNS])


def format_record(record: Record) -> str:
    """One table row."""
    measures = [record.seconds, record.edge, record.luma, record.hist, record.gram, record.face]
    return _line([record.preset, record.pair, *measures])


def format_summary(results: Mapping[str, Any]) -> str:
    """Per-preset means under the table, then the targets."""
    rows = ["mean over each preset's pairs (seconds: min / max after the name)"]
    for name, means in results["means"].items():
        label = f"{name} ({means['pairs']})"
        timing = f"{means['seconds_min']:.0f}-{means['seconds_max']:.0f} s"
        rows.append(_line([label, timing, *(means[key] for key in _MEASURES)]))
    versus = results["default_vs_neural_style"]
    if versus is not None:
        a, b = versus["means"]["default"], versus["means"]["neural-style"]
        rows.append(
            f"default vs neural-style on the {len(versus['pairs'])} pairs both ran: edge "
            f"{a['edge']:.3f} vs {b['edge']:.3f}, gram {a['gram']:.3f} vs {b['gram']:.3f}, hist "
            f"{a['hist']:.3f} vs {b['hist']:.3f}: "
            + ("default dominates" if versus["dominates"] else "default does NOT dominate")
        )
    checks = results["checks"]
    if checks:
        faces = {None: "no portrait measured", True: "met", False: "MISSED"}
        rows.append(
            f"default at 512 px: lowest edge {checks['default_min_edge']:.3f} (target >= "
            f"{TARGETS['min_edge']}: {'met' if checks['default_min_edge_met'] else 'MISSED'}); "
            f"faces >= {TARGETS['min_face']}: {faces[checks['default_faces_kept']]}; slowest "
            f"{checks['default_max_seconds']:.0f} s (target <= {TARGETS['max_seconds']:.0f}: "
            f"{'met' if checks['default_max_seconds_met'] else 'MISSED'})"
        )
    return "\n".join(rows)


# -- the contact sheet and the plot ----------------------------------------------------------------

_CELL = 224
_CROP = 224
_GAP = 4
_LABEL = 22
_INK = (20, 20, 20)
_PAPER = (255, 255, 255)
_PALETTE = ((31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14))


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has one bitmap size
        return ImageFont.load_default()


def _fitted(picture: Image.Image, side: int) -> Image.Image:
    """``picture`` scaled to fit a ``side`` square, centred on white."""
    copy = picture.convert("RGB")
    copy.thumbnail((side, side), Image.Resampling.LANCZOS)
    cell = Image.new("RGB", (side, side), _PAPER)
    cell.paste(copy, ((side - copy.width) // 2, (side - copy.height) // 2))
    return cell


def _centre_crop(picture: Image.Image, side: int) -> Image.Image:
    """A ``side`` square from the middle of ``picture`` at full size (1:1 pixels)."""
    left, top = max(0, (picture.width - side) // 2), max(0, (picture.height - side) // 2)
    return _fitted(picture.crop((left, top, left + side, top + side)), side)


def draw_sheet(records: Sequence[Record], pictures: Path, images: Path, path: Path) -> int:
    """Write the contact sheet of every pair with a saved picture; return its row count."""
    presets = list(dict.fromkeys(r.preset for r in records))
    pairs = list(dict.fromkeys((r.content, r.style) for r in records))
    rows = []
    for content, style in pairs:
        found = {p: pictures / p / f"{content}__{style}.png" for p in presets}
        if any(file.is_file() for file in found.values()):
            rows.append((content, style, found))
    titles = ["content", "style", *presets, *(f"{p} 1:1" for p in presets)]
    width = len(titles) * (_CELL + _GAP) + _GAP
    height = _LABEL + len(rows) * (_CELL + _LABEL + _GAP) + _GAP
    sheet = Image.new("RGB", (width, height), _PAPER)
    draw, font = ImageDraw.Draw(sheet), _font(14)
    for column, title in enumerate(titles):
        draw.text((_GAP + column * (_CELL + _GAP) + 4, 4), title, fill=_INK, font=font)
    for row, (content, style, found) in enumerate(rows):
        top = _LABEL + row * (_CELL + _LABEL + _GAP)
        draw.text((_GAP + 4, top + 3), f"{content} x {style}", fill=_INK, font=font)
        outputs = [Image.open(f) if f.is_file() else None for f in found.values()]
        cells = [
            Image.open(images / "content" / f"{content}.jpg"),
            Image.open(images / "style" / f"{style}.jpg"),
            *outputs,
        ]
        cells = [None if c is None else _fitted(c, _CELL) for c in cells]
        cells += [None if o is None else _centre_crop(o, _CROP) for o in outputs]
        for column, cell in enumerate(cells):
            if cell is not None:
                sheet.paste(cell, (_GAP + column * (_CELL + _GAP), top + _LABEL))
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path, quality=85)
    return len(rows)


def draw_plot(records: Sequence[Record], path: Path) -> None:
    """Edge (structure kept, right is better) against gram (texture taken, down is better)."""
    presets = list(dict.fromkeys(r.preset for r in records))
    size, margin = (900, 640), (80, 40, 200, 70)  # left, top, right, bottom
    image = Image.new("RGB", size, _PAPER)
    draw, font = ImageDraw.Draw(image), _font(15)
    left, top, right, bottom = margin[0], margin[1], size[0] - margin[2], size[1] - margin[3]
    edges, grams = [r.edge for r in records], [r.gram for r in records]
    x_range = (min(0.0, min(edges)), max(edges) * 1.05 or 1.0)
    y_range = (min(0.0, min(grams)), max(grams) * 1.05 or 1.0)

    def to_pixel(x: float, y: float) -> tuple[float, float]:
        fx = (x - x_range[0]) / (x_range[1] - x_range[0])
        fy = (y - y_range[0]) / (y_range[1] - y_range[0])
        return left + fx * (right - left), bottom - fy * (bottom - top)

    draw.rectangle((left, top, right, bottom), outline=_INK)
    for fraction in (0.0, 0.25, 0.5, 0.75, 1.0):
        x = x_range[0] + fraction * (x_range[1] - x_range[0])
        y = y_range[0] + fraction * (y_range[1] - y_range[0])
        px, _ = to_pixel(x, y_range[0])
        _, py = to_pixel(x_range[0], y)
        draw.text((px - 14, bottom + 6), f"{x:.2f}", fill=_INK, font=font)
        draw.text((left - 46, py - 8), f"{y:.2f}", fill=_INK, font=font)
    draw.text(
        (left, bottom + 30), "edge: structure kept (higher is better) ->", fill=_INK, font=font
    )
    draw.text(
        (left, 10), "gram: texture distance to the style (lower is better)", fill=_INK, font=font
    )
    for index, name in enumerate(presets):
        colour = _PALETTE[index % len(_PALETTE)]
        mine = [r for r in records if r.preset == name]
        for record in mine:
            x, y = to_pixel(record.edge, record.gram)
            draw.ellipse((x - 4, y - 4, x + 4, y + 4), fill=colour)
        x, y = to_pixel(
            statistics.fmean(r.edge for r in mine), statistics.fmean(r.gram for r in mine)
        )
        draw.rectangle((x - 8, y - 8, x + 8, y + 8), outline=_INK, fill=colour)
        legend_y = top + 10 + 26 * index
        draw.ellipse((right + 20, legend_y, right + 30, legend_y + 10), fill=colour)
        draw.text((right + 38, legend_y - 3), f"{name} ({len(mine)})", fill=_INK, font=font)
    draw.text((right + 20, top + 10 + 26 * len(presets)), "square: mean", fill=_INK, font=font)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


# -- main ------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the presets on the pairs, merge with earlier records, print and write the report.

    Args:
        argv: Command-line arguments (``None``: ``sys.argv[1:]``).

    Returns:
        The results (as written to ``--output``).
    """
    args = _parse(argv)
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    faces = None if args.no_faces else face_detector()
    if faces is None and not args.no_faces:
        print(f"face measure left out: facenet-pytorch is not installed ({INSTALL_HINT})")
    pictures = None if args.no_write else args.pictures
    try:
        judge = Judge(args.weights, faces)
        print(header(), flush=True)
        report: Callable[[Record], None] = lambda r: print(format_record(r), flush=True)  # noqa: E731
        new: list[Record] = []
        for name in args.presets:
            transfer = _transfer(name, args)
            own_steps = args.steps in (None, PRESETS[name].config.steps)
            own_precision = args.precision in (None, PRESETS[name].config.precision)
            shipped = own_steps and own_precision and args.weights == "bundled"
            for pair in args.pair_list:
                record = run_pair(transfer, name, pair, judge, pictures, shipped)
                report(record)
                new.append(record)
    finally:
        torch.set_num_threads(threads)
    old = [] if args.fresh else load_records(args.output)
    records = merged(old, new)
    results = json_safe(summarize(records, args))
    print(format_summary(results))
    if not args.no_write:
        rows = draw_sheet(records, args.pictures, args.images, args.sheet)
        draw_plot(records, args.plot)
        print(f"sheet ({rows} pairs): {args.sheet}\nplot: {args.plot}")
    write_results(results, None if args.no_write else args.output)
    return dict(results)


if __name__ == "__main__":
    main()
    sys.exit(0)
