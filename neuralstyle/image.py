"""Reading images: every image enters the rest of neuralstyle through here.

Every image enters the rest of neuralstyle as a ``(1, 3, H, W)`` RGB float tensor in ``[0, 1]``.
:func:`load_image` produces one from a file, a PIL image, a numpy array or a tensor. Writing one
back is :mod:`neuralstyle.image_output`'s job; the bundled example images are in
:mod:`neuralstyle.examples`.

Conventions:

* EXIF orientation is applied, so a photo comes out the way a viewer shows it.
* Transparency is composited over a **white** background (a style network has no use for alpha);
  :func:`load_alpha` returns it separately and ``save_image(..., alpha=...)`` writes it back.
* 16-bit greyscale (``I;16`` and ``I``) is scaled by ``1/65535`` without a detour through 8 bits;
  32-bit float images (``F``) are taken to be in ``[0, 1]`` and clamped.
"""

from __future__ import annotations

import math
import os
import pathlib
import re
import warnings
from typing import Any, TypeAlias, TypeGuard

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor

from neuralstyle._moved import moved_names
from neuralstyle.errors import ConfigError, DTypeError, ImageError, ImageNotFoundError, ShapeError
from neuralstyle.scales import resize

__all__ = [
    "ImageSource",
    "PathLike",
    "SizeSpec",
    "fitted_size",
    "load_alpha",
    "load_image",
]

# Writing and the bundled examples moved to their own modules; the old imports keep working.
__getattr__ = moved_names(
    __name__,
    {
        "check_output_path": "neuralstyle.image_output",
        "save_image": "neuralstyle.image_output",
        "to_pil": "neuralstyle.image_output",
        "example_image": "neuralstyle.examples",
        "example_images": "neuralstyle.examples",
    },
)

PathLike: TypeAlias = str | os.PathLike[str]
"""A filesystem path: ``str`` or any ``os.PathLike`` (e.g. :class:`pathlib.Path`)."""

ImageSource: TypeAlias = PathLike | Image.Image | np.ndarray[Any, Any] | Tensor
"""Anything :func:`load_image` accepts."""

SizeSpec: TypeAlias = int | tuple[int, int]
"""Target size: the long side in pixels, or an exact ``(height, width)``."""

SIXTEEN_BIT = 65535.0
"""The top 16-bit level: reading divides 16-bit pixels by it, writing 16 bits multiplies by it."""

# Decoders report bad data through many exception types; all of them mean "corrupt file".
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError)


# -- loading ----------------------------------------------------------------------------------


def load_image(
    source: ImageSource,
    *,
    size: SizeSpec | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Load an image as a ``(1, 3, H, W)`` RGB float tensor in ``[0, 1]``.

    Accepted sources:

    * a path (``str`` or ``os.PathLike``) to any file PIL reads;
    * a :class:`PIL.Image.Image` in any common mode (``1``, ``L``, ``LA``, ``P`` with or without
      transparency, ``RGB``, ``RGBA``, ``CMYK``, ``I;16``, ``I``, ``F``, ...);
    * a numpy array ``(H, W)`` or ``(H, W, C)`` with ``C`` in 1 (grey), 2 (grey + alpha),
      3 (RGB), 4 (RGBA); ``uint8`` in 0..255, ``uint16`` in 0..65535, or float in ``[0, 1]``;
    * a float tensor ``(H, W)``, ``(C, H, W)`` or ``(1, C, H, W)``, same channels, in ``[0, 1]``.

    EXIF orientation is applied. Alpha is composited over white. ``I;16`` and ``I`` images are
    divided by 65535; ``F`` images are clamped to ``[0, 1]``. PIL images are resized with
    Lanczos; arrays and tensors with antialiased bicubic interpolation, then clamped to ``[0, 1]``.

    Args:
        source: The image (see above). Neither it nor its file is modified.
        size: ``int``: resize so that the long side has this many pixels, keeping the aspect ratio
            (the short side is at least 1 px). ``(height, width)``: resize to exactly this.
            ``None``: keep the size.
        device: Device of the result. ``None``: the tensor's own device for tensor sources, the
            CPU otherwise.
        dtype: Floating-point dtype of the result.

    Returns:
        A new contiguous ``(1, 3, H, W)`` tensor, detached from any graph, never sharing memory
        with ``source``.

    Raises:
        ImageError: The file is missing, a directory, empty, truncated, not an image, larger than
            PIL's decompression-bomb limit; the values are NaN/Inf or outside ``[0, 1]``; the
            source is of an unsupported type or a tensor on the meta device (no values).
        ShapeError: An array or tensor has the wrong rank, channel count or batch size.
        DTypeError: An integer tensor, an array of an unsupported dtype, or a non-float ``dtype``.
        ConfigError: ``size`` or ``device`` is invalid.

    Example:
        >>> from neuralstyle.examples import example_image
        >>> image = load_image(example_image("chelsea"), size=128)
        >>> tuple(image.shape), image.dtype
        ((1, 3, 85, 128), torch.float32)
    """
    _check_dtype(dtype)
    target = _check_size(size)
    out_device = _check_device(device)
    work = torch.float64 if dtype == torch.float64 else torch.float32
    if isinstance(source, Tensor):
        image = _from_tensor(source, target, work)
        home = source.device if out_device is None else out_device
        # copy=True: a source that is already a contiguous (1, 3, H, W) float must not be aliased.
        return image.to(device=home, dtype=dtype, copy=True).contiguous()
    if isinstance(source, np.ndarray):
        image = _from_array(source, target, work)
    elif isinstance(source, Image.Image):
        image = _from_pil(_decoded(source, "the PIL image"), target, work)
    elif isinstance(source, (str, os.PathLike)):
        image = _from_pil(_read_file(source), target, work)
    else:
        raise ImageError(
            "load_image expects a path, a PIL image, a numpy array or a torch tensor, "
            f"got {type(source).__name__}"
        )
    return image.to(device=out_device, dtype=dtype).contiguous()


def load_alpha(
    source: ImageSource,
    *,
    size: SizeSpec | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor | None:
    """Load the transparency of an image, the part :func:`load_image` composites away.

    Pair it with ``save_image(..., alpha=...)`` to carry a cut-out's transparency to the
    stylized result.

    Args:
        source: Anything :func:`load_image` accepts.
        size: As for :func:`load_image`; the same ``size`` gives the same height and width.
        device: As for :func:`load_image`.
        dtype: As for :func:`load_image`.

    Returns:
        A ``(1, 1, H, W)`` tensor in ``[0, 1]`` (1 is opaque), or ``None`` when the image has no
        transparency (modes without alpha, arrays and tensors with 1 or 3 channels).

    Raises:
        ImageError, ShapeError, DTypeError, ConfigError: As for :func:`load_image`.

    Example:
        >>> from neuralstyle.examples import example_image
        >>> load_alpha(example_image("chelsea")) is None
        True
        >>> tuple(load_alpha(torch.rand(4, 6, 8)).shape)
        (1, 1, 6, 8)
    """
    _check_dtype(dtype)
    target = _check_size(size)
    out_device = _check_device(device)
    work = torch.float64 if dtype == torch.float64 else torch.float32
    home = out_device
    if isinstance(source, Tensor):
        alpha = _channel_alpha(_checked_tensor_chw(source, work), target)
        home = source.device if out_device is None else out_device
    elif isinstance(source, np.ndarray):
        alpha = _channel_alpha(_array_chw(source, work), target)
    elif isinstance(source, Image.Image):
        alpha = _pil_alpha(_decoded(source, "the PIL image"), target, work)
    elif isinstance(source, (str, os.PathLike)):
        alpha = _pil_alpha(_read_file(source), target, work)
    else:
        raise ImageError(
            "load_alpha expects a path, a PIL image, a numpy array or a torch tensor, "
            f"got {type(source).__name__}"
        )
    if alpha is None:
        return None
    return alpha.to(device=home, dtype=dtype, copy=True).contiguous()


def _channel_alpha(chw: Tensor, size: SizeSpec | None) -> Tensor | None:
    """The last channel of a grey+alpha or RGBA ``(C, H, W)`` as ``(1, 1, H, W)``, or None."""
    if chw.shape[0] not in (2, 4):
        return None
    return _resize_tensor(chw[-1:].unsqueeze(0), size)


def _pil_alpha(image: Image.Image, size: SizeSpec | None, work: torch.dtype) -> Tensor | None:
    """The alpha band of a decoded PIL image as ``(1, 1, H, W)`` (Lanczos-resized), or None."""
    plain, _ = _plain_mode(image)
    if plain.mode != "RGBA":
        return None
    band = plain.getchannel("A")
    new_hw = fitted_size(band.height, band.width, size)
    if new_hw != (band.height, band.width):
        band = band.resize((new_hw[1], new_hw[0]), Image.Resampling.LANCZOS)
    return torch.from_numpy(np.array(band, dtype=_numpy_float(work))).div_(255.0)[None, None]


def _check_dtype(dtype: object) -> None:
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise DTypeError(
            f"dtype must be a floating-point torch.dtype such as torch.float32, got {dtype!r}"
        )


def _check_size(size: object) -> SizeSpec | None:
    """Validate ``size`` and return it as ``None``, an ``int`` or a ``(height, width)`` tuple."""
    if size is None:
        return None
    if _is_positive_int(size):
        return int(size)
    if isinstance(size, (tuple, list)) and len(size) == 2 and all(map(_is_positive_int, size)):
        return int(size[0]), int(size[1])
    raise ConfigError(
        "size must be a positive int (the long side in pixels) or a (height, width) pair of "
        f"positive ints, got {size!r}"
    )


def _is_positive_int(value: object) -> TypeGuard[int | np.integer[Any]]:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and bool(value > 0)


def _check_device(device: torch.device | str | None) -> torch.device | None:
    if device is None:
        return None
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f"device {device!r} is not a valid torch device: {exc}") from exc


def fitted_size(height: int, width: int, size: SizeSpec | None) -> tuple[int, int]:
    """The ``(height, width)`` that :func:`load_image` gives an image of ``height x width`` for
    a valid ``size`` (its long side, an exact ``(height, width)``, or None for as it is)."""
    if size is None:
        return height, width
    if isinstance(size, tuple):
        return size
    if height >= width:
        return size, max(1, round(width * size / height))
    return max(1, round(height * size / width)), size


# -- files and PIL images ---------------------------------------------------------------------


def _read_file(source: PathLike) -> Image.Image:
    """Open, fully decode and EXIF-orient an image file, with a typed error for every failure."""
    path = pathlib.Path(os.fspath(source))
    if not path.exists():
        raise ImageNotFoundError(f"file not found: {path} (working directory: {os.getcwd()})")
    if path.is_dir():
        raise ImageError(f"{path} is a directory, not an image file; pass the path of an image")
    if path.stat().st_size == 0:
        raise ImageError(f"{path} is an empty file (0 bytes), not an image")
    try:
        # PIL only warns between its limit and twice its limit; an image that large is never
        # what a style transfer wants, so the warning is an error here too.
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as opened:
                return _decoded(opened, str(path))
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise _bomb_error(str(path), exc) from None
    except UnidentifiedImageError:
        raise ImageError(
            f"{path} is not an image file PIL can read; use PNG, JPEG, TIFF, BMP, WebP or GIF"
        ) from None
    except PermissionError as exc:
        raise ImageError(f"cannot read {path}: permission denied") from exc
    except ImageError:
        raise  # from _decoded, already worded (and a ValueError, like a decoder's errors)
    except _DECODE_ERRORS as exc:
        # Image.open parses the headers: a file cut inside them fails here, not in load().
        raise _corrupt_error(str(path), exc) from exc


def _decoded(image: Image.Image, origin: str) -> Image.Image:
    """Decode all pixels now (lazy PIL images fail late) and apply the EXIF orientation."""
    try:
        image.load()
        return ImageOps.exif_transpose(image)
    except PermissionError:
        raise
    except _DECODE_ERRORS as exc:
        raise _corrupt_error(origin, exc) from exc


def _corrupt_error(origin: str, exc: Exception) -> ImageError:
    return ImageError(
        f"cannot decode {origin}: {exc}; the file is truncated or corrupt, export it again"
    )


def _bomb_error(origin: str, exc: Exception) -> ImageError:
    found = re.search(r"\((\d+) pixels\)", str(exc))
    pixels = found.group(1) if found else "too many"
    return ImageError(
        f"{origin} has {pixels} pixels, more than PIL's decompression-bomb limit of "
        f"{Image.MAX_IMAGE_PIXELS} pixels; if you trust the file, raise PIL.Image.MAX_IMAGE_PIXELS "
        "before loading it (a style transfer rarely needs more than a few megapixels)"
    )


def _from_pil(image: Image.Image, size: SizeSpec | None, work: torch.dtype) -> Tensor:
    """Convert a decoded PIL image of any mode to a ``(1, 3, H, W)`` tensor of dtype ``work``."""
    plain, scale = _plain_mode(image)
    height, width = plain.height, plain.width
    new_hw = fitted_size(height, width, size)
    if new_hw != (height, width):
        plain = plain.resize((new_hw[1], new_hw[0]), Image.Resampling.LANCZOS)
    pixels = torch.from_numpy(np.array(plain, dtype=_numpy_float(work)))
    if pixels.dim() == 2:
        pixels = pixels.unsqueeze(-1)
    chw = pixels.permute(2, 0, 1).div_(scale)
    if plain.mode == "F":
        value_range(chw, f"the {image.mode} image")
        # Lanczos overshoots and float images may exceed [0, 1] to begin with.
        chw = chw.clamp_(0.0, 1.0)
    return _to_rgb(chw)


def _numpy_float(work: torch.dtype) -> type[np.floating[Any]]:
    return np.float64 if work == torch.float64 else np.float32


def _plain_mode(image: Image.Image) -> tuple[Image.Image, float]:
    """Convert to ``RGB``, ``RGBA`` or ``F`` and return the divisor that maps it to ``[0, 1]``."""
    mode = image.mode
    if mode in ("RGB", "RGBA"):
        return image, 255.0
    if mode == "F":
        return image, 1.0
    if mode == "I" or mode.startswith("I;16"):
        return _convert(image, "F"), SIXTEEN_BIT
    if mode == "La":
        # PIL has no direct La -> RGBA conversion; un-premultiply first.
        image = _convert(image, "LA")
    return _convert(image, "RGBA" if image.has_transparency_data else "RGB"), 255.0


def _convert(image: Image.Image, mode: str) -> Image.Image:
    try:
        return image.convert(mode)
    except ValueError as exc:
        raise ImageError(
            f"cannot convert a PIL image of mode {image.mode!r} to {mode}: {exc}; "
            "convert it to RGB yourself first"
        ) from exc


# -- arrays and tensors -----------------------------------------------------------------------


def _from_array(array: np.ndarray[Any, Any], size: SizeSpec | None, work: torch.dtype) -> Tensor:
    """Convert an ``(H, W)`` / ``(H, W, C)`` numpy image to a ``(1, 3, H, W)`` tensor."""
    return _resize_tensor(_to_rgb(_array_chw(array, work)), size)


def _array_chw(array: np.ndarray[Any, Any], work: torch.dtype) -> Tensor:
    """Check a numpy image and return its channels ``(C, H, W)`` in ``[0, 1]`` (alpha kept)."""
    _check_array_shape(array)
    scale = _array_scale(array)
    # np.array copies: native byte order, writable, never shared with the caller.
    pixels = torch.from_numpy(np.array(array, dtype=_numpy_float(work)))
    if pixels.dim() == 2:
        pixels = pixels.unsqueeze(-1)
    chw = pixels.permute(2, 0, 1).div_(scale)
    if scale == 1.0:
        _check_unit_range(chw, "numpy image")
    return chw


def _array_scale(array: np.ndarray[Any, Any]) -> float:
    # Compare kind and width, not dtype identity: big-endian uint16 ('>u2') must pass too.
    unsigned = array.dtype.kind == "u"
    if unsigned and array.dtype.itemsize == 1:
        return 255.0
    if unsigned and array.dtype.itemsize == 2:
        return SIXTEEN_BIT
    if array.dtype.kind == "f":
        return 1.0
    raise DTypeError(
        f"numpy image must be uint8 (0..255), uint16 (0..65535) or float (0..1), got "
        f"{array.dtype}; convert it with .astype(np.uint8) or .astype(np.float32) / 255"
    )


def _check_array_shape(array: np.ndarray[Any, Any]) -> None:
    shape = tuple(array.shape)
    if array.ndim not in (2, 3):
        raise ShapeError(f"numpy image must be (H, W) or (H, W, C), got shape {shape}")
    if array.ndim == 3 and shape[2] not in (1, 2, 3, 4):
        hint = ""
        if shape[0] in (1, 2, 3, 4):
            hint = "; it looks channel-first: use array.transpose(1, 2, 0)"
        raise ShapeError(
            f"numpy image must have 1, 2, 3 or 4 channels in its last axis, got shape {shape}"
            + hint
        )
    if array.size == 0:
        raise ShapeError(f"numpy image is empty, got shape {shape}")


def _from_tensor(tensor: Tensor, size: SizeSpec | None, work: torch.dtype) -> Tensor:
    """Convert an ``(H, W)`` / ``(C, H, W)`` / ``(1, C, H, W)`` float tensor to ``(1, 3, H, W)``."""
    return _resize_tensor(_to_rgb(_checked_tensor_chw(tensor, work)), size)


def _checked_tensor_chw(tensor: Tensor, work: torch.dtype) -> Tensor:
    """Check an image tensor and return its channels ``(C, H, W)`` (alpha kept) as ``work``."""
    if not tensor.is_floating_point():
        raise DTypeError(
            f"image tensor must be floating-point with values in [0, 1], got {tensor.dtype}; "
            "for 0..255 data use tensor.float() / 255"
        )
    check_has_values(tensor, "image tensor")
    chw = _tensor_chw(tensor).detach().to(work)
    _check_unit_range(chw, "image tensor")
    return chw


def check_has_values(tensor: Tensor, what: str) -> None:
    """Raise :class:`ImageError` if ``tensor``, named ``what``, is on the meta device.

    Shared with :mod:`neuralstyle.image_output`, which checks the tensors it writes the same way.
    """
    # A meta tensor has a shape but no data: nothing to check, convert or write.
    if tensor.is_meta:
        raise ImageError(
            f"{what} is on the meta device and holds no values; create it on a real device "
            "such as 'cpu' or 'cuda'"
        )


def _tensor_chw(tensor: Tensor) -> Tensor:
    """Return a ``(C, H, W)`` view of an image tensor after checking its shape."""
    shape = tuple(tensor.shape)
    if tensor.dim() == 4:
        if shape[0] != 1:
            raise ShapeError(
                f"image tensor must hold one image, got a batch of {shape[0]} (shape {shape}); "
                "load them one at a time"
            )
        tensor = tensor[0]
    elif tensor.dim() == 2:
        tensor = tensor.unsqueeze(0)
    elif tensor.dim() != 3:
        raise ShapeError(
            f"image tensor must be (H, W), (C, H, W) or (1, C, H, W), got shape {shape}"
        )
    if tensor.shape[0] not in (1, 2, 3, 4):
        hint = ""
        if tensor.shape[-1] in (1, 2, 3, 4):
            hint = "; it looks channel-last: use tensor.permute(2, 0, 1)"
        raise ShapeError(f"image tensor must have 1, 2, 3 or 4 channels, got shape {shape}{hint}")
    if tensor.numel() == 0:
        raise ShapeError(f"image tensor is empty, got shape {shape}")
    return tensor


def value_range(chw: Tensor, what: str) -> tuple[float, float]:
    """Return the min and max of ``chw``, raising :class:`ImageError` on NaN or Inf.

    Reading values syncs with the device; fine here, loading and saving are not the optimization
    loop. Shared with :mod:`neuralstyle.image_output`, which refuses to write NaN or Inf.
    """
    # aminmax propagates NaN and an Inf shows up as an extreme, so one cheap reduction detects
    # both; the slower count runs only to word the error.
    low, high = (float(v) for v in chw.aminmax())
    if not (math.isfinite(low) and math.isfinite(high)):
        bad = int((~torch.isfinite(chw)).sum())
        raise ImageError(
            f"{what} contains {bad} NaN or Inf values; replace them, e.g. with torch.nan_to_num"
        )
    return low, high


def _check_unit_range(chw: Tensor, what: str) -> None:
    """Raise unless every value is finite and in ``[0, 1]``, naming the range found."""
    low, high = value_range(chw, what)
    if low >= 0.0 and high <= 1.0:
        return
    hint = ""
    if high > 1.0:
        hint = "; if it holds 0..255 values, divide it by 255"
    elif low < 0.0:
        hint = "; if it was normalized with a mean and std, undo that first"
    raise ImageError(
        f"{what} values must lie in [0, 1], got min {low:.6g} and max {high:.6g}{hint}"
    )


def _to_rgb(chw: Tensor) -> Tensor:
    """Composite alpha over white, broadcast grey to RGB, and add the batch axis."""
    if chw.shape[0] in (2, 4):
        color, alpha = chw[:-1], chw[-1:]
        chw = color * alpha + (1.0 - alpha)
    if chw.shape[0] == 1:
        chw = chw.expand(3, -1, -1)
    return chw.unsqueeze(0)


def _resize_tensor(image: Tensor, size: SizeSpec | None) -> Tensor:
    height, width = image.shape[-2:]
    new_hw = fitted_size(height, width, size)
    if new_hw == (height, width):
        return image
    # Bicubic overshoots near edges.
    return resize(image, new_hw).clamp_(0.0, 1.0)
