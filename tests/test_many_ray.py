"""The batch engine on a local Ray cluster: the same pictures as in-process, and a pair whose
worker died mid-run is run again without anything lost or half-written."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tiny import picture, tiny_extractor

from neuralstyle import LayerMap, StyleTransfer, TransferConfig
from neuralstyle.callbacks import RunEnd, RunStart, StepState, Stop
from neuralstyle.cli import main
from neuralstyle.many import MANIFEST, every_pair, stylize_many

ray = pytest.importorskip(
    "ray", reason='the Ray engine is an extra: pip install "neuralstyle[ray]"'
)
from neuralstyle import many_ray  # noqa: E402
from neuralstyle.many_ray import on_ray  # noqa: E402

LAYERS = LayerMap(content={"relu2_1": 1.0}, style={"relu1_1": 1.0, "relu2_1": 1.0})
CONFIG = TransferConfig(steps=3, device="cpu", style_weight=10.0)


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    """A local Ray of 2 CPUs for this module (workers see this module's classes by value)."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    try:
        yield
    finally:
        ray.shutdown()


@pytest.fixture
def pairs(tmp_path: Path) -> list:
    contents = [picture(tmp_path / f"{name}.png", seed) for seed, name in enumerate("ab")]
    styles = [picture(tmp_path / "x.jpg", 7)]
    return every_pair(contents, styles)


def tiny_transfer() -> StyleTransfer:
    return StyleTransfer(LAYERS, config=CONFIG, extractor=tiny_extractor())


def pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)


def test_ray_makes_the_same_pictures_as_in_process(
    cluster: None, pairs: list, tmp_path: Path
) -> None:
    here = stylize_many(pairs, tmp_path / "here", transfer=tiny_transfer())
    there = stylize_many(
        pairs, tmp_path / "ray", transfer=tiny_transfer(), runner=on_ray(tiny_transfer())
    )
    assert [outcome.status for outcome in there.outcomes] == ["done", "done"]
    for mine, theirs in zip(here.outcomes, there.outcomes, strict=True):
        assert mine.output is not None
        assert theirs.output is not None
        assert theirs.output.parent == tmp_path / "ray"
        # Same seed, same network, same arithmetic: at most one level of rounding apart.
        assert np.abs(pixels(mine.output) - pixels(theirs.output)).max() <= 1
    assert len((tmp_path / "ray" / MANIFEST).read_text().splitlines()) == 2
    # Resuming on Ray: every pair is done, so nothing is sent to the cluster again.
    again = stylize_many(
        pairs, tmp_path / "ray", transfer=tiny_transfer(), runner=on_ray(tiny_transfer())
    )
    assert [outcome.status for outcome in again.outcomes] == ["skipped", "skipped"]
    assert len((tmp_path / "ray" / MANIFEST).read_text().splitlines()) == 2


class DieOnce:
    """Kills its own worker process at the first step of the first attempt (a marker file
    remembers the attempt), as a machine lost mid-pair would."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def on_start(self, start: RunStart) -> None:
        """Nothing to do."""

    def on_step(self, state: StepState) -> Stop | None:
        if not self.marker.exists():
            self.marker.write_text("died once")
            os._exit(1)
        return None

    def on_end(self, end: RunEnd) -> None:
        """Nothing to do."""


def test_a_pair_whose_worker_died_is_run_again_and_nothing_is_lost(
    cluster: None, pairs: list, tmp_path: Path
) -> None:
    marker = tmp_path / "attempt"
    runner = on_ray(tiny_transfer(), callbacks=[DieOnce(marker)])
    out = tmp_path / "out"
    report = stylize_many(pairs[:1], out, transfer=tiny_transfer(), runner=runner)
    assert marker.exists()  # the first attempt really died
    assert [outcome.status for outcome in report.outcomes] == ["done"]
    assert sorted(path.name for path in out.iterdir()) == ["a__x.png", MANIFEST]
    assert pixels(out / "a__x.png").shape == (32, 40, 3)


def test_a_bad_pair_on_ray_is_recorded_with_its_reason(
    cluster: None, pairs: list, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.png"
    broken.write_text("not a picture")
    missing = replace(pairs[0], content=tmp_path / "gone.png")
    bad = [replace(pairs[0], content=broken), missing, pairs[1]]
    report = stylize_many(
        bad, tmp_path / "out", transfer=tiny_transfer(), runner=on_ray(tiny_transfer())
    )
    assert [outcome.status for outcome in report.outcomes] == ["failed", "failed", "done"]
    first, second = (outcome.reason or "" for outcome in report.failed)
    assert first.startswith("ImageError:")
    assert "neuralstyle-" not in first  # the worker's private copy is not named
    assert second.startswith("ImageError: cannot read")


def test_the_command_runs_on_ray(
    cluster: None, pairs: list, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["batch", "--content", str(pairs[0].content), "--style", str(pairs[0].style)]
    argv += ["-o", str(tmp_path / "out"), "--engine", "ray", "--steps", "2", "--size", "32"]
    argv += ["--weights", "random"]
    assert main(argv) == 0
    assert "1 done, 0 already done, 0 failed" in capsys.readouterr().err
    assert (tmp_path / "out" / "a__x.png").is_file()


def test_a_long_job_keeps_only_a_window_of_pairs_submitted(
    cluster: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pair's files are read when it is submitted, and no more pairs are submitted than
    two per pair the cluster runs at once (2 CPUs here: 4): a folder of thousands does not
    land in the object store at once."""
    contents = [picture(tmp_path / f"c{index}.png", index) for index in range(5)]
    styles = [picture(tmp_path / "s.jpg", 10)]
    reads: list[Path] = []
    read = many_ray._read

    def counted(path: Path) -> object:
        reads.append(path)
        return read(path)

    monkeypatch.setattr(many_ray, "_read", counted)
    read_by_outcome: list[int] = []
    report = stylize_many(
        every_pair(contents, styles),
        tmp_path / "out",
        transfer=tiny_transfer(),
        runner=on_ray(tiny_transfer()),
        on_outcome=lambda outcome: read_by_outcome.append(len(reads) // 2),
    )
    assert report.count("done") == 5
    assert read_by_outcome[0] == 4  # four submitted before the first came back
    assert all(submitted <= done + 4 for done, submitted in enumerate(read_by_outcome))
    assert len(reads) == 10


@pytest.mark.parametrize(
    ("resources", "gpus", "cpus", "window"),
    [
        ({"CPU": 2.0}, 0.0, 1.0, 4),
        ({"CPU": 64.0, "GPU": 8.0}, 1.0, 1.0, 16),
        ({"CPU": 64.0, "GPU": 8.0}, 0.5, 2.0, 32),
        ({"CPU": 1.0}, 0.0, 0.0, 4),
        ({"CPU": 16.0}, 1.0, 1.0, 4),  # no GPU yet: an autoscaler may add one
    ],
)
def test_the_window_is_two_pairs_per_pair_running_at_once(
    resources: dict[str, float], gpus: float, cpus: float, window: int
) -> None:
    assert many_ray._window(resources, gpus=gpus, cpus=cpus) == window
