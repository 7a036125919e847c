"""The built-in callbacks, driven by hand-made states (no network needed)."""

from __future__ import annotations

import dataclasses
import io
import math
from pathlib import Path

import pytest
import torch

from neuralstyle.callbacks import (
    Callback,
    DivergenceGuard,
    EarlyStopping,
    IntervalCallback,
    LossHistory,
    Progress,
    RunEnd,
    RunStart,
    Snapshots,
    StepState,
    Stop,
    peak_memory_bytes,
)
from neuralstyle.errors import ConfigError

IMAGE = torch.full((1, 3, 4, 4), 0.5)


def state(step: int, loss: float, total: int = 100) -> StepState:
    terms = {"content/relu4_2": torch.tensor(loss / 4), "style/relu1_1": torch.tensor(3 * loss / 4)}
    return StepState(step, total, IMAGE, torch.tensor(loss), terms, elapsed=step * 0.1)


START = RunStart(100, IMAGE, torch.device("cpu"))


def end(reason: str | None = None) -> RunEnd:
    return RunEnd(10, 100, IMAGE, IMAGE, reason, 1.0)


def test_every_builtin_satisfies_the_protocol() -> None:
    for callback in (Progress(), LossHistory(), EarlyStopping(), DivergenceGuard()):
        assert isinstance(callback, Callback)


def test_progress_writes_lines_at_its_interval_and_the_stop_reason() -> None:
    stream = io.StringIO()
    progress = Progress(every=5, stream=stream)
    progress.on_start(START)
    for step in range(1, 11):
        progress.on_step(state(step, 2.0))
    progress.on_end(end("early stopping: flat"))
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("step 5/100  loss 2")
    assert lines[1].startswith("step 10/100")
    assert lines[2] == "stopped after 10 steps: early stopping: flat"


def test_progress_names_the_scale_of_a_coarse_to_fine_run() -> None:
    stream = io.StringIO()
    progress = Progress(every=1, stream=stream)
    progress.on_step(dataclasses.replace(state(7, 2.0), scale=2, scales=3))
    assert stream.getvalue().startswith("step 7/100  scale 2/3  loss 2")


def test_loss_history_stacks_every_recorded_step() -> None:
    history = LossHistory(every=2)
    history.on_start(START)
    for step in range(1, 7):
        history.on_step(state(step, float(step)))
    values = history.as_lists()
    assert history.steps == [2, 4, 6]
    assert values["total"] == [2.0, 4.0, 6.0]
    assert values["style/relu1_1"] == pytest.approx([1.5, 3.0, 4.5])


def test_snapshots_save_to_a_folder_and_call_functions(tmp_path: Path) -> None:
    Snapshots(every=3, target=tmp_path).on_step(state(3, 1.0))
    assert (tmp_path / "step_00003.png").is_file()
    seen: list[int] = []
    snapshots = Snapshots(every=2, target=lambda step, image: seen.append(step))
    for step in range(1, 6):
        snapshots.on_step(state(step, 1.0))
    assert seen == [2, 4]


def test_snapshots_refuse_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        Snapshots(every=1, target=tmp_path / "nope")


def test_early_stopping_waits_for_patience_then_stops() -> None:
    stopper = EarlyStopping(patience=20, min_delta=0.01, every=5)
    stopper.on_start(START)
    signals = [stopper.on_step(state(step, 10.0 if step < 10 else 9.99)) for step in range(1, 41)]
    stops = [i + 1 for i, signal in enumerate(signals) if signal is not None]
    assert stops[0] == 25  # best at step 5; no 1% gain after it; checked every 5 steps
    signal = signals[24]
    assert isinstance(signal, Stop)
    assert "since step 5" in signal.reason


class Every(IntervalCallback):
    def __init__(self, every: int) -> None:
        super().__init__(every)
        self.seen: list[int] = []

    def at_interval(self, state: StepState) -> Stop | None:
        self.seen.append(state.step)
        return Stop("enough") if state.step == 9 else None


def test_an_interval_callback_acts_on_its_steps_only() -> None:
    callback = Every(3)
    assert isinstance(callback, Callback)
    callback.on_start(START)
    stops = [callback.on_step(state(step, 1.0)) for step in range(1, 11)]
    callback.on_end(end())
    assert callback.seen == [3, 6, 9]
    assert stops == [None] * 8 + [Stop("enough"), None]


def test_an_interval_callback_refuses_a_bad_interval() -> None:
    with pytest.raises(ConfigError, match="every must be a positive int"):
        Every(0)


def test_divergence_guard_stops_on_nan_and_inf_only() -> None:
    guard = DivergenceGuard(every=1)
    assert guard.on_step(state(1, 1e30)) is None
    for bad in (math.nan, math.inf):
        signal = guard.on_step(state(2, bad))
        assert isinstance(signal, Stop)
        assert signal.reason.startswith("diverged")


@pytest.mark.parametrize("every", [0, -1, 1.5, True])
def test_intervals_must_be_positive_ints(every: object) -> None:
    with pytest.raises(ConfigError, match="every must be a positive int"):
        Progress(every=every)  # type: ignore[arg-type]


def test_peak_memory_is_reported_for_the_cpu() -> None:
    assert peak_memory_bytes(torch.device("cpu")) > 10 * 2**20
    assert state(1, 1.0).peak_memory_bytes() > 0
