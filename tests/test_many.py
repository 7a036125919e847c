"""Many pictures: which pairs, the manifest, resuming, and one bad pair among good ones."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tiny import picture, tiny_extractor

from neuralstyle import LayerMap, StyleTransfer, TransferConfig, optimize
from neuralstyle.cli import main
from neuralstyle.errors import ConfigError, ImageError
from neuralstyle.many import (
    MANIFEST,
    Outcome,
    Pair,
    every_pair,
    find_images,
    in_process,
    read_pairs,
    recipe,
    stylize_many,
)

LAYERS = LayerMap(content={"relu2_1": 1.0}, style={"relu1_1": 1.0, "relu2_1": 1.0})
CONFIG = TransferConfig(steps=2, device="cpu", style_weight=10.0)


def tiny_transfer(**options: object) -> StyleTransfer:
    return StyleTransfer(LAYERS, config=replace(CONFIG, **options), extractor=tiny_extractor())


@pytest.fixture
def images(tmp_path: Path) -> tuple[list[Path], list[Path]]:
    """Two contents and two styles in their own folders."""
    (tmp_path / "contents").mkdir()
    (tmp_path / "styles").mkdir()
    contents = [
        picture(tmp_path / "contents" / f"{name}.png", seed) for seed, name in enumerate("ab")
    ]
    styles = [
        picture(tmp_path / "styles" / f"{name}.jpg", seed + 5) for seed, name in enumerate("xy")
    ]
    return contents, styles


def manifest_lines(folder: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (folder / MANIFEST).read_text().splitlines()]


# -- which pairs ---------------------------------------------------------------------------------


def test_images_come_from_files_folders_and_patterns(tmp_path: Path) -> None:
    folder = tmp_path / "f"
    folder.mkdir()
    b, a = picture(folder / "b.png"), picture(folder / "a.JPG")
    (folder / "notes.txt").write_text("not an image")
    single = picture(tmp_path / "single.png")
    assert find_images([folder]) == [a, b]
    assert find_images([single, str(folder / "*.png")]) == [single, b]


@pytest.mark.parametrize("source", ["missing.png", "nothing-*.png", "empty"])
def test_a_source_that_names_no_image_is_refused(tmp_path: Path, source: str) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImageError, match=r"holds no images|not a file, a folder or a pattern"):
        find_images([tmp_path / source])


def test_every_pair_is_content_major() -> None:
    c1, c2, s1, s2 = (Path(name) for name in ("c1", "c2", "s1", "s2"))
    assert every_pair([c1, c2], [s1, s2]) == [
        Pair(c1, s1),
        Pair(c1, s2),
        Pair(c2, s1),
        Pair(c2, s2),
    ]


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("pairs.csv", "content,style\nc/a.png,s/x.jpg\n\nc/b.png, s/y.jpg\n"),
        ("pairs.csv", "c/a.png,s/x.jpg\nc/b.png,s/y.jpg"),
        ("pairs.json", '[["c/a.png", "s/x.jpg"], {"content": "c/b.png", "style": "s/y.jpg"}]'),
    ],
)
def test_pair_lists_are_read_relative_to_their_folder(tmp_path: Path, name: str, text: str) -> None:
    (tmp_path / name).write_text(text)
    assert read_pairs(tmp_path / name) == [
        Pair(tmp_path / "c/a.png", tmp_path / "s/x.jpg"),
        Pair(tmp_path / "c/b.png", tmp_path / "s/y.jpg"),
    ]


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("pairs.csv", "a.png,x.jpg\na.png\n", "row 2 of .* must be 'content,style'"),
        ("pairs.json", '{"a.png": "x.jpg"}', "must be a JSON list of pairs"),
        ("pairs.json", '[["a.png"]]', r"pair 1 of .* must be \[content, style\]"),
        ("pairs.json", "[", "is not valid JSON"),
    ],
)
def test_a_malformed_pair_list_says_where(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    (tmp_path / name).write_text(text)
    with pytest.raises(ConfigError, match=message):
        read_pairs(tmp_path / name)


def test_a_missing_pair_list_is_an_image_error(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="cannot read the pair list"):
        read_pairs(tmp_path / "nope.csv")


# -- the job -------------------------------------------------------------------------------------


def test_a_grid_writes_every_picture_and_a_manifest_line_each(
    tmp_path: Path, images: tuple[list[Path], list[Path]]
) -> None:
    contents, styles = images
    seen: list[Outcome] = []
    report = stylize_many(
        every_pair(contents, styles),
        tmp_path / "out",
        transfer=tiny_transfer(),
        on_outcome=seen.append,
    )
    names = ["a__x.png", "a__y.png", "b__x.png", "b__y.png"]
    assert [outcome.output.name for outcome in report.outcomes if outcome.output] == names
    assert report.ok
    assert report.count("done") == 4
    assert seen == list(report.outcomes)
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == [*names, MANIFEST]
    lines = manifest_lines(tmp_path / "out")
    assert [line["output"] for line in lines] == names
    first = lines[0]
    assert first["status"] == "done"
    assert first["content"] == str(contents[0])
    assert first["style"] == str(styles[0])
    assert first["seed"] == 0
    assert isinstance(first["loss"], float)
    assert isinstance(first["seconds"], float)
    assert first["recipe"]["config"]["steps"] == 2
    assert len({line["recipe_hash"] for line in lines}) == 1


def test_a_second_run_skips_what_is_done_and_touches_nothing(
    tmp_path: Path, images: tuple[list[Path], list[Path]], monkeypatch: pytest.MonkeyPatch
) -> None:
    pairs, out = every_pair(*images), tmp_path / "out"
    stylize_many(pairs, out, transfer=tiny_transfer())
    before = {path.name: path.read_bytes() for path in out.iterdir()}
    again = tiny_transfer()
    monkeypatch.setattr(again, "run", lambda *args, **kwargs: pytest.fail("a done pair ran again"))
    report = stylize_many(pairs, out, transfer=again)
    assert report.count("skipped") == 4
    assert {path.name: path.read_bytes() for path in out.iterdir()} == before


def test_resuming_redoes_only_what_an_interruption_left_unfinished(
    tmp_path: Path, images: tuple[list[Path], list[Path]]
) -> None:
    """After a crash: a picture without its manifest line, a leftover temporary file and a
    manifest line cut short. The complete pairs are skipped; the rest are redone; the
    temporary file is never taken for a picture."""
    pairs, out = every_pair(*images), tmp_path / "out"
    stylize_many(pairs[:2], out, transfer=tiny_transfer())  # a__x, a__y complete
    picture(out / "b__x.png", seed=9)  # written, but its manifest line never was
    (out / ".b__y.png.tmp").write_bytes(b"half a picture")
    with (out / MANIFEST).open("a") as manifest:
        manifest.write('{"output": "b__x.png", "status": "do')  # the crash
    report = stylize_many(pairs, out, transfer=tiny_transfer())
    assert [outcome.status for outcome in report.outcomes] == ["skipped", "skipped", "done", "done"]
    lines = [
        json.loads(line) for line in (out / MANIFEST).read_text().splitlines() if line.endswith("}")
    ]
    assert [line["output"] for line in lines] == ["a__x.png", "a__y.png", "b__x.png", "b__y.png"]


def test_a_bad_pair_is_recorded_and_the_others_finish(
    tmp_path: Path, images: tuple[list[Path], list[Path]]
) -> None:
    contents, styles = images
    broken = tmp_path / "contents" / "broken.png"
    broken.write_text("not a picture")
    pairs = every_pair([contents[0], broken, contents[1]], styles[:1])
    report = stylize_many(pairs, tmp_path / "out", transfer=tiny_transfer())
    assert [outcome.status for outcome in report.outcomes] == ["done", "failed", "done"]
    (failed,) = report.failed
    assert failed.pair.content == broken
    assert failed.output is None
    assert failed.reason is not None
    assert failed.reason.startswith("ImageError:")
    assert "\n" not in failed.reason
    lines = manifest_lines(tmp_path / "out")
    assert lines[1]["status"] == "failed"
    assert lines[1]["reason"] == failed.reason
    assert not (tmp_path / "out" / "broken__x.png").exists()


def test_a_failed_pair_is_tried_again_next_time(
    tmp_path: Path, images: tuple[list[Path], list[Path]]
) -> None:
    styles = images[1]
    late = tmp_path / "contents" / "late.png"
    late.write_text("not yet a picture")
    pairs = every_pair([late], styles[:1])
    assert stylize_many(pairs, tmp_path / "out", transfer=tiny_transfer()).count("failed") == 1
    picture(late, seed=3)
    assert stylize_many(pairs, tmp_path / "out", transfer=tiny_transfer()).count("done") == 1


def test_a_run_that_stops_early_is_a_failure_without_a_picture(
    tmp_path: Path, images: tuple[list[Path], list[Path]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The divergence guard stops a run whose image became NaN: no picture of it is kept."""

    def nan_after_one_step(image: torch.Tensor, config: TransferConfig) -> torch.optim.Optimizer:
        optimizer = torch.optim.Adam([image], lr=0.05)
        optimizer.register_step_post_hook(lambda *_: image.data.fill_(float("nan")))
        return optimizer

    monkeypatch.setattr(optimize, "make_optimizer", nan_after_one_step)
    pairs = every_pair(images[0][:1], images[1][:1])
    report = stylize_many(pairs, tmp_path / "out", transfer=tiny_transfer(steps=20))
    (outcome,) = report.outcomes
    assert outcome.status == "failed"
    assert outcome.reason is not None
    assert outcome.reason.startswith("the run stopped early: diverged")
    assert not (tmp_path / "out" / "a__x.png").exists()


def test_another_recipe_over_old_pictures_is_refused_unless_overwrite(
    tmp_path: Path, images: tuple[list[Path], list[Path]]
) -> None:
    pairs = every_pair(*images)[:1]
    stylize_many(pairs, tmp_path, transfer=tiny_transfer())
    with pytest.raises(ConfigError, match=r"holds 1 picture\(s\) made with another recipe"):
        stylize_many(pairs, tmp_path, transfer=tiny_transfer(steps=3))
    report = stylize_many(pairs, tmp_path, transfer=tiny_transfer(steps=3), overwrite=True)
    assert report.count("done") == 1
    assert manifest_lines(tmp_path)[-1]["recipe"]["config"]["steps"] == 3


def test_speed_options_are_not_part_of_the_recipe() -> None:
    assert recipe(tiny_transfer()) == recipe(tiny_transfer(check_memory=False, channels_last=False))
    assert recipe(tiny_transfer()) != recipe(tiny_transfer(seed=1))


def test_two_pairs_with_one_file_name_are_refused(tmp_path: Path) -> None:
    first, second = Pair(Path("a/c.png"), Path("s.png")), Pair(Path("b/c.png"), Path("s.png"))
    with pytest.raises(ConfigError, match=r"would both be saved as 'c__s\.png'"):
        stylize_many([first, second], tmp_path, transfer=tiny_transfer())


def test_an_optimizer_factory_cannot_be_recorded(tmp_path: Path) -> None:
    transfer = tiny_transfer(optimizer=lambda params: torch.optim.SGD(params, lr=0.1))
    with pytest.raises(ConfigError, match="optimizer factory cannot be recorded"):
        stylize_many([], tmp_path, transfer=transfer)


def test_an_output_folder_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("")
    with pytest.raises(ImageError, match="is a file"):
        stylize_many([], tmp_path / "taken", transfer=tiny_transfer())


# -- batches -------------------------------------------------------------------------------------


def record_batches(transfer: StyleTransfer, monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The content names of each run the transfer makes, as they are made."""
    runs: list[list[str]] = []
    original = transfer.run

    def run(content: object, style: object, **options: object) -> object:
        names = content if isinstance(content, list) else [content]
        runs.append([Path(str(name)).stem for name in names])
        return original(content, style, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(transfer, "run", run)
    return runs


def pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path), dtype=np.int16)


def test_a_batch_gives_each_pair_the_picture_it_gets_alone(
    tmp_path: Path, images: tuple[list[Path], list[Path]], monkeypatch: pytest.MonkeyPatch
) -> None:
    contents, styles = images
    pairs = every_pair([*contents, picture(tmp_path / "contents" / "c.png", 7)], styles)
    alone = stylize_many(pairs, tmp_path / "alone", transfer=tiny_transfer(steps=5))
    transfer = tiny_transfer(steps=5)
    runs = record_batches(transfer, monkeypatch)
    runner = in_process(transfer, batch_size=2)
    batched = stylize_many(pairs, tmp_path / "batched", transfer=transfer, runner=runner)
    # Grouped by style, in the order the groups fill: (a, b) fill first, c waits for a partner.
    assert runs == [["a", "b"], ["a", "b"], ["c"], ["c"]]
    assert batched.count("done") == 6
    for one, other in zip(alone.outcomes, batched.outcomes, strict=True):
        assert one.output is not None
        assert other.output is not None
        assert np.abs(pixels(one.output) - pixels(other.output)).max() <= 1
        assert other.loss == pytest.approx(one.loss, rel=1e-4)


def test_a_batch_holds_one_style_and_one_shape_at_the_run_size(
    tmp_path: Path, images: tuple[list[Path], list[Path]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """At size 20: a and b (40x32) and big (80x64) all run at 20x16; wide (48x32) at 20x13;
    turned (stored 40x32, shown 32x40 by its EXIF orientation) at 16x20."""
    contents, styles = images
    wide = picture(tmp_path / "contents" / "wide.png", 3, size=(48, 32))
    big = picture(tmp_path / "contents" / "big.png", 4, size=(80, 64))
    turned = tmp_path / "contents" / "turned.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.open(contents[0]).save(turned, exif=exif)
    transfer = tiny_transfer(size=20)
    runs = record_batches(transfer, monkeypatch)
    pairs = every_pair([contents[0], wide, turned, big, contents[1]], styles)
    report = stylize_many(
        pairs, tmp_path / "out", transfer=transfer, runner=in_process(transfer, batch_size=4)
    )
    assert sorted(runs) == [
        ["a", "big", "b"],
        ["a", "big", "b"],
        ["turned"],
        ["turned"],
        ["wide"],
        ["wide"],
    ]
    assert pixels(tmp_path / "out" / "turned__x.png").shape == (20, 16, 3)
    assert report.count("done") == 10


def test_a_batch_that_cannot_run_runs_its_pairs_alone(
    tmp_path: Path, images: tuple[list[Path], list[Path]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file whose header reads but whose pixels do not joins a batch; the batch fails, so
    its pairs run alone, and only the bad one fails."""
    contents, styles = images
    cut = tmp_path / "contents" / "cut.jpg"
    Image.open(contents[1]).save(cut)
    cut.write_bytes(cut.read_bytes()[:700])  # the header whole, the pixels cut short
    transfer = tiny_transfer()
    runs = record_batches(transfer, monkeypatch)
    pairs = every_pair([contents[0], cut], styles[:1])
    report = stylize_many(
        pairs, tmp_path / "out", transfer=transfer, runner=in_process(transfer, batch_size=2)
    )
    assert runs == [["a", "cut"], ["a"], ["cut"]]
    assert [outcome.status for outcome in report.outcomes] == ["done", "failed"]
    assert report.failed[0].reason is not None
    assert report.failed[0].reason.startswith("ImageError:")


def test_a_batch_that_stops_early_runs_its_pairs_alone(
    tmp_path: Path, images: tuple[list[Path], list[Path]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch the divergence guard stopped keeps no picture: each pair runs again alone and
    gets its own reason (here every run diverges)."""

    def nan_after_one_step(image: torch.Tensor, config: TransferConfig) -> torch.optim.Optimizer:
        optimizer = torch.optim.Adam([image], lr=0.05)
        optimizer.register_step_post_hook(lambda *_: image.data.fill_(float("nan")))
        return optimizer

    monkeypatch.setattr(optimize, "make_optimizer", nan_after_one_step)
    transfer = tiny_transfer(steps=20)
    runs = record_batches(transfer, monkeypatch)
    pairs = every_pair(images[0], images[1][:1])
    report = stylize_many(
        pairs, tmp_path / "out", transfer=transfer, runner=in_process(transfer, batch_size=2)
    )
    assert runs == [["a", "b"], ["a"], ["b"]]
    assert [outcome.status for outcome in report.outcomes] == ["failed", "failed"]
    assert all((o.reason or "").startswith("the run stopped early") for o in report.outcomes)
    assert not list((tmp_path / "out").glob("*.png"))


@pytest.mark.parametrize("size", [0, -1, 1.5, True])
def test_a_batch_size_must_be_a_positive_int(size: object) -> None:
    with pytest.raises(ConfigError, match="batch_size must be a positive int"):
        in_process(tiny_transfer(), batch_size=size)  # type: ignore[arg-type]


# -- the command ---------------------------------------------------------------------------------


def batch_argv(out: Path, *options: str) -> list[str]:
    return [
        "batch",
        *options,
        "-o",
        str(out),
        "--steps",
        "2",
        "--weights",
        "random",
        "--size",
        "32",
    ]


def test_the_command_runs_a_grid_and_resumes(
    tmp_path: Path, images: tuple[list[Path], list[Path]], capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    grid = ("--content", str(tmp_path / "contents"), "--style", str(tmp_path / "styles" / "*.jpg"))
    assert main(batch_argv(out, *grid)) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == str(out.resolve())
    assert "[4/4] b__y.png done" in captured.err  # not a terminal: a line per pair
    assert "4 done, 0 already done, 0 failed" in captured.err
    assert main(batch_argv(out, *grid)) == 0
    assert "0 done, 4 already done, 0 failed" in capsys.readouterr().err


def test_the_command_names_each_failed_pair_and_exits_1(
    tmp_path: Path, images: tuple[list[Path], list[Path]], capsys: pytest.CaptureFixture[str]
) -> None:
    contents, styles = images
    broken = tmp_path / "broken.png"
    broken.write_text("not a picture")
    listed = tmp_path / "pairs.csv"
    listed.write_text(f"{contents[0]},{styles[0]}\n{broken},{styles[0]}\n")
    assert main(batch_argv(tmp_path / "out", "--pairs", str(listed))) == 1
    err = capsys.readouterr().err
    assert f"neuralstyle: failed {broken} + {styles[0]}: ImageError:" in err
    assert "1 done, 0 already done, 1 failed" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ((), "give --content and --style"),
        (
            ("--content", "nowhere/*.png", "--style", "x.png"),
            "is not a file, a folder or a pattern",
        ),
        (("--pairs", "p.csv", "--content", "a.png"), "give --pairs or --content with --style"),
        (("--pairs", "missing.csv"), "cannot read the pair list"),
        (("--pairs", "p.csv", "--batch-size", "0"), "--batch-size must be at least 1, got 0"),
        (
            ("--pairs", "p.csv", "--engine", "ray", "--batch-size", "2"),
            "--batch-size applies to the local engine",
        ),
    ],
)
def test_a_job_the_command_cannot_make_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], options: tuple[str, ...], message: str
) -> None:
    assert main(batch_argv(tmp_path / "out", *options)) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1


def test_the_command_batches_pairs_when_asked(
    tmp_path: Path, images: tuple[list[Path], list[Path]], monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes: list[int] = []
    original = StyleTransfer.run

    def run(self: StyleTransfer, content: object, *args: object, **options: object) -> object:
        sizes.append(len(content) if isinstance(content, list) else 1)
        return original(self, content, *args, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(StyleTransfer, "run", run)
    grid = ("--content", str(tmp_path / "contents"), "--style", str(tmp_path / "styles"))
    assert main(batch_argv(tmp_path / "out", *grid, "--batch-size", "2", "--quiet")) == 0
    assert sizes == [2, 2]
    assert len(list((tmp_path / "out").glob("*.png"))) == 4


def test_another_recipe_on_the_command_line_needs_overwrite(
    tmp_path: Path, images: tuple[list[Path], list[Path]], capsys: pytest.CaptureFixture[str]
) -> None:
    contents, styles = images
    grid = ("--content", str(contents[0]), "--style", str(styles[0]))
    assert main(batch_argv(tmp_path / "out", *grid)) == 0
    assert main([*batch_argv(tmp_path / "out", *grid), "--seed", "3"]) == 2
    assert "made with another recipe" in capsys.readouterr().err
    assert main([*batch_argv(tmp_path / "out", *grid), "--seed", "3", "--overwrite"]) == 0
