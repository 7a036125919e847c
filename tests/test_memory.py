"""The memory estimate before a run: how it scales, what it counts, and the refusal it gives."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from tiny import one_thread, picture, random_image, tiny_extractor

from neuralstyle import (
    InsufficientMemoryError,
    LayerMap,
    NeuralStyleError,
    StyleTransfer,
    TransferConfig,
    memory,
)
from neuralstyle._live_bytes import LiveBytes
from neuralstyle.cli import main
from neuralstyle.memory import (
    available_bytes,
    check_fits,
    estimate_memory,
    estimate_peak_bytes,
    largest_fitting_side,
)
from neuralstyle.presets import DEFAULT

LAYERS = LayerMap(content={"relu2_1": 1.0}, style={"relu1_1": 1.0, "relu2_1": 1.0, "relu3_1": 1.0})
CONFIG = TransferConfig(steps=300, device="cpu")
IMAGE_BYTES = 3 * 4  # float32 RGB, per pixel


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    with one_thread():
        yield


# One network for every run here: its probe is measured once per loss setup and cached.
EXTRACTOR = tiny_extractor()


def make(**changes: object) -> StyleTransfer:
    return StyleTransfer(LAYERS, config=replace(CONFIG, **changes), extractor=EXTRACTOR)


def weights(transfer: StyleTransfer) -> int:
    return sum(p.numel() * p.element_size() for p in transfer.extractor.parameters())


def needed(transfer: StyleTransfer, height: int, width: int) -> int:
    """What check_fits compares with the free memory: the peak less the loaded weights."""
    return estimate_peak_bytes(transfer, height, width) - weights(transfer)


def test_the_estimate_grows_linearly_with_the_pixels() -> None:
    transfer = make()
    sides = (256, 512, 1024, 2048)
    estimates = [estimate_peak_bytes(transfer, side, side) for side in sides]
    per_pixel = [
        (estimates[i + 1] - estimates[i]) / (sides[i + 1] ** 2 - sides[i] ** 2) for i in range(3)
    ]
    assert estimates == sorted(estimates)
    # Every extra pixel costs the same, at any size (a square four times larger costs four times
    # more, less a fixed part).
    assert per_pixel[1] == pytest.approx(per_pixel[0], rel=0.02)
    assert per_pixel[2] == pytest.approx(per_pixel[0], rel=0.02)
    assert per_pixel[0] > 100  # bytes: the tiny network's maps, gradients and image buffers


def test_an_oblong_image_costs_its_pixels_not_its_long_side() -> None:
    transfer = make()
    square = estimate_peak_bytes(transfer, 512, 512)
    # The style image's size is unknown before it loads: it is bounded by the long side's square.
    assert estimate_peak_bytes(transfer, 256, 512) < square
    assert estimate_peak_bytes(transfer, 256, 512) == estimate_peak_bytes(transfer, 512, 256)


def test_a_batch_costs_about_its_size_times_one_image() -> None:
    transfer = make()
    one, two, three = (estimate_peak_bytes(transfer, 512, 512, batch=b) for b in (1, 2, 3))
    assert three - two == pytest.approx(two - one, rel=1e-3)
    # One more item costs at least what the pixels of one item cost.
    quarter = estimate_peak_bytes(transfer, 256, 256)
    pixels_of_one = (one - quarter) * 4 / 3
    assert two - one >= 0.95 * pixels_of_one


def test_bfloat16_autocast_needs_less_than_float32() -> None:
    full = estimate_memory(make(), 512, 512)
    half = estimate_memory(make(precision="bfloat16"), 512, 512)
    # Autocast halves the network's activations; the Grams' float32 copies and the image-sized
    # buffers stay.
    assert half.encode < 0.8 * full.encode
    assert half.step < full.step
    assert half.total < full.total


def test_lbfgs_adds_its_100_pairs_of_image_sized_vectors_to_adam() -> None:
    adam = estimate_peak_bytes(make(optimizer="adam"), 512, 512)
    lbfgs = estimate_peak_bytes(make(optimizer="lbfgs"), 512, 512)
    # Adam keeps 2 image-sized moments; L-BFGS 2 x (100 + 1) history vectors, a direction and
    # the last gradient.
    assert lbfgs - adam == pytest.approx((2 * 101 + 2 - 2) * IMAGE_BYTES * 512 * 512, rel=1e-6)


def test_a_short_lbfgs_run_counts_only_the_pairs_it_can_make() -> None:
    short = estimate_peak_bytes(make(optimizer="lbfgs", steps=5), 512, 512)
    long = estimate_peak_bytes(make(optimizer="lbfgs", steps=300), 512, 512)
    assert long - short == pytest.approx(2 * 95 * IMAGE_BYTES * 512 * 512, rel=1e-6)


def test_tiling_keeps_the_step_at_the_tile_size_whatever_the_output_size() -> None:
    whole, tiled = make(), make(tile_size=128)
    big, bigger = (
        estimate_memory(tiled, 4096, 4096),
        estimate_memory(tiled, 8192, 8192),
    )
    assert big.tile == bigger.tile == 128
    assert estimate_memory(whole, 4096, 4096).tile is None
    # What stays at the full size is the picture's buffers and the style image's forward pass
    # without gradients; the activations of a step with gradients are a tile's.
    assert big.total < 0.7 * estimate_peak_bytes(whole, 4096, 4096)
    # The tile's step and optimizer do not grow with the output ...
    assert (big.step, big.optimizer) == (bigger.step, bigger.optimizer)
    # ... only the full-size buffers and the style's forward pass do.
    grown = (bigger.full_size + bigger.encode) - (big.full_size + big.encode)
    assert bigger.total - big.total == pytest.approx(grown, rel=0.01)


def test_a_size_below_the_tile_size_is_not_tiled() -> None:
    tiled = estimate_memory(make(tile_size=512), 256, 256)
    assert tiled.tile is None
    assert tiled.total == estimate_peak_bytes(make(), 256, 256)


def test_the_estimate_covers_what_a_real_step_saves_for_backward() -> None:
    transfer = make()
    height, width = 40, 56  # not a probe size, not square
    targets = transfer.targets(random_image(height, width, seed=1), random_image(seed=2))
    image = targets.content_image.clone().requires_grad_(True)
    saved: dict[int, int] = {}

    def keep(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        saved[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(keep, lambda tensor: tensor):
        total = transfer.loss(image, targets).total
    total.backward()  # type: ignore[no-untyped-call]
    estimate = estimate_memory(transfer, height, width)
    assert sum(saved.values()) > 0
    assert estimate.step >= sum(saved.values())
    assert estimate.total >= weights(transfer) + sum(saved.values())


# -- the probe's count of live bytes --------------------------------------------------------------

MAP = (1, 8, 32, 32)
MAP_BYTES = 8 * 32 * 32 * 4


def a_map(*, requires_grad: bool = True) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return torch.rand(MAP, generator=generator).requires_grad_(requires_grad)


def test_the_count_skips_tensors_made_before_it_and_views() -> None:
    weights = a_map(requires_grad=False)
    counter = LiveBytes()
    with counter.watching():
        made = [weights.view(-1), weights * 2]
    counter.detach()
    assert made[1].shape == MAP
    assert counter.events[0] == 0  # the view shares the weights' storage
    assert max(counter.events) == MAP_BYTES


def test_the_count_sees_the_backward_pass() -> None:
    image = a_map()
    counter = LiveBytes()
    with counter.watching():
        total = image.exp().sum()  # exp keeps its result for the backward pass
    forward = max(counter.events)
    counter.backward(total)
    counter.detach()
    assert image.grad is not None
    assert forward == MAP_BYTES + 4  # exp's result and the sum
    # exp's backward: its result and the image's gradient, both image-sized.
    assert 2 * MAP_BYTES <= max(counter.events) < 2 * MAP_BYTES + 1024


def test_two_gradients_of_one_tensor_count_their_sum() -> None:
    image = a_map()
    counter = LiveBytes()
    with counter.watching():
        maps = image.exp()
        # Two uses of one map, one through a permutation, as a style layer's map is used by its
        # style and content terms: the engine adds the two gradients into a new tensor, between
        # nodes, where no hook sees it.
        total = (maps * 2).sum() + (maps.permute(0, 2, 3, 1) * 3).sum()
    counter.backward(total)
    counter.detach()
    # The map, both gradients and their sum.
    assert 4 * MAP_BYTES <= max(counter.events) < 4 * MAP_BYTES + 1024


@pytest.mark.parametrize("gradients", [False, True])
def test_max_pooling_counts_its_indices(gradients: bool) -> None:
    image = a_map(requires_grad=gradients)
    counter = LiveBytes()
    with torch.set_grad_enabled(gradients), counter.watching():
        pooled = F.max_pool2d(image, 2)
    counter.detach()
    output = pooled.numel() * 4
    # int64 indices for every output element, which PyTorch computes either way: saved for the
    # backward pass, or dropped at once without gradients (where no hook sees them).
    assert max(counter.events) == output + 2 * output


@pytest.mark.parametrize(
    "changes",
    [{}, {"precision": "bfloat16"}, {"tv_weight": 1.0, "style_loss": "wasserstein"}],
    ids=["float32", "bfloat16", "tv-wasserstein"],
)
def test_the_probe_sees_the_same_moments_at_both_sizes(changes: dict[str, object]) -> None:
    transfer = make(**changes)
    small, large = (memory._trace(transfer, side) for side in memory._probe_sides(EXTRACTOR))
    # So each moment gets its own line in the pixel count, not only each phase's peak.
    assert small.same_ops(large)
    assert max(large.step) > max(small.step)


_AFTER_THE_ESTIMATE = """
import sys
import torch
from tiny import tiny_extractor
from neuralstyle import LayerMap, StyleTransfer, TransferConfig
from neuralstyle.memory import estimate_peak_bytes

layers = LayerMap(content={"relu2_1": 1.0}, style={"relu1_1": 1.0})
config = TransferConfig(device="cpu")
estimate_peak_bytes(StyleTransfer(layers, config=config, extractor=tiny_extractor()), 64, 64)
loaded = set(sys.modules)
for optimizer in (torch.optim.Adam, torch.optim.LBFGS):
    optimizer([torch.zeros(1, requires_grad=True)])
new = sorted(set(sys.modules) - loaded)
print(len(new), new[:5])
"""


def test_after_the_estimate_the_runs_optimizer_loads_no_more_modules() -> None:
    # A run builds its optimizer after check_fits has read the free memory. The first optimizer
    # of a process loads modules (torch._dynamo: about 160 MiB on a CPU) that the calibration,
    # measured from after the probe, does not count: the probe must have loaded them. A fresh
    # process, since this one may have loaded them already.
    package_root = str(Path(memory.__file__).parent.parent)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([package_root, os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [sys.executable, "-c", _AFTER_THE_ESTIMATE],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
        cwd=Path(__file__).parent,  # for tiny
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "0 []"


def test_the_probe_is_cached_and_leaves_the_global_rng_alone() -> None:
    transfer = StyleTransfer(LAYERS, config=CONFIG, extractor=tiny_extractor())  # not probed yet
    rng = torch.get_rng_state()
    estimate_peak_bytes(transfer, 64, 64)
    assert torch.equal(torch.get_rng_state(), rng)
    calls = []
    original = memory._measure

    def counting(probed: StyleTransfer) -> object:
        calls.append(probed)
        return original(probed)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(memory, "_measure", counting)
        estimate_peak_bytes(transfer, 2048, 1024)
        largest_fitting_side(transfer, 300, 200, available=10**8)
        assert calls == []  # same network and loss setup: the cached probe
        estimate_peak_bytes(
            StyleTransfer(
                LAYERS, config=replace(CONFIG, tv_weight=1.0), extractor=transfer.extractor
            ),
            64,
            64,
        )
        assert len(calls) == 1  # another loss: probed once more


def test_the_estimate_is_the_same_inside_no_grad_and_inference_mode() -> None:
    # A caller may check from code that runs without gradients; the probe's step needs them.
    fresh = [StyleTransfer(LAYERS, config=CONFIG, extractor=tiny_extractor()) for _ in range(3)]
    plain = estimate_peak_bytes(fresh[0], 100, 100)
    with torch.no_grad():
        assert estimate_peak_bytes(fresh[1], 100, 100) == plain
    with torch.inference_mode():
        assert estimate_peak_bytes(fresh[2], 100, 100) == plain


def test_the_probe_does_not_change_the_transfer() -> None:
    transfer = make(tile_size=64, start_size=32)
    config = transfer.config
    estimate_peak_bytes(transfer, 256, 256)
    assert transfer.config is config
    assert transfer.tile_plan is not None
    assert transfer.tile_plan.tile == 64


@pytest.mark.parametrize("shape", [(300, 200), (200, 300), (123, 123)])
def test_the_largest_fitting_side_fits_and_a_little_more_does_not(shape: tuple[int, int]) -> None:
    transfer = make()
    room = needed(transfer, 180, 180)
    side = largest_fitting_side(transfer, *shape, available=room)
    assert 150 < side < 260

    def at(long_side: int) -> tuple[int, int]:
        factor = long_side / max(shape)
        return max(1, round(shape[0] * factor)), max(1, round(shape[1] * factor))

    assert needed(transfer, *at(side)) <= room
    assert needed(transfer, *at(side + 2)) > room


def test_with_tiles_a_larger_side_fits() -> None:
    room = needed(make(), 1024, 1024)
    whole = largest_fitting_side(make(), 1024, 1024, available=room)
    tiled = largest_fitting_side(make(tile_size=128), 1024, 1024, available=room)
    assert whole == 1024
    assert tiled > 1.15 * whole


def test_nothing_fits_in_no_memory() -> None:
    assert largest_fitting_side(make(), 256, 256, available=0) == 0


def refuse_with(monkeypatch: pytest.MonkeyPatch, room: int) -> None:
    monkeypatch.setattr(memory, "available_bytes", lambda device: room)


def test_check_fits_refuses_with_the_largest_size_and_the_tile_option(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    transfer = make()
    room = needed(transfer, 1600, 1600)
    refuse_with(monkeypatch, room)
    check_fits(transfer, 1600, 1600)  # exactly fits
    with pytest.raises(InsufficientMemoryError, match="largest size that fits is") as refused:
        check_fits(transfer, 2000, 1500)
    message = str(refused.value)
    side = largest_fitting_side(transfer, 2000, 1500, available=room)
    assert 1600 <= side < 2000
    assert f"the largest size that fits is {side} px (--size {side} / config size={side})" in (
        message
    )
    assert message.startswith("a 2000x1500 run needs about ")
    assert " beyond the loaded network but cpu has " in message
    assert ", or tile it: --tile-size " in message
    assert message.endswith("; --no-check-memory skips this check")
    assert "\n" not in message
    # The suggested tile is the largest that fits.
    tile = int(message.split("--tile-size ")[1].split()[0])
    assert f"(config tile_size={tile})" in message
    assert needed(make(tile_size=tile), 2000, 1500) <= room
    larger = [side for side in (1536, 1024, 768, 512) if side > tile]
    assert all(needed(make(tile_size=side), 2000, 1500) > room for side in larger)
    assert isinstance(refused.value, MemoryError)
    assert isinstance(refused.value, NeuralStyleError)


def test_an_already_tiled_run_that_does_not_fit_is_told_to_use_smaller_tiles(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    transfer = make(tile_size=1024)
    refuse_with(monkeypatch, needed(make(tile_size=128), 4000, 4000))
    with pytest.raises(InsufficientMemoryError, match="use smaller tiles: --tile-size"):
        check_fits(transfer, 4000, 4000)


def test_when_tiles_do_not_help_only_the_size_is_suggested(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    transfer = make(tile_size=128)
    # Too little for the full-size buffers of a 4000 px picture, whatever the tile.
    room = needed(transfer, 1000, 1000)
    refuse_with(monkeypatch, room)
    with pytest.raises(InsufficientMemoryError) as refused:
        check_fits(transfer, 4000, 4000)
    side = largest_fitting_side(transfer, 4000, 4000, available=room)
    assert "--tile-size" not in str(refused.value)
    assert f"the largest size that fits is {side} px" in str(refused.value)


def test_when_nothing_fits_the_message_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    refuse_with(monkeypatch, 0)
    with pytest.raises(InsufficientMemoryError, match="no smaller size or tile fits"):
        check_fits(make(), 64, 64)


def test_check_memory_false_skips_the_check(monkeypatch: pytest.MonkeyPatch) -> None:
    def unexpected(device: torch.device) -> int:
        raise AssertionError("available_bytes read although check_memory is False")

    monkeypatch.setattr(memory, "available_bytes", unexpected)
    check_fits(make(check_memory=False), 100_000, 100_000)
    with pytest.raises(AssertionError, match="available_bytes read"):
        check_fits(make(), 100_000, 100_000)


def test_available_bytes_of_the_cpu_is_positive_and_below_the_total() -> None:
    free = available_bytes(torch.device("cpu"))
    total = Path("/proc/meminfo").read_text().split()[1] if Path("/proc/meminfo").exists() else None
    assert free > 0
    if total is not None:
        assert free <= int(total) * 1024


def test_an_unknown_device_type_reports_no_limit() -> None:
    assert available_bytes(torch.device("meta")) == sys.maxsize


def test_a_container_limit_caps_the_cpu_memory(tmp_path: Path) -> None:
    (tmp_path / "memory.max").write_text("1000\n")
    (tmp_path / "memory.current").write_text("400\n")
    assert memory._cgroup_free(str(tmp_path)) == 600
    (tmp_path / "memory.max").write_text("max\n")
    assert memory._cgroup_free(str(tmp_path)) is None
    assert memory._cgroup_free(str(tmp_path / "absent")) is None


# -- the command line (needs the lead's wiring of check_fits into runs) ---------------------------


def test_the_command_line_refuses_a_size_that_does_not_fit_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    content = picture(tmp_path / "content.png", 0, size=(40, 32))
    style = picture(tmp_path / "style.png", 1)
    transfer = StyleTransfer(config=replace(DEFAULT.config, device="cpu"))
    room = needed(transfer, 32, 40)
    expected = largest_fitting_side(transfer, 51, 64, available=room)
    refuse_with(monkeypatch, room)
    output = tmp_path / "out.png"
    argv = [str(content), str(style), "-o", str(output), "--size", "64", "--steps", "1"]
    status = main([*argv, "--quiet"])
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert status == 1
    assert len(lines) == 1, err
    assert lines[0].startswith("neuralstyle: error: a 51x64 run needs about ")
    assert f"the largest size that fits is {expected} px (--size {expected}" in lines[0]
    assert lines[0].endswith("--no-check-memory skips this check")
    assert not output.exists()


def test_the_command_line_skips_the_check_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    content = picture(tmp_path / "content.png", 0, size=(40, 32))
    style = picture(tmp_path / "style.png", 1)
    refuse_with(monkeypatch, 0)
    output = tmp_path / "out.png"
    argv = [str(content), str(style), "-o", str(output), "--size", "32", "--steps", "1"]
    assert main([*argv, "--no-check-memory", "--quiet"]) == 0
    assert output.exists()
