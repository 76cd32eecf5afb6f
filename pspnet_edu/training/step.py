"""One training step of PSPNet, as the paper describes it and nothing else.

The recipe (Zhao et al. 2017) and where each of its values is defined:

- the loss ``main + alpha * aux``: two cross-entropies, void pixels (255) ignored
  (:func:`pspnet_edu.loss.pspnet_loss`), alpha = 0.4 (``loss.AUX_WEIGHT``; Sec. 4 and Table 2);
- SGD with momentum 0.9 and weight decay 1e-4, the pretrained backbone at the base rate and the
  new layers (PPM and heads) at 10 times it (``TrainConfig.momentum``, ``.weight_decay``,
  ``.head_lr_mult``; Sec. 5.1 and hszhao/semseg; the groups: ``training.optim.param_groups``);
- the poly policy ``lr = base * (1 - iteration / iters) ** 0.9``, one scheduler step after
  every update (``TrainConfig.power``; Sec. 5.1; ``torch.optim.lr_scheduler.PolynomialLR``,
  built by ``training.optim.build_optimizer``).

:func:`train_step` is what the trainer runs at every iteration (``training.loop``) and what
lesson 07's exercise rebuilds and is checked against. Everything that is about the machine
rather than the recipe is done around it by the trainer: moving the batch to the device,
channels_last, bf16/fp16 autocast (the ``model`` it passes runs its forward under autocast),
the check that the loss is finite, DDP.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from pspnet_edu.loss import AUX_WEIGHT, pspnet_loss

Model = Callable[[Tensor], dict[str, Tensor]]  # images (B, 3, H, W) -> {"out": logits, "aux": logits}


def train_step(model: Model, images: Tensor, masks: Tensor, optimizer: torch.optim.Optimizer,
               scheduler: torch.optim.lr_scheduler.LRScheduler, alpha: float = AUX_WEIGHT,
               scaler: torch.amp.GradScaler | None = None, class_weights: Tensor | None = None) -> dict[str, Tensor]:
    """Forward, ``loss = main + alpha * aux``, backward, SGD update, poly step; return the losses.

    ``images``: (B, 3, H, W) normalised; ``masks``: (B, H, W) trainIds, 255 ignored. Returns
    ``{"loss", "main", "aux"}`` (detached scalars). ``scaler``: fp16 AMP on CUDA only (it scales
    the loss so that small float16 gradients survive, and unscales them before the update).
    ``class_weights``: one loss weight per class (a documented deviation, ``TrainConfig.class_weighting``).
    """
    outputs = model(images)  # {"out": (B, K, H, W), "aux": (B, K, H, W)} at input size
    loss, parts = pspnet_loss(outputs, masks, aux_weight=alpha, class_weights=class_weights)  # main + alpha * aux
    optimizer.zero_grad(set_to_none=True)  # gradients would otherwise add up over the steps
    if scaler is None:
        loss.backward()
        optimizer.step()  # SGD with momentum; backbone 1x, PPM and heads 10x (paper Sec. 5.1)
    else:
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    scheduler.step()  # poly, after the update: the first step used the base rates
    return {"loss": loss.detach(), **{name: value.detach() for name, value in parts.items()}}
