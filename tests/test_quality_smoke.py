"""The quality report and the gallery run end to end at a tiny size, offline.

Not a quality test: at 32 px and two steps of a random network the numbers say nothing about
pictures. What is checked is that every part runs, the JSON has the promised keys with values in
their ranges, the table, the files and the grid are where and what they should be, and the
headline ``max_seconds_512`` is only reported for the default preset as shipped.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import math
import statistics
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from PIL import Image
from tiny import one_thread

from neuralstyle import PRESETS

ROOT = Path(__file__).resolve().parents[1]
PRESET_NAMES = ("default", "seed")
CONTENTS = ("chelsea", "coffee")
STYLES = ("great_wave", "starry_night")
PAIRS = 3  # the first three of 2 x 2: chelsea x both styles, coffee x great_wave
MEASURES = ("content_distance", "style_distance", "histogram_distance", "edge_ssim")


@pytest.fixture(scope="module")
def quality() -> Iterator[ModuleType]:
    """``benchmarks/quality.py``, imported the way ``python benchmarks/quality.py`` finds it."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(ROOT / "benchmarks"))
        yield importlib.import_module("quality")
    for name in ("quality", "quality_metrics"):
        sys.modules.pop(name, None)


@pytest.fixture(scope="module")
def gallery() -> Iterator[ModuleType]:
    """``scripts/make_gallery.py``, imported the way ``python scripts/make_gallery.py`` runs it."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(ROOT / "scripts"))
        yield importlib.import_module("make_gallery")
    sys.modules.pop("make_gallery", None)


@dataclass(frozen=True)
class Run:
    results: dict[str, Any]
    output: Path
    saved: Path
    printed: str


def _tiny_argv(*extra: str) -> list[str]:
    return ["--size", "32", "--steps", "2", "--weights", "random", "--threads", "1", *extra]


@pytest.fixture(scope="module")
def run(quality: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """One tiny report: two presets, three pairs, 32 px, two steps, random weights."""
    folder = tmp_path_factory.mktemp("quality")
    output, saved = folder / "quality.json", folder / "saved"
    argv = _tiny_argv(
        "--presets", *PRESET_NAMES,
        "--contents", *CONTENTS,
        "--styles", *STYLES,
        "--pairs", str(PAIRS),
        "--output", str(output),
        "--save-images", str(saved),
    )  # fmt: skip
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        results: dict[str, Any] = quality.main(argv)
    return Run(results, output, saved, printed.getvalue())


def _expected_runs() -> list[tuple[str, str, str]]:
    pairs = [(content, style) for content in CONTENTS for style in STYLES][:PAIRS]
    return [(preset, content, style) for preset in PRESET_NAMES for content, style in pairs]


# -- quality.py ------------------------------------------------------------------------------------


def test_json_file_is_the_last_printed_line(run: Run) -> None:
    last = run.printed.strip().splitlines()[-1]
    assert json.loads(last) == run.results
    assert json.loads(run.output.read_text()) == run.results


def test_json_headlines(run: Run) -> None:
    assert run.results["pairs"] == PAIRS
    assert run.results["size"] == 32
    assert run.results["presets"] == list(PRESET_NAMES)
    # Random weights and two steps are not the default preset as shipped: no 512 px headline.
    assert run.results["max_seconds_512"] is None


def test_one_record_per_preset_and_pair(run: Run) -> None:
    records = run.results["runs"]
    assert [(r["preset"], r["content"], r["style"]) for r in records] == _expected_runs()
    for record in records:
        assert record["steps"] == 2
        assert max(record["height"], record["width"]) == 32
        assert record["seconds"] >= record["seconds_targets"] > 0


def test_measures_are_finite_and_in_range(run: Run) -> None:
    for record in run.results["runs"]:
        assert all(math.isfinite(record[key]) for key in MEASURES), record
        assert record["content_distance"] > 0
        assert record["style_distance"] > 0
        assert 0 < record["histogram_distance"] <= 1
        assert -1 <= record["edge_ssim"] < 1


def test_means_are_the_means_of_the_records(run: Run) -> None:
    assert set(run.results["means"]) == set(PRESET_NAMES)
    for preset, means in run.results["means"].items():
        records = [r for r in run.results["runs"] if r["preset"] == preset]
        for key in ("seconds", *MEASURES):
            assert means[key] == pytest.approx(statistics.fmean(r[key] for r in records)), key
        assert means["max_seconds"] == max(r["seconds"] for r in records)
        assert means["setup_seconds"] > 0


def test_table_has_a_row_per_run_then_the_means(run: Run) -> None:
    lines = run.printed.strip().splitlines()[:-1]
    assert lines[0].split() == [
        "preset",
        "pair",
        "seconds",
        "content",
        "style",
        "hist",
        "edge",
        "SSIM",
    ]
    rows = lines[1 : 1 + len(_expected_runs())]
    for row, (preset, content, style) in zip(rows, _expected_runs(), strict=True):
        assert row.split()[:2] == [preset, f"{content}__{style}"]
    means = lines[lines.index("mean over pairs") + 1 :]
    assert [line.split()[0] for line in means[: len(PRESET_NAMES)]] == list(PRESET_NAMES)
    assert means[-1].startswith("max seconds (default, 512 px): n/a")


def test_saved_images_follow_the_layout(run: Run) -> None:
    saved = sorted(p.relative_to(run.saved).as_posix() for p in run.saved.rglob("*.jpg"))
    expected = sorted(f"{p}/{c}__{s}.jpg" for p, c, s in _expected_runs())
    assert saved == expected
    record = run.results["runs"][0]
    with Image.open(run.saved / "default" / "chelsea__great_wave.jpg") as picture:
        assert picture.format == "JPEG"
        assert picture.size == (record["width"], record["height"])


def test_no_write_writes_no_file(quality: ModuleType, tmp_path: Path) -> None:
    output = tmp_path / "quality.json"
    argv = _tiny_argv("--pairs", "1", "--output", str(output), "--no-write")
    with contextlib.redirect_stdout(io.StringIO()):
        results = quality.main(argv)
    assert results["pairs"] == 1
    assert not output.exists()


def test_all_presets_means_every_preset(quality: ModuleType) -> None:
    args = quality._parse(["--presets", "all", "--pairs", "2"])
    assert args.presets == list(PRESETS)
    assert len(args.pair_list) == 2


def test_default_pairs_are_every_example_pair(quality: ModuleType) -> None:
    pairs = quality._parse([]).pair_list
    assert len(pairs) == 25
    assert pairs[0].name == "astronaut__composition_vii"
    assert all(pair.content.is_relative_to(ROOT / "examples" / "images") for pair in pairs)


def test_unknown_preset_is_refused(quality: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        quality._parse(["--presets", "default", "monet"])
    assert exited.value.code == 2
    assert "unknown preset(s) monet; choose from default" in capsys.readouterr().err


def test_unknown_image_is_refused(quality: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        quality._parse(["--styles", "mona_lisa"])
    assert exited.value.code == 2
    assert "no image named mona_lisa" in capsys.readouterr().err


def _record(quality: ModuleType, preset: str, seconds: float) -> Any:
    measures = dict.fromkeys(MEASURES, 0.5)
    return quality.Record(preset, "c", "s", 512, 384, 300, None, seconds, 1.0, **measures)


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ([], 250.0),
        (["--steps", str(PRESETS["default"].config.steps)], 250.0),
        (["--steps", "7"], None),
        (["--size", "256"], None),
        (["--weights", "random"], None),
    ],
)
def test_max_seconds_512_is_only_for_the_default_as_shipped(
    quality: ModuleType, options: list[str], expected: float | None
) -> None:
    records = [
        _record(quality, "default", 120.0),
        _record(quality, "default", 250.0),
        _record(quality, "gatys", 900.0),
    ]
    args = quality._parse(["--presets", "all", *options])
    assert quality._max_seconds_512(records, args) == expected


# -- make_gallery.py -------------------------------------------------------------------------------


def _gallery_argv(tmp_path: Path, *extra: str) -> list[str]:
    return [
        "--output", str(tmp_path / "grid.jpg"),
        "--small-output", str(tmp_path / "grid-small.jpg"),
        *extra,
    ]  # fmt: skip


def test_gallery_from_saved_results(gallery: ModuleType, run: Run, tmp_path: Path) -> None:
    argv = _gallery_argv(
        tmp_path, "--from", str(run.saved), "--contents", *CONTENTS, "--styles", "great_wave",
        "--cell", "40",
    )  # fmt: skip
    with contextlib.redirect_stdout(io.StringIO()):
        written = gallery.main(argv)
    step = 40 + gallery.GAP
    with Image.open(tmp_path / "grid.jpg") as grid:
        # One style column and two content rows, plus the header row and column.
        assert grid.size == (2 * step - gallery.GAP, 3 * step - gallery.GAP)
    assert written == {
        str(tmp_path / "grid.jpg"): (tmp_path / "grid.jpg").stat().st_size,
        str(tmp_path / "grid-small.jpg"): (tmp_path / "grid-small.jpg").stat().st_size,
    }


def test_gallery_puts_each_result_in_its_cell(gallery: ModuleType, tmp_path: Path) -> None:
    saved = tmp_path / "saved" / "default"
    saved.mkdir(parents=True)
    colours = {
        ("astronaut", "shipwreck"): (255, 0, 0),
        ("astronaut", "the_scream"): (0, 255, 0),
        ("rocket", "shipwreck"): (0, 0, 255),
        ("rocket", "the_scream"): (255, 255, 0),
    }
    for (content, style), colour in colours.items():
        Image.new("RGB", (30, 20), colour).save(saved / f"{content}__{style}.jpg", quality=95)
    argv = _gallery_argv(
        tmp_path, "--from", str(tmp_path / "saved"), "--contents", "astronaut", "rocket",
        "--styles", "shipwreck", "the_scream", "--cell", "50",
    )  # fmt: skip
    with contextlib.redirect_stdout(io.StringIO()):
        gallery.main(argv)
    step = 50 + gallery.GAP
    with Image.open(tmp_path / "grid.jpg") as opened:
        grid = opened.convert("RGB")
    assert all(channel > 245 for channel in grid.getpixel((25, 25)))  # the empty corner
    for row, content in enumerate(("astronaut", "rocket"), start=1):
        for column, style in enumerate(("shipwreck", "the_scream"), start=1):
            centre = grid.getpixel((column * step + 25, row * step + 25))
            expected = colours[content, style]
            assert all(abs(a - b) < 40 for a, b in zip(centre, expected, strict=True)), (
                content,
                style,
                centre,
            )


def test_gallery_names_a_missing_result(gallery: ModuleType, run: Run, tmp_path: Path) -> None:
    # quality.py ran three of the four pairs: coffee x starry_night is missing.
    argv = _gallery_argv(
        tmp_path, "--from", str(run.saved), "--contents", *CONTENTS, "--styles", *STYLES
    )
    with pytest.raises(SystemExit, match=r"missing 1 result\(s\), e.g. .*coffee__starry_night"):
        gallery.main(argv)
    assert not (tmp_path / "grid.jpg").exists()


def test_gallery_runs_the_preset(gallery: ModuleType, tmp_path: Path) -> None:
    argv = _gallery_argv(
        tmp_path, "--size", "32", "--steps", "1", "--weights", "random", "--contents", "rocket",
        "--styles", "the_scream", "--cell", "32",
    )  # fmt: skip
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), one_thread():
        gallery.main(argv)
    assert printed.getvalue().startswith("rocket x the_scream: ")
    with Image.open(tmp_path / "grid-small.jpg") as small:
        assert small.size == (2 * 32 + gallery.GAP, 2 * 32 + gallery.GAP)


def test_jpeg_over_the_limit_is_refused(gallery: ModuleType, tmp_path: Path) -> None:
    noise = Image.effect_noise((64, 64), 100).convert("RGB")
    with pytest.raises(SystemExit, match="over 500 bytes even at JPEG quality 50"):
        gallery.save_jpeg_under(noise, tmp_path / "noise.jpg", 500)
    assert not (tmp_path / "noise.jpg").exists()
    assert gallery.save_jpeg_under(noise, tmp_path / "noise.jpg", 100_000) <= 100_000
