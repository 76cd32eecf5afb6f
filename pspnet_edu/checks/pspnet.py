"""Self-checks for notebooks/05_pspnet.ipynb.

- :func:`check_head_parameters`: ``my_head_parameters(in_channels, mid_channels,
  num_classes)``, the number of learnable parameters of a PSPNet head (3x3 conv without
  bias, BatchNorm, ReLU, Dropout, 1x1 conv with bias), against
  :class:`pspnet_edu.pspnet.SegmentationHead` counted by ``sum(p.numel() ...)``;
- :func:`check_pspnet_loss`: ``my_pspnet_loss(outputs, target, alpha)``, the training loss
  ``CE(out) + alpha * CE(aux)`` with the label 255 ignored, against
  :func:`pspnet_edu.loss.pspnet_loss`.

While the learner's function runs, the package's code it re-derives is hidden (``*_HIDDEN``
below; :func:`pspnet_edu.checks._core.hidden`): the head class (so also ``build_pspnet``, which
builds its heads from it) and the loss. ``F.cross_entropy`` is not: the exercise is to combine
two of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pspnet_edu.checks._core import Case, check_cases
from pspnet_edu.constants import IGNORE_INDEX
from pspnet_edu.loss import pspnet_loss
from pspnet_edu.pspnet import SegmentationHead

# ------------------------------------------------------------------ parameters of a head


def head_parameters(in_channels: int, mid_channels: int, num_classes: int) -> int:
    """The reference: learnable parameters of ``SegmentationHead``, counted on the meta device.

    >>> head_parameters(4096, 512, 19)  # the main head of the "paper" preset
    18885139
    """
    import torch

    with torch.device("meta"):
        head = SegmentationHead(in_channels, mid_channels, num_classes, dropout=0.1)
    return sum(p.numel() for p in head.parameters())


HEAD_PARAMETERS_HIDDEN = (head_parameters, SegmentationHead)  # hidden while the learner's code runs

_HEAD_CASES = (
    Case((4096, 512, 19), hint="the main head of the paper's PSPNet-50 (Cityscapes)."),
    Case((1024, 256, 19), hint="its auxiliary head on layer3."),
    Case((4096, 512, 150), hint="ADE20K has 150 classes."),
    Case((256, 64, 19), hint="the main head of the tiny preset."),
    Case((64, 32, 19), hint="the auxiliary head of the tiny preset (on layer3, 64 channels)."),
    Case((8, 4, 2)),
)


def _head_diagnose(case: Case, expected: Any, got: Any) -> str:
    c, m, k = case.args
    base = ("count 3*3*in*mid for the 3x3 conv (no bias: BatchNorm follows), 2*mid for the "
            "BatchNorm's weight and bias, nothing for ReLU and Dropout, mid*classes + classes "
            "for the 1x1 classifier (it has a bias).")
    if got == expected + 2 * m:
        return "running_mean and running_var are buffers, not parameters. " + base
    if got == expected + m:
        return "the 3x3 conv has no bias (bias=False): the BatchNorm after it adds its own shift. " + base
    if got == expected - k:
        return "the final 1x1 conv has a bias, one per class. " + base
    if got == expected - 2 * m:
        return "BatchNorm has two learnable vectors: weight (gamma) and bias (beta). " + base
    if got == expected - 8 * c * m:
        return "the first conv is 3x3: 9 weights per (input, output) channel pair. " + base
    return base


def check_head_parameters(my_head_parameters: Callable[[int, int, int], int]) -> None:
    """Check ``my_head_parameters(in_channels, mid_channels, num_classes)`` on 6 heads.

    >>> check_head_parameters(lambda c, m, k: 9 * c * m + 2 * m + m * k + k)
    ✓ <lambda> matches pspnet_edu.pspnet.SegmentationHead on 6 cases
    """
    check_cases(my_head_parameters, head_parameters, _HEAD_CASES, hide=HEAD_PARAMETERS_HIDDEN, hint=_head_diagnose,
                against="pspnet_edu.pspnet.SegmentationHead")


# ------------------------------------------------------------------ the loss


PSPNET_LOSS_HIDDEN = (pspnet_loss,)  # hidden while the learner's code runs


def _loss_reference(outputs: dict, target: Any, alpha: float) -> Any:
    return pspnet_loss(outputs, target, aux_weight=alpha)[0]


def _loss_cases() -> list[Case]:
    """Random logits and targets with ignored pixels; alpha 0.4 (the paper's), 0, 1 and 0.9."""
    import torch

    generator = torch.Generator().manual_seed(0)
    cases = []
    for index, (alpha, classes, (height, width)) in enumerate(
        [(0.4, 5, (6, 7)), (0.0, 5, (6, 7)), (1.0, 3, (4, 4)), (0.9, 19, (5, 9))]
    ):
        out = torch.randn(2, classes, height, width, generator=generator) * 2
        aux = torch.randn(2, classes, height, width, generator=generator) * 2
        target = torch.randint(0, classes, (2, height, width), generator=generator)
        target[torch.rand(target.shape, generator=generator) < 0.3] = IGNORE_INDEX  # void pixels
        if index == 2:
            target[0] = IGNORE_INDEX  # a whole image of void: the mean is over counted pixels only
            target[1, 0] = IGNORE_INDEX
        hint = {0: "alpha = 0.4, the paper's choice (Table 2).", 1: "alpha = 0: the auxiliary head is not trained."}
        cases.append(Case(({"out": out, "aux": aux}, target, alpha), hint=hint.get(index)))
    return cases


def _loss_diagnose(case: Case, expected: Any, got: Any) -> str:
    import torch
    import torch.nn.functional as F

    outputs, target, alpha = case.args
    base = ("total = CE(outputs['out'], target) + alpha * CE(outputs['aux'], target), each "
            "F.cross_entropy(..., ignore_index=255) averaged over the pixels that are not 255.")
    if isinstance(got, tuple):
        return "return only the total loss (a scalar tensor), not a tuple. " + base
    if not isinstance(got, torch.Tensor):
        return "return a scalar torch tensor (so that .backward() works). " + base
    main = F.cross_entropy(outputs["out"], target, ignore_index=IGNORE_INDEX)
    aux = F.cross_entropy(outputs["aux"], target, ignore_index=IGNORE_INDEX)
    slips = {
        "alpha weighs the AUXILIARY loss, not the main one. ": alpha * main + aux,
        "the paper adds alpha * aux to the main loss; it does not take a convex combination. ": (1 - alpha) * main + alpha * aux,
        "that is the main loss alone: add alpha times the auxiliary loss. ": main,
        "the two terms use the same target but different logits: 'aux' for the auxiliary term. ": (1 + alpha) * main,
    }
    for text, value in slips.items():
        if got.numel() == 1 and torch.isclose(got.detach().double(), value.double(), rtol=1e-4, atol=1e-6):
            return text + base
    return base


def check_pspnet_loss(my_pspnet_loss: Callable[..., Any]) -> None:
    """Check ``my_pspnet_loss(outputs, target, alpha)`` -> the total loss, on 4 cases.

    >>> import torch.nn.functional as F
    >>> def my_pspnet_loss(outputs, target, alpha=0.4):
    ...     ce = lambda logits: F.cross_entropy(logits, target, ignore_index=255)
    ...     return ce(outputs["out"]) + alpha * ce(outputs["aux"])
    >>> check_pspnet_loss(my_pspnet_loss)
    ✓ my_pspnet_loss matches pspnet_edu.loss.pspnet_loss on 4 cases
    """
    check_cases(my_pspnet_loss, _loss_reference, _loss_cases(), hide=PSPNET_LOSS_HIDDEN, hint=_loss_diagnose,
                against="pspnet_edu.loss.pspnet_loss", rtol=1e-5, atol=1e-6)
