"""L-BFGS on a scaled objective: its steps stop depending on the loss's units."""

from __future__ import annotations

from dataclasses import replace

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from neuralstyle import StyleTransfer, TransferConfig
from neuralstyle.lbfgs import FALLBACK_STEP_LENGTH, scaled_backward
from neuralstyle.presets import DEFAULT


def minimize(units: float, steps: int) -> list[float]:
    """L-BFGS as StyleTransfer drives it (one evaluation per step) on ``units * |A x - b|^2``."""
    generator = torch.Generator().manual_seed(0)
    # float64, so what differs between units is the optimizer's arithmetic, not rounding
    a = torch.eye(64, dtype=torch.float64)
    a += 0.3 * torch.randn(64, 64, generator=generator, dtype=torch.float64) / 8
    b = torch.rand(64, generator=generator, dtype=torch.float64)
    x = torch.zeros(64, requires_grad=True, dtype=torch.float64)
    optimizer = torch.optim.LBFGS([x], lr=1.0, max_iter=1, history_size=100)
    losses = []

    def closure() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        loss = units * (a @ x - b).pow(2).mean()
        losses.append(float(loss.detach()) / units)
        return scaled_backward(loss, optimizer)

    for _ in range(steps):
        optimizer.step(closure)  # type: ignore[arg-type]
    return losses


def test_the_scale_is_measured_once_so_the_first_gradient_has_the_fallback_length() -> None:
    target = torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(1))
    x = torch.full((3, 8, 8), 0.5, requires_grad=True)
    optimizer = torch.optim.LBFGS([x], max_iter=1)
    raw_length = float((2e-9 * (0.5 - target)).norm())  # of 1e-9 * |x - t|^2
    scales = []
    for _ in range(2):  # the second call keeps the first call's scale
        x.grad = None
        objective = 1e-9 * (x - target).pow(2).sum()
        scales.append(float(scaled_backward(objective, optimizer) / objective.detach()))
    assert abs(scales[0] - FALLBACK_STEP_LENGTH / raw_length) < 1e-4 * scales[0]
    assert scales[1] == scales[0]
    zero = torch.zeros(4, requires_grad=True)
    at_optimum = (zero - 0).pow(2).sum()
    assert float(scaled_backward(at_optimum, torch.optim.LBFGS([zero]))) == 0.0
    assert x.grad is not None
    torch.testing.assert_close(x.grad, scales[0] * 2e-9 * (x.detach() - target))


@settings(max_examples=12, deadline=None)
@given(exponent=st.integers(min_value=-12, max_value=12))
def test_l_bfgs_converges_alike_whatever_the_units_of_the_loss(exponent: int) -> None:
    # Unscaled, torch's absolute thresholds make tiny units stop at once (gradient under 1e-7)
    # and huge ones jump by the raw gradient: the path would depend on the units.
    reference = minimize(1.0, 25)
    losses = minimize(10.0**exponent, 25)
    assert losses[-1] < 1e-3 * losses[0]
    for ours, theirs in zip(losses, reference, strict=True):
        assert abs(ours - theirs) <= 1e-9 * reference[0]


def test_switching_the_default_preset_to_l_bfgs_gives_l_bfgs_its_own_step() -> None:
    image = torch.zeros(1, 3, 8, 8, requires_grad=True)
    adam = StyleTransfer(config=replace(DEFAULT.config, device="cpu")).make_optimizer(image)
    config = replace(DEFAULT.config, device="cpu", optimizer="lbfgs")
    lbfgs = StyleTransfer(config=config).make_optimizer(image)
    assert (adam.defaults["lr"], lbfgs.defaults["lr"]) == (0.02, 1.0)
    assert TransferConfig(optimizer="lbfgs", learning_rate=0.5).learning_rate == 0.5
