"""How long building the default FeatureExtractor takes (load + sha256 + construct).

Builds the extractor for the six Gatys layers (relu1_1 ... relu5_1, bundled VGG16 weights) several
times and prints min/median per stage, then the same for alternatives the design rejected:
constructing the convolutions on the CPU with their default initialisation (then copying the
weights in) and, with ``--torchvision``, ``torchvision.models.vgg16()``. A cold build (first one in
a fresh interpreter, after ``import neuralstyle``) is timed in subprocesses. The last line is
JSON.

Usage::

    python benchmarks/extractor_build.py [--repeats 7] [--threads N] [--torchvision]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import torch

from neuralstyle.backbones import build_features, get_spec
from neuralstyle.features import FeatureExtractor
from neuralstyle.weights import BUNDLED_SHA256, bundled_path, select_state_dict

LAYERS = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu4_2", "relu5_1"]
SPEC = get_spec("vgg16")
DEPTH = SPEC.index("relu5_1")

COLD = """
import time
t0 = time.perf_counter()
import neuralstyle
t1 = time.perf_counter()
neuralstyle.FeatureExtractor({layers!r})
t2 = time.perf_counter()
print(t1 - t0, t2 - t1)
"""


def timed(fn: Callable[[], object], repeats: int) -> list[float]:
    fn()  # warm-up: first-call costs are measured separately (cold build)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def stage_read_and_hash() -> bytes:
    data = bundled_path().read_bytes()
    if hashlib.sha256(data).hexdigest() != BUNDLED_SHA256:
        raise SystemExit("bundled file does not match its checksum")
    return data


def stage_torch_load(data: bytes) -> dict[str, torch.Tensor]:
    state: dict[str, torch.Tensor] = torch.load(io.BytesIO(data), weights_only=True)
    return state


def stage_to_float32(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return select_state_dict(state, SPEC, DEPTH, "bundled", check_values=False)


def construct_meta(state: dict[str, torch.Tensor]) -> torch.nn.Module:
    net = build_features(SPEC, DEPTH)
    net.load_state_dict(state, assign=True)
    return net


def construct_default_init(state: dict[str, torch.Tensor]) -> torch.nn.Module:
    net = build_features(SPEC, DEPTH, device="cpu")  # runs nn.Conv2d's kaiming-uniform init
    net.load_state_dict(state)
    return net


def torchvision_vgg16() -> torch.nn.Module:
    import torchvision

    return torchvision.models.vgg16().features[: DEPTH + 1]


def cold_builds(count: int) -> list[tuple[float, float]]:
    results = []
    for _ in range(count):
        out = subprocess.run(
            [sys.executable, "-c", COLD.format(layers=LAYERS)],
            capture_output=True,
            text=True,
            check=True,
        )
        first, second = out.stdout.split()
        results.append((float(first), float(second)))
    return results


def row(name: str, times: list[float]) -> dict[str, float]:
    stats = {"min_ms": min(times) * 1e3, "median_ms": statistics.median(times) * 1e3}
    print(f"| {name:44s} | {stats['min_ms']:9.1f} | {stats['median_ms']:9.1f} |")
    return stats


def main() -> None:
    parser = argparse.ArgumentParser(description="Time building the default FeatureExtractor.")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--cold", type=int, default=3, help="fresh-interpreter builds")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--torchvision", action="store_true", help="also time vgg16() (slow)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    data = stage_read_and_hash()
    raw = stage_torch_load(data)
    state = stage_to_float32(raw)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.repeats} repeats")
    print(f"| {'stage':44s} | {'min ms':>9s} | {'median ms':>9s} |")
    print(f"| {'-' * 44} | {'-' * 9} | {'-' * 9} |")
    result: dict[str, object] = {"threads": torch.get_num_threads(), "repeats": args.repeats}
    result["read_sha256"] = row("read + sha256 (20 MB)", timed(stage_read_and_hash, args.repeats))
    result["torch_load"] = row(
        "torch.load(weights_only=True)", timed(lambda: stage_torch_load(data), args.repeats)
    )
    result["float32"] = row(
        "check keys/shapes + float16 -> float32", timed(lambda: stage_to_float32(raw), args.repeats)
    )
    result["construct_meta"] = row(
        "construct on meta + assign", timed(lambda: construct_meta(state), args.repeats)
    )
    result["construct_default_init"] = row(
        "construct on CPU (default init) + copy",
        timed(lambda: construct_default_init(state), args.repeats),
    )
    total = timed(lambda: FeatureExtractor(LAYERS), args.repeats)
    result["total_warm"] = row("FeatureExtractor(six layers), warm", total)
    if args.torchvision:
        result["torchvision_vgg16"] = row(
            "torchvision.models.vgg16() (no weights)", timed(torchvision_vgg16, 2)
        )
    cold = cold_builds(args.cold)
    result["import_cold"] = row("import neuralstyle, fresh interpreter", [c[0] for c in cold])
    result["total_cold"] = row("first FeatureExtractor(six layers), cold", [c[1] for c in cold])
    print(json.dumps(result))


if __name__ == "__main__":
    main()
