"""The command line, end to end on tiny images: options, outputs, exit codes, one-line errors."""

from __future__ import annotations

import argparse
import dataclasses
import io
import subprocess
import sys
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pytest
import torch
from PIL import Image

from neuralstyle import _cli_options, cli, optimize
from neuralstyle.cli import main
from neuralstyle.config import OPTION_GROUPS, TransferConfig, option_group
from neuralstyle.features import FeatureExtractor
from neuralstyle.presets import DEFAULT, GATYS
from neuralstyle.transfer import StyleTransfer, TransferResult

TINY = ["--size", "32", "--steps", "2"]


def picture(path: Path, seed: int, size: tuple[int, int] = (40, 32)) -> Path:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


@pytest.fixture
def images(tmp_path: Path) -> tuple[Path, Path, Path]:
    return (
        picture(tmp_path / "content.png", 0),
        picture(tmp_path / "style.png", 1),
        picture(tmp_path / "style2.jpg", 2),
    )


@dataclasses.dataclass
class Spy:
    """What the CLI handed to StyleTransfer and FeatureExtractor."""

    configs: list[TransferConfig] = dataclasses.field(default_factory=list)
    runs: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    extractors: list[dict[str, Any]] = dataclasses.field(default_factory=list)


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> Spy:
    seen = Spy()

    class RecordingTransfer(StyleTransfer):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            seen.configs.append(self.config)

        def run(self, content: Any, style: Any, **kwargs: Any) -> TransferResult:
            seen.runs.append({"content": content, "style": style, **kwargs})
            return super().run(content, style, **kwargs)

    class RecordingExtractor(FeatureExtractor):
        def __init__(self, layers: Any, **kwargs: Any) -> None:
            seen.extractors.append(kwargs)
            super().__init__(layers, **kwargs)

    monkeypatch.setattr(cli, "StyleTransfer", RecordingTransfer)
    monkeypatch.setattr(_cli_options, "FeatureExtractor", RecordingExtractor)
    return seen


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("neuralstyle: error: ") or lines[0].startswith("neuralstyle demo")
    assert "Traceback" not in err
    return lines[0]


# -- the demo ---------------------------------------------------------------------------------


@pytest.mark.usefixtures("no_network")
def test_demo_runs_offline_and_prints_the_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    status = main(["demo", "-o", "demo.png", "--size", "40", "--steps", "2", "--quiet"])
    captured = capsys.readouterr()
    assert status == 0
    output = tmp_path / "demo.png"
    assert captured.out.strip() == str(output.resolve())  # absolute, wherever it was run
    assert captured.err == ""
    with Image.open(output) as image:
        assert max(image.size) == 40


def test_demo_defaults_are_the_demo_size_and_steps_on_the_default_preset(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    spy: Spy,
) -> None:
    monkeypatch.chdir(tmp_path)
    # Keep the run short without changing what the demo asks for: stop after the first step.
    monkeypatch.setattr(StyleTransfer, "run", _stop_after_setup)
    assert main(["demo"]) == 130
    config = spy.configs[0]
    assert config == dataclasses.replace(DEFAULT.config, size=cli.DEMO_SIZE, steps=cli.DEMO_STEPS)
    assert Path(spy.runs[0]["content"]).name == "chelsea.jpg"
    assert Path(spy.runs[0]["style"]).name == "starry_night.jpg"
    assert "nothing saved" in capsys.readouterr().err
    assert not (tmp_path / cli.DEMO_OUTPUT).exists()


def _stop_after_setup(self: StyleTransfer, *args: Any, **kwargs: Any) -> TransferResult:
    raise KeyboardInterrupt


# -- options come from the API ----------------------------------------------------------------


def help_text(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main([*argv, "--help"]) == 0
    return " ".join(capsys.readouterr().out.split())


def test_help_has_an_option_for_every_config_field(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", "300")
    text = help_text([], capsys)
    renamed = {"style_blend": "--style-weights"}
    for field in dataclasses.fields(TransferConfig):
        flag = renamed.get(field.name, "--" + field.name.replace("_", "-"))
        assert flag in text, field.name
    for flag in ("--output", "--preset", "--backbone", "--weights", "--save-every", "--quiet"):
        assert flag in text
    assert "neuralstyle demo" in text
    assert "Exit status" in text


def test_help_lists_the_config_options_by_group(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each field's option appears under its group's heading, the groups in their order."""
    monkeypatch.setenv("COLUMNS", "300")
    text = help_text([], capsys)
    headings = [text.index(f"{group} options (defaults:") for group in OPTION_GROUPS]
    assert headings == sorted(headings)
    ends = [*headings[1:], len(text)]
    for field in dataclasses.fields(TransferConfig):
        if field.name in _cli_options.BY_HAND or field.name == "style_blend":
            continue  # given their own options (--init, --style-weights, ...)
        group = list(OPTION_GROUPS).index(option_group(field.name))
        section = text[headings[group] : ends[group]]
        flag = "--" + field.name.replace("_", "-")
        assert f"{flag} " in section or f"{flag}," in section, field.name


@pytest.mark.parametrize("preset", [DEFAULT, GATYS])
def test_help_shows_the_chosen_presets_defaults(
    preset: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", "300")
    text = help_text(["--preset", preset.name], capsys)
    assert "--steps N Optimizer steps" in text
    assert f"(default: {preset.config.steps})" in text
    assert "--optimizer {adam,lbfgs}" in text
    assert f"(default: {preset.config.init})" in text


def test_help_text_comes_from_the_config_docstring() -> None:
    helps = _cli_options.attribute_help(TransferConfig.__doc__ or "")
    assert set(helps) == {field.name for field in dataclasses.fields(TransferConfig)}
    assert helps["steps"].startswith("Optimizer steps")
    assert "``" not in helps["init"]
    assert "neuralstyle.gram_matrix" in helps["gram_normalize"]


def test_a_new_config_field_becomes_an_option_without_a_cli_change() -> None:
    @dataclasses.dataclass(frozen=True)
    class Extended(TransferConfig):
        """Options.

        Attributes:
            keep_edges: Keep the edges.
            palette: Which palette to use.
            strength: How much.
        """

        keep_edges: bool = False
        palette: Literal["warm", "cold"] | None = None
        strength: float = 0.5

    parser = argparse.ArgumentParser()
    original = _cli_options.TransferConfig
    try:
        _cli_options.TransferConfig = Extended  # type: ignore[misc]
        _cli_options.add_config_options(parser, Extended(), "test")
    finally:
        _cli_options.TransferConfig = original  # type: ignore[misc]
    args = parser.parse_args(["--keep-edges", "--palette", "none", "--strength", "2"])
    assert vars(args)["config.keep_edges"] is True
    assert vars(args)["config.palette"] is None
    assert vars(args)["config.strength"] == 2.0
    assert vars(parser.parse_args(["--no-keep-edges"]))["config.keep_edges"] is False
    assert vars(parser.parse_args([])) == {}  # unspecified: the preset decides
    with pytest.raises(SystemExit) as exited:
        parser.parse_args(["--palette", "green"])
    assert exited.value.code == 2  # a usage error, not --help's 0


def test_options_reach_the_config_and_the_run(
    images: tuple[Path, Path, Path], tmp_path: Path, spy: Spy
) -> None:
    content, style, style2 = images
    output = tmp_path / "out.png"
    argv = [str(content), str(style), str(style2), "-o", str(output), *TINY, "--quiet"]
    argv += ["--style-weight", "5", "--style-weights", "1", "3", "--adam-betas", "0.5", "0.6"]
    argv += ["--learning-rate", "none", "--no-clamp", "--seed", "7", "--style-scale", "0.8"]
    assert main(argv) == 0
    expected = dataclasses.replace(
        DEFAULT.config,
        size=32,
        steps=2,
        style_weight=5.0,
        style_blend=(1.0, 3.0),
        adam_betas=(0.5, 0.6),
        learning_rate=None,
        clamp=False,
        seed=7,
        style_scale=0.8,
    )
    assert spy.configs == [expected]
    assert spy.runs[0]["style"] == [str(style), str(style2)]
    assert spy.runs[0]["init"] is None
    assert output.is_file()


def test_unspecified_options_take_the_presets_values(
    images: tuple[Path, Path, Path], tmp_path: Path, spy: Spy
) -> None:
    content, style, _ = images
    argv = [str(content), str(style), "-o", str(tmp_path / "o.png"), "--preset", "gatys", *TINY]
    assert main([*argv, "--quiet"]) == 0
    assert spy.configs == [dataclasses.replace(GATYS.config, size=32, steps=2)]
    assert spy.runs[0]["style"] == str(style)


@pytest.mark.parametrize(("init", "field", "path"), [("noise", "noise", False), ("x", None, True)])
def test_init_takes_a_name_or_an_image(
    images: tuple[Path, Path, Path],
    tmp_path: Path,
    spy: Spy,
    init: str,
    field: str | None,
    path: bool,
) -> None:
    content, style, style2 = images
    value = str(style2) if path else init
    argv = [str(content), str(style), "-o", str(tmp_path / "o.png"), *TINY, "--init", value]
    assert main([*argv, "--quiet"]) == 0
    assert spy.configs[0].init == (field or DEFAULT.config.init)
    assert spy.runs[0]["init"] == (str(style2) if path else None)


def test_backbone_weights_pooling_and_padding_build_the_extractor(
    images: tuple[Path, Path, Path], tmp_path: Path, spy: Spy
) -> None:
    content, style, _ = images
    argv = [str(content), str(style), "-o", str(tmp_path / "o.png"), *TINY, "--quiet"]
    argv += ["--backbone", "vgg19", "--weights", "random", "--pooling", "avg"]
    argv += ["--padding", "replicate"]
    assert main(argv) == 0
    assert spy.extractors == [
        {"backbone": "vgg19", "weights": "random", "pooling": "avg", "padding": "replicate"}
    ]


# -- outputs ----------------------------------------------------------------------------------


def test_progress_is_plain_lines_when_not_a_terminal(
    images: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    content, style, _ = images
    output = tmp_path / "o.jpg"
    assert main([str(content), str(style), "-o", str(output), *TINY]) == 0
    captured = capsys.readouterr()
    assert captured.out == f"{output}\n"
    assert "\r" not in captured.err
    assert "step 2/2" in captured.err
    assert f"wrote {output}" in captured.err
    with Image.open(output) as written:
        assert written.format == "JPEG"
        assert written.size == (32, 26)


def test_the_header_progress_and_end_count_the_same_steps(
    images: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    content, style, _ = images
    argv = [str(content), str(style), "-o", str(tmp_path / "o.png"), "--size", "48"]
    assert main([*argv, "--steps", "5", "--start-size", "24"]) == 0
    err = capsys.readouterr().err
    assert "5 steps of adam over 3 scales from 24 px" in err
    assert "step 5/5" in err
    assert "neuralstyle: 5 steps in" in err


def test_a_bare_preserve_color_means_luminance(
    images: tuple[Path, Path, Path], tmp_path: Path, spy: Spy
) -> None:
    content, style, _ = images
    argv = [str(content), str(style), "-o", str(tmp_path / "o.png"), *TINY, "--quiet"]
    assert main([*argv, "--preserve-color"]) == 0
    assert main([*argv, "--preserve-color", "histogram"]) == 0
    assert [config.preserve_color for config in spy.configs] == ["luminance", "histogram"]


def test_a_misspelled_option_gets_a_suggestion(
    images: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    content, style, _ = images
    argv = [str(content), str(style), "-o", str(tmp_path / "o.png"), "--stlye-weight", "3"]
    assert main(argv) == 2
    assert "(did you mean --style-weight?)" in one_error_line(capsys.readouterr().err)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_an_absent_device_is_one_line_naming_the_devices_there_are(
    images: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    content, style, _ = images
    argv = [str(content), str(style), "-o", str(tmp_path / "o.png"), "--device", "cuda"]
    assert main(argv) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "device 'cuda' is not available here; this machine has cpu" in line
    assert "unexpected" not in line


def test_the_optimizer_option_offers_what_a_shell_can_spell(
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = help_text([], capsys)
    assert "--optimizer {adam,lbfgs} adam or lbfgs" in text


def test_sixteen_bit_output(images: tuple[Path, Path, Path], tmp_path: Path) -> None:
    content, style, _ = images
    output = tmp_path / "o.png"
    assert main([str(content), str(style), "-o", str(output), *TINY, "--bits", "16"]) == 0
    header = output.read_bytes()[:26]
    assert header[24] == 16  # IHDR bit depth
    assert header[25] == 2  # RGB


def test_transparency_is_carried_to_png_and_composited_for_jpeg(tmp_path: Path) -> None:
    rgba = np.full((32, 40, 4), 200, dtype=np.uint8)
    rgba[:, :20, 3] = 0  # left half transparent
    rgba[:, 20:, 3] = 255
    content = tmp_path / "cutout.png"
    Image.fromarray(rgba).save(content)
    style = picture(tmp_path / "style.png", 1)
    png, jpeg = tmp_path / "o.png", tmp_path / "o.jpg"
    assert main([str(content), str(style), "-o", str(png), *TINY, "--quiet"]) == 0
    assert main([str(content), str(style), "-o", str(jpeg), *TINY, "--quiet"]) == 0
    with Image.open(png) as written:
        assert written.mode == "RGBA"
        alpha = np.asarray(written)[..., 3]
    assert alpha[:, :14].max() == 0
    assert alpha[:, 18:].min() == 255
    with Image.open(jpeg) as written:
        assert written.mode == "RGB"


def test_snapshots_go_to_a_folder_next_to_the_output_and_are_never_overwritten(
    images: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    content, style, _ = images
    output = tmp_path / "o.png"
    argv = [str(content), str(style), "-o", str(output), "--size", "32", "--steps", "4"]
    assert main([*argv, "--save-every", "2"]) == 0
    folder = tmp_path / "o_snapshots"
    assert "saving a snapshot every 2 steps to" in capsys.readouterr().err
    assert sorted(p.name for p in folder.iterdir()) == ["step_00002.png", "step_00004.png"]
    before = (folder / "step_00002.png").read_bytes()
    assert main([*argv, "--save-every", "2", "--seed", "3"]) == 2
    assert "already holds snapshots" in one_error_line(capsys.readouterr().err)
    assert (folder / "step_00002.png").read_bytes() == before


# -- Ctrl-C -----------------------------------------------------------------------------------


def test_ctrl_c_saves_the_best_image_so_far_and_exits_130(
    images: tuple[Path, Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    content, style, _ = images
    output = tmp_path / "o.png"
    original = optimize.step
    calls = 0

    def interrupted_at_step_four(*args: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 4:
            raise KeyboardInterrupt
        return original(*args)

    monkeypatch.setattr(optimize, "step", interrupted_at_step_four)
    status = main([str(content), str(style), "-o", str(output), "--size", "32", "--steps", "9"])
    captured = capsys.readouterr()
    assert status == 130
    assert captured.out == f"{output}\n"
    assert f"interrupted after 3 steps; saved the best image so far to {output}" in captured.err
    assert "Traceback" not in captured.err
    with Image.open(output) as written:
        assert written.size == (32, 26)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


# -- errors -----------------------------------------------------------------------------------


def bad(tmp_path: Path, *extra: str) -> list[str]:
    content = picture(tmp_path / "c.png", 0)
    style = picture(tmp_path / "s.png", 1)
    return [str(content), str(style), *extra]


@pytest.mark.parametrize(
    ("extra", "status", "fragment"),
    [
        (["-o", "o.gif"], 2, "suffix '.gif'"),
        (["-o", "o.jpg", "--bits", "16"], 2, "JPEG stores 8 bits"),
        (["-o", "o.png", "--steps", "0"], 2, "--steps: steps must be a positive int"),
        (["-o", "o.png", "--steps", "many"], 2, "expected int, got 'many'"),
        (["-o", "o.png", "--optimizer", "sgd"], 2, "invalid choice: 'sgd'"),
        (["-o", "o.png", "--preset", "gatsby"], 2, "invalid choice: 'gatsby'"),
        (["-o", "o.png", "--init", "nowhere.jpg"], 2, "--init must be content, recolored"),
        (
            ["-o", "o.png", "--style-weights", "1", "2"],
            2,
            "style_blend has 2 weights for 1 style images",
        ),
        (["-o", "o.png", "--backbone", "vgg19", "--weights", "bundled"], 2, "vgg16 only"),
        (["-o", "o.png", "--weights", "missing.pth"], 1, "no weights file at 'missing.pth'"),
        (["-o", "no/such/folder/o.png"], 2, "folder does not exist"),
        (["--size", "32"], 2, "required: -o/--output"),
        (["-o", "o.png", "--save-every", "0"], 2, "--save-every must be a positive"),
    ],
)
def test_bad_usage_and_failures_are_one_line_with_the_right_status(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    status: int,
    fragment: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(bad(tmp_path, *extra)) == status
    line = one_error_line(capsys.readouterr().err)
    assert fragment in line
    assert not (tmp_path / "o.png").exists()


def test_a_missing_input_is_one_line_and_status_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    style = picture(tmp_path / "s.png", 1)
    status = main([str(tmp_path / "missing.jpg"), str(style), "-o", str(tmp_path / "x.png")])
    assert status == 1
    # The whole of standard error: no header is printed for a run whose inputs fail.
    assert "missing.jpg" in one_error_line(capsys.readouterr().err)


def test_a_corrupt_input_is_one_line_and_status_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corrupt = tmp_path / "c.png"
    corrupt.write_bytes(b"not a picture at all")
    style = picture(tmp_path / "s.png", 1)
    argv = [str(corrupt), str(style), "-o", str(tmp_path / "x.png"), "--quiet"]
    assert main(argv) == 1
    assert "not an image file" in one_error_line(capsys.readouterr().err)


def test_the_output_may_not_be_an_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    content = picture(tmp_path / "content.png", 0)
    style = picture(tmp_path / "style.png", 1)
    before = content.read_bytes()
    status = main([str(content), str(style), "-o", str(content), "--steps", "1"])
    assert status == 2
    assert content.read_bytes() == before
    assert "protected file" in one_error_line(capsys.readouterr().err)


def test_an_unexpected_error_is_one_line_and_debug_shows_it(
    images: tuple[Path, Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def broken(self: StyleTransfer, *args: Any, **kwargs: Any) -> TransferResult:
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(StyleTransfer, "run", broken)
    content, style, _ = images
    argv = [str(content), str(style), "-o", str(tmp_path / "o.png"), *TINY, "--quiet"]
    assert main(argv) == 1
    line = one_error_line(capsys.readouterr().err)
    assert "unexpected RuntimeError: boom second line" in line
    assert "--debug" in line
    with pytest.raises(RuntimeError, match="boom"):
        main([*argv, "--debug"])


def test_python_dash_m_runs_the_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "neuralstyle", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0
    assert "neuralstyle demo" in done.stdout
    bad_run = subprocess.run(
        [sys.executable, "-m", "neuralstyle", "only-one.png"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert bad_run.returncode == 2
    assert bad_run.stderr.count("\n") == 1
    assert "Traceback" not in bad_run.stderr


def test_the_result_is_what_the_api_gives(images: tuple[Path, Path, Path], tmp_path: Path) -> None:
    content, style, _ = images
    output = tmp_path / "o.png"
    assert main([str(content), str(style), "-o", str(output), *TINY, "--quiet"]) == 0
    config = dataclasses.replace(DEFAULT.config, size=32, steps=2)
    result = StyleTransfer(config=config).run(str(content), str(style))
    expected = (result.image[0].clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0)
    with Image.open(output) as written:
        assert np.array_equal(np.asarray(written), expected.numpy())


def test_a_large_content_at_its_own_size_gets_a_hint(tmp_path: Path) -> None:
    large = tmp_path / "large.png"
    Image.new("RGB", (1500, 20)).save(large)
    assert cli._full_size(str(large)) == (
        "the content's size, 1500x20 px (large: --size 512 is much faster)"
    )
    small = picture(tmp_path / "small.png", 0)
    assert cli._full_size(str(small)) == "the content's size, 40x32 px"
    assert cli._full_size(str(tmp_path / "missing.png")) == "the content's size"


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_a_bar_on_a_terminal(
    images: tuple[Path, Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    content, style, _ = images
    assert main([str(content), str(style), "-o", str(tmp_path / "o.png"), *TINY]) == 0
    text = terminal.getvalue()
    assert "\r[" in text
    assert "] step 2/2" in text


def test_out_of_memory_is_one_line_with_the_fixes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def exhausted(self: StyleTransfer, *args: Any, **kwargs: Any) -> TransferResult:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(StyleTransfer, "run", exhausted)
    output = tmp_path / "out.png"
    status = main(["demo", "-o", str(output), "--size", "32", "--steps", "1", "--quiet"])
    line = one_error_line(capsys.readouterr().err)
    assert status == 1
    assert "out of memory" in line
    assert "--size" in line
    assert "--precision bfloat16" in line
    assert not output.exists()
