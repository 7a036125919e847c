"""The quality report and the gallery run end to end at a tiny size, offline.

Not a quality test: at 32 px and two steps of a random network the numbers say nothing about
pictures. What is checked is that every part runs, the JSON has the promised keys with values in
their ranges, the table, the files and the grid are where and what they should be, and the
headline ``max_seconds_512`` is only reported for the default preset as shipped.
"""

from __future__ import annotations

import contextlib
import dataclasses
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
PRESET_NAMES = ("default", "neural-style")
PAIRS = ("chelsea:great_wave", "chelsea:starry_night", "astronaut:great_wave")
MEASURES = ("edge", "luma", "hist", "gram")


@pytest.fixture(scope="module")
def quality() -> Iterator[ModuleType]:
    """``benchmarks/quality.py``, imported the way ``python benchmarks/quality.py`` finds it."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(ROOT / "benchmarks"))
        yield importlib.import_module("quality")
    for name in ("quality", "quality_metrics", "faces", "_results"):
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
    folder: Path
    printed: str

    @property
    def output(self) -> Path:
        return self.folder / "quality.json"

    @property
    def saved(self) -> Path:
        return self.folder / "pictures"


def _tiny_argv(folder: Path, *extra: str) -> list[str]:
    return [
        "--size", "32", "--steps", "2", "--weights", "random", "--threads", "1", "--no-faces",
        "--output", str(folder / "quality.json"), "--pictures", str(folder / "pictures"),
        "--sheet", str(folder / "sheet.jpg"), "--plot", str(folder / "plot.png"), *extra,
    ]  # fmt: skip


def _report(quality: ModuleType, argv: list[str]) -> tuple[dict[str, Any], str]:
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        results: dict[str, Any] = quality.main(argv)
    return results, printed.getvalue()


@pytest.fixture(scope="module")
def run(quality: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """One tiny report: two presets, three pairs, 32 px, two steps, random weights."""
    folder = tmp_path_factory.mktemp("quality")
    argv = _tiny_argv(folder, "--presets", *PRESET_NAMES, "--pairs", *PAIRS)
    with one_thread():
        results, printed = _report(quality, argv)
    return Run(results, folder, printed)


def _expected_runs() -> list[tuple[str, str]]:
    return sorted((preset, pair) for preset in PRESET_NAMES for pair in PAIRS)


# -- quality.py ------------------------------------------------------------------------------------


def test_json_file_is_the_last_printed_line(run: Run) -> None:
    last = run.printed.strip().splitlines()[-1]
    assert json.loads(last) == run.results
    assert json.loads(run.output.read_text()) == run.results


def test_one_record_per_preset_and_pair(run: Run) -> None:
    records = run.results["runs"]
    assert sorted((r["preset"], r["pair"]) for r in records) == _expected_runs()
    for record in records:
        assert record["steps"] == 2
        assert max(record["height"], record["width"]) == 32
        assert record["seconds"] >= record["seconds_targets"] > 0
        assert record["shipped"] is False  # random weights and two steps


def test_measures_are_finite_and_in_range(run: Run) -> None:
    for record in run.results["runs"]:
        assert all(math.isfinite(record[key]) for key in MEASURES), record
        assert -1 <= record["edge"] <= 1
        assert -1 <= record["luma"] <= 1
        assert 0 <= record["hist"] <= 1
        assert record["gram"] >= 0
        assert record["face"] is None  # --no-faces


def test_means_are_the_means_of_the_records(run: Run) -> None:
    assert set(run.results["means"]) == set(PRESET_NAMES)
    for preset, means in run.results["means"].items():
        records = [r for r in run.results["runs"] if r["preset"] == preset]
        for key in ("seconds", *MEASURES):
            assert means[key] == pytest.approx(statistics.fmean(r[key] for r in records)), key
        assert means["seconds_max"] == max(r["seconds"] for r in records)
        assert means["edge_min"] == min(r["edge"] for r in records)


def test_smoke_runs_check_no_targets(run: Run) -> None:
    # Not the presets as shipped: no target is claimed met or missed from them.
    assert run.results["checks"] == {}
    assert run.results["default_vs_neural_style"] is None


def test_table_has_a_row_per_run_then_the_means(run: Run) -> None:
    lines = run.printed.strip().splitlines()
    assert lines[0].split() == ["preset", "pair", "seconds", "edge", "luma", "hist", "gram", "face"]
    rows = [line.split()[:2] for line in lines[1 : 1 + len(_expected_runs())]]
    assert sorted((preset, pair) for preset, pair in rows) == _expected_runs()
    start = next(i for i, line in enumerate(lines) if line.startswith("mean over"))
    assert [line.split()[0] for line in lines[start + 1 : start + 3]] == sorted(PRESET_NAMES)


def test_pictures_sheet_and_plot_are_written(run: Run) -> None:
    saved = sorted(p.relative_to(run.saved).as_posix() for p in run.saved.rglob("*.png"))
    expected = sorted(
        f"{preset}/{pair.replace(':', '__')}.png" for preset, pair in _expected_runs()
    )
    assert saved == expected
    with Image.open(run.saved / "default" / "chelsea__great_wave.png") as picture:
        record = next(r for r in run.results["runs"] if r["pair"] == "chelsea:great_wave")
        assert picture.size == (record["width"], record["height"])
    with Image.open(run.folder / "sheet.jpg") as sheet:
        # content, style, two presets, two full-size crops: six cells a row, a row a pair.
        assert sheet.width > 6 * 200
        assert sheet.height > 3 * 200
    with Image.open(run.folder / "plot.png") as plot:
        assert plot.size == (900, 640)


def test_records_accumulate_and_a_rerun_replaces_its_own(
    quality: ModuleType, run: Run, tmp_path: Path
) -> None:
    folder = tmp_path / "again"
    folder.mkdir()
    (folder / "quality.json").write_text(run.output.read_text())
    argv = _tiny_argv(folder, "--presets", "default", "--pairs", "chelsea:great_wave")
    with one_thread():
        results, _ = _report(quality, argv)
    assert sorted((r["preset"], r["pair"]) for r in results["runs"]) == _expected_runs()
    again = [r for r in results["runs"] if (r["preset"], r["pair"]) == ("default", PAIRS[0])]
    before = [r for r in run.results["runs"] if (r["preset"], r["pair"]) == ("default", PAIRS[0])]
    assert again[0]["seconds"] != before[0]["seconds"]  # measured anew
    fresh, _ = _report(quality, [*argv, "--fresh"])
    assert [(r["preset"], r["pair"]) for r in fresh["runs"]] == [("default", PAIRS[0])]


def _record(quality: ModuleType, preset: str, pair: str, **measures: Any) -> Any:
    content, style = pair.split(":")
    values = {
        "seconds": 100.0, "edge": 0.1, "luma": 0.8, "hist": 0.4, "gram": 0.2, "face": None,
        "content_face": None, **measures,
    }  # fmt: skip
    return quality.Record(
        preset=preset, content=content, style=style, size=512, height=512, width=384,
        steps=300, stop_reason=None, precision="bfloat16", seconds_targets=1.0, shipped=True,
        **values,
    )  # fmt: skip


def test_records_from_before_precision_was_recorded_load_as_float32(
    quality: ModuleType, tmp_path: Path
) -> None:
    record = _record(quality, "default", "a:x")
    old = {key: value for key, value in dataclasses.asdict(record).items() if key != "precision"}
    path = tmp_path / "quality.json"
    path.write_text(json.dumps({"runs": [old]}))
    assert quality.load_records(path) == [dataclasses.replace(record, precision="float32")]


def test_the_targets_are_checked_on_the_shipped_default(quality: ModuleType) -> None:
    records = [
        _record(quality, "default", "a:x", edge=0.05, seconds=250.0, face=0.99),
        _record(quality, "default", "b:x", edge=0.02, seconds=310.0),
        _record(quality, "neural-style", "a:x", edge=0.04, gram=0.3, hist=0.5),
    ]
    results = quality.summarize(records, quality._parse(["--pairs", "chelsea:great_wave"]))
    checks = results["checks"]
    assert checks["default_min_edge"] == 0.02
    assert checks["default_min_edge_met"] is False
    assert checks["default_faces_kept"] is True
    assert checks["default_max_seconds_met"] is False
    versus = results["default_vs_neural_style"]
    assert versus["pairs"] == ["a:x"]  # only the pair both ran
    assert versus["dominates"] is True  # edge 0.05 >= 0.04, gram 0.2 <= 0.3, hist 0.4 <= 0.5
    worse = [*records[:2], _record(quality, "neural-style", "a:x", edge=0.04, gram=0.1)]
    assert quality.compare(worse, "default", "neural-style")["dominates"] is False


def test_all_presets_means_every_preset(quality: ModuleType) -> None:
    args = quality._parse(["--presets", "all", "--pairs", "rocket:the_scream"])
    assert args.presets == list(PRESETS)
    assert [pair.name for pair in args.pair_list] == ["rocket__the_scream"]


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


def test_unknown_pair_is_refused(quality: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        quality._parse(["--pairs", "chelsea:mona_lisa"])
    assert exited.value.code == 2
    assert "no pair 'chelsea:mona_lisa'" in capsys.readouterr().err


# -- make_gallery.py -------------------------------------------------------------------------------


def _gallery_argv(tmp_path: Path, *extra: str) -> list[str]:
    return [
        "--output", str(tmp_path / "grid.jpg"),
        "--small-output", str(tmp_path / "grid-small.jpg"),
        *extra,
    ]  # fmt: skip


def test_gallery_from_saved_results(gallery: ModuleType, run: Run, tmp_path: Path) -> None:
    argv = _gallery_argv(
        tmp_path, "--from", str(run.saved), "--contents", "astronaut", "chelsea",
        "--styles", "great_wave",
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
        Image.new("RGB", (30, 20), colour).save(saved / f"{content}__{style}.png")
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
    # quality.py ran three of the four pairs: astronaut x starry_night is missing.
    argv = _gallery_argv(
        tmp_path, "--from", str(run.saved), "--contents", "astronaut", "chelsea",
        "--styles", "great_wave", "starry_night",
    )  # fmt: skip
    with pytest.raises(SystemExit, match=r"missing 1 result\(s\), e.g. .*astronaut__starry_n"):
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
