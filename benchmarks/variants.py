"""A preset with some config fields changed, measured as the quality protocol measures it:
``python benchmarks/variants.py --set init=content style_weight=0.2 --pairs chelsea:starry_night``.

For trying a recipe change before it ships: each ``--set FIELD=VALUE`` replaces one
:class:`~neuralstyle.TransferConfig` field of ``--preset`` (``default``); the value is read as
JSON where it parses (``0.2``, ``null``, ``[0.9, 0.99]``) and as text otherwise (``content``).
Prints a row per pair and the means, saves the pictures under ``--pictures DIR/<name>/``, and
writes the records to ``--output`` if given. It never touches ``quality.json``: records there
are the presets as they ship (``benchmarks/quality.py``).

Smoke use: ``--size 32 --steps 2 --weights random --no-faces --pairs chelsea:starry_night``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from _results import json_safe, write_results
from faces import face_detector
from quality import _IMAGES, _ROOT, Judge, Record, _pairs, format_record, header, run_pair

from neuralstyle import PRESETS, FeatureExtractor, StyleTransfer, TransferConfig

__all__ = ["changes", "main"]

_MEASURES = ("seconds", "edge", "luma", "hist", "gram")


def changes(settings: Sequence[str]) -> dict[str, Any]:
    """``FIELD=VALUE`` settings as config changes (values JSON where they parse, else text).

    Raises:
        ValueError: A setting has no ``=`` or names no config field.
    """
    names = {field.name for field in dataclasses.fields(TransferConfig)}
    found: dict[str, Any] = {}
    for setting in settings:
        field, equals, text = setting.partition("=")
        if not equals or field not in names:
            raise ValueError(
                f"--set takes FIELD=VALUE with a TransferConfig field, got {setting!r}"
            )
        try:
            found[field] = json.loads(text)
        except json.JSONDecodeError:
            found[field] = text
    return found


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="default", choices=sorted(PRESETS))
    parser.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE")
    parser.add_argument("--name", default="variant", help="the pictures' folder name")
    parser.add_argument("--pairs", nargs="+", metavar="CONTENT:STYLE", help="default: all 25")
    parser.add_argument("--images", type=Path, default=_IMAGES, help="folder with content/, style/")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--weights", choices=("bundled", "random"), default="bundled")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--no-faces", action="store_true")
    parser.add_argument("--pictures", type=Path, default=_ROOT / "out" / "variants")
    parser.add_argument("--output", type=Path, default=None, help="a JSON file for the records")
    args = parser.parse_args(argv)
    try:
        args.changes = changes(args.set)
    except ValueError as error:
        parser.error(str(error))
    args.pair_list = _pairs(parser, args.images, args.pairs)
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the variant on the pairs, print and return its records and means."""
    args = _parse(argv)
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        return _run(args)
    finally:
        torch.set_num_threads(threads)


def _run(args: argparse.Namespace) -> dict[str, Any]:
    preset = PRESETS[args.preset]
    config = dataclasses.replace(preset.config, size=args.size, **args.changes)
    if args.steps is not None:
        config = dataclasses.replace(config, steps=args.steps)
    extractor = None
    if args.weights == "random":
        extractor = FeatureExtractor(preset.layer_map.layers, weights="random", seed=0)
    transfer = StyleTransfer(preset.layer_map, config=config, extractor=extractor)
    judge = Judge(args.weights, None if args.no_faces else face_detector())
    print(header(), flush=True)
    records: list[Record] = []
    for pair in args.pair_list:
        record = run_pair(transfer, args.name, pair, judge, args.pictures, shipped=False)
        print(format_record(record), flush=True)
        records.append(record)
    means = {key: statistics.fmean(getattr(r, key) for r in records) for key in _MEASURES}
    faces = [r.face for r in records if r.face is not None]
    print(f"{args.name} means: " + ", ".join(f"{k} {v:.3f}" for k, v in means.items()))
    if faces:
        print(f"{args.name} faces: {', '.join(f'{face:.3f}' for face in faces)}")
    results = json_safe(
        {
            "benchmark": "variants",
            "preset": args.preset,
            "changes": args.changes,
            "size": args.size,
            "means": means,
            "runs": [dataclasses.asdict(record) for record in records],
        }
    )
    write_results(results, args.output)
    return dict(results)


if __name__ == "__main__":
    main()
    sys.exit(0)
