"""Self-checks for notebooks/03_dilated_resnet.ipynb (the dilated ResNet of Zhao et al. 2017, Sec. 3.3).

- :func:`check_feature_sizes`: ``my_feature_sizes(input_size, output_stride)``, the sides of
  the feature maps after ``conv1``, ``layer1``, ``layer2``, ``layer3`` and ``layer4`` of a
  dilated ResNet, against the shapes the package's :class:`pspnet_edu.backbone.ResNet`
  really produces (run on the meta device: shapes only, no arithmetic);
- :func:`check_block_dilations`: ``my_block_dilations(output_stride, schedule,
  blocks_per_stage)``, the dilation of every block of layer1..layer4, against
  :func:`pspnet_edu.backbone.dilation_plan`.

While the learner's function runs, the package's code it re-derives is hidden (``*_HIDDEN``
below; :func:`pspnet_edu.checks._core.hidden`): for the sizes, the ResNet and
``feature_size`` (the side after the last stage); for the dilations, ``dilation_plan``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

from pspnet_edu.backbone import DILATION_SCHEDULES, ResNet, dilation_plan, feature_size
from pspnet_edu.checks._core import Case, check_cases

STAGES = ("conv1", "layer1", "layer2", "layer3", "layer4")


def feature_sizes(input_size: int, output_stride: int) -> list[int]:
    """The reference: sides of the outputs of conv1 and layer1..layer4 for a square input.

    Read from a real (small) ResNet run on the meta device, so it is what the network does,
    not a formula. The side does not depend on depth or width, only on the strides.

    >>> feature_sizes(473, 8)
    [237, 119, 60, 60, 60]
    >>> feature_sizes(224, 32)
    [112, 56, 28, 14, 7]
    """
    return list(_measured_sizes(input_size, output_stride))


@functools.lru_cache(maxsize=64)
def _measured_sizes(input_size: int, output_stride: int) -> tuple[int, ...]:
    """Cached (a tuple, so nobody can change it): building the ResNet takes some 50 ms, and every
    run of the check needs its 9 cases before the learner's code runs."""
    import torch

    with torch.device("meta"):
        net = ResNet(depth=18, output_stride=output_stride, width=0.125)
        sizes: dict[str, int] = {}
        hooks = [
            net.get_submodule(name).register_forward_hook(
                lambda module, inputs, output, name=name: sizes.__setitem__(name, output.shape[-1])
            )
            for name in STAGES
        ]
        net(torch.empty(1, 3, input_size, input_size))
    for hook in hooks:
        hook.remove()
    return tuple(sizes[name] for name in STAGES)


FEATURE_SIZES_HIDDEN = (feature_sizes, ResNet, feature_size)  # hidden while the learner's code runs

_FEATURE_SIZE_CASES = (
    Case((224, 32), hint="ImageNet classification: 224 -> 7."),
    Case((473, 8), hint="the crop of the author's code for ADE20K and VOC (hszhao/semseg)."),
    Case((713, 8), hint="the crop of the author's code for Cityscapes."),
    Case((473, 16)),
    Case((473, 32)),
    Case((512, 8), hint="a power of two: every division is exact."),
    Case((97, 8), hint="an odd size: strided layers round up."),
    Case((225, 32), hint="one pixel more than 224."),
    Case((100, 16)),
)


def _feature_sizes_diagnose(case: Case, expected: Any, got: Any) -> str:
    size, output_stride = case.args
    base = ("conv1 (stride 2) halves the side, the max-pool halves it again (layer1 is at 1/4), "
            "layer2 halves it once more; layer3 and layer4 halve it only while the output stride "
            "is not yet reached. Every strided layer is padded, so each maps n to ceil(n / 2).")
    try:
        values = [int(v) for v in got]
    except (TypeError, ValueError):
        return "return a list of five ints. " + base
    strides = (2, 4, 8, min(16, output_stride), min(32, output_stride))
    if values == [size // s for s in strides]:
        return "the strided layers are padded, so the sizes round UP: ceil(n / 2), not n // 2. " + base
    if values == [-(-size // s) for s in (2, 4, 8, 16, 32)]:
        return "with dilation, layer3 and layer4 stop halving once the output stride is reached. " + base
    if len(values) == 5 and values[1] == values[0]:
        return "layer1 follows the 3x3 max-pool (stride 2), so it is at 1/4, not 1/2. " + base
    return base


def check_feature_sizes(my_feature_sizes: Callable[[int, int], Sequence[int]]) -> None:
    """Check ``my_feature_sizes(input_size, output_stride)`` -> [conv1, layer1, ..., layer4].

    >>> def my_feature_sizes(input_size, output_stride):
    ...     return [-(-input_size // s) for s in (2, 4, 8, min(16, output_stride), output_stride)]
    >>> check_feature_sizes(my_feature_sizes)
    ✓ my_feature_sizes matches pspnet_edu.backbone.ResNet on 9 cases
    """
    check_cases(my_feature_sizes, feature_sizes, _FEATURE_SIZE_CASES, hide=FEATURE_SIZES_HIDDEN,
                hint=_feature_sizes_diagnose, against="pspnet_edu.backbone.ResNet",
                hide_methods=True)  # a ResNet the notebook built earlier must not run either


def block_dilations(output_stride: int, schedule: str, blocks_per_stage: Sequence[int] = (3, 4, 6, 3)
                    ) -> list[list[int]]:
    """The reference: the dilation of each block, read from :func:`dilation_plan`.

    >>> block_dilations(8, "paper", (2, 2, 2, 2))
    [[1, 1], [1, 1], [2, 2], [4, 4]]
    """
    return [[dilation for _, dilation in stage] for stage in dilation_plan(output_stride, schedule, blocks_per_stage)]


BLOCK_DILATIONS_HIDDEN = (block_dilations, dilation_plan)  # hidden while the learner's code runs

_DILATION_CASES = tuple(
    Case((output_stride, schedule, blocks))
    for blocks in ((3, 4, 6, 3), (2, 2, 2, 2))
    for schedule in DILATION_SCHEDULES
    for output_stride in (8, 16, 32)
)


def _dilations_diagnose(case: Case, expected: Any, got: Any) -> str:
    output_stride, schedule, blocks = case.args
    base = ("layer2, layer3 and layer4 each start with stride 2; once the output stride is "
            "reached, a stage keeps stride 1 and doubles the dilation instead. In the "
            "'torchvision' schedule the first block of such a stage keeps the previous "
            "dilation; in the 'paper' schedule every block uses the new one.")
    for other in DILATION_SCHEDULES:
        if other != schedule and got == block_dilations(output_stride, other, blocks):
            return f"that is the {other!r} schedule, not the {schedule!r} one. " + base
    if got == block_dilations(32, schedule, blocks) and output_stride != 32:
        return "at output stride 32 nothing is dilated; at 16 layer4 is, at 8 layer3 and layer4. " + base
    return base


def check_block_dilations(my_block_dilations: Callable[..., Sequence[Sequence[int]]]) -> None:
    """Check ``my_block_dilations(output_stride, schedule, blocks_per_stage)`` on 12 cases.

    >>> def my_block_dilations(output_stride, schedule, blocks_per_stage=(3, 4, 6, 3)):
    ...     stride, dilation, result = 4, 1, []
    ...     for index, blocks in enumerate(blocks_per_stage):
    ...         previous = dilation
    ...         if index > 0 and stride < output_stride:
    ...             stride *= 2
    ...         elif index > 0:
    ...             dilation *= 2
    ...         first = previous if schedule == "torchvision" else dilation
    ...         result.append([first] + [dilation] * (blocks - 1))
    ...     return result
    >>> check_block_dilations(my_block_dilations)
    ✓ my_block_dilations matches pspnet_edu.backbone.dilation_plan on 12 cases
    """
    check_cases(my_block_dilations, block_dilations, _DILATION_CASES, hide=BLOCK_DILATIONS_HIDDEN,
                hint=_dilations_diagnose, against="pspnet_edu.backbone.dilation_plan")
