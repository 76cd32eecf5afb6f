"""The paper's optimiser: SGD over two parameter groups (backbone 1x, new layers 10x) and the poly policy.

Zhao et al. 2017, Sec. 5.1: SGD with momentum 0.9 and weight decay 1e-4, base learning rate
0.01 decayed by ``(1 - iter / max_iter) ** 0.9``. The author's code (hszhao/semseg
``tool/train.py``) gives the layers that start from random weights (the PPM and both heads)
10x the rate of the ImageNet-pretrained backbone. The schedule is the library's
``torch.optim.lr_scheduler.PolynomialLR``, stepped after every iteration; it equals
:func:`pspnet_edu.schedule.poly_lr` (tests/test_schedule.py).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from pspnet_edu.training.config import TrainConfig

BACKBONE_PREFIX = "backbone."  # the one thing the trainer knows about a model: which names are pretrained


def param_groups(model: nn.Module, lr: float, head_lr_mult: float = 10.0) -> list[dict[str, Any]]:
    """Two SGD groups by module name: ``backbone.*`` at ``lr``, everything else at ``head_lr_mult * lr``.

    Each group also lists its parameter names (``"names"``). A parameter reachable under two
    names (a weight tied between the backbone and a head) would land in both groups, which
    SGD refuses with an unhelpful message; that case is refused here, naming both places.

    >>> from pspnet_edu.pspnet import build_pspnet
    >>> [(g["name"], g["lr"]) for g in param_groups(build_pspnet("tiny"), 0.01)]
    [('backbone', 0.01), ('head', 0.1)]
    """
    groups = [{"name": "backbone", "lr": lr, "params": [], "names": []},
              {"name": "head", "lr": lr * head_lr_mult, "params": [], "names": []}]
    owner: dict[int, str] = {}  # id(parameter) -> the first name it was grouped under
    for name, parameter in model.named_parameters(remove_duplicate=False):
        if not parameter.requires_grad:
            continue
        group = groups[0] if name.startswith(BACKBONE_PREFIX) else groups[1]
        first = owner.setdefault(id(parameter), name)
        if first != name:  # the same tensor again, under another name
            if first.startswith(BACKBONE_PREFIX) != name.startswith(BACKBONE_PREFIX):
                raise ValueError(f"parameter {first!r} is shared with {name!r}: one tensor cannot learn at both the "
                                 "backbone's and the heads' rate; untie it or give both names the same prefix")
            continue
        group["params"].append(parameter)
        group["names"].append(name)
    return [g for g in groups if g["params"]]


def build_optimizer(model: nn.Module, config: TrainConfig) -> tuple[torch.optim.SGD, torch.optim.lr_scheduler.PolynomialLR]:
    """SGD over :func:`param_groups`, and the poly schedule stepped once per iteration."""
    groups = [{k: v for k, v in g.items() if k != "names"} for g in param_groups(model, config.lr, config.head_lr_mult)]
    optimizer = torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.PolynomialLR(optimizer, total_iters=config.iters, power=config.power)
    return optimizer, scheduler
