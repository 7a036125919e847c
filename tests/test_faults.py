"""Faults lose nothing, and weights and files are handled safely.

Faults: a run that diverges to NaN keeps its best image and says so; Ctrl-C, running out of
memory and a callback that raises end the run with every ``on_end`` hook called, and never leave
a half-written file. Tests elsewhere that belong to this list:

* tests/test_cli.py::test_ctrl_c_saves_the_best_image_so_far_and_exits_130 (Ctrl-C mid-run);
* tests/test_cli.py::test_out_of_memory_is_one_line_with_the_fixes (CUDA out of memory);
* tests/test_transfer.py::test_end_hooks_run_when_a_callback_raises;
* tests/test_image.py::test_interrupted_sixteen_bit_write_leaves_no_partial_file.

Security: every ``torch.load`` in the package passes ``weights_only=True`` and a pickle that
carries code is refused without running it; nothing opens a socket at import or during a run
with the bundled weights; files are written only where asked.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from tiny import picture, random_image, snapshot, tiny_extractor

import neuralstyle
from neuralstyle import optimize
from neuralstyle import weights as weights_module
from neuralstyle.callbacks import RunEnd, RunStart, Snapshots, StepState, Stop
from neuralstyle.cli import main
from neuralstyle.config import TransferConfig
from neuralstyle.errors import ImageError, WeightsError
from neuralstyle.examples import example_image
from neuralstyle.features import FeatureExtractor
from neuralstyle.image import load_image
from neuralstyle.layers import LayerMap
from neuralstyle.presets import DEFAULT
from neuralstyle.transfer import StyleTransfer

LAYERS = LayerMap(content={"relu2_1": 1.0}, style={"relu1_1": 1.0, "relu3_1": 1.0})
CONFIG = TransferConfig(steps=30, device="cpu", learning_rate=0.05, style_weight=10.0)
CONTENT = random_image(seed=1)
STYLE = random_image(20, 28, seed=2)
PACKAGE = Path(neuralstyle.__file__).parent


def tiny_transfer(config: TransferConfig = CONFIG) -> StyleTransfer:
    return StyleTransfer(LAYERS, config=config, extractor=tiny_extractor())


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A content and a style image, and an earlier output ``out.png``."""
    picture(tmp_path / "content.png", 0)
    picture(tmp_path / "style.png", 1)
    picture(tmp_path / "out.png", 2)
    return tmp_path


def cli_argv(folder: Path, *extra: str) -> list[str]:
    content, style = str(folder / "content.png"), str(folder / "style.png")
    return [content, style, "-o", str(folder / "out.png"), "--size", "32", *extra]


class Recorder:
    """Keeps every image the run shows and how it ended."""

    def __init__(self) -> None:
        self.images: list[torch.Tensor] = []
        self.losses: list[float] = []
        self.end: RunEnd | None = None

    def on_start(self, start: RunStart) -> None:
        self.images = [start.image.clone()]

    def on_step(self, state: StepState) -> Stop | None:
        self.images.append(state.image.clone())
        self.losses.append(float(state.loss))
        return None

    def on_end(self, end: RunEnd) -> None:
        self.end = end


# -- divergence -------------------------------------------------------------------------------


class NaNAfter(torch.optim.Adam):
    """Adam whose update number ``at`` turns the image to NaN: a run diverging mid-way."""

    def __init__(self, params: Iterable[torch.Tensor], at: int) -> None:
        super().__init__(params, lr=0.05)
        self.at, self.updates = at, 0

    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        loss = super().step(closure)
        self.updates += 1
        if self.updates == self.at:
            with torch.no_grad():
                for group in self.param_groups:
                    for image in group["params"]:
                        image.fill_(float("nan"))
        return loss


def test_a_run_that_diverges_mid_way_keeps_its_best_image_and_says_so() -> None:
    recorder = Recorder()
    config = replace(CONFIG, optimizer=lambda params: NaNAfter(params, at=5))
    result = tiny_transfer(config).run(CONTENT, STYLE, callbacks=[recorder])
    # The guard looks every 10 steps: steps 6..10 evaluated the NaN image.
    assert result.steps_done == 10
    assert result.stop_reason is not None
    assert result.stop_reason.startswith("diverged: the loss became nan by step 10")
    assert torch.isnan(result.image).all()
    finite = recorder.losses[:5]
    assert np.isfinite(finite).all()
    assert np.isnan(recorder.losses[5:]).all()
    best = int(np.argmin(finite))  # the loss of step k belongs to the image before it
    assert torch.equal(result.best_image, recorder.images[best])
    assert result.best_loss == pytest.approx(finite[best])
    assert recorder.end is not None
    assert recorder.end.stop_reason == result.stop_reason


def test_a_diverged_run_on_the_command_line_writes_its_best_image(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(optimize, "make_optimizer", lambda image, config: NaNAfter([image], 3))
    assert main(cli_argv(workspace, "--steps", "20")) == 0
    err = capsys.readouterr().err
    assert "stopped after 10 steps: diverged: the loss became nan" in err
    assert "Traceback" not in err
    written = load_image(workspace / "out.png")  # NaN would have been refused by save_image
    assert written.shape == (1, 3, 26, 32)
    assert float(written.std()) > 0.05  # a picture, not a blank


# -- Ctrl-C (mid-run on the command line: tests/test_cli.py) ----------------------------------


def interrupt_at(monkeypatch: pytest.MonkeyPatch, step: int, error: BaseException) -> None:
    """Make the loop's step raise ``error`` on its ``step``-th call."""
    original = optimize.step
    calls = 0

    def failing(*args: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == step:
            raise error
        return original(*args)

    monkeypatch.setattr(optimize, "step", failing)


def test_ctrl_c_in_the_api_reaches_the_caller_after_the_end_hooks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    interrupt_at(monkeypatch, 4, KeyboardInterrupt())
    recorder = Recorder()
    with pytest.raises(KeyboardInterrupt):
        tiny_transfer().run(CONTENT, STYLE, callbacks=[recorder])
    assert recorder.end is not None
    assert recorder.end.steps_done == 3
    assert recorder.end.stop_reason == "KeyboardInterrupt: "
    assert torch.isfinite(recorder.end.best_image).all()


def test_ctrl_c_before_the_first_step_keeps_an_existing_output(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    interrupt_at(monkeypatch, 1, KeyboardInterrupt())
    before = snapshot(workspace)
    assert main(cli_argv(workspace, "--steps", "5", "--quiet")) == 130
    assert "interrupted before the first step; nothing saved" in capsys.readouterr().err
    assert snapshot(workspace) == before


# -- out of memory (CUDA out of memory on the command line: tests/test_cli.py) ----------------


def test_out_of_memory_in_the_api_propagates_after_the_end_hooks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    interrupt_at(monkeypatch, 2, MemoryError("cannot allocate 3.00 GiB"))
    recorder = Recorder()
    with pytest.raises(MemoryError, match=r"cannot allocate 3\.00 GiB"):
        tiny_transfer().run(CONTENT, STYLE, callbacks=[recorder])
    assert recorder.end is not None
    assert recorder.end.stop_reason == "MemoryError: cannot allocate 3.00 GiB"


def test_cpu_out_of_memory_on_the_command_line_is_one_line_and_loses_nothing(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    interrupt_at(monkeypatch, 1, MemoryError("cannot allocate 3.00 GiB"))
    before = snapshot(workspace)
    assert main(cli_argv(workspace, "--steps", "3", "--quiet")) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "Traceback" not in err
    assert "out of memory (cannot allocate 3.00 GiB)" in err
    assert snapshot(workspace) == before


@pytest.mark.parametrize(
    "error",
    [MemoryError("cannot allocate"), torch.OutOfMemoryError("CUDA out of memory")],
    ids=["cpu", "cuda"],
)
def test_out_of_memory_names_a_size_that_fits(
    workspace: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    error: BaseException,
) -> None:
    interrupt_at(monkeypatch, 1, error)
    assert main(cli_argv(workspace, "--steps", "3", "--quiet")) == 1
    err = capsys.readouterr().err
    assert "out of memory" in err
    suggested = re.search(r"--size (\d+)", err)
    assert suggested is not None
    assert int(suggested.group(1)) < 32


# -- a callback that raises -------------------------------------------------------------------


class FailsAt:
    """A callback whose ``on_step`` raises at one step."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_start(self, start: RunStart) -> None:
        """Nothing to prepare."""

    def on_step(self, state: StepState) -> Stop | None:
        if state.step == self.step:
            raise RuntimeError(f"callback failed at step {state.step}")
        return None

    def on_end(self, end: RunEnd) -> None:
        """Nothing to finish."""


class EndFails(Recorder):
    def on_end(self, end: RunEnd) -> None:
        super().on_end(end)
        raise ValueError("on_end failed")


def test_a_failing_end_hook_does_not_skip_the_others() -> None:
    first, last = EndFails(), Recorder()
    with pytest.raises(ValueError, match="on_end failed"):
        tiny_transfer(replace(CONFIG, steps=3)).run(CONTENT, STYLE, callbacks=[first, last])
    assert first.end is not None
    assert last.end is not None
    assert last.end.steps_done == 3


def test_a_snapshot_that_fails_mid_write_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def half_written(self: Image.Image, handle: Any, *args: Any, **kwargs: Any) -> None:
        handle.write(b"\x89PNG\r\n\x1a\n half an image")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", half_written)
    recorder = Recorder()
    with pytest.raises(ImageError, match=r"cannot write .*step_00002\.png: disk full"):
        tiny_transfer().run(CONTENT, STYLE, callbacks=[Snapshots(2, tmp_path), recorder])
    assert list(tmp_path.iterdir()) == []
    assert recorder.end is not None
    assert recorder.end.steps_done == 2


def test_a_callback_failing_on_the_command_line_keeps_the_snapshots_and_the_old_output(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    original = Snapshots.on_step

    def snapshot_then_fail(self: Snapshots, state: StepState) -> Stop | None:
        original(self, state)
        return FailsAt(2).on_step(state)

    monkeypatch.setattr(Snapshots, "on_step", snapshot_then_fail)
    old_output = (workspace / "out.png").read_bytes()
    assert main(cli_argv(workspace, "--steps", "5", "--save-every", "1", "--quiet")) == 1
    err = capsys.readouterr().err
    assert "RuntimeError: callback failed at step 2" in err
    assert err.count("\n") == 1
    assert (workspace / "out.png").read_bytes() == old_output
    snapshots = sorted((workspace / "out_snapshots").iterdir())
    assert [path.name for path in snapshots] == ["step_00001.png", "step_00002.png"]
    for path in snapshots:
        assert load_image(path).shape == (1, 3, 26, 32)  # complete pictures
    assert not [name for name in snapshot(workspace) if Path(name).name.startswith(".")]


# -- security: weights are only loaded with weights_only=True ---------------------------------


# Calls that unpickle without torch's allowlist; none may appear in the package.
_UNSAFE_LOADS = {"pickle.load", "pickle.loads", "torch.hub.load", "dill.load", "marshal.loads"}


def _calls(tree: ast.AST) -> list[tuple[str, ast.Call]]:
    """Every call in ``tree`` with the dotted name it is made through (``torch.load``)."""
    return [(ast.unparse(node.func), node) for node in ast.walk(tree) if isinstance(node, ast.Call)]


def test_every_torch_load_in_the_package_passes_weights_only_true() -> None:
    loads = []
    for source in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(source.read_text(encoding="utf-8"), filename=str(source))
        for name, call in _calls(tree):
            where = f"{source.name}:{call.lineno}: {name}"
            assert name not in _UNSAFE_LOADS, where
            flag = {k.arg: k.value for k in call.keywords}.get("weights_only")
            if name in ("torch.load", "torch.serialization.load"):
                assert flag is not None, where
                loads.append(where)
            if flag is not None:  # wherever it is passed on, it is the literal True
                assert isinstance(flag, ast.Constant), where
                assert flag.value is True, where
    assert loads, "the scan found no torch.load at all; it no longer looks at the package"


class Payload:
    """Pickles as a call to os.mkdir: loading the file without weights_only would run it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Callable[[str], None], tuple[str]]:
        return (os.mkdir, (str(self.marker),))


@pytest.mark.usefixtures("no_network")
def test_a_poisoned_file_in_the_weights_cache_is_refused_and_never_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    cached = weights_module.imagenet_cache_path("vgg16")
    cached.parent.mkdir(parents=True)
    marker = tmp_path / "payload_ran"
    torch.save({"features.0.weight": Payload(marker)}, cached)
    with pytest.raises(WeightsError, match="may be unsafe"):
        FeatureExtractor(["relu1_1"], weights="imagenet")
    assert not marker.exists()
    torch.load(cached, weights_only=False)  # the payload is armed: this is what was refused
    assert marker.is_dir()


# -- security: no network ---------------------------------------------------------------------

_OFFLINE_SCRIPT = """
import json, pkgutil, socket, sys

events = []
sys.addaudithook(
    lambda event, args: events.append(event)
    if event.startswith(("socket.", "urllib.", "http.")) else None
)

import neuralstyle
for module in pkgutil.walk_packages(neuralstyle.__path__, "neuralstyle."):
    __import__(module.name)
from dataclasses import replace
from neuralstyle import StyleTransfer, example_image
from neuralstyle.presets import DEFAULT

config = replace(DEFAULT.config, steps=2, size=32, device="cpu")
StyleTransfer(config=config).run(example_image("chelsea"), example_image("starry_night"))
during = list(events)
try:
    socket.getaddrinfo("localhost", 80)  # proves the hook sees sockets
except OSError:
    pass
print(json.dumps({"during": during, "probe": events[len(during):]}))
"""


def test_import_and_a_run_with_the_bundled_weights_open_no_socket(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(PACKAGE.parent), os.environ.get("PYTHONPATH", "")]),
        "TORCH_HOME": str(tmp_path / "torch"),
    }
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_OFFLINE_SCRIPT)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    events = json.loads(done.stdout.strip().splitlines()[-1])
    assert events["during"] == []
    assert "socket.getaddrinfo" in events["probe"]


@pytest.mark.usefixtures("no_network")
def test_a_run_with_the_bundled_weights_works_with_sockets_refused() -> None:
    config = replace(DEFAULT.config, steps=1, size=32, device="cpu")
    result = StyleTransfer(config=config).run(
        example_image("chelsea"), example_image("starry_night")
    )
    assert result.steps_done == 1


# -- security: files are written only where asked ---------------------------------------------


@pytest.mark.usefixtures("no_network")
def test_files_are_written_only_where_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for folder in ("inputs", "outputs", "cwd", "home", "torch", "cache", "tmp"):
        (tmp_path / folder).mkdir()
    picture(tmp_path / "inputs" / "content.png", 0)
    picture(tmp_path / "inputs" / "style.png", 1)
    monkeypatch.chdir(tmp_path / "cwd")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    before = snapshot(tmp_path)

    inputs = [str(tmp_path / "inputs" / "content.png"), str(tmp_path / "inputs" / "style.png")]
    StyleTransfer(config=replace(DEFAULT.config, steps=2, size=32, device="cpu")).run(*inputs)
    assert snapshot(tmp_path) == before  # the API writes nothing

    output = tmp_path / "outputs" / "out.png"
    assert main([*inputs, "-o", str(output), "--size", "32", "--steps", "2", "--quiet"]) == 0
    assert capsys.readouterr().out.strip() == str(output)
    after = snapshot(tmp_path)
    assert set(after) - set(before) == {"outputs/out.png"}
    assert {name: after[name] for name in before} == before


def test_the_runs_own_error_wins_over_an_end_hook_that_also_raises() -> None:
    class BrokenEnd(FailsAt):
        def on_end(self, end: RunEnd) -> None:
            raise ValueError("end hook broke")

    with pytest.raises(RuntimeError, match="callback failed at step 2") as caught:
        tiny_transfer().run(CONTENT, STYLE, callbacks=[BrokenEnd(2)])
    if sys.version_info >= (3, 11):  # exception notes are new in 3.11
        assert caught.value.__notes__ == ["an on_end hook also raised ValueError: end hook broke"]
