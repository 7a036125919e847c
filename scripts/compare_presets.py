"""Presets side by side on a few pairs: ``python scripts/compare_presets.py --from out/quality``.

Each row is one pair: the content, the style, then each preset's result as
``benchmarks/quality.py --pictures DIR`` saved it (``DIR/<preset>/<content>__<style>.png``), so
the gallery shows the very pictures the quality protocol measured; nothing is run here. It
writes ``docs/images/gallery-presets.jpg`` (under 400 KB) at the highest JPEG quality that fits.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from make_gallery import GAP, IMAGES, MAX_BYTES, ROOT, fitted, open_rgb, save_jpeg_under
from PIL import Image

__all__ = ["main", "make_comparison"]

OUTPUT = ROOT / "docs" / "images" / "gallery-presets.jpg"
CELL = 256


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="source", type=Path, required=True, metavar="DIR")
    parser.add_argument("--presets", nargs="+", default=["default", "neural-style"])
    parser.add_argument(
        "--pairs",
        nargs="+",
        metavar="CONTENT:STYLE",
        default=["astronaut:the_scream", "grace_hopper:great_wave", "chelsea:starry_night"],
    )
    parser.add_argument("--images", type=Path, default=IMAGES, help="folder with content/, style/")
    parser.add_argument("--cell", type=int, default=CELL, help="side of a cell (px)")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    return parser.parse_args(argv)


def make_comparison(
    rows: Sequence[Sequence[Image.Image]], *, cell: int = CELL, gap: int = GAP
) -> Image.Image:
    """One row of square cells per sequence of pictures, each fitted on white, aspect kept."""
    step = cell + gap
    width = max(len(row) for row in rows) * step - gap
    canvas = Image.new("RGB", (width, len(rows) * step - gap), "white")
    for top, row in enumerate(rows):
        for left, picture in enumerate(row):
            canvas.paste(fitted(picture, cell), (left * step, top * step))
    return canvas


def main(argv: Sequence[str] | None = None) -> int:
    """Write the comparison; return its size in bytes."""
    args = _parse(argv)
    rows = []
    for pair in args.pairs:
        content, _, style = pair.partition(":")
        saved = [args.source / preset / f"{content}__{style}.png" for preset in args.presets]
        missing = [str(path) for path in saved if not path.is_file()]
        if missing:
            sys.exit(
                f"missing {', '.join(missing)}: run benchmarks/quality.py --presets "
                f"{' '.join(args.presets)} --pairs {pair} --pictures {args.source}"
            )
        inputs = [
            args.images / "content" / f"{content}.jpg",
            args.images / "style" / f"{style}.jpg",
        ]
        rows.append([open_rgb(path) for path in (*inputs, *saved)])
    written = save_jpeg_under(make_comparison(rows, cell=args.cell), args.output, MAX_BYTES)
    columns = " | ".join(["content", "style", *args.presets])
    print(f"wrote {args.output} ({written / 1000:.0f} KB): {columns}")
    return written


if __name__ == "__main__":
    main()
