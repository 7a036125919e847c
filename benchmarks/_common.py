"""Helpers shared by the benchmarks: seeded weights, the seed's image loading, timing, FLOPs.

Nothing here belongs to the library: these are the measuring instruments, kept apart so the
baseline and the benchmark cannot drift in how they load pixels or read a clock.
"""

from __future__ import annotations

import contextlib
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision  # type: ignore[import-untyped]
from PIL import Image
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode
from torchvision import transforms

__all__ = [
    "ConvThroughput",
    "PeakMemory",
    "count_flops",
    "load_pixels",
    "load_vgg19_features",
    "measure_conv_throughput",
    "peak_memory",
    "seconds_per_call",
    "seeded_vgg19_features",
    "synchronize",
]


def seeded_vgg19_features(seed: int) -> nn.Sequential:
    """torchvision's randomly initialized ``vgg19().features``, reproducible from ``seed``.

    The caller's global RNG state is left as it was (``fork_rng``), so seeding here never changes
    what other code draws.

    Args:
        seed: Seed of torchvision's initialization.

    Returns:
        The 37-module feature stack, in train mode with trainable parameters (as constructed).

    Example:
        >>> features = seeded_vgg19_features(0)
        >>> len(features)
        37
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        features: nn.Sequential = torchvision.models.vgg19(weights=None).features
    return features


def load_pixels(path: str | Path, size: int | tuple[int, int]) -> Tensor:
    """Load an image the way the seed does, before its ``Normalize``: ``(1, 3, H, W)`` in [0, 1].

    Args:
        path: Image file.
        size: ``transforms.Resize`` size: an int resizes the *short* side (as the seed's
            ``transforms.Resize(128)``), ``(height, width)`` resizes exactly.

    Returns:
        RGB float32 pixels with a batch dimension.

    Example:
        >>> load_pixels("chelsea.jpg", 128).shape  # doctest: +SKIP
        torch.Size([1, 3, 128, 192])
    """
    loader = transforms.Compose([transforms.Resize(size), transforms.ToTensor()])
    with Image.open(path) as image:
        pixels: Tensor = loader(image.convert("RGB"))
    return pixels.unsqueeze(0)


def synchronize(device: torch.device) -> None:
    """Wait for queued work on ``device`` so a clock read measures it (no-op on CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def seconds_per_call(
    fn: Callable[[], object],
    *,
    device: torch.device,
    warmup: int,
    blocks: int,
    calls_per_block: int,
) -> float:
    """Median over ``blocks`` of the mean wall time of ``fn`` within a block.

    The clock is read (and the device synchronized) only at block edges, so the calls inside a
    block run as they would in a real loop, without host syncs. The median keeps one disturbed
    block on a shared machine from moving the result.

    Args:
        fn: The call to time.
        device: Where ``fn`` queues its work.
        warmup: Untimed calls first (allocator, kernels, caches).
        blocks: Timed blocks.
        calls_per_block: Calls per block.

    Returns:
        Seconds per call.

    Example:
        >>> seconds_per_call(lambda: None, device=torch.device("cpu"), warmup=0, blocks=3,
        ...                  calls_per_block=2) < 1.0
        True
    """
    for _ in range(warmup):
        fn()
    synchronize(device)
    means: list[float] = []
    for _ in range(blocks):
        began = time.perf_counter()
        for _ in range(calls_per_block):
            fn()
        synchronize(device)
        means.append((time.perf_counter() - began) / calls_per_block)
    return statistics.median(means)


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs of one call of ``fn`` as ``torch.utils.flop_counter.FlopCounterMode`` counts them.

    The counter covers matmuls and convolutions, forward and backward (a multiply-add is 2 FLOPs);
    elementwise work is not counted.

    Example:
        >>> count_flops(lambda: torch.ones(2, 3) @ torch.ones(3, 4))
        48
    """
    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return int(counter.get_total_flops())


@dataclass(frozen=True)
class ConvThroughput:
    """A measured convolution throughput.

    Attributes:
        description: What was run, for the printed table.
        flops: FLOPs of one call.
        seconds: Median seconds of one call.
    """

    description: str
    flops: int
    seconds: float

    @property
    def flops_per_second(self) -> float:
        """The throughput."""
        return self.flops / self.seconds


def measure_conv_throughput(
    device: torch.device,
    *,
    channels: int = 256,
    size: int = 64,
    warmup: int = 3,
    repeats: int = 15,
) -> ConvThroughput:
    """Forward throughput of one representative VGG 3x3 convolution (batch 1, float32, pad 1).

    Both memory layouts are timed and the faster kept: the reference is the best this machine
    does on that shape, whichever layout the loop under test uses.

    Args:
        device: Where to run.
        channels: Input and output channels (VGG's conv3_x has 256 at 1/4 resolution).
        size: Height and width of the input.
        warmup: Untimed calls.
        repeats: Timed calls per layout; the median is kept.

    Returns:
        The :class:`ConvThroughput`.

    Example:
        >>> measure_conv_throughput(torch.device("cpu"), channels=8, size=8).flops
        73728
    """
    generator = torch.Generator().manual_seed(0)
    data = torch.randn(1, channels, size, size, generator=generator).to(device)
    weight = torch.randn(channels, channels, 3, 3, generator=generator).to(device) * 0.02
    bias = torch.zeros(channels, device=device)
    timings: dict[str, tuple[int, float]] = {}
    for layout, memory_format in (
        ("NCHW", torch.contiguous_format),
        ("channels-last", torch.channels_last),
    ):
        x = data.contiguous(memory_format=memory_format)
        w = weight.contiguous(memory_format=memory_format)

        def convolve(x: Tensor = x, w: Tensor = w) -> Tensor:
            return F.conv2d(x, w, bias, padding=1)

        with torch.no_grad():
            flops = count_flops(convolve)
            seconds = seconds_per_call(
                convolve, device=device, warmup=warmup, blocks=repeats, calls_per_block=1
            )
        timings[layout] = (flops, seconds)
    layout = min(timings, key=lambda name: timings[name][1])
    flops, seconds = timings[layout]
    description = (
        f"conv2d 3x3 {channels}->{channels} ch, {size}x{size}, batch 1, float32, forward, "
        f"median of {repeats}, {layout} (the faster layout)"
    )
    return ConvThroughput(description, flops, seconds)


def load_vgg19_features(path: str | Path) -> nn.Sequential:
    """``vgg19().features`` holding the state dict saved at ``path``, without random init first.

    The modules are built on the meta device and the saved tensors assigned to them: a process
    that only needs known weights (a memory probe) skips torchvision's initialization, which
    costs seconds for the classifier alone. ``requires_grad`` stays as constructed (True).

    Example:
        >>> torch.save(seeded_vgg19_features(0).state_dict(), "vgg19.pt")  # doctest: +SKIP
        >>> len(load_vgg19_features("vgg19.pt"))  # doctest: +SKIP
        37
    """
    with torch.device("meta"):
        features: nn.Sequential = torchvision.models.vgg19(weights=None).features
    features.load_state_dict(torch.load(path, weights_only=True), assign=True)
    return features


@dataclass
class PeakMemory:
    """What :func:`peak_memory` read: filled in when its ``with`` block ends.

    Attributes:
        method: How it was measured, for the report.
        baseline_bytes: In use when the block began.
        peak_bytes: The most in use during the block (None until the block ends).
    """

    method: str
    baseline_bytes: int
    peak_bytes: int | None = None

    @property
    def added_bytes(self) -> int:
        """Peak above the baseline: what the block itself needed."""
        if self.peak_bytes is None:
            raise RuntimeError("the peak is known once the peak_memory block has ended")
        return max(self.peak_bytes - self.baseline_bytes, 0)


@contextlib.contextmanager
def peak_memory(device: torch.device) -> Iterator[PeakMemory]:
    """Measure the peak memory of the ``with`` block on ``device``.

    CUDA: ``torch.cuda.max_memory_allocated`` after resetting the peak (tensors only, not the
    allocator's cache). CPU on Linux: the peak resident set ``VmHWM``, reset first
    (``/proc/self/clear_refs``) so an earlier, larger peak (building a network) does not hide the
    block's own; not ``ru_maxrss``, which on Linux also keeps the size of the image an ``exec``
    replaced (a subprocess of a large parent reports the parent's size). Elsewhere: the growth of
    ``ru_maxrss``. RSS counts everything the process touched, so run each measurement in a fresh
    process for a clean baseline.

    Example:
        >>> with peak_memory(torch.device("cpu")) as reading:
        ...     data = torch.ones(4_000_000)
        >>> reading.peak_bytes >= reading.baseline_bytes
        True
    """
    if device.type == "cuda":
        synchronize(device)
        reading = PeakMemory("torch.cuda.max_memory_allocated", torch.cuda.memory_allocated(device))
        torch.cuda.reset_peak_memory_stats(device)
        yield reading
        synchronize(device)
        reading.peak_bytes = torch.cuda.max_memory_allocated(device)
        return
    if device.type != "cpu":
        raise ValueError(f"peak_memory measures 'cuda' or 'cpu', got {device.type!r}")
    reset = _reset_peak_rss()
    baseline = _status_bytes("VmRSS")
    if baseline is None:  # no /proc: the growth of ru_maxrss is all there is
        reading = PeakMemory("ru_maxrss growth", _max_rss())
        yield reading
        reading.peak_bytes = _max_rss()
        return
    method = "VmHWM - VmRSS before" + (" (high-water mark reset)" if reset else "")
    reading = PeakMemory(method, baseline)
    yield reading
    reading.peak_bytes = _status_bytes("VmHWM")


def _max_rss() -> int:
    import resource  # POSIX only: imported here so the module still loads elsewhere

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024  # bytes vs KiB


def _status_bytes(field: str) -> int | None:
    """``VmRSS`` or ``VmHWM`` of this process in bytes (Linux ``/proc``), else None."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    return None


def _reset_peak_rss() -> bool:
    """Reset the peak resident set to the current one (Linux >= 4.0); False where impossible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True
