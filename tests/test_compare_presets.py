"""scripts/compare_presets.py lays out content | style | each preset's saved picture per pair."""

from __future__ import annotations

import contextlib
import importlib
import io
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def compare() -> Iterator[ModuleType]:
    """``scripts/compare_presets.py``, imported the way ``python scripts/...`` runs it."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(ROOT / "scripts"))
        yield importlib.import_module("compare_presets")
    for name in ("compare_presets", "make_gallery"):
        sys.modules.pop(name, None)


def test_each_preset_picture_lands_in_its_row_and_column(
    compare: ModuleType, tmp_path: Path
) -> None:
    colours = {
        ("default", "astronaut"): (255, 0, 0),
        ("neural-style", "astronaut"): (0, 255, 0),
        ("default", "rocket"): (0, 0, 255),
        ("neural-style", "rocket"): (255, 255, 0),
    }
    for (preset, content), colour in colours.items():
        (tmp_path / preset).mkdir(exist_ok=True)
        Image.new("RGB", (30, 20), colour).save(tmp_path / preset / f"{content}__the_scream.png")
    output = tmp_path / "presets.jpg"
    argv = ["--from", str(tmp_path), "--pairs", "astronaut:the_scream", "rocket:the_scream"]
    with contextlib.redirect_stdout(io.StringIO()):
        written = compare.main([*argv, "--cell", "50", "--output", str(output)])
    assert written == output.stat().st_size
    step = 50 + compare.GAP
    with Image.open(output) as opened:
        sheet = opened.convert("RGB")
    assert sheet.size == (4 * step - compare.GAP, 2 * step - compare.GAP)
    for row, content in enumerate(("astronaut", "rocket")):
        for column, preset in enumerate(("default", "neural-style"), start=2):
            centre = sheet.getpixel((column * step + 25, row * step + 25))
            expected = colours[preset, content]
            assert all(abs(a - b) < 40 for a, b in zip(centre, expected, strict=True))


def test_a_missing_picture_says_which_run_makes_it(compare: ModuleType, tmp_path: Path) -> None:
    (tmp_path / "default").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "default" / "chelsea__starry_night.png")
    argv = ["--from", str(tmp_path), "--pairs", "chelsea:starry_night"]
    with pytest.raises(SystemExit, match=r"neural-style/chelsea__starry_night\.png: run bench"):
        compare.main([*argv, "--output", str(tmp_path / "out.jpg")])
    assert not (tmp_path / "out.jpg").exists()
