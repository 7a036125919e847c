"""Writing images: RGB float tensors back to PIL images and to files.

:func:`to_pil` and :func:`save_image` turn a ``(1, 3, H, W)`` RGB float tensor in ``[0, 1]``, as
:func:`neuralstyle.image.load_image` produces, back into pixels; :func:`check_output_path` checks
a destination before a long run.

Conventions:

* Writes are atomic (a temporary file renamed into place), refuse protected inputs, and can hold
  16 bits per channel (PNG, TIFF).
* Transparency from :func:`neuralstyle.image.load_alpha` is written back with
  ``save_image(..., alpha=...)``.
"""

from __future__ import annotations

import contextlib
import math
import os
import pathlib
import struct
import uuid
import zlib
from collections.abc import Callable, Iterable
from typing import IO, Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from neuralstyle._checks import check_float_tensor
from neuralstyle.errors import ConfigError, ImageError, ShapeError
from neuralstyle.image import SIXTEEN_BIT, PathLike, check_has_values, value_range

__all__ = ["check_output_path", "save_image", "to_pil"]

# Suffix -> (PIL format, encoder options). 4:4:4 chroma keeps the fine colour texture that style
# transfer is all about; the default 4:2:0 smears it.
_FORMATS: dict[str, tuple[str, dict[str, Any]]] = {
    ".png": ("PNG", {}),
    ".jpg": ("JPEG", {"quality": 95, "subsampling": 0}),
    ".jpeg": ("JPEG", {"quality": 95, "subsampling": 0}),
    ".tif": ("TIFF", {}),
    ".tiff": ("TIFF", {}),
}


def to_pil(image: Tensor) -> Image.Image:
    """Convert an RGB float image tensor to an 8-bit RGB PIL image.

    Args:
        image: ``(1, 3, H, W)`` or ``(3, H, W)`` floating-point tensor, on any device. Values are
            clamped to ``[0, 1]`` and rounded to the nearest of 256 levels.

    Returns:
        A new ``RGB`` PIL image of size ``W x H``.

    Raises:
        DTypeError: ``image`` is not a floating-point tensor.
        ShapeError: ``image`` is not ``(1, 3, H, W)`` or ``(3, H, W)``, or is empty.
        ImageError: ``image`` contains NaN or Inf, or is on the meta device (no values).

    Example:
        >>> to_pil(torch.ones(1, 3, 4, 6)).size
        (6, 4)
    """
    return Image.fromarray(_levels(image, None, bits=8))


def _levels(image: Tensor, alpha: Tensor | None, *, bits: int) -> np.ndarray[Any, Any]:
    """Quantize an RGB image (and alpha) to an ``(H, W, 3 or 4)`` uint8 or uint16 array."""
    tensor = check_float_tensor(image, "image")
    check_has_values(tensor, "image")
    chw = _rgb_chw(tensor).detach().to(device="cpu", dtype=torch.float32)
    if alpha is not None:
        chw = torch.cat([chw, _alpha_hw(alpha, chw.shape[-2:])])
    value_range(chw, "image" if alpha is None else "image or alpha")
    top = 255.0 if bits == 8 else SIXTEEN_BIT
    # float32 holds every integer below 2**24 exactly, so the rounding is exact up to 16 bits.
    levels = chw.clamp(0.0, 1.0).mul_(top).round_().permute(1, 2, 0).contiguous().numpy()
    return levels.astype(np.uint8 if bits == 8 else np.uint16)


def _rgb_chw(tensor: Tensor) -> Tensor:
    shape = tuple(tensor.shape)
    if tensor.dim() == 4 and shape[0] == 1:
        tensor = tensor[0]
    if tensor.dim() != 3 or tensor.shape[0] != 3:
        raise ShapeError(f"image must be (1, 3, H, W) or (3, H, W), got shape {shape}")
    if tensor.numel() == 0:
        raise ShapeError(f"image is empty, got shape {shape}")
    return tensor


def _alpha_hw(alpha: Tensor, size: torch.Size) -> Tensor:
    """Check an alpha tensor against the image's ``(H, W)`` and return it as ``(1, H, W)``."""
    tensor = check_float_tensor(alpha, "alpha")
    check_has_values(tensor, "alpha")
    shape = tuple(tensor.shape)
    if tensor.dim() not in (2, 3, 4) or math.prod(shape[:-2]) != 1 or shape[-2:] != tuple(size):
        raise ShapeError(
            f"alpha must be (H, W), (1, H, W) or (1, 1, H, W) with the image's H, W = "
            f"{tuple(size)}, got shape {shape}"
        )
    return tensor.detach().to(device="cpu", dtype=torch.float32).reshape(1, *size)


def check_output_path(
    path: PathLike,
    *,
    overwrite: bool = True,
    protect: Iterable[PathLike] = (),
    bits: int = 8,
    alpha: bool = False,
) -> pathlib.Path:
    """Raise now whatever :func:`save_image` would raise about ``path`` later.

    Call it before a long run, so a typo in the output path costs nothing.

    Args:
        path: The intended output file.
        overwrite: As for :func:`save_image`.
        protect: As for :func:`save_image`.
        bits: As for :func:`save_image`.
        alpha: Whether an alpha channel will be written.

    Returns:
        ``path`` as a :class:`pathlib.Path`.

    Raises:
        ImageError: Unknown suffix; the folder does not exist or is not writable; ``path`` is a
            directory, a protected path, or exists while ``overwrite`` is ``False``.
        ConfigError: ``bits`` is not 8 or 16, or the format cannot store ``bits`` or alpha.

    Example:
        >>> check_output_path("out.tif", bits=16).suffix
        '.tif'
    """
    target = pathlib.Path(os.fspath(path))
    pil_format, _ = _format_for(target)
    if bits not in (8, 16) or isinstance(bits, bool):
        raise ConfigError(f"bits must be 8 or 16 (per channel), got {bits!r}")
    if pil_format == "JPEG" and bits == 16:
        raise ConfigError(f"JPEG stores 8 bits per channel; save {target.name} as .png or .tif")
    if pil_format == "JPEG" and alpha:
        raise ConfigError(
            f"JPEG cannot store transparency; save {target.name} as .png or .tif, or drop alpha"
        )
    _check_destination(target, overwrite=overwrite, protect=protect)
    return target


def save_image(
    image: Tensor,
    path: PathLike,
    *,
    overwrite: bool = True,
    protect: Iterable[PathLike] = (),
    bits: int = 8,
    alpha: Tensor | None = None,
) -> pathlib.Path:
    """Write an RGB float image tensor to a PNG, JPEG or TIFF file, atomically.

    The file is written to a temporary file in the same folder, then moved onto ``path`` with
    :func:`os.replace`, so a crash or Ctrl-C never leaves a half-written image behind and readers
    see either the old file or the new one. The temporary file is removed on any failure. No
    folder is created.

    Args:
        image: ``(1, 3, H, W)`` or ``(3, H, W)`` float tensor in ``[0, 1]`` (clamped).
        path: Destination; the suffix picks the format: ``.png``, ``.jpg``/``.jpeg`` (quality 95,
            no chroma subsampling), ``.tif``/``.tiff`` (uncompressed).
        overwrite: If ``False``, refuse to replace an existing file.
        protect: Paths that must never be overwritten, typically the input images; compared
            after resolving symlinks and ``..``, and by file identity when they exist.
        bits: Bits per channel: 8, or 16 for PNG and TIFF (smoother gradients for further
            editing; note that PIL, and so :func:`neuralstyle.image.load_image`, reads 16-bit
            colour files back at 8 bits).
        alpha: Transparency to write as a fourth channel (PNG and TIFF), ``(H, W)``,
            ``(1, H, W)`` or ``(1, 1, H, W)`` in ``[0, 1]``, e.g. from
            :func:`neuralstyle.image.load_alpha`.

    Returns:
        ``path`` as a :class:`pathlib.Path`.

    Raises:
        ImageError: Unknown suffix; the folder does not exist or is not writable; ``path`` is a
            directory, a protected path, or exists while ``overwrite`` is ``False``; writing
            failed.
        ConfigError: ``bits`` is not 8 or 16, or JPEG with 16 bits or alpha.
        DTypeError: ``image`` or ``alpha`` is not a floating-point tensor.
        ShapeError: ``image`` is not a single RGB image, or ``alpha`` does not match it.

    Example:
        >>> import tempfile
        >>> from neuralstyle.examples import example_image
        >>> from neuralstyle.image import load_image
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> content = example_image("chelsea")
        >>> save_image(load_image(content), folder / "out.png", protect=[content]).name
        'out.png'
    """
    target = check_output_path(
        path, overwrite=overwrite, protect=protect, bits=bits, alpha=alpha is not None
    )
    pil_format, options = _format_for(target)
    levels = _levels(image, alpha, bits=bits)
    if bits == 16:
        encoded = _png16(levels) if pil_format == "PNG" else _tiff16(levels)
        _write_atomically(lambda handle: handle.write(encoded), target)
    else:
        pixels = Image.fromarray(levels)
        _write_atomically(lambda handle: pixels.save(handle, format=pil_format, **options), target)
    return target


def _format_for(target: pathlib.Path) -> tuple[str, dict[str, Any]]:
    # A folder has no format to tell from its name: say what it is first.
    if target.is_dir():
        raise ImageError(f"{target} is a directory; pass a file path such as {target / 'out.png'}")
    try:
        return _FORMATS[target.suffix.lower()]
    except KeyError:
        supported = ", ".join(_FORMATS)
        raise ImageError(
            f"cannot tell the image format of {target} from its suffix {target.suffix!r}; "
            f"use one of {supported}"
        ) from None


def _check_destination(
    target: pathlib.Path, *, overwrite: bool, protect: Iterable[PathLike]
) -> None:
    folder = target.parent
    if not folder.is_dir():
        raise ImageError(
            f"folder does not exist: {folder}; create it first (save_image creates no folders)"
        )
    # Asked now so a long run never ends on a folder it cannot write (read-only mounts included).
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ImageError(
            f"cannot write to folder {folder}: permission denied; choose another output folder"
        )
    for protected in _as_paths(protect):
        if _same_path(target, protected):
            raise ImageError(
                f"refusing to write {target}: it is the protected file {protected} "
                "(an input image); choose another output path"
            )
    if not overwrite and (target.exists() or target.is_symlink()):
        raise ImageError(f"{target} already exists; pass overwrite=True or choose another path")


def _as_paths(protect: Iterable[PathLike]) -> list[pathlib.Path]:
    # A lone path is a common slip for [path]; iterating a str would yield its characters.
    if isinstance(protect, (str, os.PathLike)):
        return [pathlib.Path(os.fspath(protect))]
    return [pathlib.Path(os.fspath(p)) for p in protect]


def _same_path(first: pathlib.Path, second: pathlib.Path) -> bool:
    if first.resolve() == second.resolve():
        return True
    try:
        # Catches hard links and case-insensitive filesystems.
        return os.path.samefile(first, second)
    except OSError:
        return False


def _png16(levels: np.ndarray[Any, Any]) -> bytes:
    """Encode ``(H, W, 3 or 4)`` uint16 levels as a 16-bit RGB or RGBA PNG (PIL cannot)."""
    height, width, channels = levels.shape
    rows = levels.astype(">u2").view(np.uint8).reshape(height, -1)
    # Filter type 0 (none) before every row: simple, and 16-bit noise barely compresses anyway.
    scanlines = np.concatenate([np.zeros((height, 1), np.uint8), rows], axis=1)
    color_type = 2 if channels == 3 else 6
    header = struct.pack(">IIBBBBB", width, height, 16, color_type, 0, 0, 0)
    return b"".join(
        [
            b"\x89PNG\r\n\x1a\n",
            _png_chunk(b"IHDR", header),
            _png_chunk(b"IDAT", zlib.compress(scanlines.tobytes(), 6)),
            _png_chunk(b"IEND", b""),
        ]
    )


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    checksum = zlib.crc32(kind + data)
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", checksum)


def _tiff16(levels: np.ndarray[Any, Any]) -> bytes:
    """Encode ``(H, W, 3 or 4)`` uint16 levels as an uncompressed little-endian baseline TIFF."""
    height, width, channels = levels.shape
    data = levels.astype("<u2").tobytes()
    short, long = 3, 4
    count = 10 if channels == 3 else 11
    bits_at = 8 + 2 + 12 * count + 4  # header, entry count, entries, next-IFD offset
    data_at = bits_at + 2 * channels
    entries = [
        (256, long, 1, width),
        (257, long, 1, height),
        (258, short, channels, bits_at),  # BitsPerSample: too many to fit, so an offset
        (259, short, 1, 1),  # no compression
        (262, short, 1, 2),  # RGB
        (273, long, 1, data_at),
        (277, short, 1, channels),
        (278, long, 1, height),  # one strip
        (279, long, 1, len(data)),
        (284, short, 1, 1),  # interleaved channels
    ]
    if channels == 4:
        entries.append((338, short, 1, 2))  # ExtraSamples: unassociated alpha
    # Little-endian: a SHORT value stored in the 4-byte field packs like a LONG.
    table = b"".join(struct.pack("<HHII", *entry) for entry in entries)
    return b"".join(
        [
            struct.pack("<2sHI", b"II", 42, 8),
            struct.pack("<H", count),
            table,
            struct.pack("<I", 0),
            struct.pack(f"<{channels}H", *([16] * channels)),
            data,
        ]
    )


def _write_atomically(encode: Callable[[IO[bytes]], object], target: pathlib.Path) -> None:
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.tmp")
    committed = False
    try:
        # os.open with 0o666 lets the umask set the permissions, as for any new file.
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        with os.fdopen(os.open(temporary, flags, 0o666), "wb") as handle:
            encode(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
        committed = True
    except OSError as exc:
        raise ImageError(f"cannot write {target}: {exc}") from exc
    finally:
        if not committed:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
