"""Dev-time tool for the bundled VGG16 weights (never imported by the package).

Subcommands:

``build``    read the float32 HED VGG16 state dict, check its sha256, keep conv1_1..conv5_1, store
             it as float16 in ``neuralstyle/data/`` and print the new file's sha256 (paste it into
             ``BUNDLED_SHA256`` in ``neuralstyle/weights.py``).
``measure``  relative feature error of the float16 file against the float32 source, per layer, on
             real photos (the numbers in ``docs/backbones.md``).
``golden``   write ``tests/golden/bundled_vgg16_stats.pt``: a fixed 32x32 input and the per-layer
             mean/std of its features through the bundled weights (plain tensors).

Usage::

    python scripts/make_bundled_weights.py build --source ../shared/weights/vgg16_hed.pth
    python scripts/make_bundled_weights.py measure --source ../shared/weights/vgg16_hed.pth
    python scripts/make_bundled_weights.py golden
"""

from __future__ import annotations

import argparse
import hashlib
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from neuralstyle.backbones import available_layers, get_spec
from neuralstyle.features import FeatureExtractor
from neuralstyle.weights import BUNDLED_FILE, BUNDLED_LAST_LAYER, BUNDLED_SHA256

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT.parent / "shared" / "weights" / "vgg16_hed.pth"
SOURCE_SHA256 = "cdf2b9b29671a3066b6a90f95b368e39f3d4963b371d4aae959b171f0667c5af"
IMAGES = ROOT.parent / "shared" / "images" / "content"
TARGET = ROOT / "neuralstyle" / "data" / BUNDLED_FILE
GOLDEN = ROOT / "tests" / "golden" / "bundled_vgg16_stats.pt"
VGG16_LAYERS = available_layers("vgg16")
BUNDLED_LAYERS = VGG16_LAYERS[: VGG16_LAYERS.index(BUNDLED_LAST_LAYER) + 1]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build(source: Path) -> None:
    digest = sha256(source)
    if digest != SOURCE_SHA256:
        raise SystemExit(f"{source}: sha256 {digest}, expected {SOURCE_SHA256}")
    state = torch.load(source, map_location="cpu", weights_only=True)
    depth = get_spec("vgg16").index(BUNDLED_LAST_LAYER)
    kept = {
        key: tensor.to(torch.float16).contiguous()
        for key, tensor in state.items()
        if int(key.split(".")[0]) <= depth
    }
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    torch.save(kept, TARGET)
    params = sum(t.numel() for t in kept.values())
    size = TARGET.stat().st_size
    print(f"wrote {TARGET} ({size:,} bytes, {len(kept)} tensors, {params:,} params)")
    print(f"sha256 {sha256(TARGET)} (weights.py has {BUNDLED_SHA256})")


def load_image(path: Path) -> torch.Tensor:
    with Image.open(path) as img:
        array = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).contiguous()


def relative_error(approx: torch.Tensor, exact: torch.Tensor) -> float:
    diff = (approx.double() - exact.double()).norm()
    return float(diff / exact.double().norm())


@torch.no_grad()
def measure(source: Path) -> None:
    fp16 = FeatureExtractor(BUNDLED_LAYERS, weights="bundled")
    fp32 = FeatureExtractor(BUNDLED_LAYERS, weights=source, convention="caffe")
    errors: dict[str, dict[str, float]] = {}
    for path in sorted(IMAGES.glob("*.jpg")):
        image = load_image(path)
        a, b = fp16(image), fp32(image)
        errors[path.stem] = {name: relative_error(a[name], b[name]) for name in BUNDLED_LAYERS}
        print(f"{path.name}: {tuple(image.shape[-2:])}")
    names = list(errors)
    print("| layer | " + " | ".join(names) + " | max |")
    print("| --- |" + " --- |" * (len(names) + 1))
    for layer in BUNDLED_LAYERS:
        row = [errors[n][layer] for n in names]
        print(f"| {layer} | " + " | ".join(f"{e:.2e}" for e in row) + f" | {max(row):.2e} |")


def golden_input() -> torch.Tensor:
    """A smooth, deterministic 32x32 RGB pattern in [0, 1] (no RNG involved)."""
    y, x = torch.meshgrid(torch.linspace(0, 1, 32), torch.linspace(0, 1, 32), indexing="ij")
    channels = [
        0.5 + 0.5 * torch.sin(2 * math.pi * (x + 0.3 * y)),
        0.5 + 0.5 * torch.cos(3 * math.pi * x * y),
        (x + y) / 2,
    ]
    return torch.stack(channels).unsqueeze(0).clamp(0, 1)


@torch.no_grad()
def golden() -> None:
    image = golden_input()
    feats = FeatureExtractor(BUNDLED_LAYERS)(image)
    stats = {name: torch.stack([f.mean(), f.std()]) for name, f in feats.items()}
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"input": image, "stats": stats}, GOLDEN)
    print(f"wrote {GOLDEN} ({GOLDEN.stat().st_size:,} bytes)")
    for name, value in stats.items():
        print(f"{name:8s} mean {value[0].item():12.4f} std {value[1].item():12.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["build", "measure", "golden"])
    parser.add_argument("--source", type=Path, default=SOURCE, help="float32 vgg16_hed.pth")
    args = parser.parse_args()
    if args.command == "build":
        build(args.source)
    elif args.command == "measure":
        measure(args.source)
    else:
        golden()


if __name__ == "__main__":
    main()
