"""Fifty runs in one process leave nothing behind: memory, tensors, hooks, threads, the network.

A service that stylizes image after image must not grow. The runs share one tiny extractor (as a
long-lived service would) and build a fresh StyleTransfer each time, with callbacks attached;
Adam and L-BFGS alternate. What is measured after the first run (the warm-up: lazy
initialisation, allocator pools) must hold after the fiftieth.
"""

from __future__ import annotations

import gc
import io
import os
import sys
import threading
from dataclasses import dataclass, replace

import pytest
import torch
from tiny import random_image, tiny_extractor
from torch import nn

from neuralstyle.callbacks import LossHistory, Progress, Snapshots
from neuralstyle.config import TransferConfig
from neuralstyle.features import FeatureExtractor
from neuralstyle.layers import LayerMap
from neuralstyle.transfer import StyleTransfer

RUNS = 50
LAYERS = LayerMap(content={"relu2_1": 1.0}, style={"relu1_1": 1.0, "relu3_1": 1.0})
CONFIG = TransferConfig(steps=4, device="cpu", learning_rate=0.05)
CONTENT = random_image(16, 16, seed=1)
STYLE = random_image(16, 20, seed=2)
MAX_GROWTH = 0.05


def resident_bytes() -> int:
    """The process's resident set size now (not the peak)."""
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def live_tensors() -> int:
    # type(), not isinstance(): isinstance reads __class__, which some lazy torch objects
    # answer with a deprecation warning.
    return sum(1 for obj in gc.get_objects() if issubclass(type(obj), torch.Tensor))


def hook_count(module: nn.Module) -> int:
    """Hooks registered on ``module`` and its children, plus torch's global module hooks."""
    kinds = (
        "_forward_hooks",
        "_forward_pre_hooks",
        "_backward_hooks",
        "_backward_pre_hooks",
        "_state_dict_hooks",
        "_load_state_dict_pre_hooks",
    )
    own = sum(len(getattr(m, kind, {})) for m in module.modules() for kind in kinds)
    registry = nn.modules.module
    global_hooks = (
        registry._global_forward_hooks,
        registry._global_forward_pre_hooks,
        registry._global_backward_hooks,
        registry._global_backward_pre_hooks,
    )
    return own + sum(len(hooks) for hooks in global_hooks)


@dataclass(frozen=True)
class Measure:
    resident: int
    tensors: int
    threads: int
    hooks: int


def measure(extractor: FeatureExtractor) -> Measure:
    gc.collect()
    threads = threading.active_count()
    return Measure(resident_bytes(), live_tensors(), threads, hook_count(extractor))


def one_run(extractor: FeatureExtractor, index: int) -> None:
    config = replace(CONFIG, optimizer="lbfgs" if index % 2 else "adam")
    callbacks = [
        Progress(every=2, stream=io.StringIO()),
        LossHistory(),
        Snapshots(2, lambda step, image: None),
    ]
    transfer = StyleTransfer(LAYERS, config=config, extractor=extractor, callbacks=callbacks)
    result = transfer.run(CONTENT, STYLE)
    assert result.steps_done == CONFIG.steps


@dataclass(frozen=True)
class Campaign:
    first: Measure
    last: Measure
    weights_before: dict[str, torch.Tensor]
    extractor: FeatureExtractor


@pytest.fixture(scope="module")
def campaign() -> Campaign:
    """Run ``RUNS`` transfers; measure after the first and after the last."""
    extractor = tiny_extractor()
    weights = {name: value.clone() for name, value in extractor.state_dict().items()}
    one_run(extractor, 0)
    first = measure(extractor)
    for index in range(1, RUNS):
        one_run(extractor, index)
    return Campaign(first, measure(extractor), weights, extractor)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
def test_resident_memory_grows_less_than_five_percent(campaign: Campaign) -> None:
    growth = campaign.last.resident / campaign.first.resident - 1
    assert growth < MAX_GROWTH, f"resident memory grew {growth:.1%} over {RUNS - 1} runs"


def test_no_tensor_outlives_its_run(campaign: Campaign) -> None:
    assert campaign.last.tensors == campaign.first.tensors


def test_no_hooks_are_left_on_the_network(campaign: Campaign) -> None:
    assert campaign.first.hooks == 0
    assert campaign.last.hooks == 0


def test_no_threads_are_left_behind(campaign: Campaign) -> None:
    assert campaign.last.threads == campaign.first.threads


def test_the_network_is_unchanged_frozen_and_in_eval_mode(campaign: Campaign) -> None:
    extractor = campaign.extractor
    for name, value in extractor.state_dict().items():
        assert torch.equal(value, campaign.weights_before[name]), name
    assert not any(parameter.requires_grad for parameter in extractor.parameters())
    assert all(parameter.grad is None for parameter in extractor.parameters())
    assert not extractor.training
