"""Probes that show *why* a setting helps, not only that it does: lesson 09's mechanism of the auxiliary loss.

The paper's argument for the auxiliary loss (Zhao et al. 2017, Sec. 4, Fig. 4) is about
optimisation: in a deep ResNet the main loss's gradient reaches the early stages weakly, and a
second classifier on layer3 adds a short path for it. :func:`gradient_by_stage` measures that
path on the course's network: the norm of the gradient that each loss sends to the parameters
of every backbone stage, for one batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pspnet_edu.constants import IGNORE_INDEX

STAGES = ("layer1", "layer2", "layer3", "layer4")


def gradient_by_stage(model: nn.Module, images: Tensor, masks: Tensor) -> dict[str, dict[str, float]]:
    """``{"main": {stage: norm}, "aux": {stage: norm}}``: the gradient each loss alone sends to each stage.

    ``model`` returns ``{"out", "aux"}`` (a PSPNet with its auxiliary head); it is used as it is
    (train or eval mode) and its gradients are left cleared. The aux loss reaches layer1-3 only
    (its head sits on layer3), so its layer4 entry is 0.
    """
    outputs = model(images)
    losses = {"main": F.cross_entropy(outputs["out"], masks, ignore_index=IGNORE_INDEX),
              "aux": F.cross_entropy(outputs["aux"], masks, ignore_index=IGNORE_INDEX)}
    norms: dict[str, dict[str, float]] = {}
    for name, loss in losses.items():
        model.zero_grad(set_to_none=True)
        loss.backward(retain_graph=name == "main")
        norms[name] = {stage: _norm(getattr(model.backbone, stage)) for stage in STAGES}
    model.zero_grad(set_to_none=True)
    return norms


def _norm(module: nn.Module) -> float:
    grads = [p.grad.pow(2).sum() for p in module.parameters() if p.grad is not None]
    return float(torch.stack(grads).sum().sqrt()) if grads else 0.0
