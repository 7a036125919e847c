"""The ``neuralstyle`` command: stylize images from a shell, or run the bundled demo.

The run options are generated from :class:`~neuralstyle.config.TransferConfig` by
:mod:`neuralstyle._cli_options`; defaults are the chosen preset's. ``neuralstyle batch`` (many
pictures) lives in :mod:`neuralstyle._cli_batch`, ``neuralstyle app`` (a live preview in the
browser) in :mod:`neuralstyle.app`. Usage errors exit with status 2, failures with 1, Ctrl-C with
130 after saving the best image so far; each prints one line, never a traceback (``--debug``
shows it).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import textwrap
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from neuralstyle import __version__, _cli_batch, app
from neuralstyle._cli_options import (
    Parser,
    UsageError,
    add_config_options,
    add_recipe_options,
    build_network,
    chosen_preset,
    config_overrides,
    configured,
    one_line,
    split_init,
)
from neuralstyle.callbacks import Callback, Progress, RunEnd, RunStart, Snapshots, StepState, Stop
from neuralstyle.config import TransferConfig
from neuralstyle.errors import ConfigError, ImageError, InsufficientMemoryError, NeuralStyleError
from neuralstyle.examples import example_image
from neuralstyle.image import load_alpha
from neuralstyle.image_output import check_output_path, save_image
from neuralstyle.presets import Preset, get_preset
from neuralstyle.targets import check_style_counts
from neuralstyle.transfer import ImageSources, StyleTransfer

__all__ = ["main"]

DEMO_CONTENT = "chelsea"
DEMO_STYLE = "starry_night"
DEMO_SIZE = 256
DEMO_STEPS = 300
DEMO_OUTPUT = "neuralstyle-demo.png"

# Long side beyond which a run at the content's own size gets a hint to pass --size.
_LARGE = 1024

_EPILOG = """\
Every run option defaults to the chosen preset's value (shown above for --preset {preset});
`neuralstyle --preset gatys --help` shows another preset's. Images: PNG, JPEG, TIFF and whatever
else Pillow reads. Exit status: 0 done, 1 failed, 2 bad usage, 130 interrupted (Ctrl-C saves the
best image so far to the output).

examples:
  neuralstyle demo
  neuralstyle photo.jpg painting.jpg -o out.png --size 512
  neuralstyle photo.jpg a.jpg b.jpg --style-weights 2 1 -o out.jpg --steps 500
  neuralstyle photo.jpg painting.jpg -o out.png --preset gatys --init noise --seed 3
  neuralstyle batch --content photos/ --style paintings/ -o out/   (see batch --help)
  neuralstyle app   (a live preview in the browser; see app --help)
"""


# -- the parsers ------------------------------------------------------------------------------


def _build_parser(argv: Sequence[str], *, demo: bool) -> argparse.ArgumentParser:
    preset = get_preset(chosen_preset(argv))
    base, label = preset.config, f"preset {preset.name!r}"
    if demo:
        base = dataclasses.replace(base, size=DEMO_SIZE, steps=DEMO_STEPS)
        label += f", demo size {DEMO_SIZE} and {DEMO_STEPS} steps"
    parser = Parser(
        prog="neuralstyle demo" if demo else "neuralstyle",
        description=textwrap.fill(
            f"Stylize the bundled {DEMO_CONTENT} photo with {DEMO_STYLE}, offline, with the "
            "bundled VGG16 weights, and print where the picture is."
            if demo
            else "Repaint CONTENT in the style of STYLE (several STYLEs are blended). "
            "Run `neuralstyle demo` for a first picture.",
            width=78,
        ),
        epilog=_EPILOG.format(preset=preset.name),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    if not demo:
        parser.add_argument("content", metavar="CONTENT", help="the content image (a path)")
        parser.add_argument("styles", metavar="STYLE", nargs="+", help="one or more style images")
        _add_mask_options(parser)
    _add_output_options(parser, demo=demo)
    add_recipe_options(parser, base)
    add_config_options(parser, base, label)
    return parser


def _add_mask_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("regions (greyscale images, white = inside)")
    group.add_argument(
        "--style-mask",
        dest="style_masks",
        metavar="PATH",
        action="append",
        help="where a STYLE applies; give it once per STYLE, in order (instead of blending)",
    )
    group.add_argument(
        "--content-mask",
        metavar="PATH",
        help="where the picture may change; outside it the content stays as it is",
    )


def _add_output_options(parser: argparse.ArgumentParser, *, demo: bool) -> None:
    group = parser.add_argument_group("output")
    group.add_argument(
        "-o",
        "--output",
        required=not demo,
        default=DEMO_OUTPUT if demo else None,
        type=Path,
        help="the stylized image: .png, .jpg or .tif"
        + (f" (default: {DEMO_OUTPUT})" if demo else ""),
    )
    group.add_argument(
        "--bits", type=int, choices=(8, 16), default=8, help="bits per channel, 16 for PNG/TIFF"
    )
    group.add_argument(
        "--save-every",
        type=int,
        metavar="N",
        help="also save the image every N steps to the folder OUTPUTNAME_snapshots next to it",
    )
    group.add_argument("--quiet", action="store_true", help="print only the output path")
    group.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    group.add_argument("--version", action="version", version=f"neuralstyle {__version__}")


# -- running ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Job:
    content: str
    styles: tuple[str, ...]
    output: Path
    preset: Preset
    config: TransferConfig
    init_path: str | None
    style_masks: tuple[str, ...]
    content_mask: str | None
    args: argparse.Namespace


class _Announce:
    """Says what the run will do once its inputs are read and checked, and keeps its
    :class:`RunEnd`, so an interrupted run can still save its best image."""

    def __init__(self, job: _Job) -> None:
        self.job = job
        self.end: RunEnd | None = None

    def on_start(self, start: RunStart) -> None:
        """Print the header line (after every input was read: a bad file prints no header)."""
        self.end = None
        _say(self.job, _summary(self.job, start))

    def on_step(self, state: StepState) -> Stop | None:
        """Nothing to do per step."""
        return None

    def on_end(self, end: RunEnd) -> None:
        """Remember how the run ended."""
        self.end = end


def _job(argv: list[str]) -> _Job:
    demo = argv[:1] == ["demo"]
    rest = argv[1:] if demo else argv
    args = _build_parser(rest, demo=demo).parse_args(rest)
    if demo:
        content, styles = str(example_image(DEMO_CONTENT)), (str(example_image(DEMO_STYLE)),)
    else:
        content, styles = args.content, tuple(args.styles)
    preset = get_preset(args.preset)
    base = preset.config
    if demo:
        base = dataclasses.replace(base, size=DEMO_SIZE, steps=DEMO_STEPS)
    overrides: dict[str, Any] = config_overrides(args)
    init_path = split_init(args.init, overrides)
    config = configured(base, overrides)
    style_masks = tuple(getattr(args, "style_masks", None) or ())
    # Before the network loads; the library's rule and message (--style-weights is style_blend).
    try:
        check_style_counts(config, len(styles), len(style_masks) if style_masks else None)
    except ConfigError as error:
        raise UsageError(str(error)) from error
    content_mask = getattr(args, "content_mask", None)
    return _Job(
        content, styles, args.output, preset, config, init_path, style_masks, content_mask, args
    )


def _snapshot_folder(job: _Job) -> Path | None:
    """Create the snapshot folder next to the output; refuse one that already holds snapshots."""
    every = job.args.save_every
    if every is None:
        return None
    if every < 1:
        raise UsageError(f"--save-every must be a positive number of steps, got {every}")
    folder = job.output.with_name(f"{job.output.stem}_snapshots")
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"snapshot folder {folder} is a file; move it or choose another output")
    if folder.is_dir() and any(folder.glob("step_*.png")):
        raise UsageError(
            f"snapshot folder {folder} already holds snapshots; move them away or choose another "
            "output name"
        )
    folder.mkdir(exist_ok=True)
    return folder


def _say(job: _Job, text: str) -> None:
    if not job.args.quiet:
        print(f"neuralstyle: {text}", file=sys.stderr, flush=True)


def _execute(job: _Job) -> int:
    masks = [*job.style_masks, *([job.content_mask] if job.content_mask else [])]
    protect = [job.content, *job.styles, *([job.init_path] if job.init_path else []), *masks]
    try:
        check_output_path(job.output, protect=protect, bits=job.args.bits)
    except (ImageError, ConfigError) as error:
        raise UsageError(str(error)) from error
    transfer = StyleTransfer(
        job.preset.layer_map,
        config=job.config,
        extractor=build_network(job.args, job.preset.layer_map.layers),
    )
    announce = _Announce(job)
    callbacks = [announce, *_reporting(job)]
    style: ImageSources = job.styles[0] if len(job.styles) == 1 else list(job.styles)
    save = _saver(job, protect)
    try:
        result = transfer.run(
            job.content,
            style,
            init=job.init_path,
            style_masks=job.style_masks or None,
            content_mask=job.content_mask,
            callbacks=callbacks,
        )
    except KeyboardInterrupt:
        return _interrupted(job, announce.end, save)
    # A diverged run keeps its best image; the last one may hold NaN.
    save(result.best_image if result.stop_reason else result.image)
    written = job.output.resolve()
    _say(job, f"{result.steps_done} steps in {result.seconds:.1f} s; wrote {written}")
    print(written, flush=True)
    return 0


def _reporting(job: _Job) -> list[Callback]:
    """Progress (unless quiet) and snapshots (when asked for)."""
    callbacks: list[Callback] = [] if job.args.quiet else [Progress(every=10)]
    folder = _snapshot_folder(job)
    if folder is not None:
        callbacks.append(Snapshots(job.args.save_every, folder))
        _say(job, f"saving a snapshot every {job.args.save_every} steps to {folder}")
    return callbacks


def _saver(job: _Job, protect: list[str]) -> Callable[[torch.Tensor], None]:
    """Write an image to the output, with the content's transparency where the format keeps it."""

    def save(image: torch.Tensor) -> None:
        alpha = None
        if job.output.suffix.lower() not in (".jpg", ".jpeg"):
            alpha = load_alpha(job.content, size=(image.shape[-2], image.shape[-1]))
        save_image(image[:1], job.output, protect=protect, bits=job.args.bits, alpha=alpha)

    return save


def _summary(job: _Job, start: RunStart) -> str:
    config = job.config
    size = f"{config.size} px" if config.size is not None else _full_size(job.content)
    styles = " + ".join(Path(s).name for s in job.styles)
    optimizer = config.optimizer if isinstance(config.optimizer, str) else "a custom optimizer"
    scales = f" over {start.scales} scales from {config.start_size} px" if start.scales > 1 else ""
    return (
        f"{Path(job.content).name} in the style of {styles}: preset {job.preset.name!r}, "
        f"{start.total_steps} steps of {optimizer}{scales}, {size}, on {start.device}"
    )


def _full_size(content: str) -> str:
    """Describe a run at the content's own size, with a hint when that is slow."""
    size = _image_size(content)
    if size is None:
        return "the content's size"  # loading will report the problem properly
    width, height = size
    hint = f" (large: --size {_LARGE // 2} is much faster)" if max(width, height) > _LARGE else ""
    return f"the content's size, {width}x{height} px{hint}"


def _image_size(path: str) -> tuple[int, int] | None:
    """An image file's (width, height) from its header, or None when it cannot be read."""
    try:
        with warnings.catch_warnings():
            # A file past PIL's pixel limit only warns here; loading it refuses it properly.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as opened:
                width, height = opened.size
                return int(width), int(height)
    except (OSError, ValueError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        return None


def _out_of_memory(error: BaseException, job: _Job | None) -> str:
    """One line for an out-of-memory failure, with a size that needs about half the memory."""
    long_side = None
    if job is not None:
        size = _image_size(job.content)
        long_side = job.config.size or (max(size) if size else None)
    # Memory grows with the pixel count: 0.7 x the side is about half the pixels.
    smaller = f"--size {max(16, int(long_side * 0.7))}" if long_side else "a smaller --size"
    return (
        f"out of memory ({one_line(error)[:120]}); try {smaller} (about half the memory), or "
        "--precision bfloat16 on a GPU"
    )


def _interrupted(job: _Job, end: RunEnd | None, save: Callable[[torch.Tensor], None]) -> int:
    if end is None or end.steps_done == 0:
        print("neuralstyle: interrupted before the first step; nothing saved", file=sys.stderr)
        return 130
    save(end.best_image.clamp(0, 1))
    print(
        f"neuralstyle: interrupted after {end.steps_done} steps; saved the best image so far to "
        f"{job.output.resolve()}",
        file=sys.stderr,
    )
    print(job.output.resolve(), flush=True)
    return 130


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``neuralstyle`` command line and return its exit status.

    Args:
        argv: Arguments without the program name; ``sys.argv[1:]`` when None.

    Returns:
        0 when the picture was written, 1 when the run failed, 2 for a usage error, 130 when
        interrupted (the best image so far is saved).

    Example:
        >>> main(["demo", "--size", "64", "--steps", "2", "--quiet"])  # doctest: +SKIP
        neuralstyle-demo.png
        0
    """
    args_list = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args_list
    job: _Job | None = None
    try:
        if args_list[:1] == ["batch"]:
            return _cli_batch.main(args_list[1:])
        if args_list[:1] == ["app"]:
            return app.main(args_list[1:])
        job = _job(args_list)
        return _execute(job)
    except SystemExit as exit_:  # argparse: --help, or a usage error already printed
        return exit_.code if isinstance(exit_.code, int) else 2
    except (UsageError, ConfigError) as error:
        if debug:
            raise
        print(f"neuralstyle: error: {one_line(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("neuralstyle: interrupted", file=sys.stderr)
        return 130
    except InsufficientMemoryError as error:  # refused before the run: its message says it all
        if debug:
            raise
        print(f"neuralstyle: error: {one_line(error)}", file=sys.stderr)
        return 1
    except (torch.OutOfMemoryError, MemoryError) as error:
        if debug:
            raise
        print(f"neuralstyle: error: {_out_of_memory(error, job)}", file=sys.stderr)
        return 1
    except (NeuralStyleError, OSError) as error:
        if debug:
            raise
        print(f"neuralstyle: error: {one_line(error)}", file=sys.stderr)
        return 1
    except Exception as error:
        if debug:
            raise
        print(
            f"neuralstyle: error: unexpected {type(error).__name__}: {one_line(error)[:300]} "
            "(rerun with --debug for the traceback)",
            file=sys.stderr,
        )
        return 1
