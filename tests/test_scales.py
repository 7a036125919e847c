"""Coarse-to-fine scales, the moving average of the iterates, pooling and padding options."""

from __future__ import annotations

import itertools
import math
from dataclasses import replace

import pytest
import torch
from tiny import random_image, tiny_extractor

from neuralstyle import FeatureExtractor, LayerMap, StyleTransfer, TransferConfig
from neuralstyle.callbacks import RunEnd, RunStart, StepState, Stop
from neuralstyle.errors import ConfigError
from neuralstyle.run import steps_per_scale
from neuralstyle.scales import scale_sizes

LAYERS = LayerMap(content={"relu2_1": 1.0}, style={"relu1_1": 1.0, "relu2_1": 1.0, "relu3_1": 1.0})
CONFIG = TransferConfig(steps=6, device="cpu", learning_rate=0.05, style_weight=10.0)
CONTENT = random_image(24, 32, seed=1)
STYLE = random_image(20, 28, seed=2)


def make(config: TransferConfig = CONFIG) -> StyleTransfer:
    return StyleTransfer(LAYERS, config=config, extractor=tiny_extractor())


@pytest.mark.parametrize(("height", "width", "start"), [(300, 400, 200), (512, 341, 64), (9, 5, 2)])
def test_scales_grow_by_at_most_sqrt2_and_end_at_the_output(
    height: int, width: int, start: int
) -> None:
    sizes = scale_sizes(height, width, start)
    assert sizes[-1] == (height, width)
    assert max(sizes[0]) == pytest.approx(start, abs=1)
    longs = [max(size) for size in sizes]
    ratios = [b / a for a, b in itertools.pairwise(longs)]
    assert all(1 < ratio <= math.sqrt(2) + 0.15 for ratio in ratios), ratios


@pytest.mark.parametrize("start", [None, 400, 1000])
def test_no_start_or_a_start_past_the_output_is_one_scale(start: int | None) -> None:
    assert scale_sizes(300, 400, start) == [(300, 400)]


class Sizes:
    """Records the size and scale of every step."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, int, int, int]] = []
        self.total = 0

    def on_start(self, start: RunStart) -> None:
        self.total = start.total_steps

    def on_step(self, state: StepState) -> Stop | None:
        height, width = state.image.shape[-2:]
        self.seen.append((state.scale, state.scales, height, width))
        return None

    def on_end(self, end: RunEnd) -> None:
        pass


def test_a_coarse_to_fine_run_passes_every_scale_and_ends_at_the_output_size() -> None:
    sizes = Sizes()
    config = replace(CONFIG, start_size=16)
    result = make(config).run(CONTENT, STYLE, callbacks=[sizes])
    expected = scale_sizes(24, 32, 16)
    assert len(expected) == 3
    # config.steps is the whole run's: 6 steps over 3 scales are 2 at each.
    assert sizes.total == result.steps_done == CONFIG.steps
    for index, (height, width) in enumerate(expected):
        assert sizes.seen[2 * index : 2 * index + 2] == [(index + 1, 3, height, width)] * 2
    assert result.image.shape == CONTENT.shape == result.best_image.shape


def test_each_scale_starts_from_the_last_result_with_a_fresh_optimizer() -> None:
    run = make(replace(CONFIG, start_size=16)).start(CONTENT, STYLE)
    for _ in range(CONFIG.steps // 3):
        next(run)
    first_optimizer, upsampled = run.optimizer, run.image.detach().clone()
    next(run)
    assert run.optimizer is not first_optimizer
    assert int(run.optimizer.state[run.image]["step"]) == 1
    assert run.image.shape[-2:] == run.sizes[1]
    assert upsampled.shape[-2:] == run.sizes[0]


def test_coarse_to_fine_also_runs_with_lbfgs() -> None:
    config = replace(CONFIG, start_size=16, optimizer="lbfgs", learning_rate=None, steps=18)
    result = make(config).run(CONTENT, STYLE)
    assert result.image.shape == CONTENT.shape
    assert result.history["total"][-1] < result.history["total"][-6]


def test_the_average_of_the_iterates_is_the_output_with_ema_decay() -> None:
    images: list[torch.Tensor] = []

    class Keep(Sizes):
        def on_step(self, state: StepState) -> Stop | None:
            images.append(state.image.clone())
            return None

    decay = 0.5
    result = make(replace(CONFIG, ema_decay=decay)).run(CONTENT, STYLE, callbacks=[Keep()])
    average = images[0]
    for count, image in enumerate(images[1:], start=2):
        average = torch.lerp(average, image, max(1 - decay, 1 / count))
    torch.testing.assert_close(result.image, average.clamp(0, 1))
    assert not torch.equal(result.image, images[-1])


def test_ema_decay_zero_outputs_the_last_iterate() -> None:
    averaged = make(replace(CONFIG, ema_decay=0.0)).run(CONTENT, STYLE)
    plain = make().run(CONTENT, STYLE)
    torch.testing.assert_close(averaged.image, plain.image)


@pytest.mark.parametrize(("field", "value"), [("ema_decay", 1.0), ("start_size", 0)])
def test_bad_scale_and_average_options_are_refused(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=field):
        TransferConfig(**{field: value})  # type: ignore[arg-type]


def test_pooling_and_padding_are_the_networks_own_options() -> None:
    layers = LayerMap(content={"relu2_1": 1.0}, style={"relu1_1": 1.0})
    network = FeatureExtractor(layers.layers, weights="random", pooling="avg", padding="replicate")
    extractor = StyleTransfer(
        layers, config=TransferConfig(device="cpu"), extractor=network
    ).extractor
    assert (extractor.pooling, extractor.padding) == ("avg", "replicate")
    kinds = {type(module).__name__ for module in extractor.modules()}
    assert "AvgPool2d" in kinds
    assert "MaxPool2d" not in kinds


def test_the_configs_network_options_still_work_and_say_where_they_moved() -> None:
    layers = LayerMap(content={"relu2_1": 1.0}, style={"relu1_1": 1.0})
    with pytest.warns(DeprecationWarning, match=r"FeatureExtractor\(layers, pooling='avg'"):
        config = TransferConfig(device="cpu", pooling="avg")
    extractor = StyleTransfer(layers, config=config).extractor
    assert (extractor.pooling, extractor.padding) == ("avg", "zeros")
    moved = pytest.warns(DeprecationWarning, match="is deprecated")
    with moved, pytest.raises(ConfigError, match="pooling='avg'"):
        StyleTransfer(LAYERS, config=replace(CONFIG, pooling="avg"), extractor=tiny_extractor())


def test_an_unset_network_option_takes_the_given_extractors() -> None:
    transfer = StyleTransfer(LAYERS, config=CONFIG, extractor=tiny_extractor())
    assert CONFIG.pooling is None
    assert transfer.extractor.pooling == tiny_extractor().pooling


@pytest.mark.slow  # the bundled VGG16 at 128 px over two scales: about a minute on two CPU cores
def test_the_default_preset_end_to_end_with_the_bundled_weights() -> None:
    from neuralstyle import example_image, get_preset
    from neuralstyle.losses import gram_matrix

    preset = get_preset("default")
    config = replace(preset.config, size=128, start_size=96, steps=40, device="cpu")
    transfer = StyleTransfer(preset.layer_map, config=config)
    content, style = example_image("chelsea"), example_image("starry_night")
    sizes = Sizes()
    result = transfer.run(content, style, callbacks=[sizes])
    assert result.image.shape[-2:] == (85, 128)
    assert sizes.seen[-1][:2] == (2, 2)
    targets = transfer.targets(content, style)
    features = transfer.extractor(result.image)
    before = transfer.extractor(targets.content_image)
    # The result's Gram matrices moved towards the painting's at every style layer, and at
    # least halfway at the layers that carry the style (the deep ones weigh little by design).
    for name, weight in preset.layer_map.style.items():
        target = targets.styles[0].targets[name]
        assert isinstance(target, torch.Tensor)
        after_gap = (gram_matrix(features[name]) - target).square().sum()
        before_gap = (gram_matrix(before[name]) - target).square().sum()
        assert after_gap < (0.5 if weight >= 1 else 1.0) * before_gap, name


def test_the_wasserstein_loss_at_every_size_a_coarse_to_fine_run_visits() -> None:
    # The bundled network's relu5_1 at 64 px has 8 positions for 512 channels, most of them
    # dead: float32 eigensolvers failed to converge there ("unexpected _LinAlgError").
    from neuralstyle import example_image, get_preset

    preset = get_preset("default")
    config = TransferConfig(
        size=256, start_size=64, steps=5, style_loss="wasserstein", device="cpu"
    )
    transfer = StyleTransfer(preset.layer_map, config=config)
    sizes = Sizes()
    content, style = example_image("chelsea"), example_image("starry_night")
    result = transfer.run(content, style, callbacks=[sizes])
    visited = sorted({max(height, width) for *_, height, width in sizes.seen})
    assert visited == [64, 91, 128, 181, 256]
    assert result.stop_reason is None
    assert all(math.isfinite(value) for value in result.history["total"])


@pytest.mark.parametrize(("steps", "scales"), [(300, 5), (10, 3), (7, 7), (2, 3), (1, 1)])
def test_steps_are_the_whole_runs_shared_among_the_scales(steps: int, scales: int) -> None:
    shares = steps_per_scale(steps, scales)
    assert len(shares) == scales
    assert sum(shares) == max(steps, scales)
    assert max(shares) - min(shares) <= 1
    assert shares == sorted(shares)  # the remainder goes to the larger scales
