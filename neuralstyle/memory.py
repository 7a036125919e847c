"""Memory before a run: estimate a run's peak, and refuse a size that will not fit the device.

A step keeps every activation of the network for the backward pass, so memory grows with the
pixel count, like the time. Rather than a table per backbone, the estimate measures the run's own
network and losses once: a probe encodes targets and does one step at two small square sizes on
the run's device, adding up the bytes of every tensor the step creates and subtracting them when
freed. It watches through public PyTorch hooks only: a torch function mode sees every tensor the
forward passes' torch calls return, saved-tensor hooks what autograd keeps for the backward pass
(what an operator saves without returning it too), and hooks on every node of the backward graph
the gradients each node receives and makes; where the autograd engine adds two gradients of one
tensor between nodes, the sum is counted from the sizes. Every tensor is either a feature map,
which grows with the pixels, or a Gram matrix or scalar, which does not, so the live bytes at each
moment of a step are a line in the pixel count; two probes give every line, and the peak at any
size is the highest of them. The rest is counted: the optimizer's state (Adam 2 images, L-BFGS up
to 100 pairs of them), the image-sized buffers a run keeps, the previous scale of a coarse-to-fine
run, for a tiled run the buffers held at the full size, and what the count cannot see (scratch
inside an operator or a backward formula, the allocator's overhead), calibrated.
``scripts/memory_table.py`` compares the estimates with peaks measured in fresh processes (see
docs/howto/performance.md).

Example:
    >>> from neuralstyle.memory import estimate_peak_bytes
    >>> transfer = StyleTransfer()  # doctest: +SKIP
    >>> f"{estimate_peak_bytes(transfer, 1024, 1024) / 2**30:.1f} GiB"  # doctest: +SKIP
    '3.1 GiB'
"""

from __future__ import annotations

import math
import os
import sys
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np
import torch

from neuralstyle._live_bytes import LiveBytes
from neuralstyle.config import TransferConfig
from neuralstyle.errors import InsufficientMemoryError
from neuralstyle.features import FeatureExtractor
from neuralstyle.layers import LayerMap
from neuralstyle.objective import Objective
from neuralstyle.scales import scale_sizes

__all__ = [
    "MemoryEstimate",
    "RunSetup",
    "available_bytes",
    "check_fits",
    "estimate_memory",
    "estimate_peak_bytes",
    "largest_fitting_side",
]


class RunSetup(Protocol):
    """What an estimate reads of a run: a :class:`~neuralstyle.StyleTransfer` or an
    :class:`~neuralstyle.Objective` (whose config carries the run's options)."""

    @property
    def config(self) -> TransferConfig: ...

    @property
    def extractor(self) -> FeatureExtractor: ...

    @property
    def layer_map(self) -> LayerMap: ...

    @property
    def device(self) -> torch.device: ...


@dataclass(frozen=True)
class _Setup:
    """A run setup with another config: how the tiling hint asks "what if the tiles were ..."."""

    config: TransferConfig
    extractor: FeatureExtractor
    layer_map: LayerMap
    device: torch.device


_GIB = 2**30
# L-BFGS as make_optimizer builds it: 100 (s, y) pairs of image-sized vectors at most.
_LBFGS_HISTORY = 100
# What the probe's count cannot see, calibrated against peaks measured in fresh processes
# (scripts/memory_table.py): op-internal scratch (oneDNN reorders, cuDNN workspaces, temporaries
# of a backward formula) as a multiple of the network's largest feature map, and the allocator's
# fragmentation and libraries' caches as bytes.
_WORKSPACE = 3.5
_OVERHEAD = 96 * 2**20
# What available_bytes reports for a device type with no way to ask.
_NO_LIMIT = sys.maxsize
# Tile sides the refusal message may suggest, largest first.
_TILE_SIDES = (2048, 1536, 1024, 768, 512, 384, 256, 128)


@dataclass(frozen=True)
class _Lines:
    """The live bytes at every moment of a phase, each a line ``slope * pixels + offset``."""

    slopes: np.ndarray[Any, np.dtype[np.float64]]
    offsets: np.ndarray[Any, np.dtype[np.float64]]

    @classmethod
    def fit(cls, small: Sequence[int], large: Sequence[int], pixels: tuple[int, int]) -> _Lines:
        """The lines through the same moments measured at two pixel counts."""
        low, high = np.asarray(small, np.float64), np.asarray(large, np.float64)
        slopes = (high - low) / (pixels[1] - pixels[0])
        return cls(slopes, low - slopes * pixels[0])

    def peak(self, pixels: float) -> float:
        """The highest live bytes of the phase at ``pixels``."""
        return float(np.max(self.slopes * pixels + self.offsets))

    def last(self, pixels: float) -> float:
        """The live bytes when the phase ends (what it leaves behind)."""
        return float(self.slopes[-1] * pixels + self.offsets[-1])


@dataclass(frozen=True)
class _Probe:
    """What one run's network and losses use per pixel, measured once at batch 1.

    Attributes:
        encode: Encoding the targets without gradients (content and style forwards, the
            reference loss); the last moment holds the targets.
        forward: One forward pass of one image without gradients (a tiled scale's style).
        step: One loss evaluation and its backward pass, with the targets, the image and its
            gradient alive.
        content_maps: Float32 bytes per pixel of the content layers' feature maps.
        style_maps: Float32 bytes per pixel of the style layers' feature maps.
        largest: Bytes per pixel of the largest tensor of a forward pass (the widest feature map:
            the scale of op-internal scratch).
    """

    encode: _Lines
    forward: _Lines
    step: _Lines
    content_maps: float
    style_maps: float
    largest: float


_PROBES: weakref.WeakKeyDictionary[FeatureExtractor, dict[tuple[object, ...], _Probe]] = (
    weakref.WeakKeyDictionary()
)


@dataclass(frozen=True)
class MemoryEstimate:
    """A run's estimated peak memory, in bytes, with its main parts (at the output scale).

    Attributes:
        total: The peak over the whole run: the largest of ``weights + full_size + encode`` and
            ``weights + full_size + step + optimizer`` at every scale, plus op-internal scratch
            and the allocator's overhead.
        weights: The network's parameters and buffers (already loaded when a run checks).
        full_size: Held at the output size all along: the content batch, and for a tiled run
            its image-sized buffers and the content layers' maps.
        encode: Encoding the targets at the output size (no gradients).
        step: One step: activations kept for backward, gradients, the targets, and the run's
            image-sized copies (of a tile, when tiled).
        optimizer: The optimizer's state (of a tile, when tiled).
        tile: The tile side in effect at the output size, or None for whole images.
    """

    total: int
    weights: int
    full_size: int
    encode: int
    step: int
    optimizer: int
    tile: int | None


def available_bytes(device: torch.device) -> int:
    """Bytes a run could still allocate on ``device``.

    CPU: ``MemAvailable`` of ``/proc/meminfo`` (what the kernel can hand out without swapping),
    capped by a cgroup v2 memory limit when one applies; elsewhere the free physical pages.
    CUDA: the driver's free memory plus what PyTorch's caching allocator holds unused. MPS: the
    recommended working set minus what is allocated. Other device types report no limit.

    Args:
        device: The device a run will use.

    Returns:
        Bytes available, or ``sys.maxsize`` when the device type gives no way to tell.
    """
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        return int(free + cached)
    if device.type == "mps":
        recommended = torch.mps.recommended_max_memory()
        return max(0, int(recommended - torch.mps.current_allocated_memory()))
    if device.type == "cpu":
        return _cpu_available()
    return _NO_LIMIT


def _cpu_available() -> int:
    available = _meminfo_available()
    if available is None:
        available = _sysconf_available()
    limit = _cgroup_free()
    return available if limit is None else min(available, limit)


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _sysconf_available() -> int:
    page = os.sysconf("SC_PAGE_SIZE")
    for name in ("SC_AVPHYS_PAGES", "SC_PHYS_PAGES"):  # macOS lacks the first
        try:
            return int(os.sysconf(name) * page)
        except (ValueError, OSError):
            continue
    return _NO_LIMIT


def _cgroup_free(root: str = "/sys/fs/cgroup") -> int | None:
    """A container's memory limit minus its use (cgroup v2), or None without a limit."""
    try:
        with open(os.path.join(root, "memory.max"), encoding="ascii") as limit_file:
            limit = limit_file.read().strip()
        with open(os.path.join(root, "memory.current"), encoding="ascii") as current_file:
            current = int(current_file.read().strip())
    except (OSError, ValueError):
        return None
    if limit == "max":
        return None
    return max(0, int(limit) - current)


def estimate_peak_bytes(transfer: RunSetup, height: int, width: int, batch: int = 1) -> int:
    """Estimated peak memory, in bytes, of ``transfer`` making a ``height x width`` output.

    Counts the network's weights, encoding the targets, the activations a step keeps for its
    backward pass and the gradients, the optimizer's state, the image-sized buffers of the run and
    every scale of a coarse-to-fine run. With ``config.tile_size`` set and the long side above it,
    a step works on one ``tile_size`` square at a time while the full-size buffers stay. The
    first call for a network and loss setup probes it (about a second on a CPU for VGG16); later
    calls are arithmetic. Calibration: docs/howto/performance.md.

    Args:
        transfer: The configured run (network, layer map, config, device).
        height: Output height in pixels.
        width: Output width in pixels.
        batch: Content images optimized together.

    Returns:
        Bytes, weights included.
    """
    return estimate_memory(transfer, height, width, batch).total


def estimate_memory(transfer: RunSetup, height: int, width: int, batch: int = 1) -> MemoryEstimate:
    """:func:`estimate_peak_bytes` with its parts: see :class:`MemoryEstimate`."""
    probe = _probe(transfer)
    config = transfer.config
    weights = _weight_bytes(transfer.extractor)
    sizes = scale_sizes(height, width, config.start_size)
    inputs = _image_bytes(batch, height * width)
    peak, previous = 0.0, 0.0
    scales = []
    for size in sizes:
        scale = _scale(transfer, probe, size, batch, previous)
        peak = max(peak, weights + inputs + scale.total)
        previous = scale.held
        scales.append(scale)
    last = scales[-1]  # the output's scale: scale_sizes always ends with it
    return MemoryEstimate(
        total=math.ceil(peak),
        weights=weights,
        full_size=round(inputs + last.full_size),
        encode=round(last.encode),
        step=round(last.step),
        optimizer=round(last.optimizer),
        tile=last.tile,
    )


@dataclass(frozen=True)
class _Scale:
    """One scale's parts in bytes; ``held`` is what it leaves alive while the next one encodes."""

    total: float
    full_size: float
    encode: float
    step: float
    optimizer: float
    held: float
    tile: int | None


def _scale(
    transfer: RunSetup,
    probe: _Probe,
    size: tuple[int, int],
    batch: int,
    previous: float,
) -> _Scale:
    config = transfer.config
    height, width = size
    pixels = height * width
    long_side = max(size)
    # The style image's size is unknown here; a square at the scale's long side bounds it.
    style_side = long_side * (config.style_scale if config.style_scale is not None else 1.0)
    style_pixels = style_side**2
    tile = config.tile_size if config.tile_size is not None else long_side
    if long_side <= tile:
        step_pixels, full_size, extra = pixels, 0.0, 0.0
        encode = batch * probe.encode.peak(max(pixels, style_pixels))
    else:
        step_pixels = min(tile, height) * min(tile, width)
        # As the tiled loop keeps them: the image, the content at the output and at this scale,
        # the previous scale while this one starts, the style image, the outputs and their
        # transient copies (12 full-size images: calibrated on a 4096 px run, 7.05 GiB measured
        # for the whole process, benchmarks/results/tiling.json), Adam's two moments of the
        # whole picture, and the content layers' maps in float32.
        moments = 2 if config.optimizer == "adam" else 0
        full_size = (12 + moments) * _image_bytes(batch, pixels)
        full_size += batch * probe.content_maps * pixels
        # The content maps and the style's statistics are both gathered one tile at a time.
        encode = batch * probe.encode.peak(step_pixels)
        # A tile's loss counts only its core: masked copies of the style and content maps, and
        # the core mask applied to the gradient.
        extra = probe.style_maps + 2 * probe.content_maps + _image_bytes(1, 1)
    # Besides the image and its gradient (in the probe): the best image, the copy taken before
    # each step, the moving average when kept, the content resized to this scale.
    copies = 3 + (config.ema_decay is not None)
    images = copies * _image_bytes(batch, step_pixels)
    optimizer = _optimizer_images(transfer) * _image_bytes(batch, step_pixels)
    step = batch * (probe.step.peak(step_pixels) + extra * step_pixels) + images
    scratch = _WORKSPACE * batch * probe.largest * step_pixels
    total = full_size + max(encode + previous, step + optimizer) + scratch + _OVERHEAD
    image_and_grad = 2 * _image_bytes(batch, step_pixels)
    held = full_size + batch * probe.encode.last(pixels) + images + optimizer + image_and_grad
    tile_side = None if long_side <= tile else tile
    return _Scale(total, full_size, encode, step, optimizer, held, tile_side)


def _optimizer_images(transfer: RunSetup) -> int:
    """Image-sized buffers of the optimizer's state (a custom factory counts as Adam)."""
    config = transfer.config
    if config.optimizer != "lbfgs":
        return 2  # Adam's two moments
    # One (s, y) pair per step after the first, at most 100, one more while the oldest goes;
    # plus the last direction and gradient.
    return 2 * (min(config.steps, _LBFGS_HISTORY) + 1) + 2


def _image_bytes(batch: int, pixels: float) -> float:
    return 3 * 4 * batch * pixels


def _weight_bytes(extractor: FeatureExtractor) -> int:
    tensors = [*extractor.parameters(), *extractor.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors)


# -- the probe -------------------------------------------------------------------------------------


def _probe(transfer: RunSetup) -> _Probe:
    """The cached probe of the transfer's network and loss setup, measuring it on first use."""
    config = transfer.config
    key = (
        str(transfer.device),
        config.precision,
        config.channels_last,
        tuple(transfer.layer_map.content.items()),
        tuple(transfer.layer_map.style.items()),
        config.content_weight > 0,
        config.style_weight > 0,
        config.tv_weight > 0,
        config.content_structure > 0,
        config.style_loss,
        config.gram_normalize,
        config.balance,
        config.preserve_color,
    )
    cache = _PROBES.setdefault(transfer.extractor, {})
    if key not in cache:
        cache[key] = _measure(transfer)
    return cache[key]


def _probe_sides(extractor: FeatureExtractor) -> tuple[int, int]:
    """Two square sides where every map is an exact fraction of the input (VGG halves 5 times)."""
    small = 32 * math.ceil(max(extractor.min_size, 32) / 32)
    return small, 2 * small


def _measure(transfer: RunSetup) -> _Probe:
    """Probe the setup at two sizes; retry once if the two did not run the same ops."""
    _load_what_a_run_loads()
    sides = _probe_sides(transfer.extractor)
    pixels = (sides[0] ** 2, sides[1] ** 2)
    small, large = (_trace(transfer, side) for side in sides)
    if not small.same_ops(large):
        small, large = (_trace(transfer, side) for side in sides)
    if small.same_ops(large):
        phases = [_Lines.fit(low, high, pixels) for low, high in zip(small, large, strict=True)]
    else:  # should not happen: bound each phase by the line through its two peaks instead
        phases = [
            _Lines.fit([max(low)], [max(high)], pixels)
            for low, high in zip(small, large, strict=True)
        ]
    encode, forward, step = phases
    largest = large.largest / pixels[1]
    return _Probe(encode, forward, step, large.content_maps, large.style_maps, largest)


def _load_what_a_run_loads() -> None:
    """Build and drop a torch optimizer, as every run builds one.

    The first optimizer a process builds loads modules (torch 2.14's ``Optimizer.__init__``
    imports ``torch._dynamo`` and its dependencies: about 160 MiB resident on a CPU). Loaded here,
    they are in use when :func:`check_fits` reads the free memory, not a surprise inside the run,
    as the calibration of ``_OVERHEAD`` (measured from after the probe) assumes.
    """
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])


@dataclass(frozen=True)
class _Trace:
    """Live bytes after every op of the probe's three phases, at one size."""

    encode: list[int]
    forward: list[int]
    step: list[int]
    content_maps: float
    style_maps: float
    largest: int

    def __iter__(self) -> Iterator[list[int]]:
        return iter((self.encode, self.forward, self.step))

    def same_ops(self, other: _Trace) -> bool:
        return all(len(mine) == len(theirs) for mine, theirs in zip(self, other, strict=True))


def _trace(transfer: RunSetup, side: int) -> _Trace:
    """Encode targets, forward the style alone, and do one loss and backward pass on ``side``
    squares, counting bytes."""
    probe = _probe_objective(transfer)
    counter = LiveBytes()
    marks = []
    with _gradients_on():
        generator = torch.Generator().manual_seed(0)  # never the global RNG
        content, style = torch.rand(2, 1, 3, side, side, generator=generator).to(transfer.device)
        with counter.watching():
            targets = probe.targets(content, [style])
            marks.append(counter.mark())
            counter.largest = 0
            with torch.no_grad():
                features = probe.features(style)
            largest = counter.largest
            style_maps = sum(features[name].numel() * 4 for name in probe.layer_map.style)
            content_maps = sum(maps.numel() * 4 for maps in targets.content.values())
            del features
            marks.append(counter.mark())
            image = content.detach().clone().requires_grad_(True)
            total = probe(image, targets).total
        counter.backward(total)
        del total, image, targets
    counter.detach()
    events = counter.events
    encode, forward, step = events[: marks[0]], events[marks[0] : marks[1]], events[marks[1] :]
    area = side**2
    return _Trace(encode, forward, step, content_maps / area, style_maps / area, largest)


def _probe_objective(transfer: RunSetup) -> Objective:
    """The run's objective on one whole-image scale through the plain (uncompiled) network."""
    config = replace(
        transfer.config,
        start_size=None,
        tile_size=None,
        check_memory=False,
        style_scale=1.0,
        style_blend=None,
        compile=False,
    )
    return Objective(transfer.layer_map, config=config, extractor=transfer.extractor)


@contextmanager
def _gradients_on() -> Iterator[None]:
    """Gradients on, even if the caller is under ``no_grad`` or ``inference_mode``."""
    with torch.inference_mode(False), torch.enable_grad():
        yield


# -- fitting and refusing --------------------------------------------------------------------------


def _fits(transfer: RunSetup, side: int, shape: tuple[int, int], batch: int, room: int) -> bool:
    height, width = _with_long_side(shape, side)
    return _needed(transfer, height, width, batch) <= room


def _needed(transfer: RunSetup, height: int, width: int, batch: int) -> int:
    """Bytes a run still needs: its peak less the weights, already on the device."""
    return estimate_peak_bytes(transfer, height, width, batch) - _weight_bytes(transfer.extractor)


def _with_long_side(shape: tuple[int, int], side: int) -> tuple[int, int]:
    """``(height, width)`` of ``shape`` resized to long side ``side``, as load_image resizes."""
    height, width = shape
    factor = side / max(height, width)
    return max(1, round(height * factor)), max(1, round(width * factor))


def largest_fitting_side(
    transfer: RunSetup,
    height: int,
    width: int,
    batch: int = 1,
    available: int | None = None,
) -> int:
    """The largest long side, at the aspect of ``height x width``, whose run fits in memory.

    Args:
        transfer: The configured run.
        height: Height of the image (only its aspect ratio matters).
        width: Width of the image.
        batch: Content images optimized together.
        available: Bytes free for the run beyond the loaded network; None reads
            :func:`available_bytes` of the run's device.

    Returns:
        The long side in pixels (possibly larger than ``max(height, width)``), or 0 when not even
        the network's smallest input fits.
    """
    room = available_bytes(transfer.device) if available is None else available
    shape = (height, width)
    smallest = max(transfer.extractor.min_size, 1)

    def fits(side: int) -> bool:
        return _fits(transfer, side, shape, batch, room)

    if not fits(smallest):
        return 0
    # Above the tile size a step only sees a tile, so memory drops there: search that part
    # first, then the whole-image sizes below it.
    tile = transfer.config.tile_size
    if tile is not None and tile >= smallest and fits(tile + 1):
        return _last_fitting(fits, tile + 1)
    return _last_fitting(fits, smallest, None if tile is None else tile)


def _last_fitting(fits: Callable[[int], bool], low: int, cap: int | None = None) -> int:
    """The largest side from ``low`` (which fits) up to ``cap`` that fits, by doubling then
    bisecting (memory grows with the side)."""
    high = low
    limit = cap if cap is not None else 1 << 20
    while high < limit and fits(min(2 * high, limit)):
        high = min(2 * high, limit)
    if high == limit:
        return high
    low, high = high, min(2 * high, limit)  # low fits, high does not
    while high - low > 1:
        middle = (low + high) // 2
        if fits(middle):
            low = middle
        else:
            high = middle
    return low


def check_fits(transfer: RunSetup, height: int, width: int, batch: int = 1) -> None:
    """Refuse a run that will not fit the device's free memory, before it starts.

    Does nothing when ``transfer.config.check_memory`` is False.

    Args:
        transfer: The configured run (its network already on the device).
        height: Output height in pixels.
        width: Output width in pixels.
        batch: Content images optimized together.

    Raises:
        InsufficientMemoryError: The estimated peak exceeds :func:`available_bytes`; the message
            gives the largest size that fits and, when it helps, a tile size that fits.
    """
    if not transfer.config.check_memory:
        return
    needed = _needed(transfer, height, width, batch)
    # Read after the estimate: its first probe warms the libraries up (cuDNN, oneDNN) and loads
    # what the run's optimizer loads, so what they keep is no longer counted as free.
    room = available_bytes(transfer.device)
    if needed <= room:
        return
    raise InsufficientMemoryError(_refusal(transfer, height, width, batch, needed, room))


def _refusal(
    transfer: RunSetup, height: int, width: int, batch: int, needed: int, room: int
) -> str:
    device = transfer.device
    start = (
        f"a {height}x{width} run{f' of {batch} images' if batch > 1 else ''} needs about "
        f"{_amount(needed)} beyond the loaded network but {device} has {_amount(room)} available"
    )
    side = largest_fitting_side(transfer, height, width, batch, room)
    tiling = _tiling_hint(transfer, height, width, batch, room)
    fixes = []
    # A larger side can fit where this one does not when it would be tiled (above tile_size);
    # then smaller tiles are the advice, not another size.
    if 0 < side < max(height, width):
        fixes.append(
            f"the largest size that fits is {side} px (--size {side} / config size={side})"
        )
    if tiling:
        fixes.append(tiling)
    if not fixes:
        fixes.append("no smaller size or tile fits; free memory or use another device")
    return f"{start}; {', or '.join(fixes)}; --no-check-memory skips this check"


def _tiling_hint(transfer: RunSetup, height: int, width: int, batch: int, room: int) -> str | None:
    """Suggest the largest tile side that makes the run fit, if one does."""
    current = transfer.config.tile_size
    long_side = max(height, width)
    for tile in _TILE_SIDES:
        if tile >= long_side or (current is not None and tile >= current):
            continue
        if tile < transfer.extractor.min_size:
            break
        config = replace(transfer.config, tile_size=tile)
        tiled = _Setup(config, transfer.extractor, transfer.layer_map, transfer.device)
        needed = _needed(tiled, height, width, batch)
        if needed <= room:
            verb = "tile it" if current is None else "use smaller tiles"
            return (
                f"{verb}: --tile-size {tile} (config tile_size={tile}) keeps memory near "
                f"{_amount(needed)}"
            )
    return None


def _amount(size: int) -> str:
    """Bytes for a message: GiB with one decimal from 1 GiB, else whole MiB."""
    if size >= _GIB:
        return f"{size / _GIB:.1f} GiB"
    return f"{size / 2**20:.0f} MiB"
