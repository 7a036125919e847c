"""Where to compute in full precision: sums of many products (Grams, covariances) under autocast."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

import torch


def autocast_enabled(device: torch.device) -> bool:
    """True when autocast is active for ``device``'s type."""
    try:
        return torch.is_autocast_enabled(device.type)
    except RuntimeError:
        # Device types without autocast support ("meta", some backends) never autocast.
        return False


def full_precision(device: torch.device) -> AbstractContextManager[object]:
    """Switch autocast off for ``device`` inside the block, if it is on."""
    # Entering autocast(enabled=False) costs a little, and fails for "meta": only when needed.
    if autocast_enabled(device):
        return torch.autocast(device.type, enabled=False)
    return nullcontext()
