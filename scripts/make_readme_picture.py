"""Make the README's picture and the gallery's from the demo's own output.

    python scripts/make_readme_picture.py            # runs the demo, writes docs/images/demo.jpg
    python scripts/make_readme_picture.py --result neuralstyle-demo.png   # reuse a demo output
    python scripts/make_readme_picture.py --gallery  # also the gallery's pictures

The README's picture is a strip: the bundled content photo, the style painting and the demo's
result side by side at one height, about 900 px wide, as a JPEG under 150 KB. Every picture is
made by the `neuralstyle` command itself, so what the README shows is what `neuralstyle demo`
gives. The gallery runs use the demo's size and steps; docs/gallery.md lists their commands.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
from pathlib import Path

from PIL import Image

from neuralstyle.cli import DEMO_CONTENT, DEMO_SIZE, DEMO_STEPS, DEMO_STYLE, main
from neuralstyle.examples import example_image

IMAGES = Path(__file__).resolve().parent.parent / "docs" / "images"
WIDTH = 900
GAP = 8
MAX_BYTES = 150_000

# Gallery entry name -> (content, styles, extra options of the command line).
GALLERY: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "gallery-luminance": (DEMO_CONTENT, (DEMO_STYLE,), ("--preserve-color", "luminance")),
    "gallery-wave": ("astronaut", ("great_wave",), ()),
    "gallery-blend": (DEMO_CONTENT, ("great_wave", DEMO_STYLE), ("--style-weights", "1", "1")),
}


def strip(pictures: list[Image.Image], width: int = WIDTH, gap: int = GAP) -> Image.Image:
    """Place pictures side by side at one height so the strip is ``width`` pixels wide."""
    aspects = [p.width / p.height for p in pictures]
    height = round((width - gap * (len(pictures) - 1)) / sum(aspects))
    resized = [
        p.resize((round(height * a), height), Image.Resampling.LANCZOS)
        for p, a in zip(pictures, aspects, strict=True)
    ]
    canvas = Image.new(
        "RGB", (sum(p.width for p in resized) + gap * (len(resized) - 1), height), "white"
    )
    left = 0
    for picture in resized:
        canvas.paste(picture, (left, 0))
        left += picture.width + gap
    return canvas


def save_small_jpeg(picture: Image.Image, path: Path, limit: int = MAX_BYTES) -> int:
    """Save with the highest JPEG quality (from 90 down) that stays under ``limit`` bytes."""
    for quality in range(90, 40, -5):
        buffer = io.BytesIO()
        picture.save(buffer, format="JPEG", quality=quality, optimize=True, progressive=True)
        if buffer.tell() <= limit:
            break
    path.write_bytes(buffer.getvalue())
    return buffer.tell()


def run_command(argv: list[str]) -> None:
    status = main(argv)
    if status != 0:
        sys.exit(f"`neuralstyle {' '.join(argv)}` failed with status {status}")


def open_rgb(path: Path) -> Image.Image:
    with Image.open(path) as opened:
        converted: Image.Image = opened.convert("RGB")
    return converted


def readme_picture(result: Path | None, work: Path) -> None:
    if result is None:
        result = work / "demo.png"
        run_command(["demo", "-o", str(result)])
    sources = [example_image(DEMO_CONTENT), example_image(DEMO_STYLE), result]
    picture = strip([open_rgb(p) for p in sources])
    size = save_small_jpeg(picture, IMAGES / "demo.jpg")
    print(f"wrote {IMAGES / 'demo.jpg'}: {picture.width}x{picture.height}, {size} bytes")


def gallery(work: Path) -> None:
    for name, (content, styles, extra) in GALLERY.items():
        result = work / f"{name}.png"
        paths = [str(example_image(content)), *(str(example_image(s)) for s in styles)]
        size_and_steps = ["--size", str(DEMO_SIZE), "--steps", str(DEMO_STEPS)]
        run_command([*paths, "-o", str(result), *size_and_steps, *extra])
        picture = strip([*(open_rgb(Path(p)) for p in paths), open_rgb(result)])
        size = save_small_jpeg(picture, IMAGES / f"{name}.jpg", limit=MAX_BYTES)
        print(f"wrote {IMAGES / name}.jpg: {picture.width}x{picture.height}, {size} bytes")


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--result", type=Path, help="an existing `neuralstyle demo` output")
    parser.add_argument("--gallery", action="store_true", help="also make the gallery's pictures")
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse()
    IMAGES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        readme_picture(arguments.result, Path(folder))
        if arguments.gallery:
            gallery(Path(folder))
