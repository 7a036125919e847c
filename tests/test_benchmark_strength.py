"""benchmarks/strength.py: the end-to-end run at a tiny size, and its verdict on fixed rows."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from tiny import BENCHMARKS, benchmark_modules


def _row(size: int, factor: float, edge: float, gram: float) -> dict[str, float | int | str]:
    return {"pair": "a:b", "size": size, "factor": factor, "edge": edge, "gram": gram}


def test_a_weight_that_lowers_gram_and_edge_everywhere_is_monotone() -> None:
    rows = [_row(256, 2.0, 0.1, 0.3), _row(256, 0.5, 0.3, 0.5), _row(512, 0.5, 0.2, 0.6)]
    rows += [_row(512, 2.0, 0.2, 0.2)]
    with benchmark_modules("strength") as modules:
        summary = modules["strength"].doubling_effects(rows)
    assert summary["monotone"] is True
    # Two doublings from 0.5 to 2: gram -0.2 and -0.4, edge -0.2 and 0.0, halved per doubling.
    assert summary["per_doubling"]["gram"] == pytest.approx({"min": -0.2, "max": -0.1})
    assert summary["per_doubling"]["edge"] == pytest.approx({"min": -0.1, "max": 0.0})


def test_a_pair_whose_gram_rises_with_the_weight_is_not_monotone() -> None:
    rows = [_row(256, 0.5, 0.3, 0.4), _row(256, 1.0, 0.2, 0.45), _row(256, 2.0, 0.1, 0.3)]
    with benchmark_modules("strength") as modules:
        assert modules["strength"].doubling_effects(rows)["monotone"] is False


def test_the_strength_benchmark_runs_every_pair_size_and_factor(tmp_path: Path) -> None:
    output = tmp_path / "strength.json"
    command = [sys.executable, str(BENCHMARKS / "strength.py"), "--weights", "random"]
    command += ["--pairs", "chelsea:starry_night", "--sizes", "32", "48", "--factors", "1", "4"]
    command += ["--steps", "2", "--threads", "1", "--no-faces", "--output", str(output)]
    printed = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    results = json.loads(output.read_text())
    assert json.loads(printed.splitlines()[-1]) == results
    assert [(row["size"], row["factor"]) for row in results["rows"]] == [
        (32, 1.0),
        (32, 4.0),
        (48, 1.0),
        (48, 4.0),
    ]
    for row in results["rows"]:
        assert row["style_weight"] == 0.15 * row["factor"]
        assert all(math.isfinite(row[name]) for name in ("seconds", "edge", "hist", "gram"))
        assert row["face"] is None  # faces left out (and chelsea is no portrait)
    assert isinstance(results["monotone"], bool)
    assert set(results["per_doubling"]) == {"gram", "edge"}
