"""The ``neuralstyle`` command: stylize images from a shell, or run the bundled demo.

Usage errors exit with status 2, failures with 1, Ctrl-C with 130; each prints one line, never a
traceback (``--debug`` shows it).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from neuralstyle.callbacks import Progress
from neuralstyle.errors import ConfigError, NeuralStyleError
from neuralstyle.presets import DEFAULT, PRESETS, get_preset

__all__ = ["main"]

DEMO_CONTENT = "chelsea.jpg"
DEMO_STYLE = "starry_night.jpg"
DEMO_SIZE = 256
DEMO_STEPS = 150


def _transfer_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="neuralstyle",
        description=(
            "Repaint CONTENT in the style of STYLE. Run `neuralstyle demo` for a first picture."
        ),
    )
    parser.add_argument("content", help="content image (path)")
    parser.add_argument("style", help="style image (path)")
    parser.add_argument("-o", "--output", required=True, help="output image (.png, .jpg, .tif)")
    _add_run_options(parser, size=DEFAULT.config.size, steps=None)
    return parser


def _demo_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="neuralstyle demo",
        description=(
            f"Stylize the bundled {DEMO_CONTENT} with {DEMO_STYLE} using the bundled VGG16 weights "
            "(offline)."
        ),
    )
    parser.add_argument("-o", "--output", default="neuralstyle-demo.png", help="%(default)s")
    _add_run_options(parser, size=DEMO_SIZE, steps=DEMO_STEPS)
    return parser


def _add_run_options(
    parser: argparse.ArgumentParser, *, size: int | None, steps: int | None
) -> None:
    parser.add_argument(
        "--preset", default=DEFAULT.name, choices=sorted(PRESETS), help="recipe (%(default)s)"
    )
    parser.add_argument(
        "--size", type=int, default=size, help="long side of the output in px (%(default)s)"
    )
    parser.add_argument(
        "--steps", type=int, default=steps, help="optimizer steps (default: the preset's)"
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, mps (%(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (%(default)s)")
    parser.add_argument("--quiet", action="store_true", help="print only the output path")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status.

    Args:
        argv: Arguments without the program name; ``sys.argv[1:]`` when None.
    """
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["demo"]:
        args = _demo_parser().parse_args(args_list[1:])
        from neuralstyle.image import example_image

        content: str = str(example_image(DEMO_CONTENT))
        style: str = str(example_image(DEMO_STYLE))
    else:
        args = _transfer_parser().parse_args(args_list)
        content, style = args.content, args.style
    try:
        written = _stylize(content, style, args)
    except KeyboardInterrupt:
        print("neuralstyle: interrupted", file=sys.stderr)
        return 130
    except (NeuralStyleError, OSError) as error:
        if args.debug:
            raise
        print(f"neuralstyle: error: {error}", file=sys.stderr)
        return 1
    print(written)
    return 0


def _stylize(content: str, style: str, args: argparse.Namespace) -> Path:
    from neuralstyle.image import save_image
    from neuralstyle.transfer import StyleTransfer

    output = Path(args.output)
    # Refuse before spending minutes on a run whose result could not be saved.
    if output.resolve() in {Path(content).resolve(), Path(style).resolve()}:
        raise ConfigError(f"output {str(output)!r} is an input image; choose another output path")
    preset = get_preset(args.preset)
    config = replace(preset.config, size=args.size, device=args.device, seed=args.seed)
    if args.steps is not None:
        config = replace(config, steps=args.steps)
    callbacks = [] if args.quiet else [Progress(every=10)]
    transfer = StyleTransfer(preset.layer_map, config=config, callbacks=callbacks)
    result = transfer.run(content, style)
    return save_image(result.image, output, protect=[content, style])
