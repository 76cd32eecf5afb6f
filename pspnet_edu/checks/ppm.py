"""Self-checks for notebooks/04_pyramid_pooling_module.ipynb (the PPM of Zhao et al. 2017, Sec. 3.2, Fig. 3(c)).

- :func:`check_adaptive_windows`: ``my_adaptive_windows(size, bins)``, the [start, end) pixel
  range of each window of adaptive pooling, against
  :func:`pspnet_edu.ppm.adaptive_pool_windows` (PyTorch's rule);
- :func:`check_pyramid_pooling`: a learner's module class ``MyPyramidPooling(in_channels,
  bins)`` against :class:`pspnet_edu.ppm.PyramidPoolingModule`.

How :func:`check_pyramid_pooling` compares two modules whose parameter *names* differ: it
builds both, gives the package's module random weights and BatchNorm statistics, and copies
them into the learner's module by structure, not by name: the i-th ``nn.Conv2d`` and the i-th
``nn.BatchNorm2d`` of the learner's module (in ``modules()`` order, which is the order they
were created in) receive the weights of the branch of ``bins[i]``. So any layout works (one
``nn.Sequential`` per bin, or a ``ModuleList`` of convs and one of norms) as long as the
branches are created in the order of ``bins``. Then both modules see the same inputs, in
training mode (BatchNorm uses the batch statistics) and in eval mode (the copied running
statistics), at sizes that bins divide and sizes they do not.

While the learner's code runs, the package's code it re-derives is hidden (``*_HIDDEN`` below;
:func:`pspnet_edu.checks._core.hidden`): ``adaptive_pool_windows`` for the windows; for the
module, ``PyramidPoolingModule`` and its branch ``PyramidBranch``. A learner's class that
subclasses either, or a module that contains an instance of either, is refused too. torch's
layers (``nn.AdaptiveAvgPool2d``, ``F.interpolate``, ...) are the bricks of the exercise and
stay available.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

from pspnet_edu.checks._core import (
    Case,
    Hiding,
    check_cases,
    differences,
    fail,
    hidden,
    learner_code,
    learner_name,
    passed,
    refuse_reference,
    uses_reference_message,
)
from pspnet_edu.ppm import PyramidBranch, PyramidPoolingModule, adaptive_pool_windows

# What each check hides while the learner's code runs.
ADAPTIVE_WINDOWS_HIDDEN = (adaptive_pool_windows,)
PYRAMID_POOLING_HIDDEN = (PyramidPoolingModule, PyramidBranch)

# ------------------------------------------------------------------ adaptive pooling windows

_WINDOW_CASES = (
    Case((60, 6), hint="PSPNet's 473 px crop gives 60x60 features: 6 divides 60."),
    Case((90, 3), hint="the 713 px crop gives 90x90 features."),
    Case((60, 1), hint="global pooling: one window over everything."),
    Case((5, 3), hint="3 does not divide 5: the windows overlap."),
    Case((64, 6), hint="6 does not divide 64 (a 512 px input)."),
    Case((13, 6)),
    Case((7, 2)),
    Case((6, 6), hint="one pixel per window."),
    Case((4, 6), hint="more bins than pixels: windows repeat pixels."),
)


def _windows_diagnose(case: Case, expected: Any, got: Any) -> str:
    size, bins = case.args
    base = ("window i covers floor(i * size / bins) to ceil((i + 1) * size / bins), end excluded; "
            "so every pixel is used and windows may overlap by one pixel.")
    floor_ends = [(i * size // bins, (i + 1) * size // bins) for i in range(bins)]
    kernel = size // bins
    fixed = [(i * kernel, (i + 1) * kernel) for i in range(bins)]
    if got == floor_ends:
        return "round the END up (ceil), not down: otherwise a window can be empty or miss pixels. " + base
    if got == fixed:
        return ("that is a fixed kernel of size // bins, the AvgPool2d mistake: it leaves the last "
                "pixels out when bins does not divide size. " + base)
    return base


def check_adaptive_windows(my_adaptive_windows: Callable[[int, int], Sequence[tuple[int, int]]]) -> None:
    """Check ``my_adaptive_windows(size, bins)`` -> [(start, end), ...] on 9 cases.

    >>> import math
    >>> def my_adaptive_windows(size, bins):
    ...     return [(i * size // bins, math.ceil((i + 1) * size / bins)) for i in range(bins)]
    >>> check_adaptive_windows(my_adaptive_windows)
    ✓ my_adaptive_windows matches pspnet_edu.ppm.adaptive_pool_windows on 9 cases
    """
    check_cases(my_adaptive_windows, adaptive_pool_windows, _WINDOW_CASES, hide=ADAPTIVE_WINDOWS_HIDDEN,
                hint=_windows_diagnose)


# ------------------------------------------------------------------ the module

# (in_channels, bins, input shape (B, C, H, W)): sizes the bins divide and sizes they do not.
PPM_CASES: tuple[tuple[int, tuple[int, ...], tuple[int, int, int, int]], ...] = (
    (16, (1, 2, 3, 6), (2, 16, 12, 12)),
    (16, (1, 2, 3, 6), (2, 16, 13, 17)),
    (32, (1, 2, 3, 6), (3, 32, 23, 23)),
    (8, (1, 2), (2, 8, 9, 7)),
    (12, (1, 3, 6), (2, 12, 8, 20)),
)
_STRUCTURE_HINT = (
    "build one branch per bin, in the order of `bins`: adaptive average pooling to bins x bins, "
    "its own nn.Conv2d(in_channels, in_channels // len(bins), 1, bias=False), nn.BatchNorm2d, "
    "ReLU; upsample each branch bilinearly (align_corners=False) to the input's size and "
    "concatenate [x, branch_1, ..., branch_N] along the channels."
)


def _randomised_reference(in_channels: int, bins: tuple[int, ...], seed: int) -> PyramidPoolingModule:
    """The package's module with random weights, BN affine parameters and BN statistics."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    reference = PyramidPoolingModule(in_channels, bins)
    with torch.no_grad():
        for branch in reference.branches:
            branch.conv.weight.copy_(torch.randn(branch.conv.weight.shape, generator=generator) * 0.5)
            branch.bn.weight.copy_(torch.rand(branch.bn.weight.shape, generator=generator) + 0.5)
            branch.bn.bias.copy_(torch.randn(branch.bn.bias.shape, generator=generator) * 0.1)
            branch.bn.running_mean.copy_(torch.randn(branch.bn.running_mean.shape, generator=generator) * 0.1)
            branch.bn.running_var.copy_(torch.rand(branch.bn.running_var.shape, generator=generator) + 0.5)
    return reference


def _copy_by_structure(reference: PyramidPoolingModule, learner: Any, call: str) -> None:
    """Copy each branch's conv and BN into the learner's i-th Conv2d and i-th BatchNorm2d."""
    import torch
    from torch import nn

    if not isinstance(learner, nn.Module):
        raise AssertionError(f"{call} returned {type(learner).__name__}, not an nn.Module: "
                             "define `class MyPyramidPooling(nn.Module)` and pass the class itself.")
    convs = [m for m in learner.modules() if isinstance(m, nn.Conv2d)]
    norms = [m for m in learner.modules() if isinstance(m, nn.BatchNorm2d)]
    n = len(reference.branches)
    if len(convs) != n:
        shared = " One conv shared by all branches is the tutorial mistake: each level needs its own." if len(convs) == 1 and n > 1 else ""
        raise AssertionError(f"{call} has {len(convs)} nn.Conv2d module(s); a pyramid with bins "
                             f"{reference.bins} needs {n}, one per branch.{shared}\n  hint: {_STRUCTURE_HINT}")
    if len(norms) != n:
        raise AssertionError(f"{call} has {len(norms)} nn.BatchNorm2d module(s); it needs {n}, one per "
                             f"branch (after its 1x1 conv).\n  hint: {_STRUCTURE_HINT}")
    for i, (branch, conv, norm) in enumerate(zip(reference.branches, convs, norms)):
        where = f"{call}: the conv of branch {i} (bins={branch.bins})"
        if tuple(conv.weight.shape) != tuple(branch.conv.weight.shape):
            raise AssertionError(f"{where} has weight shape {tuple(conv.weight.shape)}, expected "
                                 f"{tuple(branch.conv.weight.shape)} (out = in_channels // len(bins), "
                                 f"a 1x1 kernel).\n  hint: {_STRUCTURE_HINT}")
        if conv.bias is not None:
            raise AssertionError(f"{where} has a bias; use bias=False: the BatchNorm after it has its "
                                 f"own shift, so a bias would be redundant.\n  hint: {_STRUCTURE_HINT}")
        if norm.num_features != branch.bn.num_features:
            raise AssertionError(f"{call}: the BatchNorm2d of branch {i} has {norm.num_features} "
                                 f"features, expected {branch.bn.num_features}.\n  hint: {_STRUCTURE_HINT}")
        with torch.no_grad():
            conv.weight.copy_(branch.conv.weight)
            norm.load_state_dict(branch.bn.state_dict())


def _refuse_package_parts(name: str, learner: Any) -> None:
    """AssertionError if the learner's module holds an instance of the package's classes (built before the check)."""
    parts = learner.modules() if callable(getattr(learner, "modules", None)) else ()  # an nn.Module's parts
    for part in parts:
        for reference in PYRAMID_POOLING_HIDDEN:
            if isinstance(part, reference):
                raise AssertionError(uses_reference_message(name, reference))


def _compare(name: str, reference: PyramidPoolingModule, learner: Any, shape: tuple[int, ...], seed: int,
             hiding: Hiding) -> None:
    import torch

    call = f"{name}({reference.branches[0].conv.in_channels}, bins={reference.bins})"
    x = torch.randn(shape, generator=torch.Generator().manual_seed(seed))
    for mode in ("train", "eval"):
        reference.train(mode == "train")
        learner.train(mode == "train")
        with torch.no_grad():
            expected = reference(x.clone())  # (B, C + N * C/N, H, W)
            with learner_code(name, f"{call} on a {tuple(shape)} input in {mode} mode", hiding):
                got = learner(x.clone())
        detail = differences(expected, got, rtol=1e-4, atol=1e-5)
        if detail is None:
            continue
        hint = _STRUCTURE_HINT
        if getattr(got, "shape", None) is not None and tuple(got.shape) == tuple(expected.shape):
            channels = shape[1]
            if torch.allclose(got[:, -channels:], x, atol=1e-6) and not torch.allclose(got[:, :channels], x, atol=1e-6):
                hint = "the input goes FIRST: torch.cat([x, branch_1, ..., branch_N], dim=1). " + hint
            elif torch.allclose(got[:, :channels], x, atol=1e-6):
                hint = ("the input part matches, the pyramid levels do not: check the pooling (adaptive, "
                        "not a fixed kernel), the order of the branches (the order of `bins`), and "
                        "F.interpolate(..., mode='bilinear', align_corners=False). " + hint)
        raise fail(f"{call} on a {tuple(shape)} input in {mode} mode", expected, got, detail, hint)


def check_pyramid_pooling(my_pyramid_pooling: Callable[..., Any]) -> None:
    """Check a class ``MyPyramidPooling(in_channels, bins=(1, 2, 3, 6))`` on 5 inputs x 2 modes.

    The learner's module must hold one ``nn.Conv2d`` (1x1, no bias) and one ``nn.BatchNorm2d``
    per bin, created in the order of ``bins``; see the module docstring for how its weights
    are set from the package's module.

    >>> check_pyramid_pooling(PyramidPoolingModule)
    Traceback (most recent call last):
    AssertionError: PyramidPoolingModule is the package's own module: write your own class
    """
    name = learner_name(my_pyramid_pooling)
    if my_pyramid_pooling is PyramidPoolingModule:
        raise AssertionError(f"{name} is the package's own module: write your own class")
    if not callable(my_pyramid_pooling):
        raise AssertionError(f"{name} is not a class: pass the class itself, check_pyramid_pooling(MyPyramidPooling)")
    refuse_reference(my_pyramid_pooling, PYRAMID_POOLING_HIDDEN, name)
    # Built before the package's classes are hidden; the forward pass needs no name of them.
    references = [_randomised_reference(in_channels, bins, seed=index)
                  for index, (in_channels, bins, _) in enumerate(PPM_CASES)]
    with hidden(*PYRAMID_POOLING_HIDDEN) as hiding:
        for index, ((in_channels, bins, shape), reference) in enumerate(zip(PPM_CASES, references)):
            call = f"{name}({in_channels}, bins={bins})"
            with learner_code(name, call, hiding):
                learner = my_pyramid_pooling(in_channels, bins)
            _refuse_package_parts(name, learner)
            learner = copy.deepcopy(learner)  # the learner's own object keeps its weights
            _copy_by_structure(reference, learner, call)
            _compare(name, reference, learner, shape, seed=100 + index, hiding=hiding)
    passed(name, "pspnet_edu.ppm.PyramidPoolingModule", len(PPM_CASES) * 2)
