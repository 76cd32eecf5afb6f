"""Tests for pspnet_edu.schedule: the poly formula and its agreement with PolynomialLR."""

from __future__ import annotations

import math

import pytest
import torch

from pspnet_edu.schedule import poly_lr


def test_reference_values() -> None:
    # Hand-computed: 0.01 * (1 - 25/100) ** 0.9 = 0.01 * 0.75 ** 0.9
    assert poly_lr(0.01, 25, 100) == pytest.approx(0.01 * 0.75**0.9, rel=1e-12)
    assert poly_lr(0.01, 25, 100) == pytest.approx(0.0077189, abs=1e-7)
    assert poly_lr(0.01, 0, 90_000) == 0.01
    assert poly_lr(0.01, 90_000, 90_000) == 0.0
    assert poly_lr(0.01, 100_000, 90_000) == 0.0  # past the end stays at 0


def test_monotone_decreasing() -> None:
    values = [poly_lr(1.0, i, 50) for i in range(51)]
    assert all(a > b for a, b in zip(values, values[1:]))


@pytest.mark.parametrize("bad", [(0.01, -1, 10), (0.01, 0, 0), (0.01, 0, -5)])
def test_bad_arguments(bad: tuple[float, int, int]) -> None:
    with pytest.raises(ValueError):
        poly_lr(*bad)


@pytest.mark.parametrize("power", [0.9, 1.0, 2.0])
def test_equals_torch_polynomial_lr_at_every_step(power: float) -> None:
    """The trainer's scheduler (PolynomialLR) gives the paper's formula at every step,
    for both parameter groups (backbone at 1x, PPM and heads at 10x)."""
    base_lr, max_iterations = 0.01, 37
    backbone = torch.nn.Parameter(torch.zeros(1))
    head = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD(
        [{"params": [backbone], "lr": base_lr}, {"params": [head], "lr": 10 * base_lr}],
        lr=base_lr,
        momentum=0.9,
    )
    scheduler = torch.optim.lr_scheduler.PolynomialLR(
        optimizer, total_iters=max_iterations, power=power
    )
    for iteration in range(max_iterations + 3):
        lrs = [group["lr"] for group in optimizer.param_groups]
        assert math.isclose(lrs[0], poly_lr(base_lr, iteration, max_iterations, power), rel_tol=1e-9, abs_tol=1e-15)
        assert math.isclose(lrs[1], poly_lr(10 * base_lr, iteration, max_iterations, power), rel_tol=1e-9, abs_tol=1e-15)
        optimizer.step()
        scheduler.step()
