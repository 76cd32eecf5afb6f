"""Tests for pspnet_edu/checks/backbone.py (the self-checks of notebook 03)."""

from __future__ import annotations

import math

import pytest
import torch
import torchvision

from pspnet_edu.backbone import dilation_plan
from pspnet_edu.checks.backbone import (
    _DILATION_CASES,
    block_dilations,
    check_block_dilations,
    check_feature_sizes,
    feature_sizes,
)


def right_feature_sizes(input_size, output_stride):
    return [math.ceil(input_size / s) for s in (2, 4, 8, min(16, output_stride), min(32, output_stride))]


def right_block_dilations(output_stride, schedule, blocks_per_stage=(3, 4, 6, 3)):
    result, dilation, stride = [], 1, 4
    for stage, blocks in enumerate(blocks_per_stage):
        previous = dilation
        if stage > 0:
            if stride >= output_stride:
                dilation *= 2
            else:
                stride *= 2
        first = previous if schedule == "torchvision" else dilation
        result.append([first] + [dilation] * (blocks - 1))
    return result


@pytest.mark.parametrize(("size", "output_stride"), [(97, 8), (65, 16), (100, 32)])
def test_reference_equals_torchvision_resnet50(size, output_stride):
    # An independent network: torchvision's ResNet-50 with replace_stride_with_dilation.
    dilate = {8: [False, True, True], 16: [False, False, True], 32: [False, False, False]}[output_stride]
    with torch.device("meta"):  # shapes only: no memory, no arithmetic
        net = torchvision.models.resnet50(replace_stride_with_dilation=dilate)
        sizes = {}
        for name in ("conv1", "layer1", "layer2", "layer3", "layer4"):
            net.get_submodule(name).register_forward_hook(lambda m, i, o, name=name: sizes.__setitem__(name, o.shape[-1]))
        net(torch.zeros(1, 3, size, size))
    assert feature_sizes(size, output_stride) == list(sizes.values()) == right_feature_sizes(size, output_stride)


def test_feature_sizes_reference_passes(capsys):
    def my_feature_sizes(input_size, output_stride):
        return right_feature_sizes(input_size, output_stride)

    check_feature_sizes(my_feature_sizes)
    assert capsys.readouterr().out == "✓ my_feature_sizes matches pspnet_edu.backbone.ResNet on 9 cases\n"


@pytest.mark.parametrize(
    ("wrong", "hint"),
    [
        (lambda n, os: [n // s for s in (2, 4, 8, min(16, os), min(32, os))], "round UP"),
        (lambda n, os: [math.ceil(n / s) for s in (2, 4, 8, 16, 32)], "stop halving"),
        (lambda n, os: [math.ceil(n / s) for s in (2, 2, 4, min(8, os), min(16, os))], "max-pool"),
    ],
)
def test_feature_sizes_plausible_mistakes_are_named(wrong, hint):
    with pytest.raises(AssertionError, match="gave a wrong result") as info:
        check_feature_sizes(wrong)
    assert hint in str(info.value)


def test_block_dilations_reference_and_cases():
    assert block_dilations(8, "torchvision") == [[1, 1, 1], [1, 1, 1, 1], [1, 2, 2, 2, 2, 2], [2, 4, 4]]
    assert block_dilations(8, "paper") == [[1, 1, 1], [1, 1, 1, 1], [2] * 6, [4] * 3]
    for case in _DILATION_CASES:
        plan = dilation_plan(*case.args)
        assert [len(stage) for stage in block_dilations(*case.args)] == [len(stage) for stage in plan]
        assert block_dilations(*case.args) == right_block_dilations(*case.args)  # an independent loop


def test_block_dilations_check(capsys):
    def my_block_dilations(output_stride, schedule, blocks_per_stage=(3, 4, 6, 3)):
        return right_block_dilations(output_stride, schedule, blocks_per_stage)

    check_block_dilations(my_block_dilations)
    assert capsys.readouterr().out == "✓ my_block_dilations matches pspnet_edu.backbone.dilation_plan on 12 cases\n"

    def every_block(output_stride, schedule, blocks_per_stage=(3, 4, 6, 3)):
        return right_block_dilations(output_stride, "paper", blocks_per_stage)

    with pytest.raises(AssertionError, match="that is the 'paper' schedule, not the 'torchvision' one"):
        check_block_dilations(every_block)
    with pytest.raises(AssertionError, match="at output stride 32 nothing is dilated"):
        check_block_dilations(lambda output_stride, schedule, blocks_per_stage: [[1] * b for b in blocks_per_stage])
