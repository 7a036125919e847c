"""``neuralstyle batch``: many pictures into one folder, resumable (see :mod:`neuralstyle.many`).

Every content with every style (``--content`` and ``--style`` take files, folders and globs), or
the pairs of a CSV/JSON list (``--pairs``); the recipe options are the single run's. One progress
line for the whole job on a terminal, a line per pair otherwise; a failed pair gets one line
with its reason at the end and the exit status 1, the others still finish.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from neuralstyle._cli_options import (
    INIT_NAMES,
    Parser,
    UsageError,
    add_config_options,
    add_recipe_options,
    build_network,
    chosen_preset,
    config_overrides,
    configured,
)
from neuralstyle.callbacks import Callback, Progress
from neuralstyle.errors import ConfigError, ImageError
from neuralstyle.many import (
    MANIFEST,
    Outcome,
    Pair,
    every_pair,
    find_images,
    in_process,
    read_pairs,
    stylize_many,
)
from neuralstyle.many_ray import on_ray
from neuralstyle.presets import get_preset
from neuralstyle.transfer import StyleTransfer

__all__ = ["main"]

_EPILOG = """\
Pictures are named CONTENT__STYLE.png (the files' stems); OUTPUT/manifest.jsonl gets one JSON
line per pair (inputs, recipe and its hash, seed, seconds, loss, status). Run the same command
again to resume: finished pairs are skipped, failed and missing ones redone. Another recipe over
the folder's pictures is refused unless --overwrite. Exit status: 0 every pair done, 1 some
failed (each is named), 2 bad usage, 130 interrupted.

examples:
  neuralstyle batch --content photos/ --style paintings/*.jpg -o out/ --size 512
  neuralstyle batch --pairs pairs.csv -o out/ --preset gatys
"""


def main(argv: Sequence[str]) -> int:
    """Run ``neuralstyle batch`` with ``argv`` (after ``batch``); return the exit status.

    Raises:
        UsageError: The options do not make a job (no pairs, a bad value).
    """
    args = _parser(argv).parse_args(argv)
    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.engine == "ray" and args.batch_size != 1:
        raise UsageError("--batch-size applies to the local engine; Ray runs one pair a task")
    pairs = _pairs(args)
    preset = get_preset(args.preset)
    config = configured(preset.config, config_overrides(args))
    if args.init is not None:
        if args.init not in INIT_NAMES:
            names = ", ".join(INIT_NAMES)
            raise UsageError(f"--init in a batch must be one of {names} (one start for all)")
        config = configured(config, {"init": args.init})
    extractor = build_network(args, preset.layer_map.layers)
    transfer = StyleTransfer(preset.layer_map, config=config, extractor=extractor)
    callbacks: list[Callback] = [Progress(every=10)] if args.pair_progress else []
    bar = _JobProgress(len(pairs), sys.stderr, quiet=args.quiet)
    try:
        if args.engine == "ray":
            runner = on_ray(
                transfer,
                address=args.ray_address,
                gpus=args.gpus_per_pair,
                cpus=args.cpus_per_pair,
                callbacks=callbacks,
            )
        else:
            runner = in_process(transfer, callbacks, batch_size=args.batch_size)
        report = stylize_many(
            pairs,
            args.output,
            transfer=transfer,
            overwrite=args.overwrite,
            on_outcome=bar.update,
            callbacks=callbacks,
            runner=runner,
        )
    except (ConfigError, ImageError) as error:  # the folder, the names or the recipe
        raise UsageError(str(error)) from error
    bar.close()
    for failed in report.failed:
        pair = failed.pair
        print(
            f"neuralstyle: failed {pair.content} + {pair.style}: {failed.reason}", file=sys.stderr
        )
    if not args.quiet:
        print(
            f"neuralstyle: {report.count('done')} done, {report.count('skipped')} already done, "
            f"{report.count('failed')} failed; manifest: {Path(args.output) / MANIFEST}",
            file=sys.stderr,
        )
    print(Path(args.output).resolve(), flush=True)
    return 0 if report.ok else 1


def _parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    preset = get_preset(chosen_preset(argv))
    parser = Parser(
        prog="neuralstyle batch",
        description=textwrap.fill(
            "Stylize every CONTENT with every STYLE (or the pairs of a list) into one folder; "
            "run it again to resume.",
            width=78,
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    group = parser.add_argument_group("pictures")
    group.add_argument("--content", nargs="+", metavar="PATH", help="content files, folders, globs")
    group.add_argument("--style", nargs="+", metavar="PATH", help="style files, folders, globs")
    group.add_argument(
        "--pairs", type=Path, metavar="FILE", help="a CSV (content,style rows) or JSON list"
    )
    group.add_argument("-o", "--output", required=True, type=Path, help="the output folder")
    group.add_argument(
        "--overwrite", action="store_true", help="redo pictures an earlier recipe made"
    )
    group.add_argument("--pair-progress", action="store_true", help="a progress bar per pair")
    engine = parser.add_argument_group("engine")
    engine.add_argument(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help="here, or as Ray tasks (pip install 'neuralstyle[ray]') (default: local)",
    )
    engine.add_argument(
        "--batch-size",
        type=int,
        default=1,
        metavar="N",
        help="local: up to N pairs with one style and photos of one shape at --size run as one "
        "batch, faster on a GPU and for small pictures (default: 1)",
    )
    engine.add_argument(
        "--ray-address",
        metavar="ADDRESS",
        help="the Ray cluster (default: RAY_ADDRESS, else a local Ray started for the job)",
    )
    engine.add_argument(
        "--gpus-per-pair",
        type=float,
        default=0.0,
        metavar="X",
        help="Ray: GPUs per pair (0.5 shares one)",
    )
    engine.add_argument(
        "--cpus-per-pair", type=float, default=1.0, metavar="X", help="Ray: CPUs per pair"
    )
    group.add_argument("--quiet", action="store_true", help="print only the output folder")
    group.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    add_recipe_options(parser, preset.config)
    add_config_options(parser, preset.config, f"preset {preset.name!r}")
    return parser


def _pairs(args: argparse.Namespace) -> list[Pair]:
    """The job's pairs: a list file, or every content with every style (not both)."""
    grid = args.content is not None or args.style is not None
    if args.pairs is not None and grid:
        raise UsageError("give --pairs or --content with --style, not both")
    try:
        if args.pairs is not None:
            return read_pairs(args.pairs)
        if args.content is None or args.style is None:
            raise UsageError("give --content and --style (files, folders or globs), or --pairs")
        return every_pair(find_images(args.content), find_images(args.style))
    except (ConfigError, ImageError) as error:
        raise UsageError(str(error)) from error


class _JobProgress:
    """One line for the whole job: a bar redrawn in place on a terminal, a line per pair
    elsewhere (a log file gets no carriage returns)."""

    def __init__(self, total: int, out: TextIO, *, quiet: bool) -> None:
        self.total, self.out, self.quiet = total, out, quiet
        self.finished, self.ran, self.run_seconds = 0, 0, 0.0
        self.live = out.isatty()

    def update(self, outcome: Outcome) -> None:
        """Count a finished pair and show where the job stands."""
        self.finished += 1
        if outcome.status != "skipped":
            self.ran += 1
            self.run_seconds += outcome.seconds
        if self.quiet:
            return
        if self.live:
            self.out.write("\r" + self._bar())
        else:
            self.out.write(
                f"neuralstyle: {self._count()} {outcome.pair.output_name} {outcome.status}"
            )
            self.out.write(f" ({outcome.seconds:.1f} s)\n" if outcome.status != "skipped" else "\n")
        self.out.flush()

    def close(self) -> None:
        """End the bar's line."""
        if self.live and not self.quiet and self.finished:
            self.out.write("\n")
            self.out.flush()

    def _count(self) -> str:
        return f"[{self.finished}/{self.total}]"

    def _bar(self, width: int = 24) -> str:
        filled = round(width * self.finished / max(self.total, 1))
        line = f"[{'#' * filled}{'.' * (width - filled)}] {self.finished}/{self.total} pairs"
        if self.ran:
            per_pair = self.run_seconds / self.ran
            left = per_pair * (self.total - self.finished)
            line += f", {per_pair:.1f} s/pair, ~{_duration(left)} left"
        return line


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
