"""Boundary checks for tensors shared by every public function.

Each check raises a typed error from :mod:`neuralstyle.errors` whose message names the argument,
what was expected and what was given. None of them reads tensor *values* (that would force a
device sync); they only look at metadata.
"""

from __future__ import annotations

import torch
from torch import Tensor

from neuralstyle.errors import DeviceMismatchError, DTypeError, ShapeError


def check_float_tensor(tensor: object, name: str) -> Tensor:
    """Return ``tensor`` if it is a floating-point :class:`torch.Tensor`, else raise."""
    if not isinstance(tensor, Tensor):
        raise DTypeError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}")
    if not tensor.is_floating_point():
        raise DTypeError(
            f"{name} must be a floating-point tensor (float32, float64, bfloat16 or float16), "
            f"got {tensor.dtype}; convert it with .float()"
        )
    return tensor


def check_rank(tensor: Tensor, name: str, ndim: int, layout: str) -> None:
    """Raise :class:`ShapeError` unless ``tensor`` has exactly ``ndim`` dimensions."""
    if tensor.dim() != ndim:
        raise ShapeError(
            f"{name} must be a {ndim}-d tensor {layout}, got {tensor.dim()}-d with shape "
            f"{tuple(tensor.shape)}"
        )


def check_feature_maps(tensor: object, name: str) -> Tensor:
    """Check a ``(B, C, H, W)`` floating-point feature map with non-empty dimensions."""
    features = check_float_tensor(tensor, name)
    check_rank(features, name, 4, "(B, C, H, W)")
    if features.numel() == 0:
        raise ShapeError(
            f"{name} must have non-empty dimensions (B, C, H, W), got shape {tuple(features.shape)}"
        )
    return features


def check_same_device(first: Tensor, second: Tensor, names: str) -> None:
    """Raise :class:`DeviceMismatchError` when two tensors live on different devices."""
    if first.device != second.device:
        raise DeviceMismatchError(
            f"{names} must be on the same device, got {first.device} and {second.device}; "
            "move one with .to(device)"
        )


def check_same_shape(first: Tensor, second: Tensor, names: str) -> None:
    """Raise :class:`ShapeError` when two tensors differ in shape."""
    if first.shape != second.shape:
        raise ShapeError(
            f"{names} must have the same shape, got {tuple(first.shape)} and {tuple(second.shape)}"
        )


def is_low_precision(tensor: Tensor) -> bool:
    """True for float16/bfloat16 tensors, whose sums must be accumulated in float32."""
    return tensor.dtype in (torch.float16, torch.bfloat16)
