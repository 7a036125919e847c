"""benchmarks/precision.py runs end to end at a tiny size: both precisions timed and measured."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

from tiny import BENCHMARKS


def test_the_precision_benchmark_times_and_measures_both_precisions(tmp_path: Path) -> None:
    output = tmp_path / "precision.json"
    command = [sys.executable, str(BENCHMARKS / "precision.py"), "--weights", "random"]
    command += ["--sizes", "32", "48", "--picture-size", "32", "--steps", "3", "--warmup", "0"]
    command += ["--blocks", "1", "--block-steps", "1", "--threads", "1", "--output", str(output)]
    printed = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    results = json.loads(output.read_text())
    assert json.loads(printed.splitlines()[-1]) == results
    for precision in ("float32", "bfloat16"):
        assert list(results["seconds_per_step"][precision]) == ["32", "48"]
        assert all(s > 0 for s in results["seconds_per_step"][precision].values())
        run = results["picture"][precision]
        assert set(run) == {"seconds", "edge", "luma", "hist", "gram"}
        assert all(math.isfinite(value) for value in run.values())
        assert f"\n{precision}" in printed
    # Three Adam steps at 32 px move pixels by a few hundredths: the two pictures differ by
    # rounding, not by a different optimization.
    assert 0 <= results["max_pixel_difference"] < 0.5
