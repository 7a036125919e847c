"""The many-pictures benchmark runs end to end at a tiny size (not a timing test)."""

from __future__ import annotations

import contextlib
import io
import math

from tiny import benchmark_modules


def test_every_way_runs_and_the_report_has_its_rows() -> None:
    with benchmark_modules("_results", "many") as modules:
        printed = io.StringIO()
        argv = ["--contents", "chelsea", "--styles", "starry_night", "the_scream"]
        argv += ["--size", "32", "--steps", "2", "--threads", "1", "--weights", "random"]
        argv += ["--no-ray", "--no-write", "--batch-sizes", "1", "2", "--frames", "2"]
        with contextlib.redirect_stdout(printed):
            results = modules["many"].main(argv)
    ways = results["ways"]
    assert set(ways) == {"one_by_one_reloading", "network_once", "batched"}
    for row in ways.values():
        assert row["seconds"] > 0
        assert math.isclose(row["pictures_per_minute"], 60 * 2 / row["seconds"])
    assert ways["one_by_one_reloading"]["speedup"] == 1.0
    assert "pictures/min" in printed.getvalue()
    curve = results["batch_curve"]
    assert curve["frames"] == 2
    assert set(curve["sizes"]) == {"1", "2"}
    for row in curve["sizes"].values():
        assert math.isclose(row["pictures_per_minute"], 60 * 2 / row["seconds"])
