"""End-to-end behaviour of the StyleTransfer loop, on a tiny random network."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from tiny import random_image, tiny_extractor

from neuralstyle import LayerMap, StyleTransfer, TransferConfig
from neuralstyle.callbacks import DivergenceGuard, RunEnd, RunStart, StepState, Stop
from neuralstyle.errors import ConfigError, LayerNotFoundError, ShapeError
from neuralstyle.presets import SEED

LAYERS = LayerMap(content={"relu2_1": 1.0}, style={"relu1_1": 1.0, "relu2_1": 1.0, "relu3_1": 1.0})
CONFIG = TransferConfig(steps=20, device="cpu", learning_rate=0.05, style_weight=10.0)


def make(config: TransferConfig = CONFIG, layer_map: LayerMap = LAYERS) -> StyleTransfer:
    return StyleTransfer(layer_map, config=config, extractor=tiny_extractor())


CONTENT = random_image(seed=1)
STYLE = random_image(20, 28, seed=2)


def test_loss_decreases_with_adam_and_lbfgs() -> None:
    for optimizer in ("adam", "lbfgs"):
        result = make(replace(CONFIG, optimizer=optimizer, learning_rate=None)).run(CONTENT, STYLE)
        total = result.history["total"]
        assert len(total) == CONFIG.steps
        assert total[-1] < 0.5 * total[0], optimizer


def test_style_weight_zero_with_content_init_returns_the_content_unchanged() -> None:
    result = make(replace(CONFIG, style_weight=0.0)).run(CONTENT, STYLE)
    assert torch.equal(result.image, CONTENT)
    assert result.history["total"] == [0.0] * CONFIG.steps


def test_style_image_as_content_has_zero_style_loss_at_the_start() -> None:
    transfer = make(replace(CONFIG, style_scale=None))
    targets = transfer.targets(CONTENT, CONTENT)
    loss = transfer.loss(targets.content_image, targets)
    assert float(loss.total) == pytest.approx(0.0, abs=1e-10)


def test_an_external_loop_on_the_seams_reproduces_run() -> None:
    for optimizer in ("adam", "lbfgs"):
        transfer = make(replace(CONFIG, optimizer=optimizer, init="noise", seed=3))
        targets = transfer.targets(CONTENT, STYLE)
        image = transfer.initial_image(targets)
        optimizer_ = transfer.make_optimizer(image)
        for _ in range(CONFIG.steps):
            transfer.step(image, targets, optimizer_)
        result = transfer.run(CONTENT, STYLE)
        assert torch.equal(image.detach().clamp(0, 1), result.image), optimizer


def test_the_iterator_can_be_stopped_and_keeps_the_best_image() -> None:
    run = make().start(CONTENT, STYLE)
    losses = []
    for state in run:
        losses.append(float(state.loss))
        if state.step == 5:
            break
    assert run.steps_done == 5
    assert float(run.best_per_item.sum()) == pytest.approx(min(losses))


def test_terms_sum_to_the_total_and_are_named_by_layer() -> None:
    transfer = make(replace(CONFIG, tv_weight=0.1))
    targets = transfer.targets(CONTENT, STYLE)
    loss = transfer.loss(random_image(seed=5), targets)
    assert set(loss.terms) == {
        "content/relu2_1",
        "style/relu1_1",
        "style/relu2_1",
        "style/relu3_1",
        "tv",
    }
    assert float(sum(loss.terms.values())) == pytest.approx(float(loss.total), rel=1e-6)


def test_the_seed_preset_computes_the_seed_objective() -> None:
    layers = ("relu1_1", "relu2_1", "relu3_1")
    seed_map = LayerMap(content=dict.fromkeys(layers, 1.0), style=dict.fromkeys(layers, 1.0))
    transfer = StyleTransfer(
        seed_map,
        config=replace(SEED.config, device="cpu", style_scale=None),
        extractor=tiny_extractor(layers),
    )
    image = random_image(seed=7)
    targets = transfer.targets(CONTENT, STYLE)
    ours = float(transfer.loss(image, targets).total)

    # The blog's loop, written out: Gram / (a*b*c*d), torch.mean of squared errors, 1e-2 and 1e4.
    def gram(f: torch.Tensor) -> torch.Tensor:
        a, b, c, d = f.shape
        flat = f.reshape(a * b, c * d)
        return flat @ flat.t() / (a * b * c * d)

    net = tiny_extractor(layers)
    with torch.no_grad():
        x, p, s = net(image), net(CONTENT), net(STYLE)
    content = sum(torch.mean((x[n] - p[n]) ** 2) for n in layers)
    style = sum(torch.mean((gram(x[n]) - gram(s[n])) ** 2) for n in layers)
    assert ours == pytest.approx(float(1e-2 * content + 1e4 * style), rel=1e-5)


def test_same_seed_gives_identical_output_and_another_seed_does_not() -> None:
    config = replace(CONFIG, init="noise", steps=5)
    first = make(replace(config, seed=11)).run(CONTENT, STYLE).image
    again = make(replace(config, seed=11)).run(CONTENT, STYLE).image
    other = make(replace(config, seed=12)).run(CONTENT, STYLE).image
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_global_rng_state_is_left_alone() -> None:
    transfer = make(replace(CONFIG, init="noise", steps=2))  # building nn.Conv2d draws from it
    before = torch.get_rng_state()
    transfer.run(CONTENT, STYLE)
    assert torch.equal(before, torch.get_rng_state())


def test_a_batch_of_contents_matches_single_runs() -> None:
    other = random_image(seed=9)
    batched = make(replace(CONFIG, steps=5)).run([CONTENT, other], STYLE)
    single = make(replace(CONFIG, steps=5)).run(other, STYLE)
    assert batched.image.shape == (2, 3, 24, 24)
    torch.testing.assert_close(batched.image[1:], single.image, rtol=1e-4, atol=1e-5)


def test_any_torch_optimizer_factory_is_accepted() -> None:
    config = replace(CONFIG, optimizer=lambda params: torch.optim.SGD(params, lr=0.5))
    result = make(config).run(CONTENT, STYLE)
    assert result.history["total"][-1] < result.history["total"][0]


def test_noise_init_and_given_init_start_where_asked() -> None:
    transfer = make()
    targets = transfer.targets(CONTENT, STYLE)
    given = random_image(seed=21)
    assert torch.equal(transfer.initial_image(targets, given), given)
    noise = make(replace(CONFIG, init="noise")).initial_image(targets)
    assert not torch.equal(noise, CONTENT)
    assert noise.requires_grad
    assert noise.is_leaf


def test_recolored_init_puts_the_style_colours_on_the_content_order() -> None:
    targets = make().targets(CONTENT, STYLE)
    start = make(replace(CONFIG, init="recolored")).initial_image(targets)
    assert start.shape == CONTENT.shape
    assert start.requires_grad
    for channel in range(3):
        mine, photo = start[0, channel].detach().flatten(), CONTENT[0, channel].flatten()
        # The photo's order of values, with the painting's values.
        assert torch.all(mine[photo.argsort()].diff() >= 0)
        # The style's values as its targets saw them (resized to the run's scale).
        assert targets.palette is not None
        paint = targets.palette[0, channel].flatten()
        assert float(mine.mean()) == pytest.approx(float(paint.mean()), abs=0.01)
        assert float(mine.std()) == pytest.approx(float(paint.std()), abs=0.01)
        assert float(paint.mean()) == pytest.approx(float(STYLE[0, channel].mean()), abs=0.02)


def test_the_palette_is_a_bounded_sample_of_the_style() -> None:
    big = random_image(300, 300, seed=5)  # 90,000 pixels: every second one is kept
    targets = make(replace(CONFIG, size=None, style_scale=None)).targets(CONTENT, big)
    assert targets.palette is not None
    assert targets.palette.shape == (1, 3, 1, 45_000)
    kept = targets.palette.flatten(2)
    assert torch.allclose(kept.mean(-1), big.flatten(2).mean(-1), atol=0.01)


def test_recolored_init_with_preserved_colours_starts_near_the_content() -> None:
    """preserve_color recolours the style to the photo first, so its palette is the photo's."""
    transfer = make(replace(CONFIG, init="recolored", preserve_color="histogram"))
    start = transfer.initial_image(transfer.targets(CONTENT, STYLE))
    assert (start - CONTENT).abs().mean() < 0.02


def test_recolored_init_needs_targets_with_a_palette() -> None:
    targets = replace(make().targets(CONTENT, STYLE), palette=None)
    with pytest.raises(ConfigError, match="needs the style's colours"):
        make(replace(CONFIG, init="recolored")).initial_image(targets)


def test_wasserstein_style_loss_runs_and_decreases() -> None:
    result = make(replace(CONFIG, style_loss="wasserstein")).run(CONTENT, STYLE)
    assert result.history["total"][-1] < result.history["total"][0]


def test_size_resizes_the_long_side_and_style_follows() -> None:
    transfer = make(replace(CONFIG, size=16, style_scale=0.5))
    targets = transfer.targets(random_image(24, 32), STYLE)
    assert targets.content_image.shape == (1, 3, 12, 16)


class Recorder:
    def __init__(self, name: str, log: list[str], stop_at: int | None = None) -> None:
        self.name, self.log, self.stop_at = name, log, stop_at

    def on_start(self, start: RunStart) -> None:
        self.log.append(f"{self.name}.start")

    def on_step(self, state: StepState) -> Stop | None:
        self.log.append(f"{self.name}.step{state.step}")
        return Stop("enough") if state.step == self.stop_at else None

    def on_end(self, end: RunEnd) -> None:
        self.log.append(f"{self.name}.end:{end.steps_done}:{end.stop_reason}")


def test_callbacks_run_in_order_and_can_stop_the_run() -> None:
    log: list[str] = []
    config = replace(CONFIG, steps=4)
    result = make(config).run(
        CONTENT, STYLE, callbacks=[Recorder("a", log, stop_at=2), Recorder("b", log)]
    )
    assert log == [
        "a.start",
        "b.start",
        "a.step1",
        "b.step1",
        "a.step2",
        "a.end:2:enough",
        "b.end:2:enough",
    ]
    assert result.steps_done == 2
    assert result.stop_reason == "enough"


def test_start_calls_the_instances_and_its_own_callbacks_like_run() -> None:
    log: list[str] = []
    transfer = StyleTransfer(
        LAYERS,
        config=replace(CONFIG, steps=3),
        extractor=tiny_extractor(),
        callbacks=[Recorder("own", log)],
    )
    states = list(transfer.start(CONTENT, STYLE, callbacks=[Recorder("given", log)]))
    assert len(states) == 3
    assert log == [
        "own.start", "given.start",
        "own.step1", "given.step1", "own.step2", "given.step2", "own.step3", "given.step3",
        "own.end:3:None", "given.end:3:None",
    ]  # fmt: skip


def test_a_stop_ends_the_iteration_after_its_step() -> None:
    log: list[str] = []
    run = make(replace(CONFIG, steps=5)).start(
        CONTENT, STYLE, callbacks=[Recorder("a", log, stop_at=2)]
    )
    assert [state.step for state in run] == [1, 2]
    assert run.stop_reason == "enough"
    assert log[-1] == "a.end:2:enough"


def test_closing_a_run_left_early_ends_its_callbacks_once() -> None:
    log: list[str] = []
    with make().start(CONTENT, STYLE, callbacks=[Recorder("a", log)]) as run:
        for state in run:
            if state.step == 2:
                break
    run.close()
    assert log == ["a.start", "a.step1", "a.step2", "a.end:2:None"]
    assert list(run) == []


def test_the_iterator_and_the_hand_loop_reproduce_run_with_the_default_preset() -> None:
    # The bundled network and the default preset's recipe, small and short. Iterating start()
    # is run()'s own loop, scales included; the hand loop on the seams is one scale, so it
    # reproduces run() for a config without start_size.
    from neuralstyle import example_image, get_preset

    preset = get_preset("default")
    content, style = example_image("chelsea"), example_image("starry_night")
    coarse = StyleTransfer(
        preset.layer_map, config=replace(preset.config, size=96, start_size=48, steps=6)
    )
    with coarse.start(content, style) as run:
        for _ in run:
            pass
    assert len(run.sizes) > 1
    reference = coarse.run(content, style)
    assert torch.equal(coarse.output(run.result_image, run.targets), reference.image)

    single = StyleTransfer(
        preset.layer_map, config=replace(preset.config, size=64, start_size=None, steps=4)
    )
    targets = single.targets(content, style)
    image = single.initial_image(targets)
    optimizer = single.make_optimizer(image)
    for _ in range(single.config.steps):
        single.step(image, targets, optimizer)
    assert torch.equal(single.output(image, targets), single.run(content, style).image)


class Boom(Recorder):
    def on_step(self, state: StepState) -> Stop | None:
        raise KeyError("callback failed")


def test_end_hooks_run_when_a_callback_raises() -> None:
    log: list[str] = []
    with pytest.raises(KeyError, match="callback failed"):
        make().run(CONTENT, STYLE, callbacks=[Recorder("a", log), Boom("boom", log)])
    assert log[-2:] == [
        "a.end:1:KeyError: 'callback failed'",
        "boom.end:1:KeyError: 'callback failed'",
    ]


def test_divergence_guard_stops_and_keeps_the_best_image() -> None:
    config = replace(CONFIG, optimizer=lambda params: torch.optim.SGD(params, lr=float("nan")))
    result = make(config).run(CONTENT, STYLE)
    assert result.stop_reason is not None
    assert result.stop_reason.startswith("diverged")
    assert result.steps_done == 10
    assert torch.equal(result.best_image, CONTENT)
    assert torch.isfinite(torch.tensor(result.best_loss))


def test_the_guard_can_be_replaced_or_removed() -> None:
    config = replace(CONFIG, optimizer=lambda params: torch.optim.SGD(params, lr=float("nan")))
    every_step = StyleTransfer(
        LAYERS, config=config, extractor=tiny_extractor(), guard=DivergenceGuard(1)
    )
    checked_each_step = every_step.run(CONTENT, STYLE)
    assert checked_each_step.stop_reason is not None
    # A step reports the loss of the image it started from: the first NaN one is step 2's.
    assert checked_each_step.steps_done == 2
    unguarded = StyleTransfer(LAYERS, config=config, extractor=tiny_extractor(), guard=None).run(
        CONTENT, STYLE
    )
    assert unguarded.stop_reason is None
    assert unguarded.steps_done == config.steps
    assert torch.isnan(unguarded.image).all()
    assert torch.equal(unguarded.best_image, CONTENT)


def test_unknown_layer_is_refused_with_the_closest_names() -> None:
    with pytest.raises(LayerNotFoundError, match="did you mean relu2_1"):
        make(layer_map=LayerMap(content={"relu2_2": 1.0}))


@pytest.mark.parametrize(
    ("content", "style", "fragment"),
    [
        ({"relu1_1": -1.0}, {}, "must be finite and >= 0"),
        ({"relu1_1": float("nan")}, {}, "must be finite and >= 0"),
        ({}, {"relu1_1": 0.0}, "no term with a positive weight"),
        ({}, {}, "no term with a positive weight"),
        ({"relu1_1": "1"}, {}, "must be a number"),
    ],
)
def test_bad_layer_weights_are_refused(content: dict, style: dict, fragment: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ConfigError, match=fragment):
        LayerMap(content=content, style=style)


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("steps", 0, "steps must be a positive int"),
        ("steps", -3, "steps must be a positive int"),
        ("optimizer", "sgd", "optimizer must be one of"),
        ("learning_rate", -1.0, "learning_rate must be a finite number > 0"),
        ("style_weight", float("nan"), "style_weight must be a finite number >= 0"),
        ("precision", "int8", "precision must be one of"),
        ("init", "zeros", "init must be one of"),
        ("size", 0, "size must be a positive int"),
        ("device", "gpu7", "is not a torch device"),
    ],
)
def test_bad_config_values_are_refused(field: str, value: object, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        replace(CONFIG, **{field: value}).resolved_device()


def test_the_loss_seam_refuses_an_image_of_another_shape() -> None:
    transfer = make()
    targets = transfer.targets(CONTENT, STYLE)
    with pytest.raises(ShapeError, match=r"content batch's shape \(1, 3, 24, 24\)"):
        transfer.loss(random_image(16, 16), targets)


def test_unknown_preset_is_refused_with_a_suggestion() -> None:
    with pytest.raises(ConfigError, match="did you mean 'gatys'"):
        StyleTransfer.from_preset("gaty", extractor=tiny_extractor())


def test_blend_weights_one_and_zero_equal_the_single_style_run() -> None:
    other = random_image(16, 16, seed=31)
    blended = make(replace(CONFIG, steps=5, style_blend=(1.0, 0.0))).run(CONTENT, [STYLE, other])
    single = make(replace(CONFIG, steps=5)).run(CONTENT, STYLE)
    torch.testing.assert_close(blended.image, single.image, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    # W2 ends in a difference of large traces, so float32 rounding in the recomputed covariance
    # root shows up at the 1e-3 level.
    ("style_loss", "rtol"),
    [("gram", 1e-5), ("wasserstein", 1e-2)],
)
def test_equal_blend_of_a_style_with_itself_is_that_style(style_loss: str, rtol: float) -> None:
    config = replace(CONFIG, style_loss=style_loss)
    twice = make(config).targets(CONTENT, [STYLE, STYLE])
    once = make(config).targets(CONTENT, STYLE)
    loss_twice = make(config).loss(random_image(seed=4), twice).total
    loss_once = make(config).loss(random_image(seed=4), once).total
    torch.testing.assert_close(loss_twice, loss_once, rtol=rtol, atol=1e-7)


def test_blend_weight_count_must_match_the_styles() -> None:
    transfer = make(replace(CONFIG, style_blend=(1.0, 2.0, 3.0)))
    with pytest.raises(ConfigError, match="3 weights for 2 style images"):
        transfer.targets(CONTENT, [STYLE, STYLE])


@pytest.mark.parametrize(
    ("blend", "fragment"),
    [((1.0, -1.0), "must be a finite number >= 0"), ((0.0, 0.0), "all zero"), ((), "non-empty")],
)
def test_bad_blend_weights_are_refused(blend: tuple[float, ...], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        replace(CONFIG, style_blend=blend)


def test_both_memory_formats_and_bfloat16_autocast_run_on_the_cpu() -> None:
    base = make(replace(CONFIG, steps=3, channels_last=False)).run(CONTENT, STYLE)
    last = make(replace(CONFIG, steps=3, channels_last=True)).run(CONTENT, STYLE)
    torch.testing.assert_close(last.image, base.image, rtol=1e-4, atol=1e-5)
    lbfgs = replace(CONFIG, steps=3, optimizer="lbfgs", learning_rate=None)
    lbfgs_plain = make(replace(lbfgs, channels_last=False)).run(CONTENT, STYLE)
    torch.testing.assert_close(
        make(replace(lbfgs, channels_last=True)).run(CONTENT, STYLE).image, lbfgs_plain.image
    )
    low = make(replace(CONFIG, steps=3, precision="bfloat16")).run(CONTENT, STYLE)
    assert low.image.dtype == torch.float32
    assert abs(low.history["total"][0] - base.history["total"][0]) < 0.05 * base.history["total"][0]


def test_a_given_extractor_keeps_its_memory_format() -> None:
    extractor = tiny_extractor()
    transfer = StyleTransfer(LAYERS, config=replace(CONFIG, steps=2), extractor=extractor)
    transfer.run(CONTENT, STYLE)
    weights = [p for p in extractor.parameters() if p.dim() == 4]
    assert weights
    assert all(w.is_contiguous() for w in weights)
    # The caller's own use of it still gives plain NCHW maps, which .view() accepts.
    assert all(f.is_contiguous() for f in extractor(CONTENT).values())
    # The run itself feeds it channels-last input.
    assert all(
        f.is_contiguous(memory_format=torch.channels_last)
        for f in transfer.features(CONTENT).values()
        if f.shape[1] > 1
    )


def test_our_own_extractor_runs_channels_last_unless_turned_off() -> None:
    def layouts(config: TransferConfig) -> set[bool]:
        weights = StyleTransfer(LAYERS, config=config).extractor.parameters()
        return {w.is_contiguous(memory_format=torch.channels_last) for w in weights if w.dim() == 4}

    assert layouts(TransferConfig(device="cpu")) == {True}
    assert layouts(TransferConfig(device="cpu", channels_last=False)) == {False}


@pytest.mark.parametrize(
    ("device", "channels_last", "expected"),
    [
        ("cpu", True, torch.channels_last),
        ("cuda", True, torch.channels_last),
        ("cpu", False, torch.contiguous_format),
        ("mps", True, torch.contiguous_format),  # pooling backward bugs there: plain layout
    ],
)
def test_the_memory_format_per_device(
    device: str, channels_last: bool, expected: torch.memory_format
) -> None:
    config = TransferConfig(channels_last=channels_last)
    assert config.memory_format(torch.device(device)) == expected


def test_luminance_colour_preservation_keeps_the_content_chroma() -> None:
    from neuralstyle.color import rgb_to_yiq

    content = 0.25 + 0.5 * random_image(seed=41)  # mid-range, so clamping cannot interfere
    result = make(replace(CONFIG, preserve_color="luminance")).run(content, STYLE)
    plain = make(CONFIG).run(content, STYLE)
    ours, theirs, original = rgb_to_yiq(result.image), rgb_to_yiq(plain.image), rgb_to_yiq(content)
    # Chroma (I, Q) is the content's wherever the recombined pixel stays inside [0, 1].
    inside = ((result.image > 0) & (result.image < 1)).all(1, keepdim=True).expand(-1, 2, -1, -1)
    chroma_error = (ours[:, 1:] - original[:, 1:]).abs()[inside]
    assert inside.float().mean() > 0.9
    assert float(chroma_error.max()) < 1e-5
    torch.testing.assert_close(ours[:, :1], theirs[:, :1].clamp(0, 1), atol=0.05, rtol=0)


@pytest.mark.parametrize("method", ["covariance", "histogram"])
def test_colour_matching_the_style_pulls_the_palette_towards_the_content(method: str) -> None:
    reddish = random_image(seed=43) * torch.tensor([1.0, 0.3, 0.3]).view(1, 3, 1, 1)
    bluish = random_image(20, 28, seed=44) * torch.tensor([0.3, 0.3, 1.0]).view(1, 3, 1, 1)
    config = replace(CONFIG, steps=30, style_weight=100.0, content_weight=0.01)
    plain = make(config).run(reddish, bluish).image
    matched = make(replace(config, preserve_color=method)).run(reddish, bluish).image

    def mean_colour(image: torch.Tensor) -> torch.Tensor:
        return image.mean(dim=(0, 2, 3))

    target = mean_colour(reddish)
    assert float((mean_colour(matched) - target).norm()) < 0.5 * float(
        (mean_colour(plain) - target).norm()
    )


def test_balanced_weights_mean_the_same_on_a_network_whose_features_are_58x_larger() -> None:
    # Scaling the first convolution and every bias by a scales every feature map by a exactly
    # (ReLU and average pooling are positively homogeneous): the situation of a Caffe-convention
    # VGG against a torchvision one, whose relu1_x features differ by about 58x.
    from tiny import TINY_LAYERS, tiny_network

    from neuralstyle import FeatureExtractor

    scale = 58.0
    larger = tiny_network()
    with torch.no_grad():
        larger[0].weight.mul_(scale)
        for module in larger:
            if isinstance(module, torch.nn.Conv2d):
                module.bias.mul_(scale)
    big = FeatureExtractor(
        list(TINY_LAYERS), backbone=larger, layer_names=dict(TINY_LAYERS), convention="identity"
    )
    image = random_image(seed=9)
    for balance, same in (("target", True), ("none", False)):
        config = replace(CONFIG, balance=balance)
        small_run = StyleTransfer(LAYERS, config=config, extractor=tiny_extractor())
        big_run = StyleTransfer(LAYERS, config=config, extractor=big)
        small_loss = small_run.loss(image, small_run.targets(CONTENT, STYLE))
        big_loss = big_run.loss(image, big_run.targets(CONTENT, STYLE))
        for name, value in small_loss.terms.items():
            close = torch.allclose(value, big_loss.terms[name], rtol=1e-4)
            assert close == same, (balance, name, float(value), float(big_loss.terms[name]))


@pytest.mark.parametrize("tile_size", [None, 16])
def test_a_run_leaves_the_thread_count_as_the_caller_set_it(tile_size: int | None) -> None:
    """The library never picks its own thread count: torch.set_num_threads is the caller's."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        make(replace(CONFIG, tile_size=tile_size)).run(random_image(40, 32), random_image(24, 24))
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
