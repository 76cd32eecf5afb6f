"""Tests for pspnet_edu.training.optim: groups by module name, 10x heads, the poly schedule."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from pspnet_edu.pspnet import build_pspnet
from pspnet_edu.schedule import poly_lr
from pspnet_edu.training import TrainConfig, build_optimizer, param_groups


def test_groups_by_module_name() -> None:
    model = build_pspnet("tiny", num_classes=4)
    groups = param_groups(model, lr=0.01, head_lr_mult=10)
    assert [g["name"] for g in groups] == ["backbone", "head"]
    assert groups[0]["lr"] == 0.01 and groups[1]["lr"] == pytest.approx(0.1)
    assert all(name.startswith("backbone.") for name in groups[0]["names"])
    assert {name.split(".")[0] for name in groups[1]["names"]} == {"ppm", "head", "aux_head"}
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    frozen = build_pspnet("tiny", num_classes=4).requires_grad_(False)
    frozen.head.requires_grad_(True)
    assert [g["name"] for g in param_groups(frozen, 0.01)] == ["head"]  # frozen parameters are left out


class Tied(nn.Module):
    """A weight shared between the 'backbone' and a head: it cannot learn at two rates."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Conv2d(3, 3, 1)
        self.head = nn.Conv2d(3, 3, 1)
        self.head.weight = self.backbone.weight


def test_a_parameter_shared_across_groups_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"'backbone.weight' is shared with 'head.weight'"):
        param_groups(Tied(), lr=0.01)


@pytest.mark.parametrize("power", [0.9, 1.0, 2.0])
def test_the_trainers_schedule_is_the_papers_poly_formula_at_every_step(power: float) -> None:
    """build_optimizer's PolynomialLR gives poly_lr at every step, for both groups."""
    config = TrainConfig(iters=37, lr=0.01, power=power)
    optimizer, scheduler = build_optimizer(build_pspnet("tiny", num_classes=4), config)
    assert optimizer.defaults["momentum"] == 0.9 and optimizer.defaults["weight_decay"] == 1e-4
    for iteration in range(config.iters + 3):
        backbone, head = (group["lr"] for group in optimizer.param_groups)
        assert math.isclose(backbone, poly_lr(0.01, iteration, config.iters, power), rel_tol=1e-9, abs_tol=1e-15)
        assert math.isclose(head, poly_lr(0.1, iteration, config.iters, power), rel_tol=1e-9, abs_tol=1e-15)
        optimizer.step()
        scheduler.step()
