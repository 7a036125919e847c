"""The variants benchmark runs a changed preset end to end at a tiny size and reads its settings.

Not a quality test: at 32 px with a random network the measures say nothing about pictures.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest
from tiny import benchmark_modules, one_thread


def test_a_variant_runs_and_records_its_changes(tmp_path: Path) -> None:
    argv = ["--set", "init=content", "style_weight=0.5", "--name", "trial", "--size", "32"]
    argv += ["--steps", "2", "--weights", "random", "--no-faces", "--threads", "1"]
    argv += ["--pairs", "chelsea:starry_night", "--pictures", str(tmp_path / "pictures")]
    argv += ["--output", str(tmp_path / "trial.json")]
    printed = io.StringIO()
    with (
        benchmark_modules("variants") as modules,
        one_thread(),
        contextlib.redirect_stdout(printed),
    ):
        results = modules["variants"].main(argv)
    assert results["changes"] == {"init": "content", "style_weight": 0.5}
    assert json.loads((tmp_path / "trial.json").read_text()) == results
    (run,) = results["runs"]
    assert run["preset"] == "trial"
    assert run["shipped"] is False
    assert 0 <= run["hist"] <= 1
    assert (tmp_path / "pictures" / "trial" / "chelsea__starry_night.png").is_file()
    assert "trial means: seconds" in printed.getvalue()


def test_a_setting_must_name_a_config_field() -> None:
    with benchmark_modules("variants") as modules:
        changes = modules["variants"].changes
        assert changes(["ema_decay=null", "adam_betas=[0.9, 0.99]"]) == {
            "ema_decay": None,
            "adam_betas": [0.9, 0.99],
        }
        with pytest.raises(ValueError, match="got 'stlye_weight=1'"):
            changes(["stlye_weight=1"])
        with pytest.raises(ValueError, match="got 'steps'"):
            changes(["steps"])
