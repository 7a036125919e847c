"""The command line: the demo runs offline, errors are one line with the right exit status."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from PIL import Image

from neuralstyle.cli import main
from neuralstyle.image import example_image


def _no_network(*args: object, **kwargs: object) -> socket.socket:
    raise OSError("network access attempted in a test that must run offline")


def test_demo_runs_offline_and_prints_the_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(socket, "socket", _no_network)
    output = tmp_path / "demo.png"
    status = main(["demo", "-o", str(output), "--size", "40", "--steps", "2", "--quiet"])
    assert status == 0
    assert capsys.readouterr().out.strip() == str(output)
    with Image.open(output) as image:
        assert max(image.size) == 40


def test_a_missing_input_is_one_line_and_status_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(
        [str(tmp_path / "missing.jpg"), str(example_image("starry_night")), "-o", "x.png"]
    )
    err = capsys.readouterr().err
    assert status == 1
    assert err.startswith("neuralstyle: error:")
    assert "missing.jpg" in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_usage_errors_exit_with_status_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["only-one-argument"])
    assert exit_info.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_the_output_may_not_be_an_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    content = tmp_path / "content.png"
    Image.new("RGB", (32, 32), (200, 30, 30)).save(content)
    before = content.read_bytes()
    status = main(
        [str(content), str(example_image("starry_night")), "-o", str(content), "--steps", "1"]
    )
    assert status == 1
    assert content.read_bytes() == before
    assert "neuralstyle: error:" in capsys.readouterr().err
