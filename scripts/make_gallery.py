"""Make the gallery's grid of content x style results: ``python scripts/make_gallery.py``.

    python scripts/make_gallery.py                  # runs the default preset, 384 px, 25 pairs
    python scripts/make_gallery.py --from out/quality   # reuses quality.py's pictures

The grid's first row is the style images, its first column the content images of
``examples/images``, and the cell at (content, style) the result of the ``default`` preset (or
``--preset``). Every picture is fitted into a square cell on white, aspect ratio kept. It writes
``docs/images/gallery-grid.jpg`` (under 400 KB) and a smaller copy for the README,
``docs/images/gallery-grid-small.jpg`` (under 150 KB), each at the highest JPEG quality that
fits.

``--from DIR`` reads ``DIR/<preset>/<content>__<style>.png``, the layout that
``python benchmarks/quality.py --pictures DIR`` writes, so one set of runs gives both the
report and the pictures (use the same ``--size`` there, e.g. ``--size 384``).
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from PIL import Image

from neuralstyle import PRESETS, FeatureExtractor, StyleTransfer, to_pil

__all__ = ["Grid", "fitted", "main", "make_grid", "save_jpeg_under"]

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "examples" / "images"
OUTPUT = ROOT / "docs" / "images" / "gallery-grid.jpg"
SMALL_OUTPUT = ROOT / "docs" / "images" / "gallery-grid-small.jpg"
MAX_BYTES = 400_000
SMALL_MAX_BYTES = 150_000
SMALL_WIDTH = 640
CELL = 200
GAP = 6

Grid = dict[tuple[str, str], Image.Image]
"""(content name, style name) -> result picture."""


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=384, help="long side of each result (px)")
    parser.add_argument("--steps", type=int, default=None, help="override the preset's steps")
    parser.add_argument("--preset", choices=tuple(PRESETS), default="default")
    parser.add_argument(
        "--from",
        dest="source",
        type=Path,
        default=None,
        metavar="DIR",
        help="build from DIR/<preset>/<content>__<style>.png instead of running",
    )
    parser.add_argument("--images", type=Path, default=IMAGES, help="folder with content/, style/")
    parser.add_argument("--contents", nargs="+", metavar="NAME", help="only these content images")
    parser.add_argument("--styles", nargs="+", metavar="NAME", help="only these style images")
    parser.add_argument(
        "--weights",
        choices=("bundled", "random"),
        default="bundled",
        help="'random': seeded random VGG16 (smoke tests only)",
    )
    parser.add_argument("--cell", type=int, default=CELL, help="side of a grid cell (px)")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--small-output", type=Path, default=SMALL_OUTPUT)
    args = parser.parse_args(argv)
    for option in ("size", "steps", "cell"):
        value = getattr(args, option)
        if value is not None and value < 1:
            parser.error(f"--{option} must be a positive int, got {value}")
    args.contents = _images(parser, args.images / "content", args.contents)
    args.styles = _images(parser, args.images / "style", args.styles)
    return args


def _images(parser: argparse.ArgumentParser, folder: Path, only: list[str] | None) -> list[Path]:
    """The JPEGs of ``folder`` in name order, restricted to the stems in ``only``."""
    found = {path.stem: path for path in sorted(folder.glob("*.jpg"))}
    if not found:
        parser.error(f"no .jpg images in {folder}")
    if only is None:
        return list(found.values())
    unknown = [name for name in only if name not in found]
    if unknown:
        parser.error(
            f"no image named {', '.join(unknown)} in {folder}; available: {', '.join(found)}"
        )
    return [found[name] for name in dict.fromkeys(only)]


def open_rgb(path: Path) -> Image.Image:
    """Read an image file as an RGB picture."""
    with Image.open(path) as opened:
        converted: Image.Image = opened.convert("RGB")
    return converted


# -- the results -----------------------------------------------------------------------------------


def run_results(args: argparse.Namespace) -> Grid:
    """Run the preset on every content x style pair at ``--size``."""
    preset = PRESETS[args.preset]
    changes: dict[str, Any] = {"size": args.size}
    if args.steps is not None:
        changes["steps"] = args.steps
    extractor = None
    if args.weights == "random":
        extractor = FeatureExtractor(preset.layer_map.layers, weights="random", seed=0)
    transfer = StyleTransfer(
        preset.layer_map, config=replace(preset.config, **changes), extractor=extractor
    )
    results: Grid = {}
    for content in args.contents:
        for style in args.styles:
            began = time.perf_counter()
            result = transfer.run(str(content), str(style))
            results[content.stem, style.stem] = to_pil(result.image)
            seconds = time.perf_counter() - began
            print(f"{content.stem} x {style.stem}: {seconds:.1f} s", flush=True)
    return results


def read_results(folder: Path, args: argparse.Namespace) -> Grid:
    """Read the pictures ``quality.py --pictures`` saved; every pair must be there."""
    wanted = {
        (content.stem, style.stem): folder / args.preset / f"{content.stem}__{style.stem}.png"
        for content in args.contents
        for style in args.styles
    }
    missing = [str(path) for path in wanted.values() if not path.is_file()]
    if missing:
        sys.exit(
            f"missing {len(missing)} result(s), e.g. {missing[0]}; run benchmarks/quality.py "
            f"--presets {args.preset} --pictures {folder} on the same pairs, or narrow the "
            "grid with --contents/--styles"
        )
    return {key: open_rgb(path) for key, path in wanted.items()}


# -- the picture -----------------------------------------------------------------------------------


def fitted(picture: Image.Image, cell: int) -> Image.Image:
    """``picture`` scaled to fit a ``cell`` x ``cell`` square, centred on white."""
    scale = cell / max(picture.size)
    size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
    square = Image.new("RGB", (cell, cell), "white")
    resized = picture.resize(size, Image.Resampling.LANCZOS)
    square.paste(resized, ((cell - size[0]) // 2, (cell - size[1]) // 2))
    return square


def make_grid(
    contents: Sequence[Path],
    styles: Sequence[Path],
    results: Grid,
    *,
    cell: int = CELL,
    gap: int = GAP,
) -> Image.Image:
    """The grid: styles along the top, contents down the left, ``results[content, style]`` inside.

    Args:
        contents: Content image files (the rows), named by their stems in ``results``.
        styles: Style image files (the columns).
        results: The result of each (content stem, style stem).
        cell: Side of each square cell in pixels.
        gap: White space between cells in pixels.

    Returns:
        An RGB picture ``(len(styles) + 1)`` cells wide and ``(len(contents) + 1)`` high; the
        top-left cell is white.
    """
    step = cell + gap
    width = (len(styles) + 1) * step - gap
    height = (len(contents) + 1) * step - gap
    canvas = Image.new("RGB", (width, height), "white")
    for column, style in enumerate(styles, start=1):
        canvas.paste(fitted(open_rgb(style), cell), (column * step, 0))
    for row, content in enumerate(contents, start=1):
        canvas.paste(fitted(open_rgb(content), cell), (0, row * step))
        for column, style in enumerate(styles, start=1):
            picture = fitted(results[content.stem, style.stem], cell)
            canvas.paste(picture, (column * step, row * step))
    return canvas


def save_jpeg_under(picture: Image.Image, path: Path, limit: int) -> int:
    """Save at the highest JPEG quality (90 down to 50) under ``limit`` bytes; return the size.

    Raises:
        SystemExit: Even quality 50 is over ``limit`` (use a smaller ``--cell``).
    """
    for quality in range(90, 45, -5):
        buffer = io.BytesIO()
        picture.save(buffer, format="JPEG", quality=quality, optimize=True, progressive=True)
        if buffer.tell() <= limit:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(buffer.getvalue())
            return buffer.tell()
    sys.exit(f"{path.name}: over {limit} bytes even at JPEG quality 50; use a smaller --cell")


def main(argv: Sequence[str] | None = None) -> dict[str, int]:
    """Make the grid and its small copy.

    Returns:
        Bytes written to each output path (as a string).
    """
    args = _parse(argv)
    results = run_results(args) if args.source is None else read_results(args.source, args)
    grid = make_grid(args.contents, args.styles, results, cell=args.cell)
    small_width = min(SMALL_WIDTH, grid.width)
    small_height = round(grid.height * small_width / grid.width)
    small = grid.resize((small_width, small_height), Image.Resampling.LANCZOS)
    written = {
        str(args.output): save_jpeg_under(grid, args.output, MAX_BYTES),
        str(args.small_output): save_jpeg_under(small, args.small_output, SMALL_MAX_BYTES),
    }
    for path, size in written.items():
        print(f"wrote {path} ({size / 1000:.0f} KB)")
    return written


if __name__ == "__main__":
    main()
