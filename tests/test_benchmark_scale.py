"""The scale and GPU benchmarks run end to end at tiny sizes, and report what they claim.

Not timing tests: at 32-64 px the numbers say nothing about speed. What is checked is that every
part runs (timing, FLOPs, memory probes in fresh processes, the plot, the speed.json echo, the
GPU script's dry run and its refusal without CUDA) and that what must hold at any size holds.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import io
import json
import math
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch
from PIL import Image
from tiny import BENCHMARKS, benchmark_modules, one_thread

SIZES = (32, 64)
TIMING_KEYS = ("seconds_per_step", "flops_per_step", "floor_seconds", "x_floor")
RECORDED = {
    "time_to_seed_loss_ratio": 0.04,
    "quality": {
        "content_shape": [1, 3, 128, 192],
        "seed": {"steps": 2000, "seconds": 1000.0},
        "ours": {"adam": {"seconds": 40.0, "reached": True}, "lbfgs": {"seconds": 50.0}},
    },
    "extractor_build_seconds": 0.25,
}
"""A speed.json with known numbers, to see them echoed."""


@pytest.fixture(scope="module")
def bench() -> Iterator[dict[str, ModuleType]]:
    """The benchmark modules, imported the way ``python benchmarks/scale.py`` finds them."""
    with benchmark_modules("_common", "scale", "gpu") as modules:
        yield modules


@dataclass(frozen=True)
class Run:
    results: dict[str, Any]
    folder: Path
    printed: str


@pytest.fixture(scope="module")
def scale_run(bench: dict[str, ModuleType], tmp_path_factory: pytest.TempPathFactory) -> Run:
    """One tiny run of scale.py: 32 and 64 px, one timed step, one step per memory probe."""
    folder = tmp_path_factory.mktemp("scale")
    (folder / "speed.json").write_text(json.dumps(RECORDED))
    argv = [
        "--tiny",
        "--threads", "1",  # the memory probes' processes too
        "--speed-json", str(folder / "speed.json"),
        "--output", str(folder / "scale.json"),
        "--plot", str(folder / "scale.png"),
    ]  # fmt: skip
    printed = io.StringIO()
    # One thread: two OpenMP threads on cores shared with the rest of the suite stall each other.
    with one_thread(), contextlib.redirect_stdout(printed):
        results: dict[str, Any] = bench["scale"].main(argv)
    return Run(results, folder, printed.getvalue())


def _rows(run: Run) -> dict[tuple[str, int], dict[str, Any]]:
    return {(row["loop"], row["size"]): row for row in run.results["rows"]}


def test_every_loop_and_size_has_finite_positive_timings(
    bench: dict[str, ModuleType], scale_run: Run
) -> None:
    rows = _rows(scale_run)
    assert set(rows) == {(loop, size) for loop in bench["scale"].LOOPS for size in SIZES}
    for key, row in rows.items():
        for name in TIMING_KEYS:
            value = row[name]
            assert isinstance(value, (int, float)), (key, name)
            assert math.isfinite(value), (key, name)
            assert value > 0, (key, name)
        assert row["timed_steps"] == 1, key


def test_every_loop_and_size_has_a_memory_peak(scale_run: Run) -> None:
    for (loop, size), row in _rows(scale_run).items():
        peak = row["peak_memory_gib"]
        assert isinstance(peak, float), (loop, size)
        assert math.isfinite(peak), (loop, size)
        # At 32 px a step's few MB can fit in memory the allocator already holds; at 64 px
        # its activations need pages of their own.
        assert peak > 0 if size == 64 else peak >= 0, (loop, size)
    assert scale_run.results["memory_method"].startswith("fresh process per probe")
    if sys.platform == "linux":
        assert "high-water mark reset" in scale_run.results["memory_method"]


def test_lbfgs_rows_report_their_full_history(scale_run: Run) -> None:
    for size in SIZES:
        row = _rows(scale_run)[("lbfgs", size)]
        # 100 pairs of float32 image-sized vectors: 2 * 100 * 3 * side * side * 4 bytes.
        assert row["lbfgs_history_gib"] == pytest.approx(2400 * size * size / 2**30)


def test_flops_grow_with_pixels_and_the_seed_does_more_work(scale_run: Run) -> None:
    rows = _rows(scale_run)
    for loop in ("adam", "lbfgs", "seed"):
        # Every counted FLOP (convolutions, Gram matmuls) is proportional to the pixels.
        assert rows[(loop, 64)]["flops_per_step"] == 4 * rows[(loop, 32)]["flops_per_step"]
    for size in SIZES:
        assert rows[("seed", size)]["flops_per_step"] > 2 * rows[("adam", size)]["flops_per_step"]
    # Three graphs through all of VGG19 plus weight gradients, against one truncated and frozen.
    assert rows[("seed", 64)]["peak_memory_gib"] > rows[("adam", 64)]["peak_memory_gib"]


def test_floor_is_flops_over_the_conv_throughput(scale_run: Run) -> None:
    throughput = scale_run.results["conv"]["flops_per_second"]
    for row in scale_run.results["rows"]:
        assert row["floor_seconds"] == pytest.approx(row["flops_per_step"] / throughput)
        assert row["x_floor"] == pytest.approx(row["seconds_per_step"] / row["floor_seconds"])


def test_json_file_is_the_last_printed_line(scale_run: Run) -> None:
    lines = scale_run.printed.strip().splitlines()
    assert json.loads(lines[-1]) == scale_run.results
    assert json.loads((scale_run.folder / "scale.json").read_text()) == scale_run.results
    assert scale_run.results["sizes"] == list(SIZES)


def test_table_has_a_line_per_row_and_the_elapsed_time(
    bench: dict[str, ModuleType], scale_run: Run
) -> None:
    lines = scale_run.printed.splitlines()
    assert lines[0].startswith("| size | loop | s/step | GFLOP/step | floor s | x floor |")
    for loop, label in bench["scale"].LOOPS.items():
        for size in SIZES:
            assert sum(line.startswith(f"| {size} | {label} |") for line in lines) == 1, loop
    assert any(line.startswith("elapsed: ") for line in lines)


def test_plot_is_a_png_of_the_promised_size_with_every_line(
    bench: dict[str, ModuleType], scale_run: Run
) -> None:
    scale = bench["scale"]
    with Image.open(scale_run.folder / "scale.png") as image:
        assert image.format == "PNG"
        assert image.size == scale.PLOT_SIZE
        colours = {colour for _, colour in image.convert("RGB").getcolors(maxcolors=2**20)}
    for name in ("adam", "lbfgs", "seed", "floor"):
        assert scale.COLOURS[name] in colours, name


def test_speed_json_numbers_are_echoed_with_their_source(scale_run: Run) -> None:
    recorded = scale_run.results["speed_json"]
    source = str(scale_run.folder / "speed.json")
    assert recorded["source"] == source
    assert recorded["found"] is True
    assert recorded["seed_seconds"] == 1000.0
    assert recorded["ours_seconds"] == {"adam": 40.0, "lbfgs": 50.0}
    assert recorded["time_to_seed_loss_ratio"] == 0.04
    assert recorded["extractor_build"] == {"extractor_build_seconds": 0.25}
    printed = scale_run.printed
    assert f"time to the seed's loss (from {source}" in printed
    assert "lbfgs 50.0 s (not reached)" in printed
    assert f"extractor build (from {source}): extractor_build_seconds = 0.25" in printed


def test_fresh_extractor_build_is_timed_and_labelled(scale_run: Run) -> None:
    build = scale_run.results["extractor_build"]
    assert build["source"].startswith("measured now: extractor_build.timed")
    assert 0 < build["min_seconds"] <= build["median_seconds"]


def test_missing_speed_json_is_reported_as_not_found(
    bench: dict[str, ModuleType], tmp_path: Path
) -> None:
    missing = tmp_path / "speed.json"
    assert bench["scale"].from_speed_json(missing) == {"source": str(missing), "found": False}


def test_sizes_the_seed_cannot_run_are_refused(
    bench: dict[str, ModuleType], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        bench["scale"].main(["--sizes", "16", "64"])
    assert exit_info.value.code == 2
    assert "--sizes must be >= 32" in capsys.readouterr().err


_PEAK_PROBE = """
import sys, torch
sys.path.insert(0, sys.argv[1])
from _common import peak_memory
# Over glibc's largest mmap threshold (32 MiB): fresh pages, never a reused free heap chunk.
earlier = torch.ones(192 * 2**20 // 4)  # a 192 MiB peak before the block
del earlier
with peak_memory(torch.device("cpu")) as reading:
    block = torch.ones(96 * 2**20 // 4)  # 96 MiB, touched
del block
print(reading.added_bytes)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="the high-water mark reset needs Linux /proc")
def test_peak_memory_sees_an_allocation_after_a_larger_earlier_peak() -> None:
    """In a fresh process, as the benchmark measures: inside the whole suite the allocator may
    serve the block from pages an earlier test left resident, and the block adds nothing."""
    done = subprocess.run(
        [sys.executable, "-c", _PEAK_PROBE, str(BENCHMARKS)],
        capture_output=True,
        text=True,
        check=True,
    )
    added = int(done.stdout.split()[-1])
    assert 94 * 2**20 < added < 112 * 2**20


# -- gpu.py ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DryRun:
    code: int
    results: dict[str, Any]
    printed: str
    tf32_before: tuple[bool, bool]
    tf32_after: tuple[bool, bool]


def _tf32_flags() -> tuple[bool, bool]:
    return torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32


@pytest.fixture(scope="module")
def dry_run(bench: dict[str, ModuleType], tmp_path_factory: pytest.TempPathFactory) -> DryRun:
    """gpu.py's CPU dry run: 32 and 48 px, every eager variant, compiled rows skipped."""
    output = tmp_path_factory.mktemp("gpu") / "gpu.json"
    before = _tf32_flags()
    printed = io.StringIO()
    with one_thread(), contextlib.redirect_stdout(printed):
        code = bench["gpu"].main(["--device", "cpu", "--tiny", "--output", str(output)])
    results = json.loads(output.read_text())
    return DryRun(code, results, printed.getvalue(), before, _tf32_flags())


def test_dry_run_measures_every_eager_row(bench: dict[str, ModuleType], dry_run: DryRun) -> None:
    gpu = bench["gpu"]
    assert dry_run.code == 0
    eager = [row for row in dry_run.results["rows"] if not row["compile"]]
    expected = {(o, v.name, s) for o in ("default", "seed") for v in gpu.EAGER for s in (32, 48)}
    assert {(row["objective"], row["variant"], row["size"]) for row in eager} == expected
    for row in eager:
        assert row["status"] == "ok", row
        for name in ("seconds_per_step", "first_step_seconds", "flops_per_step", "tflops"):
            assert math.isfinite(row[name]), (row["variant"], name)
            assert row[name] > 0, (row["variant"], name)
        assert row["percent_of_peak"] == pytest.approx(100 * row["tflops"] / 989.0)
        assert row["peak_memory_gib"] is None  # max_memory_allocated is CUDA's


def test_dry_run_records_skips_and_its_setting(
    bench: dict[str, ModuleType], dry_run: DryRun
) -> None:
    results = dry_run.results
    compiled = [row for row in results["rows"] if row["compile"]]
    assert {row["variant"] for row in compiled} == {v.name for v in bench["gpu"].COMPILED}
    assert all(row["status"] == "skipped" and "dry run" in row["reason"] for row in compiled)
    assert [check["status"] for check in results["sync_check"]] == ["skipped", "skipped"]
    assert results["device"] == "cpu (dry run)"
    assert results["torch"] == torch.__version__
    assert datetime.datetime.fromisoformat(results["date"]).tzinfo is not None
    assert json.loads(dry_run.printed.strip().splitlines()[-1]) == results
    assert dry_run.printed.startswith("| objective | variant | size | status | s/step |")


def test_dry_run_leaves_the_tf32_flags_as_they_were(dry_run: DryRun) -> None:
    assert dry_run.tf32_after == dry_run.tf32_before


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_gpu_without_cuda_exits_2_with_one_line(
    bench: dict[str, ModuleType], capsys: pytest.CaptureFixture[str]
) -> None:
    assert bench["gpu"].main([]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("no CUDA device: ")


def test_gpu_on_cpu_needs_tiny(
    bench: dict[str, ModuleType], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        bench["gpu"].main(["--device", "cpu"])
    assert exit_info.value.code == 2
    assert "--device cpu is a dry run only: add --tiny" in capsys.readouterr().err


def test_time_guard_skips_late_rows_and_compiles_earlier(bench: dict[str, ModuleType]) -> None:
    gpu = bench["gpu"]
    args = argparse.Namespace(device="cuda", time_guard=420.0)
    eager, compiled = gpu.EAGER[0], gpu.COMPILED[0]
    assert gpu._skip_reason(eager, 419.0, args) is None
    assert "time guard" in gpu._skip_reason(eager, 421.0, args)
    # A compiled row needs time to compile: it stops COMPILE_RESERVE_SECONDS earlier.
    assert gpu._skip_reason(compiled, 420.0 - gpu.COMPILE_RESERVE_SECONDS - 1, args) is None
    assert "time guard" in gpu._skip_reason(compiled, 420.0 - gpu.COMPILE_RESERVE_SECONDS + 1, args)
