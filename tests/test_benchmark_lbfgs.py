"""benchmarks/lbfgs_scale.py runs end to end at a tiny size and prints its table."""

from __future__ import annotations

import math
import subprocess
import sys

from tiny import BENCHMARKS


def test_the_lbfgs_scale_benchmark_prints_one_row_per_checkpoint() -> None:
    command = [sys.executable, str(BENCHMARKS / "lbfgs_scale.py"), "--size", "32"]
    command += ["--steps", "4", "--every", "2", "--lengths", "1", "8", "--threads", "1"]
    printed = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    lines = printed.splitlines()
    rows = [line for line in lines if line.startswith("| ") and line[2].isdigit()]
    assert [row.split("|")[1].strip() for row in rows] == ["1", "2", "4"]
    for row in rows:
        losses = [float(cell) for cell in row.strip("| ").split("|")[1:]]
        assert len(losses) == 2
        assert all(math.isfinite(loss) and loss > 0 for loss in losses)
