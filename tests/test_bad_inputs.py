"""What neuralstyle promises under bad input: every case, and the answer it gets.

Read top to bottom, this module is the promise list; docs/promises.md shows it as a table.

* The API raises one typed error from :mod:`neuralstyle.errors` (each is also the builtin that
  fits: ``ValueError``, ``TypeError`` or ``FileNotFoundError``), with a message that says what
  to do. Nothing is half done when it raises.
* The command line prints one line, ``neuralstyle: error: ...``, never a traceback, and exits 1
  for bad data (an unreadable image, a bad weights file) or 2 for a bad command line.
* Nothing is lost: input files stay byte for byte, no stray file appears, and an output that
  already exists is left alone when a run is refused or fails.

Inputs that look unusual but are fine (16-bit PNG, CMYK JPEG, ...) are promised too: they load.
The API cases run on a tiny random network; the command line uses the bundled VGG16 at 32 px.
"""

from __future__ import annotations

import io
import os
import re
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from tiny import picture, random_image, snapshot, tiny_extractor

from neuralstyle import weights as weights_module
from neuralstyle.backbones import get_spec
from neuralstyle.cli import main
from neuralstyle.config import TransferConfig
from neuralstyle.errors import (
    ConfigError,
    DeviceMismatchError,
    DTypeError,
    ImageError,
    ImageNotFoundError,
    LayerNotFoundError,
    ShapeError,
    WeightsError,
    WeightsNotFoundError,
)
from neuralstyle.features import FeatureExtractor
from neuralstyle.image import load_image
from neuralstyle.image_output import check_output_path, save_image
from neuralstyle.layers import LayerMap
from neuralstyle.losses import content_loss, style_loss
from neuralstyle.presets import DEFAULT, get_preset
from neuralstyle.transfer import StyleTransfer
from neuralstyle.weights import BUNDLED_SHA256, bundled_path, load_state_dict_file

LAYERS = LayerMap(content={"relu2_1": 1.0}, style={"relu1_1": 1.0, "relu3_1": 1.0})
CONFIG = TransferConfig(steps=1, device="cpu")
# The command line on the bundled VGG16, small and short.
QUICK = ["--size", "32", "--steps", "1", "--quiet"]


def tiny_transfer(config: TransferConfig = CONFIG, layers: LayerMap = LAYERS) -> StyleTransfer:
    return StyleTransfer(layers, config=config, extractor=tiny_extractor())


def one_error_line(err: str) -> str:
    """The single line the command line printed for an error; fails on more, or a traceback."""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("neuralstyle: error: "), err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A folder with a content and a style image and an earlier output, ``out.png``."""
    picture(tmp_path / "content.png", seed=0)
    picture(tmp_path / "style.png", seed=1)
    picture(tmp_path / "out.png", seed=2)
    return tmp_path


def refused_by_the_cli(
    argv: list[str], folder: Path, capsys: pytest.CaptureFixture[str], status: int
) -> str:
    """Run the command line, check its exit status, one error line and that nothing changed."""
    before = snapshot(folder)
    assert main(argv) == status
    line = one_error_line(capsys.readouterr().err)
    assert snapshot(folder) == before  # inputs byte for byte, old output kept, nothing new
    return line


# -- files ------------------------------------------------------------------------------------


def _encoded(image_format: str) -> bytes:
    buffer = io.BytesIO()
    pixels = np.random.default_rng(3).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(buffer, format=image_format)
    return buffer.getvalue()


def missing_file(folder: Path) -> Path:
    return folder / "missing.jpg"


def directory(folder: Path) -> Path:
    path = folder / "a_folder.png"
    path.mkdir()
    return path


def plain_directory(folder: Path) -> Path:
    """A folder named like a folder, as in ``-o outputs``: no suffix to tell a format from."""
    path = folder / "outputs"
    path.mkdir()
    return path


def empty_file(folder: Path) -> Path:
    path = folder / "empty.png"
    path.write_bytes(b"")
    return path


def truncated_jpeg(folder: Path) -> Path:
    path = folder / "cut.jpg"
    whole = _encoded("JPEG")
    path.write_bytes(whole[: len(whole) // 2])
    return path


def truncated_png(folder: Path) -> Path:
    path = folder / "cut.png"
    whole = _encoded("PNG")
    path.write_bytes(whole[: len(whole) // 2])
    return path


def text_named_jpg(folder: Path) -> Path:
    path = folder / "notes.jpg"
    path.write_text("these are words, not pixels\n")
    return path


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def decompression_bomb(folder: Path) -> Path:
    """A 200-byte PNG that claims 30000 x 30000 pixels: the classic decompression bomb."""
    side = 30_000
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)  # 8-bit grey
    rows = zlib.compress(b"\x00" * (side + 1) * 4)  # a few rows; the rest never arrive
    path = folder / "bomb.png"
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", rows)
        + _png_chunk(b"IEND", b"")
    )
    return path


BAD_FILES = [
    pytest.param(missing_file, ImageNotFoundError, "file not found: .*missing.jpg", id="missing"),
    pytest.param(directory, ImageError, "is a directory, not an image file", id="directory"),
    pytest.param(empty_file, ImageError, r"empty file \(0 bytes\)", id="empty-file"),
    pytest.param(truncated_jpeg, ImageError, "truncated or corrupt", id="truncated-jpeg"),
    pytest.param(truncated_png, ImageError, "truncated or corrupt", id="truncated-png"),
    pytest.param(text_named_jpg, ImageError, "not an image file PIL can read", id="text-as-jpg"),
    pytest.param(
        decompression_bomb,
        ImageError,
        "has 900000000 pixels, more than PIL's decompression-bomb limit",
        id="decompression-bomb",
    ),
]


@pytest.mark.parametrize(("make", "error", "fragment"), BAD_FILES)
def test_bad_file_is_a_typed_error(
    workspace: Path, make: Callable[[Path], Path], error: type[Exception], fragment: str
) -> None:
    bad = make(workspace)
    before = snapshot(workspace)
    with pytest.raises(error, match=fragment):
        tiny_transfer().run(bad, workspace / "style.png")
    assert snapshot(workspace) == before


@pytest.mark.parametrize(("make", "error", "fragment"), BAD_FILES)
def test_bad_file_on_the_command_line(
    workspace: Path,
    capsys: pytest.CaptureFixture[str],
    make: Callable[[Path], Path],
    error: type[Exception],
    fragment: str,
) -> None:
    bad = make(workspace)
    argv = [str(workspace / "content.png"), str(bad), "-o", str(workspace / "out.png"), *QUICK]
    line = refused_by_the_cli(argv, workspace, capsys, status=1)
    assert re.search(fragment, line), line


def test_decompression_bomb_as_content_on_the_command_line(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bomb = decompression_bomb(workspace)
    # No --size: the run would be at the content's own size, which the CLI describes first.
    argv = [str(bomb), str(workspace / "style.png"), "-o", str(workspace / "out.png")]
    line = refused_by_the_cli([*argv, "--steps", "1", "--quiet"], workspace, capsys, status=1)
    assert "decompression-bomb limit" in line


# Too small for the deepest layer: the message names the smallest size that works.


def test_one_pixel_content_names_the_minimum_size(workspace: Path) -> None:
    one_pixel = workspace / "dot.png"
    Image.new("RGB", (1, 1), "red").save(one_pixel)
    transfer = StyleTransfer(config=replace(DEFAULT.config, steps=1, device="cpu"))
    with pytest.raises(ShapeError, match="1x1; relu5_1 needs height and width of at least 16"):
        transfer.run(one_pixel, workspace / "style.png")


def test_a_size_too_small_for_the_layers_names_the_minimum(workspace: Path) -> None:
    transfer = StyleTransfer(config=replace(DEFAULT.config, steps=1, size=8, device="cpu"))
    with pytest.raises(ShapeError, match="6x8; relu5_1 needs height and width of at least 16"):
        transfer.run(workspace / "content.png", workspace / "style.png")


def test_a_sliver_of_a_style_image_names_the_minimum(workspace: Path) -> None:
    sliver = picture(workspace / "sliver.png", size=(400, 2))
    transfer = StyleTransfer(config=replace(DEFAULT.config, steps=1, size=32, device="cpu"))
    with pytest.raises(ShapeError, match="1x32; relu5_1 needs height and width of at least 16"):
        transfer.run(workspace / "content.png", sliver)


def test_a_custom_network_too_deep_for_the_image_names_the_minimum() -> None:
    # Two 2x2 poolings before relu3_1: 4 px is the least that leaves it a pixel.
    with pytest.raises(ShapeError, match="3x3; relu3_1 needs height and width of at least 4"):
        tiny_transfer().run(random_image(3, 3), random_image())
    assert tiny_transfer().run(random_image(4, 4), random_image()).image.shape == (1, 3, 4, 4)


@pytest.mark.parametrize(
    ("size", "shown"),
    [pytest.param(["--size", "8"], "6x8", id="size-8"), pytest.param([], "1x1", id="one-pixel")],
)
def test_too_small_on_the_command_line(
    workspace: Path, capsys: pytest.CaptureFixture[str], size: list[str], shown: str
) -> None:
    content = workspace / "content.png"
    if not size:
        Image.new("RGB", (1, 1), "red").save(content)
    argv = [str(content), str(workspace / "style.png"), "-o", str(workspace / "out.png")]
    line = refused_by_the_cli([*argv, *size, "--steps", "1", "--quiet"], workspace, capsys, 1)
    assert f"{shown}; relu5_1 needs height and width of at least 16" in line


# Unusual but valid files load, as the image a viewer shows.


def sixteen_bit_png(folder: Path) -> Path:
    ramp = np.linspace(0, 65535, 24 * 20).reshape(20, 24).astype(np.uint16)
    path = folder / "deep.png"
    Image.fromarray(ramp).save(path)
    return path


def cmyk_jpeg(folder: Path) -> Path:
    path = folder / "print.jpg"
    Image.new("RGB", (24, 20), (200, 40, 90)).convert("CMYK").save(path, quality=100)
    return path


def palette_png_with_transparency(folder: Path) -> Path:
    image = Image.new("P", (24, 20), 0)
    image.putpalette([0, 0, 255, 255, 0, 0] + [0] * 762)
    image.paste(1, (0, 0, 12, 20))  # left half: index 1, declared transparent
    path = folder / "cutout.png"
    image.save(path, transparency=1)
    return path


def grayscale(folder: Path) -> Path:
    path = folder / "grey.png"
    Image.new("L", (24, 20), 77).save(path)
    return path


def exif_rotated(folder: Path) -> Path:
    """Stored 24 wide x 16 tall with EXIF orientation 6: a viewer shows it 16 wide x 24 tall."""
    pixels = np.zeros((16, 24, 3), dtype=np.uint8)
    pixels[:, :12, 0] = 255  # left half red: the top half once displayed
    exif = Image.Exif()
    exif[0x0112] = 6
    path = folder / "phone.jpg"
    Image.fromarray(pixels).save(path, exif=exif, quality=95)
    return path


def _has_full_precision(image: torch.Tensor) -> bool:
    return len(torch.unique(image[0, 0, 0])) == 24  # neighbours 1/480 apart stay apart


def _is_the_rgb_colour(image: torch.Tensor) -> bool:
    expected = torch.tensor([200, 40, 90]).view(1, 3, 1, 1) / 255
    return bool((image - expected).abs().max() < 4 / 255)


def _is_white_where_transparent(image: torch.Tensor) -> bool:
    blue = torch.tensor([0.0, 0.0, 1.0]).view(1, 3, 1, 1)
    return bool((image[..., :12] == 1).all() and (image[..., 12:] == blue).all())


def _is_grey(image: torch.Tensor) -> bool:
    return torch.allclose(image, torch.full_like(image, 77 / 255))


def _is_upright(image: torch.Tensor) -> bool:
    return image.shape == (1, 3, 24, 16) and bool(image[0, 0, :12].mean() > 0.9)


ODD_BUT_VALID = [
    pytest.param(sixteen_bit_png, _has_full_precision, id="16-bit-png"),
    pytest.param(cmyk_jpeg, _is_the_rgb_colour, id="cmyk-jpeg"),
    pytest.param(palette_png_with_transparency, _is_white_where_transparent, id="palette-alpha"),
    pytest.param(grayscale, _is_grey, id="grayscale"),
    pytest.param(exif_rotated, _is_upright, id="exif-rotated"),
]


@pytest.mark.parametrize(("make", "looks_right"), ODD_BUT_VALID)
def test_unusual_files_load_as_rgb(
    tmp_path: Path, make: Callable[[Path], Path], looks_right: Callable[[torch.Tensor], bool]
) -> None:
    image = load_image(make(tmp_path))
    assert image.shape[:2] == (1, 3)
    assert image.dtype == torch.float32
    assert 0 <= float(image.min()) <= float(image.max()) <= 1
    assert looks_right(image)


@pytest.mark.parametrize(("make", "looks_right"), ODD_BUT_VALID)
def test_unusual_files_work_on_the_command_line(
    workspace: Path,
    capsys: pytest.CaptureFixture[str],
    make: Callable[[Path], Path],
    looks_right: Callable[[torch.Tensor], bool],
) -> None:
    content = make(workspace)
    output = workspace / "new.png"
    argv = [str(content), str(workspace / "style.png"), "-o", str(output), *QUICK]
    assert main(argv) == 0
    assert capsys.readouterr().err == ""
    expected = load_image(content, size=32)
    with Image.open(output) as written:
        assert written.size == (expected.shape[-1], expected.shape[-2])


# -- tensors ----------------------------------------------------------------------------------


def _nan_image() -> torch.Tensor:
    image = random_image()
    image[0, 1, 2, 3] = float("nan")
    return image


def _inf_image() -> torch.Tensor:
    image = random_image()
    image[0, 0, 0, 0] = float("inf")
    return image


BAD_TENSORS = [
    pytest.param(lambda: torch.rand(24), ShapeError, r"got shape \(24,\)", id="rank-1"),
    pytest.param(
        lambda: torch.rand(1, 1, 3, 24, 24),
        ShapeError,
        r"must be \(H, W\), \(C, H, W\) or \(1, C, H, W\)",
        id="rank-5",
    ),
    pytest.param(lambda: torch.rand(1, 5, 24, 24), ShapeError, "1, 2, 3 or 4", id="5-channels"),
    pytest.param(lambda: torch.rand(24, 24, 3), ShapeError, "channel-last", id="channels-last"),
    pytest.param(lambda: torch.rand(3, 0, 24), ShapeError, "empty", id="empty"),
    pytest.param(
        lambda: torch.zeros(1, 3, 24, 24, dtype=torch.uint8),
        DTypeError,
        "must be floating-point .* got torch.uint8",
        id="uint8",
    ),
    pytest.param(_nan_image, ImageError, "contains 1 NaN or Inf values", id="nan"),
    pytest.param(_inf_image, ImageError, "contains 1 NaN or Inf values", id="inf"),
    pytest.param(lambda: random_image() * 255, ImageError, "divide it by 255", id="0-255-values"),
    pytest.param(lambda: random_image() - 0.5, ImageError, "undo that first", id="negative-values"),
    pytest.param(
        lambda: torch.rand(1, 3, 24, 24, device="meta"),
        ImageError,
        "meta device and holds no values",
        id="meta-device",
    ),
]


@pytest.mark.parametrize("role", ["content", "style"])
@pytest.mark.parametrize(("make", "error", "fragment"), BAD_TENSORS)
def test_bad_tensor_is_a_typed_error(
    role: str, make: Callable[[], torch.Tensor], error: type[Exception], fragment: str
) -> None:
    bad = make()
    kept = bad.clone()
    images = {"content": random_image(seed=1), "style": random_image(seed=2), role: bad}
    with pytest.raises(error, match=fragment):
        tiny_transfer().run(images["content"], images["style"])
    if not bad.is_meta:  # the caller's tensor is never modified
        torch.testing.assert_close(bad, kept, rtol=0, atol=0, equal_nan=True)


def test_a_batch_of_styles_in_one_tensor_is_refused() -> None:
    with pytest.raises(ShapeError, match="one image, got a batch of 2"):
        tiny_transfer().run(random_image(), random_image(batch=2))


def test_an_image_on_another_device_than_the_network() -> None:
    with pytest.raises(DeviceMismatchError, match="image is on meta but the extractor is on cpu"):
        tiny_extractor()(torch.rand(1, 3, 24, 24, device="meta"))


def test_loss_inputs_on_different_devices() -> None:
    features = torch.rand(1, 8, 6, 6)
    with pytest.raises(DeviceMismatchError, match="same device, got cpu and meta"):
        content_loss(features, features.to("meta"))
    with pytest.raises(DeviceMismatchError, match="same device, got cpu and meta"):
        style_loss(features, torch.rand(1, 8, 8, device="meta"))


@pytest.mark.gpu
def test_content_and_style_on_different_devices_meet_on_the_run_device() -> None:
    # Not an error for StyleTransfer: every image is moved to the run's device.
    content, style = random_image().cuda(), random_image(seed=2)
    for device in ("cpu", "cuda"):
        result = tiny_transfer(replace(CONFIG, device=device)).run(content, style)
        assert result.image.device.type == device


# -- arguments --------------------------------------------------------------------------------


MASK_CONTENT = random_image(24, 32, seed=1)


@pytest.mark.parametrize(
    ("mask", "error", "fragment"),
    [
        pytest.param(torch.ones(24, 24), ShapeError, "aspect ratio", id="mask-wrong-shape"),
        pytest.param(torch.full((24, 32), 1.5), ImageError, "style mask 1", id="mask-above-1"),
        pytest.param(torch.full((24, 32), -0.5), ImageError, "style mask 1", id="mask-below-0"),
        pytest.param(torch.full((24, 32), float("nan")), ImageError, "style mask 1", id="mask-nan"),
        pytest.param(torch.ones(2, 2, 24, 32), ShapeError, "style mask 1", id="mask-batch"),
    ],
)
def test_bad_style_masks(mask: torch.Tensor, error: type[Exception], fragment: str) -> None:
    with pytest.raises(error, match=fragment):
        tiny_transfer().run(MASK_CONTENT, random_image(seed=2), style_masks=[mask])


def test_a_bad_content_mask_is_named() -> None:
    with pytest.raises(ImageError, match="content mask"):
        tiny_transfer().run(
            MASK_CONTENT, random_image(seed=2), content_mask=torch.full((24, 32), 2.0)
        )


def test_style_masks_must_match_the_styles_and_exclude_blend_weights() -> None:
    styles = [random_image(seed=2), random_image(seed=3)]
    with pytest.raises(ConfigError, match="got 1 style masks for 2 style images"):
        tiny_transfer().run(MASK_CONTENT, styles, style_masks=[torch.ones(24, 32)])
    blended = tiny_transfer(replace(CONFIG, style_blend=(1.0, 1.0)))
    with pytest.raises(ConfigError, match="pass one or the other"):
        blended.run(MASK_CONTENT, styles, style_masks=[torch.ones(24, 32)] * 2)


def test_a_missing_mask_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(
        ImageNotFoundError, match=r"content mask: file not found: .*missing-mask\.png"
    ):
        tiny_transfer().run(
            MASK_CONTENT, random_image(seed=2), content_mask=tmp_path / "missing-mask.png"
        )


def test_the_cli_refuses_a_style_mask_count_other_than_the_styles(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mask = picture(workspace / "mask.png", seed=4)
    argv = [
        str(workspace / "content.png"),
        str(workspace / "style.png"),
        str(workspace / "style.png"),
    ]
    argv += ["--style-mask", str(mask), "-o", str(workspace / "out.png"), *QUICK]
    line = refused_by_the_cli(argv, workspace, capsys, status=2)
    assert "give one mask per style image" in line


def test_the_cli_refuses_a_content_mask_of_another_shape(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mask = picture(workspace / "mask.png", seed=4, size=(32, 32))  # the content is 40x32
    argv = [str(workspace / "content.png"), str(workspace / "style.png")]
    argv += ["--content-mask", str(mask), "-o", str(workspace / "out.png"), *QUICK]
    line = refused_by_the_cli(argv, workspace, capsys, status=1)
    assert "content mask is 32x32 pixels but the image is" in line


def test_unknown_layer_names_the_closest() -> None:
    with pytest.raises(LayerNotFoundError, match="did you mean relu2_1"):
        tiny_transfer(layers=LayerMap(content={"relu2_2": 1.0}))
    with pytest.raises(LayerNotFoundError, match="unknown layer 'relu9_1' for vgg16; closest"):
        FeatureExtractor(["relu9_1"])


@pytest.mark.parametrize(
    ("content", "style", "fragment"),
    [
        pytest.param({"relu1_1": -1.0}, {}, "must be finite and >= 0", id="negative"),
        pytest.param({"relu1_1": float("nan")}, {}, "must be finite and >= 0", id="nan"),
        pytest.param({}, {"relu1_1": float("inf")}, "must be finite and >= 0", id="inf"),
        pytest.param({"relu1_1": 0.0}, {"relu2_1": 0}, "no term with a positive", id="all-zero"),
        pytest.param({"relu1_1": "1"}, {}, "must be a number", id="text"),
    ],
)
def test_bad_layer_weights(content: dict[str, Any], style: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        LayerMap(content=content, style=style)


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        pytest.param("style_weight", -1.0, "style_weight must be a finite number >= 0", id="neg"),
        pytest.param("content_weight", float("nan"), "content_weight must be a finite", id="nan"),
        pytest.param("tv_weight", float("inf"), "tv_weight must be a finite", id="inf"),
        pytest.param("steps", 0, "steps must be a positive int, got 0", id="zero-steps"),
        pytest.param("steps", -3, "steps must be a positive int, got -3", id="negative-steps"),
        pytest.param("steps", 2.5, "steps must be a positive int, got 2.5", id="fractional-steps"),
        pytest.param("learning_rate", 0.0, "learning_rate must be a finite number > 0", id="lr"),
        pytest.param("size", 0, "size must be a positive int", id="zero-size"),
        pytest.param("style_blend", (1.0, -1.0), "must be a finite number >= 0", id="neg-blend"),
        pytest.param("style_blend", (0.0, 0.0), "all zero", id="all-zero-blend"),
    ],
)
def test_bad_option_values(field: str, value: object, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        replace(CONFIG, **{field: value})


def test_all_option_weights_zero_is_a_config_error() -> None:
    config = replace(CONFIG, content_weight=0.0, style_weight=0.0, tv_weight=0.0)
    with pytest.raises(ConfigError, match="no term"):
        tiny_transfer(config).run(random_image(), random_image(seed=2))


def test_unknown_preset_suggests_the_closest() -> None:
    with pytest.raises(ConfigError, match=r"unknown preset 'gaty' .*did you mean 'gatys'"):
        get_preset("gaty")
    with pytest.raises(ConfigError, match="unknown preset 'nope'"):
        StyleTransfer.from_preset("nope", extractor=tiny_extractor())


def test_style_blend_weights_must_match_the_styles() -> None:
    transfer = tiny_transfer(replace(CONFIG, style_blend=(1.0, 2.0, 3.0)))
    with pytest.raises(ConfigError, match="style_blend has 3 weights for 2 style images"):
        transfer.run(random_image(), [random_image(seed=2), random_image(seed=3)])


def test_empty_image_lists_are_refused() -> None:
    with pytest.raises(ConfigError, match="style is an empty list"):
        tiny_transfer().run(random_image(), [])
    with pytest.raises(ConfigError, match="content is an empty sequence"):
        tiny_transfer().run([], random_image())


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        pytest.param(["--steps", "0"], "--steps: steps must be a positive int", id="zero-steps"),
        pytest.param(["--steps", "-5"], "steps must be a positive int, got -5", id="neg-steps"),
        pytest.param(["--style-weight", "-1"], "style_weight must be a finite", id="neg-weight"),
        pytest.param(["--content-weight", "nan"], "got nan", id="nan-weight"),
        pytest.param(["--preset", "nope"], "invalid choice: 'nope'", id="unknown-preset"),
        pytest.param(["--style-weights", "1", "2"], "2 weights for 1 style", id="blend-count"),
        pytest.param(["--style-weights", "0"], "all zero", id="blend-all-zero"),
        pytest.param(["--init", "nowhere.png"], "--init must be content, recolored", id="init"),
        pytest.param(["--learning-rate", "0"], "learning_rate must be a finite", id="zero-lr"),
        pytest.param(["--size", "0"], "size must be a positive int", id="zero-size"),
        pytest.param(["--steps", "many"], "expected int, got 'many'", id="text-steps"),
    ],
)
def test_bad_options_on_the_command_line(
    workspace: Path, capsys: pytest.CaptureFixture[str], extra: list[str], fragment: str
) -> None:
    argv = [str(workspace / "content.png"), str(workspace / "style.png")]
    argv += ["-o", str(workspace / "out.png"), *QUICK, *extra]
    assert fragment in refused_by_the_cli(argv, workspace, capsys, status=2)


# -- weights files ----------------------------------------------------------------------------


def vgg16_state(depth: int = 6) -> dict[str, torch.Tensor]:
    """A fitting VGG16 state dict through relu2_1, torchvision layout."""
    state = weights_module.random_state_dict(get_spec("vgg16"), depth, seed=0)
    return {f"features.{key}": value for key, value in state.items()}


class Payload:
    """Pickles as a call to os.mkdir: loading the file would run it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Callable[[str], None], tuple[str]]:
        return (os.mkdir, (str(self.marker),))


def test_a_pickle_carrying_code_is_refused_and_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "payload_ran"
    evil = tmp_path / "evil.pth"
    torch.save({**vgg16_state(), "features.0.weight": Payload(marker)}, evil)
    culprit = f"{os.mkdir.__module__}.mkdir"
    with pytest.raises(WeightsError, match=rf"may be unsafe .*GLOBAL {culprit}"):
        FeatureExtractor(["relu1_1"], weights=evil)
    assert not marker.exists()
    # The payload is real: only weights_only=True stood between it and the disk.
    torch.load(evil, weights_only=False)
    assert marker.is_dir()


def test_wrong_keys_are_listed(tmp_path: Path) -> None:
    state = vgg16_state()
    del state["features.2.bias"]
    state["encoder.0.weight"] = torch.zeros(1)
    path = tmp_path / "keys.pth"
    torch.save(state, path)
    with pytest.raises(WeightsError, match=r"missing keys \['2.bias'\]; unexpected keys .*encoder"):
        FeatureExtractor(["relu2_1"], weights=path)


def test_wrong_shapes_are_listed(tmp_path: Path) -> None:
    state = vgg16_state()
    state["features.5.weight"] = torch.zeros(128, 32, 3, 3)
    path = tmp_path / "shapes.pth"
    torch.save(state, path)
    with pytest.raises(WeightsError, match=r"5\.weight: \(128, 32, 3, 3\) \(expected \(128, 64"):
        FeatureExtractor(["relu2_1"], weights=path)


def test_a_truncated_weights_file_is_refused(tmp_path: Path) -> None:
    whole = tmp_path / "whole.pth"
    torch.save(vgg16_state(), whole)
    cut = tmp_path / "cut.pth"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(WeightsError, match="not a readable PyTorch file, truncated or corrupt"):
        FeatureExtractor(["relu1_1"], weights=cut)


def test_weights_that_are_not_a_state_dict_or_not_finite(tmp_path: Path) -> None:
    tensor = tmp_path / "tensor.pth"
    torch.save(torch.zeros(3), tensor)
    with pytest.raises(WeightsError, match="holds a Tensor, expected a state dict"):
        FeatureExtractor(["relu1_1"], weights=tensor)
    state = vgg16_state()
    state["features.0.bias"][3] = float("inf")
    poisoned = tmp_path / "inf.pth"
    torch.save(state, poisoned)
    with pytest.raises(WeightsError, match=r"0\.bias contains NaN or Inf"):
        FeatureExtractor(["relu1_1"], weights=poisoned)


def test_missing_weights_file_or_a_folder(tmp_path: Path) -> None:
    with pytest.raises(WeightsNotFoundError, match="weights must be 'bundled', 'imagenet'"):
        FeatureExtractor(["relu1_1"], weights=tmp_path / "nope.pth")
    with pytest.raises(WeightsError, match="Is a directory"):
        FeatureExtractor(["relu1_1"], weights=tmp_path)


def test_bundled_weights_with_the_wrong_checksum(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(weights_module, "BUNDLED_SHA256", "0" * 64)
    with pytest.raises(WeightsError, match=rf"checksum mismatch .*sha256 {BUNDLED_SHA256}"):
        FeatureExtractor(["relu1_1"])
    corrupted = tmp_path / "bundled.pth"
    data = bytearray(bundled_path().read_bytes())
    data[len(data) // 3] ^= 0x01
    corrupted.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="reinstall neuralstyle"):
        load_state_dict_file(corrupted, sha256=BUNDLED_SHA256)


@pytest.mark.parametrize("kind", ["payload", "truncated"])
def test_bad_weights_on_the_command_line(
    workspace: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    weights = workspace / "w.pth"
    marker = workspace / "payload_ran"
    if kind == "payload":
        torch.save({"features.0.weight": Payload(marker)}, weights)
    else:
        torch.save(vgg16_state(), weights)
        weights.write_bytes(weights.read_bytes()[:100])
    argv = [str(workspace / "content.png"), str(workspace / "style.png")]
    argv += ["-o", str(workspace / "out.png"), *QUICK, "--weights", str(weights)]
    line = refused_by_the_cli(argv, workspace, capsys, status=1)
    assert ("may be unsafe" if kind == "payload" else "truncated or corrupt") in line
    assert not marker.exists()


# -- outputs ----------------------------------------------------------------------------------


@pytest.fixture
def read_only_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder nobody may write to (as root, where permission bits do not bind, it says so)."""
    folder = tmp_path / "read_only"
    folder.mkdir()
    folder.chmod(0o555)
    if os.access(folder, os.W_OK):
        real_access = os.access

        def access(path: Any, mode: int, **kwargs: Any) -> bool:
            if Path(path) == folder and mode & os.W_OK:
                return False
            return real_access(path, mode, **kwargs)

        monkeypatch.setattr(os, "access", access)
    yield folder
    folder.chmod(0o755)


def test_an_unwritable_folder_is_refused_before_any_work(read_only_folder: Path) -> None:
    with pytest.raises(ImageError, match=r"cannot write to folder .*read_only: permission denied"):
        check_output_path(read_only_folder / "out.png")
    with pytest.raises(ImageError, match="permission denied"):
        save_image(random_image(), read_only_folder / "out.png")
    assert list(read_only_folder.iterdir()) == []


def test_an_unwritable_folder_on_the_command_line(
    workspace: Path, read_only_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [str(workspace / "content.png"), str(workspace / "style.png")]
    argv += ["-o", str(read_only_folder / "out.png"), *QUICK]
    assert "permission denied" in refused_by_the_cli(argv, workspace, capsys, status=2)


def test_an_output_that_is_an_input_is_refused(workspace: Path) -> None:
    content = workspace / "content.png"
    (workspace / "sub").mkdir()
    hard_link = workspace / "sub" / "hard_link.png"
    os.link(content, hard_link)
    before = snapshot(workspace)
    for spelling in (content, workspace / "sub" / ".." / "content.png", hard_link):
        with pytest.raises(ImageError, match=r"refusing to write .* protected file"):
            save_image(random_image(), spelling, protect=[content])
    assert snapshot(workspace) == before


@pytest.mark.parametrize("which", ["content.png", "style.png"])
def test_an_output_that_is_an_input_on_the_command_line(
    workspace: Path, capsys: pytest.CaptureFixture[str], which: str
) -> None:
    argv = [str(workspace / "content.png"), str(workspace / "style.png")]
    argv += ["-o", str(workspace / which), *QUICK]
    assert "protected file" in refused_by_the_cli(argv, workspace, capsys, status=2)


def test_an_existing_output_is_refused_when_overwrite_is_off(workspace: Path) -> None:
    before = snapshot(workspace)
    with pytest.raises(ImageError, match=r"out\.png already exists; pass overwrite=True"):
        save_image(random_image(), workspace / "out.png", overwrite=False)
    assert snapshot(workspace) == before


def test_an_existing_output_is_replaced_atomically(workspace: Path) -> None:
    image = random_image(16, 16, seed=9)
    save_image(image, workspace / "out.png")
    torch.testing.assert_close(load_image(workspace / "out.png"), image, rtol=0, atol=1 / 255)
    assert not [name for name in snapshot(workspace) if name.startswith(".")]  # no temp file


def test_the_command_line_replaces_an_existing_output_only_when_the_run_succeeds(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    content, output = str(workspace / "content.png"), str(workspace / "out.png")
    failing = [content, str(text_named_jpg(workspace)), "-o", output, *QUICK]
    assert "not an image file" in refused_by_the_cli(failing, workspace, capsys, status=1)
    old = (workspace / "out.png").read_bytes()
    assert main([content, str(workspace / "style.png"), "-o", output, *QUICK]) == 0
    assert (workspace / "out.png").read_bytes() != old
    assert not [name for name in snapshot(workspace) if name.startswith(".")]  # no temp file


def no_such_folder(folder: Path) -> Path:
    return folder / "no" / "such" / "out.png"


def unknown_suffix(folder: Path) -> Path:
    return folder / "out.gif"


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        pytest.param(no_such_folder, "folder does not exist: .*create it first", id="no-folder"),
        pytest.param(unknown_suffix, "suffix '.gif'; use one of .png", id="unknown-suffix"),
        pytest.param(directory, "is a directory; pass a file path", id="a-directory"),
        pytest.param(plain_directory, "outputs is a directory; .*outputs/out.png", id="folder"),
    ],
)
def test_impossible_output_paths(
    workspace: Path, make: Callable[[Path], Path], fragment: str
) -> None:
    target = make(workspace)
    before = snapshot(workspace)
    with pytest.raises(ImageError, match=fragment):
        save_image(random_image(), target)
    assert snapshot(workspace) == before
    assert not (workspace / "no").exists()  # no folder is ever created


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (no_such_folder, "folder does not exist"),
        (unknown_suffix, "suffix '.gif'"),
        (directory, "is a directory"),
        (plain_directory, "outputs is a directory; pass a file path such as"),
    ],
    ids=["no-folder", "gif", "directory", "folder"],
)
def test_impossible_output_paths_on_the_command_line(
    workspace: Path,
    capsys: pytest.CaptureFixture[str],
    make: Callable[[Path], Path],
    fragment: str,
) -> None:
    target = make(workspace)
    argv = [str(workspace / "content.png"), str(workspace / "style.png"), "-o", str(target)]
    line = refused_by_the_cli([*argv, *QUICK], workspace, capsys, status=2)
    assert fragment in line
    assert not (workspace / "no").exists()


def test_a_jpeg_cannot_hold_sixteen_bits_or_transparency(workspace: Path) -> None:
    with pytest.raises(ConfigError, match="JPEG stores 8 bits per channel"):
        save_image(random_image(), workspace / "new.jpg", bits=16)
    with pytest.raises(ConfigError, match="JPEG cannot store transparency"):
        save_image(random_image(), workspace / "new.jpg", alpha=torch.ones(24, 24))
    assert not (workspace / "new.jpg").exists()
