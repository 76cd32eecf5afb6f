"""Tests for pspnet_edu/checks/pspnet.py (the self-checks of notebook 05)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from pspnet_edu.checks.pspnet import check_head_parameters, check_pspnet_loss, head_parameters
from pspnet_edu.pspnet import build_pspnet


def count(module):
    return sum(p.numel() for p in module.parameters())


def test_head_reference_counts_the_real_heads():
    with torch.device("meta"):
        paper = build_pspnet("paper")
    tiny = build_pspnet("tiny")
    assert head_parameters(4096, 512, 19) == count(paper.head) == 9 * 4096 * 512 + 2 * 512 + 512 * 19 + 19
    assert head_parameters(1024, 256, 19) == count(paper.aux_head)
    assert head_parameters(256, 64, 19) == count(tiny.head)
    assert head_parameters(64, 32, 19) == count(tiny.aux_head)


def test_head_parameters_check(capsys):
    def my_head_parameters(in_channels, mid_channels, num_classes):
        return 9 * in_channels * mid_channels + 2 * mid_channels + mid_channels * num_classes + num_classes

    check_head_parameters(my_head_parameters)
    assert capsys.readouterr().out == "✓ my_head_parameters matches pspnet_edu.pspnet.SegmentationHead on 6 cases\n"


@pytest.mark.parametrize(
    ("wrong", "hint"),
    [
        (lambda c, m, k: 9 * c * m + 4 * m + m * k + k, "buffers, not parameters"),
        (lambda c, m, k: 9 * c * m + m + 2 * m + m * k + k, "has no bias"),
        (lambda c, m, k: 9 * c * m + 2 * m + m * k, "has a bias, one per class"),
        (lambda c, m, k: c * m + 2 * m + m * k + k, "the first conv is 3x3"),
    ],
)
def test_head_parameters_mistakes_are_named(wrong, hint):
    with pytest.raises(AssertionError, match="gave a wrong result") as info:
        check_head_parameters(wrong)
    assert hint in str(info.value)


def test_loss_check_passes_and_leaves_the_inputs_alone(capsys):
    def my_pspnet_loss(outputs, target, alpha=0.4):
        main = F.cross_entropy(outputs["out"], target, ignore_index=255)
        aux = F.cross_entropy(outputs["aux"], target, ignore_index=255)
        return main + alpha * aux

    check_pspnet_loss(my_pspnet_loss)
    assert capsys.readouterr().out == "✓ my_pspnet_loss matches pspnet_edu.loss.pspnet_loss on 4 cases\n"


def ce(logits, target):
    return F.cross_entropy(logits, target, ignore_index=255)


@pytest.mark.parametrize(
    ("wrong", "hint"),
    [
        (lambda o, t, alpha: alpha * ce(o["out"], t) + ce(o["aux"], t), "alpha weighs the AUXILIARY loss"),
        (lambda o, t, alpha: (1 - alpha) * ce(o["out"], t) + alpha * ce(o["aux"], t), "convex combination"),
        (lambda o, t, alpha: (1 + alpha) * ce(o["out"], t), "'aux' for the auxiliary term"),
        (lambda o, t, alpha: (ce(o["out"], t) + alpha * ce(o["aux"], t), 0), "not a tuple"),
    ],
)
def test_loss_mistakes_are_named(wrong, hint):
    with pytest.raises(AssertionError, match="gave a wrong result") as info:
        check_pspnet_loss(wrong)
    assert hint in str(info.value)


def test_loss_without_ignore_index_or_mean():
    def no_ignore(outputs, target, alpha):
        return F.cross_entropy(outputs["out"], target) + alpha * F.cross_entropy(outputs["aux"], target)

    with pytest.raises(AssertionError, match=r"no_ignore\(.*\) raised"):
        check_pspnet_loss(no_ignore)

    def summed(outputs, target, alpha):  # sum instead of the mean over counted pixels
        loss = lambda x: F.cross_entropy(x, target, ignore_index=255, reduction="sum")
        return loss(outputs["out"]) + alpha * loss(outputs["aux"])

    with pytest.raises(AssertionError, match="averaged over the pixels that are not 255"):
        check_pspnet_loss(summed)
