"""FeatureExtractor: layer names, truncation, freezing, conventions, options, custom modules."""

from __future__ import annotations

import copy
import pickle

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from neuralstyle.backbones import (
    CAFFE,
    IDENTITY,
    IMAGENET,
    InputConvention,
    available_layers,
    resolve_convention,
)
from neuralstyle.errors import (
    ConfigError,
    DeviceMismatchError,
    DTypeError,
    LayerNotFoundError,
    ShapeError,
)
from neuralstyle.features import FeatureExtractor

SIX = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu4_2", "relu5_1"]
CAFFE_MEAN_BGR = torch.tensor([104.00699, 116.66877, 122.67892]).view(1, 3, 1, 1)


@pytest.fixture
def image() -> torch.Tensor:
    return torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))


def tiny_sequential() -> nn.Sequential:
    """A 2-conv network of the kind the rest of the suite uses (instant to build and run)."""
    torch.manual_seed(0)  # only the caller's own module; the extractor never touches global RNG
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(6, 6, 1),
    )


TINY_NAMES = {"conv1": "0", "relu1": "1", "pool1": "2", "conv2": "3", "relu2": "4"}


class Branchy(nn.Module):
    """Non-sequential: a skip connection and an unused head after the tapped layers."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.act = nn.ReLU(inplace=True)
        self.block = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.ReLU())
        self.head = nn.Conv2d(4, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(self.stem(x))
        y = self.block(y) + y
        return self.head(y)


def snapshot(
    module: nn.Module,
) -> tuple[dict[str, torch.Tensor], list[bool], list[bool], list[bool]]:
    return (
        {k: v.clone() for k, v in module.state_dict().items()},
        [p.requires_grad for p in module.parameters()],
        [m.training for m in module.modules()],
        [bool(getattr(m, "inplace", False)) for m in module.modules()],
    )


def assert_same_snapshot(before: tuple, after: tuple) -> None:  # type: ignore[type-arg]
    assert before[0].keys() == after[0].keys()
    for key in before[0]:
        torch.testing.assert_close(before[0][key], after[0][key], rtol=0, atol=0)
    assert before[1:] == after[1:]


def hooks_of(module: nn.Module) -> int:
    return sum(
        len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
        for m in module.modules()
    )


# -- names -----------------------------------------------------------------------------------------


def test_available_layers_follow_the_torchvision_index_map() -> None:
    vgg16, vgg19 = available_layers("vgg16"), available_layers("vgg19")
    assert len(vgg16) == 31
    assert len(vgg19) == 37
    assert vgg16[:5] == ("conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1")
    # indices from the weights README (vgg16) and torchvision's vgg19().features
    assert vgg16.index("relu4_2") == 20
    assert vgg16.index("relu5_1") == 25
    assert vgg16[-1] == "pool5"
    assert vgg19.index("relu4_2") == 22
    assert vgg19.index("conv5_4") == 34


def test_unknown_backbone_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown backbone 'vgg11'"):
        available_layers("vgg11")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("wrong", "suggestion"),
    [("relu4-2", "'relu4_2'"), ("relu_42", "'relu4_2'"), ("Relu5_1", "'relu5_1'")],
)
def test_unknown_layer_names_the_closest(wrong: str, suggestion: str) -> None:
    with pytest.raises(
        LayerNotFoundError, match=f"unknown layer '{wrong}'.*closest:.*{suggestion}"
    ):
        FeatureExtractor([wrong], weights="random")


@pytest.mark.parametrize(
    ("tutorial", "paper"), [("conv_4", "conv2_2"), ("relu_1", "relu1_1"), ("pool_5", "pool5")]
)
def test_pytorch_tutorial_names_are_translated(tutorial: str, paper: str) -> None:
    with pytest.raises(
        LayerNotFoundError, match=f"{tutorial} in the PyTorch tutorial's numbering .* is '{paper}'"
    ):
        FeatureExtractor([tutorial], weights="random")


def test_hopeless_layer_name_lists_valid_ones() -> None:
    with pytest.raises(LayerNotFoundError, match="valid names start with 'conv1_1'"):
        FeatureExtractor(["xyz"], weights="random")


def test_layers_as_a_single_string_or_empty_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"not the string 'relu4_2'; write \['relu4_2'\]"):
        FeatureExtractor("relu4_2", weights="random")
    with pytest.raises(ConfigError, match="at least one layer"):
        FeatureExtractor([], weights="random")


def test_layers_come_back_deduplicated_in_network_order() -> None:
    extractor = FeatureExtractor(["relu3_1", "relu1_1", "relu3_1"], weights="random")
    assert extractor.layers == ("relu1_1", "relu3_1")
    out = extractor(torch.rand(1, 3, 16, 16))
    assert list(out) == ["relu1_1", "relu3_1"]


# -- the default extractor -------------------------------------------------------------------------


@pytest.mark.usefixtures("no_network")
def test_default_extractor_works_offline_with_bundled_weights() -> None:
    extractor = FeatureExtractor(["relu1_1", "relu4_2"])
    assert extractor.source == "bundled"
    assert extractor.convention == CAFFE
    out = extractor(torch.rand(1, 3, 32, 32))
    assert tuple(out["relu1_1"].shape) == (1, 64, 32, 32)
    assert tuple(out["relu4_2"].shape) == (1, 512, 4, 4)
    # Caffe-scale activations: hundreds at relu1_x, not the ~1 of an ImageNet-normalised net
    assert out["relu1_1"].max() > 50


def test_six_layer_set_shapes(image: torch.Tensor) -> None:
    out = FeatureExtractor(SIX)(image)
    shapes = {name: tuple(t.shape) for name, t in out.items()}
    assert shapes == {
        "relu1_1": (2, 64, 32, 32),
        "relu2_1": (2, 128, 16, 16),
        "relu3_1": (2, 256, 8, 8),
        "relu4_1": (2, 512, 4, 4),
        "relu4_2": (2, 512, 4, 4),
        "relu5_1": (2, 512, 2, 2),
    }
    assert list(out) == SIX


def test_truncated_after_the_deepest_layer() -> None:
    extractor = FeatureExtractor(["relu1_1", "relu2_1"], weights="random")
    body = list(extractor.body.children())
    assert len(body) == 7  # conv1_1 .. relu2_1 = features[:7]
    assert isinstance(body[-1], nn.ReLU)
    keys = {int(k.split(".")[1]) for k in extractor.state_dict()}
    assert max(keys) == 5  # conv2_1; nothing past relu2_1 holds weights
    assert sum(p.numel() for p in extractor.parameters()) == 1792 + 36928 + 73856


def test_frozen_eval_mode_and_gradients_reach_only_the_input(image: torch.Tensor) -> None:
    extractor = FeatureExtractor(["relu1_1", "relu2_1"], weights="random")
    assert not any(p.requires_grad for p in extractor.parameters())
    assert not any(m.training for m in extractor.modules())
    extractor.train()
    assert not any(m.training for m in extractor.modules())
    pixels = image.clone().requires_grad_(True)
    extractor(pixels)["relu2_1"].square().sum().backward()
    assert pixels.grad is not None
    assert pixels.grad.abs().sum() > 0
    assert all(p.grad is None for p in extractor.parameters())


def test_no_hooks_and_state_dict_holds_only_the_weights() -> None:
    extractor = FeatureExtractor(["conv1_1", "relu1_2"], weights="random")
    assert hooks_of(extractor) == 0
    assert set(extractor.state_dict()) == {
        "body.0.weight",
        "body.0.bias",
        "body.2.weight",
        "body.2.bias",
    }


def test_requested_conv_is_not_overwritten_by_the_inplace_relu(image: torch.Tensor) -> None:
    extractor = FeatureExtractor(["conv1_1", "relu1_1", "conv2_1", "relu2_2"], weights="random")
    out = extractor(image)
    assert out["conv1_1"].min() < 0  # a pre-activation keeps its negative values
    torch.testing.assert_close(out["relu1_1"], out["conv1_1"].clamp(min=0))
    assert out["conv2_1"].min() < 0
    relus = [m for m in extractor.body.children() if isinstance(m, nn.ReLU)]
    assert [r.inplace for r in relus] == [False, True, False, True]  # only after a tapped conv


def test_extractor_pickles_and_deep_copies(image: torch.Tensor) -> None:
    extractor = FeatureExtractor(["relu1_1", "relu2_1"], weights="random")
    expected = extractor(image)
    for clone in (pickle.loads(pickle.dumps(extractor)), copy.deepcopy(extractor)):
        got = clone(image)
        for name in expected:
            torch.testing.assert_close(got[name], expected[name], rtol=0, atol=0)


def test_channels_last_and_float64_inputs_give_the_same_features(image: torch.Tensor) -> None:
    extractor = FeatureExtractor(["relu1_1", "relu2_1"], weights="random")
    expected = extractor(image)
    last = extractor(image.to(memory_format=torch.channels_last))
    wide = extractor(image.double())
    for name in expected:
        torch.testing.assert_close(last[name], expected[name])
        torch.testing.assert_close(wide[name], expected[name])


def test_channels_last_module_gives_the_same_features(image: torch.Tensor) -> None:
    extractor = FeatureExtractor(["conv1_1", "relu2_1"], weights="random", convention="caffe")
    expected = extractor(image)
    extractor.to(memory_format=torch.channels_last)
    assert extractor.body[0].weight.is_contiguous(memory_format=torch.channels_last)
    got = extractor(image.to(memory_format=torch.channels_last))
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=1e-4, atol=1e-3)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_forward_and_backward_never_sync_with_the_host_on_cuda() -> None:
    extractor = FeatureExtractor(SIX, weights="random").to(
        "cuda", memory_format=torch.channels_last
    )
    pixels = torch.rand(1, 3, 64, 64, device="cuda").to(memory_format=torch.channels_last)
    pixels.requires_grad_(True)
    extractor(pixels)  # warm-up: cuDNN chooses its algorithms here
    torch.cuda.synchronize()
    previous = torch.cuda.get_sync_debug_mode()
    torch.cuda.set_sync_debug_mode("error")
    try:
        features = extractor(pixels)
        torch.stack([f.square().mean() for f in features.values()]).sum().backward()
    finally:
        torch.cuda.set_sync_debug_mode(previous)
    assert pixels.grad is not None
    with torch.autocast("cuda", dtype=torch.bfloat16):
        assert extractor(pixels)["relu5_1"].dtype == torch.bfloat16


def test_preprocessing_keeps_channels_last() -> None:
    extractor = FeatureExtractor(["relu1_1"], weights="random", convention="caffe")
    x = torch.rand(1, 3, 8, 8).to(memory_format=torch.channels_last)
    assert extractor.preprocess(x).is_contiguous(memory_format=torch.channels_last)


# -- conventions -----------------------------------------------------------------------------------


def test_caffe_net_on_rgb_equals_hand_preprocessed_bgr_through_the_raw_module(
    image: torch.Tensor,
) -> None:
    extractor = FeatureExtractor(["relu1_1", "relu3_1"])
    bgr = image[:, [2, 1, 0]] * 255 - CAFFE_MEAN_BGR
    raw = extractor.body
    expected_relu1 = raw[:2](bgr)
    expected_relu3 = raw(bgr)
    out = extractor(image)
    torch.testing.assert_close(out["relu1_1"], expected_relu1, rtol=1e-5, atol=1e-3)
    torch.testing.assert_close(out["relu3_1"], expected_relu3, rtol=1e-5, atol=1e-3)


@pytest.mark.slow  # importing torchvision.models takes seconds on a busy 2-core machine
def test_bundled_extractor_matches_torchvision_vgg16_features(image: torch.Tensor) -> None:
    torchvision = pytest.importorskip("torchvision")
    extractor = FeatureExtractor(["relu5_1"])
    with torch.device("meta"):  # the real classifier would take seconds to initialise
        reference = torchvision.models.vgg16().features[:26]
    reference.load_state_dict(
        {k.removeprefix("body."): v for k, v in extractor.state_dict().items()}, assign=True
    )
    bgr = image[:, [2, 1, 0]] * 255 - CAFFE_MEAN_BGR
    torch.testing.assert_close(extractor(image)["relu5_1"], reference(bgr), rtol=1e-4, atol=1e-3)


def test_imagenet_convention_is_mean_std_normalisation(image: torch.Tensor) -> None:
    extractor = FeatureExtractor(["conv1_1"], weights="random", convention="imagenet")
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    expected = extractor.body[0]((image - mean) / std)
    torch.testing.assert_close(extractor(image)["conv1_1"], expected)


def test_input_convention_apply_and_validation() -> None:
    white = torch.ones(1, 3, 1, 1)
    torch.testing.assert_close(
        CAFFE.apply(white).flatten(),
        torch.tensor([255 - 104.00699, 255 - 116.66877, 255 - 122.67892]),
    )
    rgb = torch.tensor([0.1, 0.5, 0.9]).view(1, 3, 1, 1)
    torch.testing.assert_close(IDENTITY.apply(rgb), rgb)
    torch.testing.assert_close(CAFFE.apply(rgb).flatten()[0], torch.tensor(0.9 * 255 - 104.00699))
    assert resolve_convention("imagenet") is IMAGENET
    with pytest.raises(ConfigError, match="unknown input convention 'bgr'"):
        resolve_convention("bgr")
    with pytest.raises(ConfigError, match="std must be positive"):
        InputConvention("bad", "rgb", 1.0, (0.0, 0.0, 0.0), (1.0, 0.0, 1.0))
    with pytest.raises(ConfigError, match="channel_order must be 'rgb' or 'bgr'"):
        InputConvention("bad", "grb", 1.0, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))  # type: ignore[arg-type]


def test_custom_convention_instance_is_applied(image: torch.Tensor) -> None:
    halve = InputConvention("halve", "rgb", 0.5, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    extractor = FeatureExtractor(
        ["conv1"], backbone=tiny_sequential(), layer_names=TINY_NAMES, convention=halve
    )
    plain = FeatureExtractor(["conv1"], backbone=tiny_sequential(), layer_names=TINY_NAMES)
    torch.testing.assert_close(extractor(image)["conv1"], plain(image * 0.5)["conv1"])


# -- options ---------------------------------------------------------------------------------------


def test_avg_pooling_replaces_every_max_pool(image: torch.Tensor) -> None:
    layers = ["relu1_2", "pool1", "relu2_1"]
    avg = FeatureExtractor(layers, weights="random", pooling="avg")
    mx = FeatureExtractor(layers, weights="random", pooling="max")
    assert not any(isinstance(m, nn.MaxPool2d) for m in avg.modules())
    a, m = avg(image), mx(image)
    torch.testing.assert_close(a["relu1_2"], m["relu1_2"])  # same weights before the pooling
    torch.testing.assert_close(a["pool1"], F.avg_pool2d(a["relu1_2"], 2))
    torch.testing.assert_close(m["pool1"], F.max_pool2d(m["relu1_2"], 2))
    assert (m["pool1"] > a["pool1"]).any()


def test_replicate_padding_changes_only_the_border_of_the_first_conv(image: torch.Tensor) -> None:
    rep = FeatureExtractor(["conv1_1", "conv1_2"], weights="random", padding="replicate")
    zero = FeatureExtractor(["conv1_1", "conv1_2"], weights="random")
    convs = [m for m in rep.body.children() if isinstance(m, nn.Conv2d)]
    assert [c.padding_mode for c in convs] == ["replicate", "zeros"]
    r, z = rep(image)["conv1_1"], zero(image)["conv1_1"]
    torch.testing.assert_close(r[..., 1:-1, 1:-1], z[..., 1:-1, 1:-1])
    assert not torch.allclose(r[..., 0, :], z[..., 0, :])
    x = rep.preprocess(image)
    conv = convs[0]
    expected = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), conv.weight, conv.bias)
    torch.testing.assert_close(r, expected)


def test_bad_options_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="pooling must be one of 'max', 'avg', got 'min'"):
        FeatureExtractor(["relu1_1"], weights="random", pooling="min")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="padding must be one of 'zeros', 'replicate'"):
        FeatureExtractor(["relu1_1"], weights="random", padding="reflect")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"layer_names is for a custom nn\.Module"):
        FeatureExtractor(["relu1_1"], weights="random", layer_names={"a": "0"})
    with pytest.raises(ConfigError, match="weights applies to the built-in VGG"):
        FeatureExtractor(
            ["conv1"], backbone=tiny_sequential(), layer_names=TINY_NAMES, weights="random"
        )


def test_random_weights_are_seeded_without_touching_global_rng() -> None:
    state = torch.get_rng_state()
    a = FeatureExtractor(["relu1_1"], weights="random", seed=3)
    b = FeatureExtractor(["relu1_1"], weights="random", seed=3)
    c = FeatureExtractor(["relu1_1"], weights="random", seed=4)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(a.body[0].weight, b.body[0].weight)
    assert not torch.equal(a.body[0].weight, c.body[0].weight)
    assert a.source == "random(seed=3)"


def test_vgg19_random_layout() -> None:
    extractor = FeatureExtractor(["relu3_4", "conv4_1"], backbone="vgg19", weights="random")
    out = extractor(torch.rand(1, 3, 16, 16))
    assert tuple(out["relu3_4"].shape) == (1, 256, 4, 4)
    assert tuple(out["conv4_1"].shape) == (1, 512, 2, 2)
    assert len(list(extractor.body.children())) == 20


# -- input validation ------------------------------------------------------------------------------


def test_forward_validates_metadata() -> None:
    extractor = FeatureExtractor(["relu5_1"], weights="random")
    assert extractor.min_size == 16
    with pytest.raises(ShapeError, match=r"4-d tensor \(B, 3, H, W\), got 3-d"):
        extractor(torch.rand(3, 32, 32))
    with pytest.raises(ShapeError, match=r"must be RGB .* got 1 channels"):
        extractor(torch.rand(1, 1, 32, 32))
    with pytest.raises(DTypeError, match="floating-point"):
        extractor(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))
    with pytest.raises(ShapeError, match="relu5_1 needs height and width of at least 16"):
        extractor(torch.rand(1, 3, 15, 64))
    assert tuple(extractor(torch.rand(1, 3, 16, 16))["relu5_1"].shape) == (1, 512, 1, 1)


def test_device_mismatch_is_reported() -> None:
    extractor = FeatureExtractor(["relu1_1"], weights="random").to("meta")
    with pytest.raises(DeviceMismatchError, match="extractor is on meta"):
        extractor(torch.rand(1, 3, 8, 8))


# -- custom modules --------------------------------------------------------------------------------


def test_custom_sequential_with_name_map(image: torch.Tensor) -> None:
    model = tiny_sequential()
    before = snapshot(model)
    extractor = FeatureExtractor(
        ["relu2", "conv1", "relu1"], backbone=model, layer_names=TINY_NAMES
    )
    assert extractor.layers == ("conv1", "relu1", "relu2")
    assert extractor.convention == IDENTITY
    assert len(list(extractor.body.children())) == 5  # the trailing 1x1 conv is dropped
    out = extractor(image)
    with torch.no_grad():
        conv1 = model[0](image)
        relu2 = F.relu(model[3](F.max_pool2d(F.relu(conv1), 2)))
    torch.testing.assert_close(out["conv1"], conv1)  # not clobbered by the model's in-place ReLU
    torch.testing.assert_close(out["relu1"], conv1.clamp(min=0))
    torch.testing.assert_close(out["relu2"], relu2)
    assert_same_snapshot(before, snapshot(model))
    assert hooks_of(model) == 0
    assert hooks_of(extractor) == 0
    assert not any(p.requires_grad for p in extractor.parameters())


def test_two_names_for_one_module_both_come_back(image: torch.Tensor) -> None:
    extractor = FeatureExtractor(
        ["b", "a"], backbone=tiny_sequential(), layer_names={"a": "1", "b": "1"}
    )
    out = extractor(image)
    assert extractor.layers == ("a", "b")  # ties keep the order of layer_names
    assert list(out) == ["a", "b"]
    assert out["a"] is out["b"]


def test_custom_sequential_without_a_map_uses_module_paths(image: torch.Tensor) -> None:
    extractor = FeatureExtractor(["1", "4"], backbone=tiny_sequential())
    assert set(extractor(image)) == {"1", "4"}


def test_custom_module_in_training_mode_is_left_in_training_mode() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU()).train()
    before = snapshot(model)
    extractor = FeatureExtractor(["bn"], backbone=model, layer_names={"bn": "1"})
    extractor(torch.rand(2, 3, 8, 8))
    assert_same_snapshot(before, snapshot(model))  # running stats untouched too
    assert model.training
    assert not extractor.body[1].training


def test_custom_options_apply_to_the_copy_only(image: torch.Tensor) -> None:
    model = tiny_sequential()
    extractor = FeatureExtractor(
        ["relu2"], backbone=model, layer_names=TINY_NAMES, pooling="avg", padding="replicate"
    )
    assert isinstance(model[2], nn.MaxPool2d)
    assert model[0].padding_mode == "zeros"
    assert isinstance(extractor.body[2], nn.AvgPool2d)
    assert extractor.body[0].padding_mode == "replicate"
    with pytest.raises(ConfigError, match=r"needs a nn\.Conv2d"):
        FeatureExtractor(["0"], backbone=nn.Sequential(nn.ReLU()), padding="replicate")


def test_custom_non_sequential_module_via_graph_nodes(image: torch.Tensor) -> None:
    model = Branchy()
    before = snapshot(model)
    extractor = FeatureExtractor(
        ["block", "stem", "act"],
        backbone=model,
        layer_names={"stem": "stem", "act": "act", "block": "add"},
        convention="imagenet",
    )
    assert extractor.layers == ("stem", "act", "block")
    out = extractor(image)
    with torch.no_grad():
        x = IMAGENET.apply(image)
        stem = model.stem(x)
        act = F.relu(stem)
        block = model.block(act) + act
    torch.testing.assert_close(out["stem"], stem)
    torch.testing.assert_close(out["act"], act)
    torch.testing.assert_close(out["block"], block)
    submodules = dict(extractor.body.named_modules())
    assert "head" not in submodules  # nothing after the deepest requested node
    assert_same_snapshot(before, snapshot(model))
    assert hooks_of(extractor) == 0
    assert pickle.loads(pickle.dumps(extractor))(image)["block"].shape == block.shape


def test_custom_module_path_prefix_takes_the_last_node_inside(image: torch.Tensor) -> None:
    extractor = FeatureExtractor(["inner"], backbone=Branchy(), layer_names={"inner": "block"})
    assert tuple(extractor(image)["inner"].shape) == (2, 4, 32, 32)


def test_custom_bad_names_and_paths() -> None:
    with pytest.raises(
        LayerNotFoundError, match="unknown layer 'relu3' for the custom module; closest:"
    ):
        FeatureExtractor(["relu3"], backbone=tiny_sequential(), layer_names=TINY_NAMES)
    with pytest.raises(
        LayerNotFoundError, match=r"'stme' is not a module path or node .* closest: 'stem'"
    ):
        FeatureExtractor(["s"], backbone=Branchy(), layer_names={"s": "stme"})
