"""Tests for image, image_output and examples: every PIL mode, arrays, tensors, resizing, saving."""

from __future__ import annotations

import io
import os
import pathlib
import warnings
import zipfile
import zlib
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import neuralstyle
from neuralstyle import examples as examples_module
from neuralstyle import image_output as output_module
from neuralstyle.errors import ConfigError, DTypeError, ImageError, ImageNotFoundError, ShapeError
from neuralstyle.examples import example_image, example_images
from neuralstyle.image import load_alpha, load_image
from neuralstyle.image_output import check_output_path, save_image, to_pil

IMAGES_DIR = pathlib.Path(neuralstyle.__file__).parent / "data" / "images"


def rgb_array(height: int = 6, width: int = 8, seed: int = 0) -> np.ndarray[Any, Any]:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def as_chw(array: np.ndarray[Any, Any]) -> torch.Tensor:
    """(H, W, C) numpy -> (1, C, H, W) float32 tensor, for expected values."""
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).permute(2, 0, 1)[None]


def over_white(rgba: np.ndarray[Any, Any]) -> torch.Tensor:
    values = rgba.astype(np.float64) / 255.0
    color, alpha = values[..., :-1], values[..., -1:]
    composited = color * alpha + (1.0 - alpha)
    if composited.shape[-1] == 1:
        composited = np.repeat(composited, 3, axis=-1)
    return as_chw(composited)


def mode_of(path: pathlib.Path) -> str:
    with Image.open(path) as opened:
        return opened.mode


def assert_unit_range(image: torch.Tensor) -> None:
    assert image.min() >= 0.0
    assert image.max() <= 1.0


def saved(image: Image.Image, path: pathlib.Path, **options: Any) -> pathlib.Path:
    image.save(path, **options)
    return path


# -- PIL modes, through files -----------------------------------------------------------------


def test_rgb_png_round_trip_is_exact(tmp_path: pathlib.Path) -> None:
    array = rgb_array()
    out = load_image(saved(Image.fromarray(array), tmp_path / "a.png"))
    assert out.shape == (1, 3, 6, 8)
    assert out.dtype == torch.float32
    assert out.is_contiguous()
    torch.testing.assert_close(out, as_chw(array) / 255.0, rtol=0, atol=1e-7)


def test_grey_l_is_broadcast_to_rgb(tmp_path: pathlib.Path) -> None:
    grey = rgb_array()[..., 0]
    out = load_image(saved(Image.fromarray(grey), tmp_path / "l.png"))
    expected = torch.from_numpy(grey.astype(np.float32) / 255.0)
    for channel in range(3):
        torch.testing.assert_close(out[0, channel], expected, rtol=0, atol=1e-7)


def test_la_is_composited_over_white(tmp_path: pathlib.Path) -> None:
    la = rgb_array()[..., :2].copy()
    la[0, 0, 1] = 0  # fully transparent -> white
    la[0, 1, 1] = 255  # opaque -> its grey
    out = load_image(saved(Image.fromarray(la), tmp_path / "la.png"))
    assert mode_of(tmp_path / "la.png") == "LA"
    torch.testing.assert_close(out, over_white(la).float(), rtol=0, atol=1e-6)
    assert torch.all(out[0, :, 0, 0] == 1.0)


def test_rgba_is_composited_over_white(tmp_path: pathlib.Path) -> None:
    rgba = np.random.default_rng(1).integers(0, 256, (5, 7, 4), dtype=np.uint8)
    rgba[2, 3, 3] = 0
    out = load_image(saved(Image.fromarray(rgba), tmp_path / "rgba.png"))
    torch.testing.assert_close(out, over_white(rgba).float(), rtol=0, atol=1e-6)
    assert torch.all(out[0, :, 2, 3] == 1.0)


def test_palette_without_transparency(tmp_path: pathlib.Path) -> None:
    palette = Image.fromarray(rgb_array()).convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    path = saved(palette, tmp_path / "p.png")
    assert mode_of(path) == "P"
    expected = as_chw(np.asarray(palette.convert("RGB"))) / 255.0
    torch.testing.assert_close(load_image(path), expected, rtol=0, atol=1e-7)


def test_palette_with_transparency_turns_white(tmp_path: pathlib.Path) -> None:
    indices = np.array([[0, 1], [2, 1]], dtype=np.uint8)
    palette = Image.new("P", (2, 2))
    palette.putdata(indices.ravel().tolist())
    palette.putpalette([200, 0, 0, 0, 0, 0, 0, 0, 200] + [0] * 759)
    path = saved(palette, tmp_path / "pt.png", transparency=1)
    out = load_image(path)
    white = torch.ones(3)
    torch.testing.assert_close(out[0, :, 0, 1], white)
    torch.testing.assert_close(out[0, :, 1, 1], white)
    torch.testing.assert_close(out[0, :, 0, 0], torch.tensor([200 / 255, 0.0, 0.0]))
    torch.testing.assert_close(out[0, :, 1, 0], torch.tensor([0.0, 0.0, 200 / 255]))


def test_cmyk_jpeg_matches_the_rgb_it_came_from(tmp_path: pathlib.Path) -> None:
    # A smooth image keeps JPEG error small and the comparison tight.
    ramp = np.linspace(0, 255, 16, dtype=np.float64)
    smooth = np.stack([*np.meshgrid(ramp, ramp[::-1]), np.full((16, 16), 90.0)], axis=-1)
    rgb = Image.fromarray(smooth.astype(np.uint8))
    path = saved(rgb.convert("CMYK"), tmp_path / "cmyk.jpg", quality=100)
    assert mode_of(path) == "CMYK"
    out = load_image(path)
    assert (out - as_chw(np.asarray(rgb)) / 255.0).abs().max() < 4 / 255


def test_sixteen_bit_png_keeps_full_precision(tmp_path: pathlib.Path) -> None:
    values = np.array([[0, 1000, 1001, 65535], [257, 32768, 40000, 12345]], dtype=np.uint16)
    path = saved(Image.fromarray(values), tmp_path / "i16.png")
    assert mode_of(path) == "I;16"
    out = load_image(path, dtype=torch.float64)
    expected = torch.from_numpy(values.astype(np.float64) / 65535.0)
    torch.testing.assert_close(out[0, 1], expected, rtol=0, atol=1e-7)
    # 1000 and 1001 would collapse to the same 8-bit level.
    assert out[0, 0, 0, 2] > out[0, 0, 0, 1]


def test_float_tiff_is_clamped_to_unit_range(tmp_path: pathlib.Path) -> None:
    values = np.array([[-0.5, 0.0, 0.25], [0.75, 1.0, 1.5]], dtype=np.float32)
    path = saved(Image.fromarray(values), tmp_path / "f.tif")
    assert mode_of(path) == "F"
    out = load_image(path)
    expected = torch.tensor([[0.0, 0.0, 0.25], [0.75, 1.0, 1.0]])
    torch.testing.assert_close(out[0, 2], expected, rtol=0, atol=0)


def test_exif_orientation_is_applied(tmp_path: pathlib.Path) -> None:
    # 16 wide x 8 tall: red left half, blue right half. Orientation 6 = rotate 90 deg clockwise
    # to display, which moves the left half to the top.
    array = np.zeros((8, 16, 3), dtype=np.uint8)
    array[:, :8, 0] = 255
    array[:, 8:, 2] = 255
    exif = Image.Exif()
    exif[0x0112] = 6
    path = saved(Image.fromarray(array), tmp_path / "rotated.jpg", exif=exif, quality=95)
    out = load_image(path)
    assert out.shape == (1, 3, 16, 8)
    top, bottom = out[0, :, :8], out[0, :, 8:]
    assert top[0].mean() > 0.9
    assert top[2].mean() < 0.1
    assert bottom[2].mean() > 0.9
    assert bottom[0].mean() < 0.1


def test_path_may_be_str_or_pathlike(tmp_path: pathlib.Path) -> None:
    path = saved(Image.fromarray(rgb_array()), tmp_path / "a.png")
    torch.testing.assert_close(load_image(str(path)), load_image(path), rtol=0, atol=0)


# -- PIL images as input ----------------------------------------------------------------------


def test_pil_input_is_not_modified() -> None:
    pil = Image.fromarray(rgb_array()).convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    before = pil.tobytes()
    load_image(pil, size=4)
    assert pil.mode == "P"
    assert pil.size == (8, 6)
    assert pil.tobytes() == before


@pytest.mark.parametrize(
    ("mode", "values"),
    [
        ("I", np.array([[0, 65535, 70000], [-5, 32768, 1]], dtype=np.int32)),
        ("I;16", np.array([[0, 65535, 9], [3, 32768, 1]], dtype=np.uint16)),
    ],
)
def test_integer_modes_are_scaled_by_65535(mode: str, values: np.ndarray[Any, Any]) -> None:
    pil = Image.fromarray(values)
    assert pil.mode == mode
    out = load_image(pil, dtype=torch.float64)
    expected = torch.from_numpy(np.clip(values / 65535.0, 0.0, 1.0))
    torch.testing.assert_close(out[0, 0], expected, rtol=0, atol=1e-7)


@pytest.mark.parametrize("mode", ["1", "La", "PA", "RGBX", "RGBa", "YCbCr", "LAB", "HSV"])
def test_other_modes_load_as_rgb(mode: str) -> None:
    start = "LA" if mode == "La" else "RGBA"
    pil = Image.fromarray(rgb_array()).convert(start).convert(mode)
    assert pil.mode == mode
    out = load_image(pil)
    assert out.shape == (1, 3, 6, 8)
    assert_unit_range(out)


def test_float_image_with_nan_is_rejected() -> None:
    values = np.array([[0.5, np.nan]], dtype=np.float32)
    with pytest.raises(ImageError, match="1 NaN or Inf"):
        load_image(Image.fromarray(values))


def test_unconvertible_mode_is_an_image_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: Image.Image, mode: str | None = None, *args: Any, **kwargs: Any) -> None:
        raise ValueError(f"conversion from {self.mode} to {mode} not supported")

    monkeypatch.setattr(Image.Image, "convert", refuse)
    with pytest.raises(ImageError, match="cannot convert a PIL image of mode 'CMYK' to RGB"):
        load_image(Image.new("CMYK", (2, 2)))


# -- numpy arrays -----------------------------------------------------------------------------


def test_uint8_array() -> None:
    array = rgb_array()
    torch.testing.assert_close(load_image(array), as_chw(array) / 255.0, rtol=0, atol=1e-7)


@pytest.mark.parametrize("byte_order", ["<u2", ">u2"])
def test_uint16_array(byte_order: str) -> None:
    values = np.array([[0, 1, 65535], [1000, 1001, 2]], dtype=byte_order)
    out = load_image(values, dtype=torch.float64)
    expected = torch.from_numpy(values.astype(np.float64) / 65535.0)
    for channel in range(3):
        torch.testing.assert_close(out[0, channel], expected, rtol=0, atol=0)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_float_arrays_of_every_channel_count(dtype: type[np.floating[Any]]) -> None:
    rng = np.random.default_rng(2)
    for channels in (1, 2, 3, 4):
        array = rng.random((3, 5, channels)).astype(dtype)
        expected = over_white(array.astype(np.float64) * 255.0) if channels in (2, 4) else None
        if expected is None:
            expected = as_chw(np.broadcast_to(array, (3, 5, 3)).astype(np.float32))
        out = load_image(array)
        assert out.shape == (1, 3, 3, 5)
        torch.testing.assert_close(out, expected.float(), rtol=0, atol=1e-6)


def test_two_d_float_array_is_grey() -> None:
    array = np.array([[0.0, 0.5], [1.0, 0.25]])
    out = load_image(array)
    assert torch.equal(out[0, 0], out[0, 2])
    torch.testing.assert_close(out[0, 1], torch.from_numpy(array).float())


def test_array_input_is_not_shared() -> None:
    array = np.random.default_rng(3).random((4, 4, 3))
    out = load_image(array, dtype=torch.float64)
    out.fill_(0.0)
    assert array.min() > 0.0


# -- tensors ----------------------------------------------------------------------------------


def test_tensor_layouts_agree() -> None:
    chw = torch.rand(3, 5, 7, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(load_image(chw), chw[None], rtol=0, atol=0)
    torch.testing.assert_close(load_image(chw[None]), chw[None], rtol=0, atol=0)
    grey = load_image(chw[0])
    torch.testing.assert_close(grey, chw[0].expand(1, 3, 5, 7), rtol=0, atol=0)
    torch.testing.assert_close(load_image(chw[:1]), grey, rtol=0, atol=0)


def test_tensor_result_is_a_fresh_detached_copy() -> None:
    source = torch.rand(1, 3, 4, 4, requires_grad=True)
    before = source.detach().clone()
    out = load_image(source)
    assert not out.requires_grad
    assert out.data_ptr() != source.data_ptr()
    torch.testing.assert_close(out, before, rtol=0, atol=0)
    out.zero_()
    torch.testing.assert_close(source.detach(), before, rtol=0, atol=0)


def test_tensor_rgba_is_composited() -> None:
    rgba = torch.tensor([0.2, 0.4, 0.6, 0.5]).view(4, 1, 1).expand(4, 2, 2)
    out = load_image(rgba)
    torch.testing.assert_close(out[0, :, 0, 0], torch.tensor([0.6, 0.7, 0.8]))


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16, torch.float16])
def test_output_dtype_and_device(dtype: torch.dtype) -> None:
    out = load_image(rgb_array(), dtype=dtype, device="cpu")
    assert out.dtype == dtype
    assert out.device == torch.device("cpu")
    assert out.shape == (1, 3, 6, 8)


# -- resizing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hw", "size", "expected"),
    [
        ((6, 10), 5, (3, 5)),
        ((10, 6), 5, (5, 3)),
        ((8, 8), 3, (3, 3)),
        ((2, 100), 10, (1, 10)),  # the short side never drops to 0
        ((100, 2), 10, (10, 1)),
        ((6, 10), 20, (12, 20)),
        ((6, 10), (4, 9), (4, 9)),
    ],
)
def test_resize_sizes_for_every_source(
    hw: tuple[int, int], size: int | tuple[int, int], expected: tuple[int, int]
) -> None:
    array = np.random.default_rng(4).integers(0, 256, (*hw, 3), dtype=np.uint8)
    for source in (array, Image.fromarray(array), torch.from_numpy(array).permute(2, 0, 1) / 255):
        out = load_image(source, size=size)
        assert out.shape == (1, 3, *expected)
        assert out.is_contiguous()
        assert_unit_range(out)


def test_pil_resize_is_lanczos_before_conversion() -> None:
    pil = Image.fromarray(rgb_array(12, 16))
    expected = as_chw(np.asarray(pil.resize((8, 6), Image.Resampling.LANCZOS))) / 255.0
    torch.testing.assert_close(load_image(pil, size=8), expected, rtol=0, atol=1e-7)


def test_tensor_resize_is_antialiased_bicubic_then_clamped() -> None:
    checker = (torch.arange(16)[:, None] + torch.arange(16)[None, :]) % 2
    image = checker.float().expand(1, 3, 16, 16)
    expected = F.interpolate(image, size=(6, 6), mode="bicubic", antialias=True).clamp(0, 1)
    out = load_image(image, size=6)
    torch.testing.assert_close(out, expected)
    # Antialiasing averages a checkerboard to grey instead of aliasing it.
    assert (out[:, :, 1:-1, 1:-1] - 0.5).abs().max() < 0.1


def test_uniform_image_stays_uniform_when_resized(tmp_path: pathlib.Path) -> None:
    flat = np.full((9, 13, 3), (10, 128, 250), dtype=np.uint8)
    path = saved(Image.fromarray(flat), tmp_path / "flat.png")
    for source in (path, flat):
        out = load_image(source, size=(20, 5))
        target = torch.tensor([10, 128, 250]).float().view(1, 3, 1, 1) / 255.0
        torch.testing.assert_close(out, target.expand(1, 3, 20, 5), rtol=0, atol=1e-5)


def test_size_equal_to_current_size_is_a_no_op() -> None:
    array = rgb_array()
    torch.testing.assert_close(load_image(array, size=8), load_image(array), rtol=0, atol=0)


@pytest.mark.parametrize("size", [0, -3, True, 2.5, "64", (0, 4), (4,), (4, 4, 4), (4.0, 4)])
def test_invalid_size(size: object) -> None:
    with pytest.raises(ConfigError, match="size must be a positive int"):
        load_image(rgb_array(), size=size)  # type: ignore[arg-type]


# -- loading errors ---------------------------------------------------------------------------


def test_missing_file(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ImageNotFoundError, match=r"file not found: .*nothing.png"):
        load_image(tmp_path / "nothing.png")


def test_directory(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ImageError, match="is a directory, not an image file"):
        load_image(tmp_path)


def test_empty_file(tmp_path: pathlib.Path) -> None:
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageError, match="empty file"):
        load_image(tmp_path / "empty.png")


def test_non_image_file(tmp_path: pathlib.Path) -> None:
    (tmp_path / "notes.jpg").write_text("not pixels at all")
    with pytest.raises(ImageError, match="not an image file PIL can read"):
        load_image(tmp_path / "notes.jpg")


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_truncated_file(tmp_path: pathlib.Path, suffix: str) -> None:
    buffer = io.BytesIO()
    Image.fromarray(rgb_array(32, 32)).save(buffer, format="PNG" if suffix == ".png" else "JPEG")
    path = tmp_path / f"cut{suffix}"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(ImageError, match="truncated or corrupt"):
        load_image(path)


@pytest.mark.parametrize(("side", "pixels"), [(9, 81), (20, 400)])
def test_decompression_bomb(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, side: int, pixels: int
) -> None:
    # 81 pixels is over the limit (PIL warns), 400 over twice the limit (PIL raises).
    path = saved(Image.new("RGB", (side, side)), tmp_path / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 50)
    # Refused even where the caller's filters would let PIL's warning pass silently.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ImageError, match=rf"has {pixels} pixels, .* limit of 50 pixels"):
            load_image(path)


def test_unsupported_source_type() -> None:
    with pytest.raises(ImageError, match="expects a path, a PIL image, a numpy array"):
        load_image([[0.0, 1.0]])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("shape", "fragment"),
    [
        ((8,), r"must be \(H, W\) or \(H, W, C\), got shape \(8,\)"),
        ((2, 4, 4, 3), r"got shape \(2, 4, 4, 3\)"),
        ((4, 4, 5), "1, 2, 3 or 4 channels"),
        ((3, 8, 8), "channel-first: use array.transpose"),
        ((0, 4, 3), "empty"),
    ],
)
def test_bad_array_shape(shape: tuple[int, ...], fragment: str) -> None:
    with pytest.raises(ShapeError, match=fragment):
        load_image(np.zeros(shape, dtype=np.uint8))


@pytest.mark.parametrize("dtype", [np.int64, np.int16, np.bool_, np.complex64])
def test_bad_array_dtype(dtype: type[np.generic]) -> None:
    with pytest.raises(DTypeError, match=r"must be uint8 .*, uint16 .* or float"):
        load_image(np.zeros((2, 2, 3), dtype=dtype))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values(bad: float) -> None:
    array = np.full((2, 2, 3), 0.5)
    array[1, 1, 1] = bad
    with pytest.raises(ImageError, match="contains 1 NaN or Inf values"):
        load_image(array)
    with pytest.raises(ImageError, match="contains 1 NaN or Inf values"):
        load_image(torch.from_numpy(array).permute(2, 0, 1))


def test_values_above_one_suggest_dividing_by_255() -> None:
    array = np.array([[0.0, 255.0]], dtype=np.float32)
    with pytest.raises(ImageError, match=r"got min 0 and max 255; .*divide it by 255"):
        load_image(array)


def test_negative_values_suggest_undoing_normalization() -> None:
    with pytest.raises(ImageError, match=r"got min -2.1 and max 0.5; .*mean and std"):
        load_image(torch.tensor([[-2.1, 0.5]]))


def test_integer_tensor() -> None:
    with pytest.raises(DTypeError, match=r"must be floating-point .* got torch.uint8"):
        load_image(torch.zeros(3, 2, 2, dtype=torch.uint8))


@pytest.mark.parametrize(
    ("shape", "fragment"),
    [
        ((2, 3, 4, 4), "one image, got a batch of 2"),
        ((8, 8, 3), "channel-last: use tensor.permute"),
        ((5, 4, 4), "1, 2, 3 or 4 channels"),
        ((1, 1, 3, 4, 4), r"\(H, W\), \(C, H, W\) or \(1, C, H, W\)"),
        ((4,), r"got shape \(4,\)"),
        ((3, 0, 4), "empty"),
    ],
)
def test_bad_tensor_shape(shape: tuple[int, ...], fragment: str) -> None:
    with pytest.raises(ShapeError, match=fragment):
        load_image(torch.zeros(shape))


def test_bad_output_dtype_and_device() -> None:
    with pytest.raises(DTypeError, match=r"dtype must be a floating-point torch.dtype"):
        load_image(rgb_array(), dtype=torch.int64)
    with pytest.raises(ConfigError, match="not a valid torch device"):
        load_image(rgb_array(), device="toaster")


# -- to_pil -----------------------------------------------------------------------------------


def test_to_pil_rounds_and_clamps() -> None:
    values = torch.tensor([-1.0, 0.0, 0.4 / 255, 0.6 / 255, 127.5 / 255 + 1e-4, 1.0, 2.0])
    image = values.view(1, 1, 7).expand(3, 1, 7)
    pil = to_pil(image)
    assert pil.mode == "RGB"
    assert pil.size == (7, 1)
    assert np.asarray(pil)[0, :, 1].tolist() == [0, 0, 0, 1, 128, 255, 255]


def test_to_pil_and_load_image_round_trip() -> None:
    image = torch.rand(1, 3, 5, 6, generator=torch.Generator().manual_seed(1))
    back = load_image(to_pil(image))
    torch.testing.assert_close(back, (image * 255).round() / 255, rtol=0, atol=1e-7)
    assert to_pil(image.bfloat16()).size == (6, 5)


@pytest.mark.parametrize(
    ("bad", "error", "fragment"),
    [
        (torch.zeros(3, 2, 2, dtype=torch.int32), DTypeError, "floating-point"),
        (np.zeros((3, 2, 2)), DTypeError, "must be a torch.Tensor"),
        (torch.zeros(2, 3, 2, 2), ShapeError, r"\(1, 3, H, W\) or \(3, H, W\)"),
        (torch.zeros(4, 2, 2), ShapeError, r"got shape \(4, 2, 2\)"),
        (torch.zeros(3, 0, 2), ShapeError, "empty"),
        (torch.full((3, 2, 2), float("nan")), ImageError, "12 NaN or Inf"),
    ],
)
def test_to_pil_errors(bad: object, error: type[Exception], fragment: str) -> None:
    with pytest.raises(error, match=fragment):
        to_pil(bad)  # type: ignore[arg-type]


# -- save_image -------------------------------------------------------------------------------


def quantized(seed: int = 0, height: int = 6, width: int = 8) -> torch.Tensor:
    image = torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(seed))
    return (image * 255).round() / 255


@pytest.mark.parametrize("name", ["out.png", "out.PNG", "out.tif", "out.tiff"])
def test_lossless_formats_round_trip_exactly(tmp_path: pathlib.Path, name: str) -> None:
    image = quantized()
    written = save_image(image, tmp_path / name)
    assert written == tmp_path / name
    torch.testing.assert_close(load_image(written), image, rtol=0, atol=1e-7)


@pytest.mark.parametrize("name", ["out.jpg", "out.jpeg"])
def test_jpeg_is_high_quality(tmp_path: pathlib.Path, name: str) -> None:
    ramp = torch.linspace(0, 1, 32)
    image = torch.stack(
        [ramp[None].expand(32, 32), ramp[:, None].expand(32, 32), 1 - ramp[None].expand(32, 32)]
    )
    written = save_image(image, str(tmp_path / name))
    with Image.open(written) as opened:
        assert opened.format == "JPEG"
    assert (load_image(written) - image).abs().mean() < 1.5 / 255


def test_new_file_permissions_follow_the_umask(tmp_path: pathlib.Path) -> None:
    umask = os.umask(0o022)
    os.umask(umask)
    written = save_image(quantized(), tmp_path / "out.png")
    assert written.stat().st_mode & 0o777 == 0o666 & ~umask


@pytest.mark.parametrize("name", ["out.bmp", "out", "out.png.txt"])
def test_unknown_suffix(tmp_path: pathlib.Path, name: str) -> None:
    with pytest.raises(ImageError, match=r"use one of \.png, \.jpg, \.jpeg, \.tif, \.tiff"):
        save_image(quantized(), tmp_path / name)
    assert list(tmp_path.iterdir()) == []


def test_missing_folder_is_not_created(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ImageError, match=r"folder does not exist: .*nope"):
        save_image(quantized(), tmp_path / "nope" / "out.png")
    assert not (tmp_path / "nope").exists()


def test_directory_target(tmp_path: pathlib.Path) -> None:
    (tmp_path / "dir.png").mkdir()
    with pytest.raises(ImageError, match="is a directory"):
        save_image(quantized(), tmp_path / "dir.png")


def test_overwrite_false_refuses_an_existing_file(tmp_path: pathlib.Path) -> None:
    target = tmp_path / "out.png"
    target.write_bytes(b"keep me")
    with pytest.raises(ImageError, match="already exists; pass overwrite=True"):
        save_image(quantized(), target, overwrite=False)
    assert target.read_bytes() == b"keep me"
    save_image(quantized(), tmp_path / "fresh.png", overwrite=False)
    assert (tmp_path / "fresh.png").exists()


def test_overwrite_true_replaces(tmp_path: pathlib.Path) -> None:
    target = tmp_path / "out.png"
    save_image(quantized(seed=1), target)
    save_image(quantized(seed=2), target)
    torch.testing.assert_close(load_image(target), quantized(seed=2), rtol=0, atol=1e-7)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]


def test_protect_refuses_every_spelling_of_an_input(tmp_path: pathlib.Path) -> None:
    (tmp_path / "sub").mkdir()
    content = tmp_path / "sub" / "content.png"
    save_image(quantized(seed=3), content)
    before = content.read_bytes()
    (tmp_path / "link.png").symlink_to(content)
    os.link(content, tmp_path / "hard.png")
    spellings = [content, tmp_path / "sub" / ".." / "sub" / "content.png", tmp_path / "link.png"]
    for target in [*spellings, tmp_path / "hard.png"]:
        with pytest.raises(ImageError, match=r"refusing to write .*protected file"):
            save_image(quantized(), target, protect=[str(content)])
    with pytest.raises(ImageError, match="protected file"):
        save_image(quantized(), content, protect=content)  # a lone path, not a list
    assert content.read_bytes() == before
    save_image(quantized(), tmp_path / "other.png", protect=[content])


def test_failed_encode_leaves_target_untouched_and_no_temp_file(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "out.png"
    target.write_bytes(b"old picture")

    def fail_midway(self: Image.Image, fp: Any, *args: Any, **kwargs: Any) -> None:
        fp.write(b"half a picture")
        raise OSError("No space left on device")

    monkeypatch.setattr(Image.Image, "save", fail_midway)
    with pytest.raises(ImageError, match=r"cannot write .*out.png: No space left on device"):
        save_image(quantized(), target)
    assert target.read_bytes() == b"old picture"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]


def test_any_exception_removes_the_temp_file(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(self: Image.Image, fp: Any, *args: Any, **kwargs: Any) -> None:
        fp.write(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(Image.Image, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_image(quantized(), tmp_path / "out.png")
    assert list(tmp_path.iterdir()) == []


def test_failed_replace_removes_the_temp_file(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_replace(source: Any, destination: Any) -> None:
        raise PermissionError("read-only target")

    monkeypatch.setattr(output_module.os, "replace", no_replace)
    with pytest.raises(ImageError, match="read-only target"):
        save_image(quantized(), tmp_path / "out.png")
    assert list(tmp_path.iterdir()) == []


def test_bad_image_writes_nothing(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ShapeError, match=r"\(1, 3, H, W\)"):
        save_image(torch.zeros(1, 4, 2, 2), tmp_path / "out.png")
    assert list(tmp_path.iterdir()) == []


# -- example images ---------------------------------------------------------------------------


def test_example_names() -> None:
    assert example_images() == ("astronaut", "chelsea", "great_wave", "starry_night")


@pytest.mark.parametrize(
    ("name", "height", "width"),
    [
        ("astronaut", 512, 512),
        ("chelsea", 300, 451),
        ("great_wave", 284, 512),
        ("starry_night", 320, 512),
    ],
)
def test_every_example_loads_from_the_package(name: str, height: int, width: int) -> None:
    path = example_image(name)
    assert path.parent.resolve() == IMAGES_DIR.resolve()
    image = load_image(path)
    assert image.shape == (1, 3, height, width)
    assert_unit_range(image)
    assert example_image(path.name) == path


def test_example_folder_holds_exactly_the_registry_and_its_notice() -> None:
    files = {p.name for p in IMAGES_DIR.iterdir()}
    registered = {example_image(name).name for name in example_images()}
    assert files == registered | {"NOTICE.md"}
    notice = (IMAGES_DIR / "NOTICE.md").read_text(encoding="utf-8")
    for filename in registered:
        assert f"`{filename}`" in notice


def test_unknown_example_lists_closest_first() -> None:
    with pytest.raises(ImageError, match=r"'chelsee'; available \(closest first\): chelsea, "):
        example_image("chelsee")
    with pytest.raises(ImageError, match=r"closest first\): starry_night, "):
        example_image("starry")
    with pytest.raises(ImageError, match="name must be a str"):
        example_image(3)  # type: ignore[arg-type]


def test_example_from_a_zip_import_is_extracted(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = tmp_path / "site.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.write(IMAGES_DIR / "chelsea.jpg", "neuralstyle/data/images/chelsea.jpg")
    monkeypatch.setattr(
        examples_module.resources, "files", lambda package: zipfile.Path(archive, f"{package}/")
    )
    path = example_image("chelsea")
    assert isinstance(path, pathlib.Path)
    assert path.read_bytes() == (IMAGES_DIR / "chelsea.jpg").read_bytes()


# -- round trips of every input mode ----------------------------------------------------------


def _mode_file(mode: str, folder: pathlib.Path) -> pathlib.Path:
    rgba = np.random.default_rng(3).integers(0, 256, (6, 8, 4), dtype=np.uint8)
    rgba[0, :4, 3] = 0  # some transparent pixels for the alpha modes
    source = Image.fromarray(rgba)
    if mode == "I;16":
        wide = np.random.default_rng(4).integers(0, 65536, (6, 8), dtype=np.uint16)
        return saved(Image.fromarray(wide), folder / "in.png")
    if mode == "F":
        values = np.random.default_rng(5).random((6, 8), dtype=np.float32)
        return saved(Image.fromarray(values), folder / "in.tif")
    if mode == "CMYK":
        return saved(source.convert("RGB").convert("CMYK"), folder / "in.jpg", quality=95)
    if mode == "P":
        converted = source.convert("RGB").convert("P", palette=Image.Palette.ADAPTIVE)
        return saved(converted, folder / "in.png")
    return saved(source.convert(mode), folder / "in.png")


@pytest.mark.parametrize("mode", ["L", "LA", "P", "RGBA", "CMYK", "I;16", "F"])
@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_every_mode_round_trips_through_save_and_load(
    tmp_path: pathlib.Path, mode: str, suffix: str
) -> None:
    path = _mode_file(mode, tmp_path)
    assert mode_of(path) == mode
    first = load_image(path)
    written = save_image(first, tmp_path / f"out{suffix}", protect=[path])
    again = load_image(written)
    # 8-bit files hold the loaded values within half a level, exactly when they were 8-bit
    # levels to begin with (no alpha composited, no 16-bit or float source).
    assert (again - first).abs().max() <= 0.5 / 255 + 1e-6
    if mode in ("L", "P", "CMYK"):
        torch.testing.assert_close(again, first, rtol=0, atol=1e-6)


# -- 16-bit output ------------------------------------------------------------------------------


def _expected_levels(image: torch.Tensor, alpha: torch.Tensor | None) -> np.ndarray[Any, Any]:
    channels = [image[0]] + ([alpha.reshape(1, *image.shape[-2:])] if alpha is not None else [])
    stacked = torch.cat(channels).clamp(0, 1).double() * 65535
    return stacked.round().permute(1, 2, 0).numpy().astype(np.uint16)


def _png_levels(data: bytes) -> tuple[int, np.ndarray[Any, Any]]:
    """Decode a PNG written with filter type 0 (what save_image writes) by hand."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height, depth, color = (
        int.from_bytes(data[16:20], "big"),
        int.from_bytes(data[20:24], "big"),
        data[24],
        data[25],
    )
    position, idat = 8, b""
    while position < len(data):
        length = int.from_bytes(data[position : position + 4], "big")
        kind = data[position + 4 : position + 8]
        if kind == b"IDAT":
            idat += data[position + 8 : position + 8 + length]
        position += 12 + length
    channels = {2: 3, 6: 4}[color]
    rows = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(height, -1)
    assert (rows[:, 0] == 0).all()
    values = rows[:, 1:].copy().view(">u2").reshape(height, width, channels)
    return depth, values.astype(np.uint16)


@pytest.mark.parametrize("with_alpha", [False, True])
def test_sixteen_bit_png_holds_every_level(tmp_path: pathlib.Path, with_alpha: bool) -> None:
    image = torch.rand(1, 3, 5, 7, generator=torch.Generator().manual_seed(0))
    alpha = torch.rand(5, 7, generator=torch.Generator().manual_seed(1)) if with_alpha else None
    written = save_image(image, tmp_path / "deep.png", bits=16, alpha=alpha)
    depth, levels = _png_levels(written.read_bytes())
    assert depth == 16
    assert np.array_equal(levels, _expected_levels(image, alpha))
    # PIL validates the checksums and reads the high bytes.
    with Image.open(written) as opened:
        assert opened.mode == ("RGBA" if with_alpha else "RGB")
        assert np.array_equal(np.asarray(opened), (levels >> 8).astype(np.uint8))


@pytest.mark.parametrize("with_alpha", [False, True])
def test_sixteen_bit_tiff_holds_every_level(tmp_path: pathlib.Path, with_alpha: bool) -> None:
    image = torch.rand(1, 3, 5, 7, generator=torch.Generator().manual_seed(2))
    alpha = (
        torch.rand(1, 1, 5, 7, generator=torch.Generator().manual_seed(3)) if with_alpha else None
    )
    written = save_image(image, tmp_path / "deep.tif", bits=16, alpha=alpha)
    expected = _expected_levels(image, alpha)
    with Image.open(written) as opened:
        tags = opened.tag_v2
        assert tags[258] == (16,) * expected.shape[-1]  # BitsPerSample
        offset, count = tags[273][0], tags[279][0]
        assert opened.mode == ("RGBA" if with_alpha else "RGB")
        assert np.array_equal(np.asarray(opened), (expected >> 8).astype(np.uint8))
    strip = written.read_bytes()[offset : offset + count]
    assert np.array_equal(np.frombuffer(strip, "<u2").reshape(expected.shape), expected)


def test_sixteen_bits_resolve_what_eight_bits_cannot(tmp_path: pathlib.Path) -> None:
    ramp = torch.linspace(0, 1 / 255, 9).expand(1, 3, 1, 9).contiguous()
    _, levels = _png_levels(save_image(ramp, tmp_path / "ramp.png", bits=16).read_bytes())
    assert len(np.unique(levels[..., 0])) == 9
    eight = np.asarray(to_pil(ramp))[..., 0]
    assert len(np.unique(eight)) == 2


@pytest.mark.parametrize(
    ("name", "options", "fragment"),
    [
        ("out.jpg", {"bits": 16}, "JPEG stores 8 bits"),
        ("out.jpg", {"alpha": torch.ones(2, 2)}, "JPEG cannot store transparency"),
        ("out.png", {"bits": 12}, "bits must be 8 or 16"),
        ("out.png", {"bits": True}, "bits must be 8 or 16"),
    ],
)
def test_bits_and_alpha_must_fit_the_format(
    tmp_path: pathlib.Path, name: str, options: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(ConfigError, match=fragment):
        save_image(torch.zeros(1, 3, 2, 2), tmp_path / name, **options)
    assert list(tmp_path.iterdir()) == []


def test_interrupted_sixteen_bit_write_leaves_no_partial_file(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "out.tif"
    target.write_bytes(b"old picture")

    def interrupted(descriptor: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(output_module.os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_image(quantized(), target, bits=16)
    assert target.read_bytes() == b"old picture"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.tif"]


def test_check_output_path_raises_before_any_work(tmp_path: pathlib.Path) -> None:
    content = saved(Image.fromarray(rgb_array()), tmp_path / "in.png")
    assert check_output_path(tmp_path / "ok.tif", bits=16, alpha=True) == tmp_path / "ok.tif"
    with pytest.raises(ImageError, match="protected file"):
        check_output_path(content, protect=[content])
    with pytest.raises(ImageError, match=r"suffix '\.bmp'"):
        check_output_path(tmp_path / "x.bmp")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png"]


# -- transparency -----------------------------------------------------------------------------


def test_alpha_is_carried_through_save_and_load(tmp_path: pathlib.Path) -> None:
    image = quantized()
    alpha = quantized(seed=1)[:, :1]
    written = save_image(image, tmp_path / "cut.png", alpha=alpha)
    with Image.open(written) as opened:
        assert opened.mode == "RGBA"
    loaded = load_alpha(written)
    assert loaded is not None
    torch.testing.assert_close(loaded, alpha, rtol=0, atol=1e-6)
    composited = image * alpha + (1 - alpha)
    assert (load_image(written) - composited).abs().max() <= 0.5 / 255 + 1e-6


@pytest.mark.parametrize("mode", ["LA", "RGBA", "PA"])
def test_load_alpha_of_images_with_transparency(tmp_path: pathlib.Path, mode: str) -> None:
    rgba = np.random.default_rng(3).integers(0, 256, (6, 8, 4), dtype=np.uint8)
    converted = Image.fromarray(rgba).convert(mode)
    # PIL writes no PA files; its images are a source too.
    source = converted if mode == "PA" else saved(converted, tmp_path / "a.png")
    alpha = load_alpha(source)
    assert alpha is not None
    expected = torch.from_numpy(rgba[..., 3].astype(np.float32) / 255)[None, None]
    torch.testing.assert_close(alpha, expected, rtol=0, atol=1e-6)


def test_palette_transparency_is_an_alpha(tmp_path: pathlib.Path) -> None:
    palette = Image.new("P", (2, 1))
    palette.putdata([0, 1])
    palette.putpalette([200, 0, 0, 0, 0, 0] + [0] * 762)
    path = saved(palette, tmp_path / "pt.png", transparency=1)
    alpha = load_alpha(path)
    assert alpha is not None
    assert alpha.flatten().tolist() == [1.0, 0.0]


@pytest.mark.parametrize(
    "source",
    [
        Image.new("RGB", (8, 6)),
        Image.new("L", (8, 6)),
        np.zeros((6, 8, 3), np.uint8),
        np.zeros((6, 8), np.float32),
        torch.zeros(3, 6, 8),
    ],
)
def test_opaque_sources_have_no_alpha(source: Any) -> None:
    assert load_alpha(source) is None


def test_alpha_of_arrays_and_tensors_resizes_like_the_image() -> None:
    rgba = np.random.default_rng(0).random((6, 8, 4)).astype(np.float32)
    for source in (rgba, torch.from_numpy(rgba).permute(2, 0, 1).contiguous()):
        alpha = load_alpha(source, size=4, dtype=torch.float64)
        assert alpha is not None
        assert alpha.dtype == torch.float64
        assert alpha.shape[-2:] == load_image(source, size=4).shape[-2:]
    grey_alpha = np.stack([np.zeros((6, 8)), np.full((6, 8), 0.25)], axis=-1)
    alpha = load_alpha(grey_alpha)
    assert alpha is not None
    torch.testing.assert_close(alpha, torch.full((1, 1, 6, 8), 0.25), rtol=0, atol=1e-7)


def test_alpha_of_a_file_resizes_like_the_image(tmp_path: pathlib.Path) -> None:
    path = saved(Image.new("RGBA", (40, 30), (10, 20, 30, 128)), tmp_path / "a.png")
    alpha = load_alpha(path, size=16)
    assert alpha is not None
    assert alpha.shape[-2:] == load_image(path, size=16).shape[-2:] == (12, 16)
    torch.testing.assert_close(alpha, torch.full_like(alpha, 128 / 255), rtol=0, atol=1e-6)


@pytest.mark.parametrize("shape", [(2, 6, 8), (1, 1, 6, 7), (6,), (1, 2, 6, 8)])
def test_alpha_must_match_the_image(tmp_path: pathlib.Path, shape: tuple[int, ...]) -> None:
    with pytest.raises(ShapeError, match="alpha must be"):
        save_image(quantized(), tmp_path / "x.png", alpha=torch.ones(shape))
    assert list(tmp_path.iterdir()) == []


def test_alpha_errors() -> None:
    with pytest.raises(ImageError, match="load_alpha expects"):
        load_alpha(42)  # type: ignore[arg-type]
    with pytest.raises(DTypeError, match="alpha"):
        save_image(quantized(), "x.png", alpha=torch.ones(6, 8, dtype=torch.uint8))
    with pytest.raises(ImageError, match="values must lie in"):
        load_alpha(torch.full((4, 2, 2), 2.0))
