"""Precision: which one a run uses, and where to compute in full precision (sums of many
products, such as Grams and covariances, under autocast)."""

from __future__ import annotations

import functools
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

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


@functools.cache
def _cpu_flags() -> frozenset[str]:
    """The CPU's feature flags as Linux reports them (empty elsewhere: nothing is assumed)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return frozenset()


def has_native_bfloat16(device: torch.device) -> bool:
    """True on CPUs with bfloat16 dot-product instructions (AVX512_BF16 or AMX).

    There a bfloat16-autocast step of the default preset is 3.3-3.4 times as fast as float32 (256
    and 512 px) and a whole run twice as fast, with the quality measures equal to 0.004
    (``benchmarks/precision.py``). Elsewhere bfloat16 is emulated on the CPU, and on GPUs nothing
    here has measured the picture yet, so they stay in float32.
    """
    return device.type == "cpu" and bool(_cpu_flags() & {"avx512_bf16", "amx_bf16"})


def resolve_precision(precision: str, device: torch.device) -> str:
    """``precision`` with ``"auto"`` resolved for ``device``: bfloat16 where it is native."""
    if precision != "auto":
        return precision
    return "bfloat16" if has_native_bfloat16(device) else "float32"
