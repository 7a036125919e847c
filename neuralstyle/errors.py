"""The exceptions neuralstyle raises for bad input.

Every error subclasses :class:`NeuralStyleError` *and* the builtin that fits the mistake
(``ValueError``, ``TypeError``, ``FileNotFoundError``), so callers can catch either the library's
family or the Python idiom they already use. Messages say what was expected, what was given, and
how to fix it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "ConfigError",
    "DTypeError",
    "DeviceMismatchError",
    "ImageError",
    "ImageNotFoundError",
    "InsufficientMemoryError",
    "LayerNotFoundError",
    "NeuralStyleError",
    "NumericalError",
    "ShapeError",
    "WeightsError",
    "WeightsNotFoundError",
    "closest_names",
]


class NeuralStyleError(Exception):
    """Base class of every error raised by neuralstyle for bad input or a failed run."""


class ShapeError(NeuralStyleError, ValueError):
    """A tensor has the wrong rank, size, or a shape that does not match its partner."""


class DTypeError(NeuralStyleError, TypeError):
    """A tensor has a dtype the function cannot work with (integer, bool, complex)."""


class DeviceMismatchError(NeuralStyleError, ValueError):
    """Tensors that must be combined live on different devices."""


class LayerNotFoundError(NeuralStyleError, ValueError):
    """A layer name is not one the network provides; the message lists the closest valid names."""


class ConfigError(NeuralStyleError, ValueError):
    """An option or weight is out of range, inconsistent, or unknown."""


class ImageError(NeuralStyleError, ValueError):
    """An image cannot be read, decoded, or converted to RGB."""


class ImageNotFoundError(ImageError, FileNotFoundError):
    """An image path does not exist."""


class WeightsError(NeuralStyleError, ValueError):
    """A weights file is corrupt, unsafe, or does not fit the network (keys, shapes, checksum)."""


class WeightsNotFoundError(NeuralStyleError, FileNotFoundError):
    """Weights are not available locally and cannot be downloaded; the message says where to put
    them."""


class InsufficientMemoryError(NeuralStyleError, MemoryError):
    """A run's estimated peak memory exceeds what the device has free; the message gives the
    largest size that fits and the tiling option (see :func:`neuralstyle.memory.check_fits`)."""


class NumericalError(NeuralStyleError, ArithmeticError):
    """A computation inside a loss could not be carried out on the values it was given (an
    eigendecomposition that does not converge, non-finite features); the message says what to
    try."""


def closest_names(name: str, choices: Iterable[str], limit: int = 3) -> list[str]:
    """Up to ``limit`` of ``choices`` that look most like ``name``: every "did you mean" uses it.

    Example:
        >>> closest_names("relu2_2", ["relu1_1", "relu2_1", "relu3_1"])
        ['relu2_1', 'relu3_1', 'relu1_1']
    """
    return difflib.get_close_matches(name, list(choices), n=limit, cutoff=0.5)
