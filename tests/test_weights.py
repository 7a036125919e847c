"""Weights: bundled file (offline, checksum, golden), torchvision cache, local files, refusals."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest
import torch

from neuralstyle.backbones import CAFFE, CAFFE_RGB, IMAGENET, available_layers, get_spec
from neuralstyle.errors import ConfigError, WeightsError, WeightsNotFoundError
from neuralstyle.features import FeatureExtractor
from neuralstyle.weights import (
    BUNDLED_SHA256,
    MAGNITUDE_THRESHOLD,
    bundled_path,
    imagenet_cache_path,
    infer_convention,
    load_state_dict_file,
    random_state_dict,
)

GOLDEN = Path(__file__).parent / "golden" / "bundled_vgg16_stats.pt"
VGG16 = get_spec("vgg16")
CAFFE_MEAN_BGR = torch.tensor([104.00699, 116.66877, 122.67892]).view(1, 3, 1, 1)


def torchvision_layout(depth: int = 6, *, seed: int = 0, conv1_peak: float = 1.2) -> dict:  # type: ignore[type-arg]
    """A VGG16 state dict as torchvision saves it: features.N.* plus classifier.* keys."""
    state = {f"features.{k}": v for k, v in random_state_dict(VGG16, depth, seed).items()}
    weight = state["features.0.weight"]
    state["features.0.weight"] = weight / weight.abs().max() * conv1_peak
    state["classifier.0.weight"] = torch.zeros(4, 2)
    state["classifier.0.bias"] = torch.zeros(4)
    return state


# -- bundled ---------------------------------------------------------------------------------------


def test_bundled_file_is_float16_through_conv5_1_with_the_pinned_checksum() -> None:
    path = bundled_path()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == BUNDLED_SHA256
    state = torch.load(path, weights_only=True)
    indices = sorted({int(k.split(".")[0]) for k in state})
    assert indices == [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24]  # conv1_1 .. conv5_1
    assert {t.dtype for t in state.values()} == {torch.float16}
    assert path.with_name("NOTICE").read_text().count("MIT") >= 1


@pytest.mark.usefixtures("no_network")
def test_bundled_features_match_golden_statistics() -> None:
    golden = torch.load(GOLDEN, weights_only=True)
    layers = list(golden["stats"])
    assert layers == list(available_layers("vgg16")[:26])
    feats = FeatureExtractor(layers)(golden["input"])
    for name in layers:
        mean_std = torch.stack([feats[name].mean(), feats[name].std()])
        expected = golden["stats"][name]
        torch.testing.assert_close(mean_std, expected, rtol=1e-4, atol=1e-4 * float(expected[1]))


def test_corrupted_bundled_copy_fails_its_checksum(tmp_path: Path) -> None:
    copy = tmp_path / "bundled.pth"
    data = bytearray(bundled_path().read_bytes())
    data[len(data) // 2] ^= 0xFF
    copy.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="checksum mismatch"):
        load_state_dict_file(copy, sha256=BUNDLED_SHA256)


def test_bundled_weights_have_limits() -> None:
    with pytest.raises(ConfigError, match="bundled weights stop at relu5_1; relu5_2 needs"):
        FeatureExtractor(["relu5_2"])
    with pytest.raises(ConfigError, match="bundled weights exist for vgg16 only"):
        FeatureExtractor(["relu1_1"], backbone="vgg19", weights="bundled")


# -- torchvision ImageNet weights ------------------------------------------------------------------


@pytest.mark.usefixtures("no_network")
def test_imagenet_offline_names_the_file_and_the_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    folder = tmp_path / "hub" / "checkpoints"
    with pytest.raises(WeightsNotFoundError) as info:
        FeatureExtractor(["relu1_1"], backbone="vgg19")
    message = str(info.value)
    assert "vgg19-dcbb9e9d.pth" in message
    assert str(folder) in message
    assert "weights='/path/to/vgg19-dcbb9e9d.pth'" in message
    assert isinstance(info.value, FileNotFoundError)
    assert not any(folder.iterdir())  # no partial download left behind


@pytest.mark.usefixtures("no_network")
def test_imagenet_file_already_in_the_cache_loads_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    target = imagenet_cache_path("vgg16")
    assert target == tmp_path / "hub" / "checkpoints" / "vgg16-397923af.pth"
    target.parent.mkdir(parents=True)
    state = torchvision_layout()
    torch.save(state, target)
    extractor = FeatureExtractor(["relu2_1"], weights="imagenet")
    assert extractor.convention == IMAGENET
    assert extractor.source == str(target)
    torch.testing.assert_close(extractor.body[5].weight, state["features.5.weight"])


# -- local files -----------------------------------------------------------------------------------


def test_torchvision_layout_loads_by_path_and_ignores_the_classifier(tmp_path: Path) -> None:
    path = tmp_path / "my_vgg16.pth"
    state = torchvision_layout()
    torch.save(state, path)
    extractor = FeatureExtractor(["relu2_1"], weights=path)
    torch.testing.assert_close(extractor.body[0].weight, state["features.0.weight"])
    assert extractor.convention == IMAGENET  # conv1_1 peak 1.2 > threshold
    assert extractor.source == str(path)


def test_bare_keys_and_float16_load_too(tmp_path: Path) -> None:
    path = tmp_path / "bare.pth"
    state = {k.removeprefix("features."): v.half() for k, v in torchvision_layout().items()}
    state = {k: v for k, v in state.items() if not k.startswith("classifier")}
    torch.save(state, path)
    extractor = FeatureExtractor(["relu2_1"], weights=str(path), convention="imagenet")
    assert extractor.body[2].weight.dtype == torch.float32
    torch.testing.assert_close(extractor.body[2].weight, state["2.weight"].float())


def test_caffe_layout_file_known_by_name_gives_caffe_features(tmp_path: Path) -> None:
    path = tmp_path / "vgg16-00b39a1b.pth"  # neural-style-pt's Caffe VGG16 file name
    state = torchvision_layout(conv1_peak=1.5)  # magnitude would say ImageNet: the name wins
    torch.save(state, path)
    extractor = FeatureExtractor(["relu1_1"], weights=path)
    assert extractor.convention == CAFFE
    image = torch.rand(1, 3, 16, 16)
    bgr = image[:, [2, 1, 0]] * 255 - CAFFE_MEAN_BGR
    expected = torch.relu(
        torch.nn.functional.conv2d(
            bgr, state["features.0.weight"], state["features.0.bias"], padding=1
        )
    )
    torch.testing.assert_close(extractor(image)["relu1_1"], expected, rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize(
    ("name", "peak", "expected"),
    [
        ("vgg19-dcbb9e9d.pth", 0.1, IMAGENET),
        ("vgg19-d01eb7cb.pth", 2.0, CAFFE),
        ("vgg16_features-amdegroot-88682ab5.pth", 2.0, CAFFE_RGB),
        ("unknown.pth", MAGNITUDE_THRESHOLD, CAFFE),
        ("unknown.pth", MAGNITUDE_THRESHOLD * 1.01, IMAGENET),
    ],
)
def test_convention_inference_rule(name: str, peak: float, expected: object) -> None:
    state = torchvision_layout(depth=1, conv1_peak=peak)
    assert infer_convention(name, state) == expected


def test_explicit_convention_overrides_inference(tmp_path: Path) -> None:
    path = tmp_path / "vgg16-00b39a1b.pth"
    torch.save(torchvision_layout(), path)
    extractor = FeatureExtractor(["relu1_1"], weights=path, convention=IMAGENET)
    assert extractor.convention == IMAGENET


def test_pickle_with_a_payload_is_refused_and_not_run(tmp_path: Path) -> None:
    marker = tmp_path / "payload_ran"

    class Payload:
        def __reduce__(self) -> tuple[object, tuple[str, str]]:
            return (shutil.copyfile, (str(bundled_path()), str(marker)))

    path = tmp_path / "evil.pth"
    torch.save({"features.0.weight": Payload()}, path)
    with pytest.raises(WeightsError, match=r"may be unsafe .*Unsupported global"):
        FeatureExtractor(["relu1_1"], weights=path)
    assert not marker.exists()


def test_truncated_file_is_refused(tmp_path: Path) -> None:
    whole = tmp_path / "whole.pth"
    torch.save(torchvision_layout(), whole)
    cut = tmp_path / "cut.pth"
    cut.write_bytes(whole.read_bytes()[: os.path.getsize(whole) // 2])
    with pytest.raises(WeightsError, match="not a readable PyTorch file, truncated or corrupt"):
        FeatureExtractor(["relu1_1"], weights=cut)


def test_wrong_keys_are_listed(tmp_path: Path) -> None:
    state = torchvision_layout()
    del state["features.2.bias"]
    state["features.3.weight"] = torch.zeros(1)  # ReLU has no weights
    state["encoder.0.weight"] = torch.zeros(1)
    path = tmp_path / "keys.pth"
    torch.save(state, path)
    with pytest.raises(WeightsError, match="does not fit vgg16 up to relu2_1") as info:
        FeatureExtractor(["relu2_1"], weights=path)
    message = str(info.value)
    assert "missing keys ['2.bias']" in message
    assert "'encoder.0.weight'" in message
    assert "'3.weight'" in message


def test_wrong_shapes_are_listed(tmp_path: Path) -> None:
    state = torchvision_layout()
    state["features.5.weight"] = torch.zeros(128, 32, 3, 3)
    path = tmp_path / "shapes.pth"
    torch.save(state, path)
    with pytest.raises(
        WeightsError,
        match=r"wrong shapes \['5\.weight: \(128, 32, 3, 3\) \(expected \(128, 64, 3, 3\)\)'\]",
    ):
        FeatureExtractor(["relu2_1"], weights=path)


def test_non_finite_and_non_dict_contents_are_refused(tmp_path: Path) -> None:
    state = torchvision_layout()
    state["features.2.weight"][0, 0, 0, 0] = float("nan")
    nan_path = tmp_path / "nan.pth"
    torch.save(state, nan_path)
    with pytest.raises(WeightsError, match=r"2\.weight contains NaN or Inf"):
        FeatureExtractor(["relu1_2"], weights=nan_path)
    tensor_path = tmp_path / "tensor.pth"
    torch.save(torch.zeros(3), tensor_path)
    with pytest.raises(WeightsError, match="holds a Tensor, expected a state dict"):
        FeatureExtractor(["relu1_1"], weights=tensor_path)


def test_missing_file_is_weights_not_found(tmp_path: Path) -> None:
    with pytest.raises(
        WeightsNotFoundError, match="weights must be 'bundled', 'imagenet', 'random'"
    ):
        FeatureExtractor(["relu1_1"], weights=tmp_path / "nope.pth")
    with pytest.raises(WeightsNotFoundError, match="no weights file at"):
        load_state_dict_file(tmp_path / "nope.pth")


def test_random_state_dict_leaves_the_global_rng_alone() -> None:
    state = torch.get_rng_state()
    first = random_state_dict(VGG16, 3, seed=7)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(first["2.weight"], random_state_dict(VGG16, 3, seed=7)["2.weight"])
    assert set(first) == {"0.weight", "0.bias", "2.weight", "2.bias"}
    assert float(first["2.weight"].std()) == pytest.approx((2 / (64 * 9)) ** 0.5, rel=0.05)
