"""The app's handlers on the tiny network, without a browser: previews, Stop, messages, the command.

:class:`~neuralstyle.studio.Studio` holds everything the page does; the page itself (Gradio) is
built here only when Gradio is installed, and driven in a real browser by test_app_browser.py.
"""

from __future__ import annotations

import dataclasses
import gc
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from tiny import one_thread, picture, tiny_extractor

from neuralstyle import app, cli, memory, optimize
from neuralstyle.errors import ConfigError
from neuralstyle.image_output import to_pil
from neuralstyle.layers import LayerMap
from neuralstyle.presets import PRESETS
from neuralstyle.run import TransferRun
from neuralstyle.studio import Frame, Session, Settings, Studio, explain, settings_for
from neuralstyle.transfer import StyleTransfer

TINY_MAP = LayerMap(content={"relu2_1": 1.0}, style={"relu1_1": 1.0, "relu2_1": 1.0})


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    with one_thread():
        yield


@pytest.fixture
def studio(tmp_path: Path) -> Studio:
    return Studio(every=2, extractor=tiny_extractor(), layer_map=TINY_MAP, folder=tmp_path / "out")


@pytest.fixture
def images(tmp_path: Path) -> tuple[str, str]:
    (tmp_path / "out").mkdir()
    return str(picture(tmp_path / "c.png", 0)), str(picture(tmp_path / "s.png", 1))


def small(steps: int = 6, **changes: Any) -> Settings:
    return dataclasses.replace(settings_for("default"), size=32, steps=steps, **changes)


def pixels(image: Image.Image | None) -> np.ndarray[Any, Any]:
    assert image is not None
    return np.asarray(image)


# -- settings ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_the_settings_start_from_the_presets_values(name: str) -> None:
    config = PRESETS[name].config
    chosen = settings_for(name)
    assert (chosen.size, chosen.style_strength, chosen.steps) == (
        config.size,
        config.style_weight,
        config.steps,
    )
    assert chosen.config(styles=1) == config  # untouched options give the preset's own config


def test_the_settings_reach_the_config() -> None:
    chosen = Settings("gatys", 256, 3.0, "luminance", 40, blend="2, 1")
    config = chosen.config(styles=2)
    assert (config.size, config.style_weight, config.preserve_color) == (256, 3.0, "luminance")
    assert (config.steps, config.style_blend, config.optimizer) == (40, (2.0, 1.0), "lbfgs")


@pytest.mark.parametrize(
    ("changes", "styles", "fragment"),
    [
        ({"blend": "2 x"}, 2, "blend weights must be numbers"),
        ({"blend": "2 1 1"}, 2, "style"),
        ({"steps": 0}, 1, "steps must be a positive int"),
        ({"steps": 2.5}, 1, "steps must be a whole number"),
        ({"steps": None}, 1, "steps is empty; enter a number"),
        ({"style_strength": None}, 1, "style strength is empty"),
        ({"style_strength": -1.0}, 1, "style_weight"),
        ({"preserve_color": "sepia"}, 1, "preserve_color"),
    ],
)
def test_bad_settings_are_config_errors(
    changes: dict[str, Any], styles: int, fragment: str
) -> None:
    with pytest.raises(ConfigError, match=fragment):
        small(**changes).config(styles)


# -- a run ------------------------------------------------------------------------------------


def test_a_run_shows_changing_previews_then_a_png_to_download(
    studio: Studio, images: tuple[str, str]
) -> None:
    content, style = images
    frames = list(studio.run(Session(), content, [style], small(steps=6)))
    assert frames[0].image is None
    assert frames[0].error is None
    previews, final = frames[1:-1], frames[-1]
    assert [(f.step, f.total) for f in previews] == [(2, 6), (4, 6), (6, 6)]
    assert all("loss" in f.text for f in previews)
    assert not np.array_equal(pixels(previews[0].image), pixels(previews[1].image))
    assert final.error is None
    assert final.text.startswith("done: 6/6 steps")
    assert final.download is not None
    assert final.download.parent == studio.folder
    with Image.open(final.download) as saved:
        assert saved.format == "PNG"
        assert saved.size == (32, 26)
        assert np.array_equal(np.asarray(saved.convert("RGB")), pixels(final.image))
    assert '<progress value="6" max="6">' in final.html()


def test_several_styles_are_blended_with_their_weights(
    studio: Studio, images: tuple[str, str], tmp_path: Path
) -> None:
    content, style = images
    other = str(picture(tmp_path / "s2.png", 2))
    final = list(studio.run(Session(), content, [style, other], small(steps=2, blend="3 1")))[-1]
    assert final.error is None
    assert final.download is not None


def test_stop_ends_the_run_with_the_best_picture_so_far(
    studio: Studio, images: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    runs: list[tuple[StyleTransfer, TransferRun]] = []
    start = StyleTransfer.start

    def recorded(self: StyleTransfer, *args: Any, **kwargs: Any) -> TransferRun:
        runs.append((self, start(self, *args, **kwargs)))
        return runs[-1][1]

    monkeypatch.setattr(StyleTransfer, "start", recorded)
    session = Session()
    frames = studio.run(session, images[0], [images[1]], small(steps=50))
    next(frames)  # targets
    assert next(frames).step == 2
    studio.stop(session)
    final = next(frames)
    assert final.step == 3
    assert final.total == 50
    assert final.text.startswith("stopped after 3/50 steps in ")
    assert final.text.endswith("; kept the best picture so far")
    assert final.error is None
    assert final.download is not None
    transfer, run = runs[0]
    best = to_pil(transfer.output(run.best_image, run.targets))
    assert np.array_equal(pixels(final.image), np.asarray(best))
    assert list(frames) == []


def test_stop_in_one_session_leaves_another_running(
    studio: Studio, images: tuple[str, str]
) -> None:
    first, second = Session(), Session()
    one = studio.run(first, images[0], [images[1]], small(steps=8))
    two = studio.run(second, images[0], [images[1]], small(steps=8))
    next(one), next(two), next(one), next(two)
    studio.stop(first)
    assert next(one).text.startswith("stopped after 3/8")
    assert list(two)[-1].text.startswith("done: 8/8 steps")


def test_a_diverged_run_says_so_and_keeps_its_best_picture(
    studio: Studio, images: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    step = optimize.step

    def diverging(*args: Any) -> Any:
        loss = step(*args)
        nan = torch.full_like(loss.total, math.nan)
        return dataclasses.replace(loss, total=nan, per_item=torch.full_like(loss.per_item, nan))

    monkeypatch.setattr(optimize, "step", diverging)
    final = list(studio.run(Session(), images[0], [images[1]], small(steps=12)))[-1]
    assert final.error is not None
    assert final.error.startswith("The run diverged: the loss became")
    assert final.text.startswith("ended after 10/12 steps")
    assert final.download is not None  # the best picture (here the start) is still there
    assert np.isfinite(pixels(final.image)).all()


# -- messages, not tracebacks -------------------------------------------------------------------


def only_error(frames: Iterator[Frame]) -> str:
    listed = list(frames)
    assert listed[-1].image is None
    assert listed[-1].download is None
    error = listed[-1].error
    assert error is not None
    assert "\n" not in error
    assert "Traceback" not in error
    return error


def test_an_unreadable_upload_gets_a_message(studio: Studio, images: tuple[str, str]) -> None:
    broken = Path(images[0]).with_name("upload.png")
    broken.write_bytes(b"not an image at all")
    error = only_error(studio.run(Session(), str(broken), [images[1]], small()))
    assert error.startswith("Could not use that image:")
    assert "upload.png" in error


def test_missing_images_get_a_message(studio: Studio, images: tuple[str, str]) -> None:
    error = only_error(studio.run(Session(), None, [images[1]], small()))
    assert error == "choose a content image and at least one style image."
    assert error == only_error(studio.run(Session(), images[0], [], small()))


def test_a_size_that_does_not_fit_in_memory_gets_a_message(
    studio: Studio, images: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(memory, "available_bytes", lambda device: 0)
    error = only_error(studio.run(Session(), images[0], [images[1]], small()))
    assert error.startswith("That size does not fit in memory here:")
    assert error.endswith("Choose a smaller size.")


def test_bad_settings_get_a_message(studio: Studio, images: tuple[str, str]) -> None:
    error = only_error(studio.run(Session(), images[0], [images[1]], small(blend="1 2")))
    assert error == "style_blend has 2 weights for 1 style images; give one weight per style image."


def test_an_unexpected_error_is_one_line_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    message = explain(RuntimeError("boom\nsecond line"))
    assert (
        message == "Unexpected RuntimeError: boom second line (the server's log has the details)."
    )
    assert "the run failed" in caplog.text


def test_the_status_is_escaped() -> None:
    shown = Frame(None, 1, 2, text="<b>", error="<script>").html()
    assert "&lt;b&gt;" in shown
    assert "&lt;script&gt;" in shown
    assert "<script>" not in shown


def test_every_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="every"):
        Studio(every=0, folder=tmp_path)


def test_a_default_studio_writes_into_a_temporary_folder_it_removes() -> None:
    studio = Studio()
    folder = studio.folder
    assert folder.is_dir()
    assert folder.name.startswith("neuralstyle-app-")
    del studio
    assert not folder.exists()


# -- the command ------------------------------------------------------------------------------


def test_the_command_without_gradio_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def missing() -> None:
        raise ModuleNotFoundError("No module named 'gradio'")

    monkeypatch.setattr(app, "_gradio", missing)
    assert cli.main(["app"]) == 1
    assert capsys.readouterr().err == (
        'neuralstyle: error: the app needs Gradio: pip install "neuralstyle[app]"\n'
    )


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["app", "--port", "70000"], "--port must be between 1 and 65535, got 70000"),
        (["app", "--port", "x"], "argument --port: invalid int value: 'x'"),
        (["app", "--hots", "0.0.0.0"], "(did you mean --host?)"),
    ],
)
def test_bad_options_are_one_line_and_status_2(
    argv: list[str], fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert fragment in err
    assert err.count("\n") == 1
    assert "Traceback" not in err


def test_the_help_names_the_host_risk(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["app", "--help"]) == 0
    shown = " ".join(capsys.readouterr().out.split())
    assert "default: 127.0.0.1" in shown
    assert "run transfers on it" in shown


def test_the_command_serves_on_the_address_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    served: list[tuple[str, int]] = []
    monkeypatch.setattr(app, "_gradio", lambda: None)
    monkeypatch.setattr(app, "serve", lambda host, port: served.append((host, port)))
    assert cli.main(["app"]) == 0
    assert cli.main(["app", "--host", "0.0.0.0", "--port", "8000"]) == 0
    assert served == [("127.0.0.1", 7860), ("0.0.0.0", 8000)]


# -- the page (needs Gradio) --------------------------------------------------------------------


# Building a page makes Gradio create its web app, which leaves event loops and sockets for the
# garbage collector; collect them here, where they are expected, not in a later test.
@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_the_page_builds_with_the_presets_defaults(studio: Studio) -> None:
    gradio = pytest.importorskip("gradio")
    page = app.build_app(studio)
    assert isinstance(page, gradio.Blocks)
    numbers = [block for block in page.blocks.values() if isinstance(block, gradio.Number)]
    defaults = settings_for("default")
    assert [n.value for n in numbers] == [defaults.size, defaults.style_strength, defaults.steps]
    assert page.analytics_enabled is False
    del page, numbers
    gc.collect()
