"""Self-checks for notebooks/04_pyramid_pooling_module.ipynb (the PPM of Zhao et al. 2017, Sec. 3.2, Fig. 3(c)).

- :func:`check_adaptive_windows`: ``my_adaptive_windows(size, bins)``, the [start, end) pixel
  range of each window of adaptive pooling, against
  :func:`pspnet_edu.ppm.adaptive_pool_windows` (PyTorch's rule);
- :func:`check_bilinear_resize`: ``my_bilinear_resize(x, size, align_corners)``, bilinear
  resizing written by hand (the PPM's last step, PSPNet's 8x upsampling of the logits), against
  ``F.interpolate(x, size, mode="bilinear", align_corners=...)`` in float64 to 1e-12, with both
  conventions; a wrong result is compared with the other convention and with the usual mistakes
  (no clamping, integer division, swapped weights, float32 coordinates, border pixels) to name it;
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
statistics), at sizes that bins divide and sizes they do not. A wrong output is compared with
the usual mistakes to name them: the input last or missing, the levels in another order than
``bins``, the package's output upsampled with ``align_corners=True``, levels without their ReLU.

While the learner's code runs, the package's code it re-derives is hidden (``*_HIDDEN`` below;
:func:`pspnet_edu.checks._core.hidden`): ``adaptive_pool_windows`` for the windows; for the
module, ``PyramidPoolingModule`` and its branch ``PyramidBranch``. A learner's class that
subclasses either, or a module that contains an instance of either, is refused too. torch's
layers (``nn.AdaptiveAvgPool2d``, ``F.interpolate``, ...) are the bricks of the module exercise and
stay available there; the resize exercise hides ``F.interpolate`` and what reaches it
(``BILINEAR_RESIZE_HIDDEN``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pspnet_edu.checks._core import (
    Case,
    Hiding,
    call_learner,
    check_cases,
    differences,
    fail,
    hidden,
    learner_code,
    learner_name,
    passed,
    refuse_reference,
    require_callable,
    uses_reference_message,
)
from pspnet_edu.ppm import PyramidBranch, PyramidPoolingModule, adaptive_pool_windows

# What each check hides while the learner's code runs (BILINEAR_RESIZE_HIDDEN: in its section below).
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


# ------------------------------------------------------------------ bilinear upsampling

# float64 inputs: a right answer differs from PyTorch's by rounding only (about 1e-16).
RESIZE_RTOL = RESIZE_ATOL = 1e-12
# float32 inputs (the pyramid's maps): rounding of about 1e-7, relative.
RESIZE_RTOL_FLOAT32, RESIZE_ATOL_FLOAT32 = 1e-5, 1e-6

# (input shape (B, C, h, w), size (H, W), what the case is about); each runs with both conventions.
RESIZE_SHAPES: tuple[tuple[tuple[int, int, int, int], tuple[int, int], str], ...] = (
    ((2, 3, 2, 2), (13, 13), "the 2x2 level of a 13x13 map"),
    ((2, 3, 3, 3), (60, 60), "the 3x3 level of the 60x60 map of a 473 crop"),
    ((2, 3, 6, 6), (13, 17), "a non-square output"),
    ((1, 2, 2, 3), (7, 60), "a non-square input and output"),
    ((2, 3, 1, 1), (13, 13), "the 1x1 level: the output is a constant"),
    ((1, 4, 6, 6), (1, 1), "an output of one pixel"),
    ((1, 2, 3, 2), (1, 13), "one output row"),
    ((1, 3, 9, 5), (65, 33), "PSPNet's 8x upsampling of the logits, 8n+1 sizes as in semseg"),
    ((1, 2, 13, 17), (6, 5), "downsampling"),
)
# One more, in float32: the result keeps the input's dtype (a float64 weight matrix would promote it).
RESIZE_FLOAT32 = ((2, 8, 6, 6), (60, 60), "float32, as the pyramid's maps are: the result stays float32")
_RESIZE_CONTRACT = (
    "my_bilinear_resize(x, size, align_corners) maps x (B, C, h, w) to (B, C, H, W), size = (H, W), in x's "
    "dtype: along each axis every output pixel gets a source coordinate in the input (by the convention "
    "align_corners selects) and mixes the two input pixels around it, each weighted by 1 minus its distance."
)
_HALF_PIXEL = (
    "align_corners=False is the half-pixel convention: a pixel is a unit square whose value sits at its "
    "centre, and the outer EDGES of input and output coincide, not the centres of their first and last "
    "pixels; a source coordinate below 0 or above n_in - 1 reads the border pixel (3 -> 7 pixels: output "
    "pixels 0..6 read input coordinates 0, 1/7, 4/7, 1, 10/7, 13/7, 2)."
)
_CORNERS = (
    "align_corners=True: the centres of the first and last pixels of input and output coincide (output 0 "
    "reads input 0, output n_out - 1 reads input n_in - 1) and the others are evenly spaced in between "
    "(3 -> 7 pixels: 0, 1/3, 2/3, 1, ...)."
)
_RESIZE_MISTAKES = {
    "unclamped": ("the border rows or columns extrapolate: with align_corners=False the outermost output "
                  "centres fall outside the outermost input centres (source coordinate below 0, or above "
                  "n_in - 1); PyTorch clamps the coordinate there, so they copy the border pixel. Note that "
                  "int() rounds -0.25 to 0, not down to -1."),
    "integer": ("this is what integer division gives: the ratio of the sizes must stay a float "
                "(n_in / n_out), else an upsampling reads the first pixel everywhere."),
    "swapped": ("the two weights are swapped: the nearer neighbour gets the larger weight, 1 minus its "
                "distance to the source coordinate."),
}


def _bilinear_reference(x: Tensor, size: tuple[int, int], align_corners: bool) -> Tensor:
    """What the learner's resize must equal: PyTorch's bilinear interpolation."""
    return F.interpolate(x, size, mode="bilinear", align_corners=align_corners)


def _axis_weights_with_mistake(n_in: int, n_out: int, align_corners: bool, mistake: str) -> Tensor:
    """(n_out, n_in) weights of 1-D linear interpolation with one of ``_RESIZE_MISTAKES`` built in."""
    ratio_in, ratio_out = (n_in - 1, n_out - 1) if align_corners else (n_in, n_out)
    scale = 0.0 if ratio_out == 0 else ratio_in // ratio_out if mistake == "integer" else ratio_in / ratio_out
    weights = torch.zeros(n_out, n_in, dtype=torch.float64)
    for j in range(n_out):
        src = j * scale if align_corners else (j + 0.5) * scale - 0.5
        if mistake != "unclamped":
            src = max(src, 0.0)
        low = min(int(src), n_in - 1)  # int() truncates: an unclamped -0.25 gives 0 and a weight of 1.25
        high = min(low + 1, n_in - 1)
        t = src - low
        if mistake == "swapped":
            t = 1.0 - t
        weights[j, low] += 1.0 - t
        weights[j, high] += t
    return weights


def _resize_with_mistake(x: Tensor, size: tuple[int, int], align_corners: bool, mistake: str) -> Tensor:
    """Bilinear resizing with one typical mistake, to recognise it in a learner's result."""
    rows = _axis_weights_with_mistake(x.shape[-2], size[0], align_corners, mistake)
    columns = _axis_weights_with_mistake(x.shape[-1], size[1], align_corners, mistake)
    return torch.einsum("Hh,bchw,Ww->bcHW", rows, x.to(torch.float64), columns)


# What check_bilinear_resize hides: F.interpolate and what reaches it (nn.Upsample, the deprecated
# F.upsample*), F.grid_sample (it samples bilinearly too), and the check's own variants above.
BILINEAR_RESIZE_HIDDEN = (F.interpolate, F.upsample, F.upsample_bilinear, F.grid_sample, nn.Upsample,
                          nn.UpsamplingBilinear2d, _resize_with_mistake)


def _resize_cases() -> list[Case]:
    generator = torch.Generator().manual_seed(0)
    cases = []
    inputs = [(shape, torch.float64) for shape in RESIZE_SHAPES] + [(RESIZE_FLOAT32, torch.float32)]
    for (shape, size, about), dtype in inputs:
        x = torch.randn(shape, generator=generator, dtype=dtype)
        cases += [Case((x, size), {"align_corners": flag}, about) for flag in (False, True)]
    return cases


def _tolerance(x: Tensor) -> dict[str, float]:
    """How close a right answer comes to PyTorch's for an input of ``x``'s dtype."""
    if x.dtype == torch.float64:
        return {"rtol": RESIZE_RTOL, "atol": RESIZE_ATOL}
    return {"rtol": RESIZE_RTOL_FLOAT32, "atol": RESIZE_ATOL_FLOAT32}


def _resize_diagnose(case: Case, expected: Tensor, got: Any) -> str:
    """The likely mistake behind a wrong result (called outside the hidden block: it uses F.interpolate)."""
    (x, size), align_corners = case.args, case.kwargs["align_corners"]
    if not isinstance(got, torch.Tensor):
        return _RESIZE_CONTRACT
    batch, channels, height, width = expected.shape
    if tuple(got.shape) != tuple(expected.shape):
        if tuple(got.shape) == (batch, channels, width, height):
            return "size is (height, width): the rows come first. " + _RESIZE_CONTRACT
        if tuple(got.shape[-2:]) == (height, width):
            return "keep the batch and channel dimensions, (B, C, h, w) -> (B, C, H, W). " + _RESIZE_CONTRACT
        return _RESIZE_CONTRACT
    if got.dtype != x.dtype:
        return f"the result is {got.dtype} for a {x.dtype} input: compute in the input's dtype. " + _RESIZE_CONTRACT
    if bool(torch.isnan(got).any()):
        return ("NaN in the result: with align_corners=True and an output of one pixel, n_out - 1 is 0; "
                "PyTorch then reads input coordinate 0, the first pixel (align_corners=False reads the centre "
                "of the axis).")

    tolerance = _tolerance(x)

    def same(other: Tensor) -> bool:
        return torch.allclose(got, other.to(got.dtype), **tolerance)

    if same(_bilinear_reference(x, size, not align_corners)):
        wanted = _HALF_PIXEL if not align_corners else _CORNERS
        return f"this equals align_corners={not align_corners}, but the case asks for {align_corners}. {wanted}"
    for mistake, text in _RESIZE_MISTAKES.items():
        if same(_resize_with_mistake(x, size, align_corners, mistake)):
            return text
    if x.dtype == torch.float64 and torch.allclose(got, expected, rtol=1e-5, atol=1e-6):
        return ("right to about 1e-6 only: part of the computation runs in float32 (torch.arange(n) * 0.5 is "
                "float32); the check compares float64 results to 1e-12, so compute coordinates and weights in "
                "the input's dtype (torch.arange(n, dtype=x.dtype)).")
    wrong = ~torch.isclose(got, expected, **tolerance)
    if not bool(wrong[0, 0].any()):
        return ("the first image's first channel is right, the other planes are not: resize every (batch, "
                "channel) plane the same way, with the same weights.")
    first, last = _border_pixels(x, size, align_corners)
    if not bool((wrong & ~first).any()):
        return ("only the first rows or columns are wrong, those whose source coordinate falls before the centre "
                "of input pixel 0: PyTorch clamps it at 0, so they copy the first pixel (a negative index wraps "
                "around to the LAST pixel in Python, and int() truncates -0.25 to 0 where floor gives -1).")
    if not bool((wrong & ~last).any()):
        return ("only the last rows or columns are wrong, those whose source coordinate reaches or passes the "
                "last input pixel, n_in - 1: there both neighbours are that last pixel.")
    if not bool((wrong & ~(first | last)).any()):
        return ("only the border rows and columns are wrong: a source coordinate below 0 is clamped at 0, and "
                "where it reaches or passes n_in - 1 both neighbours are the last pixel.")
    return (_HALF_PIXEL if not align_corners else _CORNERS) + " " + _RESIZE_CONTRACT


def _border_pixels(x: Tensor, size: tuple[int, int], align_corners: bool) -> tuple[Tensor, Tensor]:
    """Masks (H, W) of the output pixels that read the first, and the last, input row or column.

    Resizing the ramp 0, 1, ..., n - 1 gives each output pixel the (clamped) source coordinate it reads.
    """
    def ramp(n: int, n_out: int) -> Tensor:
        line = torch.arange(n, dtype=torch.float64).view(1, 1, n, 1)
        return _bilinear_reference(line, (n_out, 1), align_corners)[0, 0, :, 0]

    rows, columns = ramp(x.shape[-2], size[0]), ramp(x.shape[-1], size[1])
    first = (rows == 0)[:, None] | (columns == 0)[None, :]
    last = (rows == x.shape[-2] - 1)[:, None] | (columns == x.shape[-1] - 1)[None, :]
    return first, last


def _exception_hint(case: Case, error: BaseException | None) -> str:
    """A hint for an exception the learner's resize raised on ``case``."""
    if case.kwargs["align_corners"] and 1 in case.args[1]:
        return ("an output of one pixel: with align_corners=True n_out - 1 is 0 (a NaN coordinate becomes a huge "
                "negative index); PyTorch then reads input coordinate 0, the first pixel.")
    if isinstance(error, IndexError) or "out of bounds" in str(error):
        return ("an index outside the input: every source coordinate is clamped to [0, n_in - 1], and the "
                "neighbour after the last pixel is the last pixel itself (the 1x1 level has only that one).")
    return _RESIZE_CONTRACT


def check_bilinear_resize(my_bilinear_resize: Callable[[Tensor, tuple[int, int], bool], Tensor]) -> None:
    """Check ``my_bilinear_resize(x, size, align_corners)`` against ``F.interpolate`` on 20 cases.

    Float64 inputs (B, C, h, w) from the pyramid's grids (1, 2, 3, 6) to outputs of 1, 13, 60,
    non-square ones, the 8x upsampling of the logits and one downsampling, each with
    ``align_corners`` False and True; the results must agree to 1e-12. Then one float32 input,
    whose result must stay float32 and agree to 1e-5.

    >>> def my_bilinear_resize(x, size, align_corners):
    ...     raise NotImplementedError()
    >>> check_bilinear_resize(my_bilinear_resize)
    Traceback (most recent call last):
    AssertionError: my_bilinear_resize is not implemented yet: replace `raise NotImplementedError()` in its cell with your code, run that cell, then run this check again.
    """
    name = learner_name(my_bilinear_resize)
    require_callable(my_bilinear_resize)
    refuse_reference(my_bilinear_resize, BILINEAR_RESIZE_HIDDEN, name)
    cases = _resize_cases()
    expected_values = [_bilinear_reference(*case.args, **case.kwargs) for case in cases]
    failure = None
    with hidden(*BILINEAR_RESIZE_HIDDEN) as hiding:
        for case, expected in zip(cases, expected_values):
            try:
                got = call_learner(my_bilinear_resize, case, name, hiding)
            except AssertionError as error:
                if error.__cause__ is None:  # not implemented yet, or a hidden reference used
                    raise
                raise AssertionError(f"{error}\n  case: {case.hint}\n  hint: {_exception_hint(case, error.__cause__)}"
                                     ) from error.__cause__
            detail = differences(expected, got, **_tolerance(case.args[0]))
            if detail is None and isinstance(got, torch.Tensor) and got.dtype != expected.dtype:
                detail = f"expected a {expected.dtype} result, got {got.dtype}"
            if detail is not None:
                failure = case, expected, got, detail
                break
    if failure is None:
        passed(name, "F.interpolate(x, size, mode='bilinear', align_corners=...)", len(cases))
        return
    case, expected, got, detail = failure  # diagnosed here: the diagnosis uses F.interpolate
    raise fail(case.call_text(name), expected, got, detail, f"({case.hint}) {_resize_diagnose(case, expected, got)}")


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
    "the contract: one branch per bin, created in the order of `bins`; each pools the map to bins x bins "
    "(adaptive average pooling), reduces it with its own 1x1 nn.Conv2d from in_channels to in_channels // "
    "len(bins) channels (no bias), then its own nn.BatchNorm2d and a ReLU, and is upsampled bilinearly "
    "(align_corners=False) to the input's size; the output is the input followed by the levels, in the "
    "order of `bins`, along the channels."
)


def _randomised_reference(in_channels: int, bins: tuple[int, ...], seed: int) -> PyramidPoolingModule:
    """The package's module with random weights, BN affine parameters and BN statistics."""
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


def _levels_hint(x: Tensor, expected: Tensor, got: Any, aligned: Tensor, bins: tuple[int, ...]) -> str:
    """The likely mistake of a learner's output ``got`` (B, C + N * C/N, H, W) that differs from ``expected``.

    ``aligned`` is the package's output with the same weights but ``align_corners=True``.
    """
    channels = x.shape[1]
    reduced = (expected.shape[1] - channels) // len(bins)
    if not isinstance(got, torch.Tensor) or got.dim() != 4:
        return _STRUCTURE_HINT
    if tuple(got.shape) != tuple(expected.shape):
        if got.shape[1] == expected.shape[1] - channels:
            return "the input itself is missing: the output starts with x, then the levels. " + _STRUCTURE_HINT
        if tuple(got.shape[-2:]) != tuple(expected.shape[-2:]):
            return "every level is upsampled to the input's (H, W) before the concatenation. " + _STRUCTURE_HINT
        return (f"expected {expected.shape[1]} channels: the input's {channels} and {expected.shape[1] - channels} "
                f"from the levels. " + _STRUCTURE_HINT)

    def same(a: Tensor, b: Tensor) -> bool:
        return torch.allclose(a, b, rtol=1e-4, atol=1e-5)

    if same(got[:, -channels:], x) and not same(got[:, :channels], x):
        return "the input goes FIRST, then the levels in the order of `bins`. " + _STRUCTURE_HINT
    if not same(got[:, :channels], x):
        return "the first channels of the output are the input itself, unchanged. " + _STRUCTURE_HINT
    if same(got, aligned):
        return ("the levels equal the package's with align_corners=True: this module upsamples with "
                "align_corners=False, the half-pixel convention (exercise 2). " + _STRUCTURE_HINT)
    expected_levels = expected[:, channels:].split(reduced, dim=1)
    got_levels = got[:, channels:].split(reduced, dim=1)
    order = [next((k for k, e in enumerate(expected_levels) if same(g, e)), None) for g in got_levels]
    if None not in order and order != sorted(order):
        return (f"every level is right, but they come in the order of bins {tuple(bins[k] for k in order)}: "
                f"concatenate them in the order of `bins`, {bins}, after the input. " + _STRUCTURE_HINT)
    if bool((got[:, channels:] < -1e-6).any()):
        return "the levels have negative values: each ends with a ReLU, after its BatchNorm. " + _STRUCTURE_HINT
    return ("the input part matches, the pyramid levels do not: check the pooling (adaptive average, not a "
            "fixed kernel), that the i-th Conv2d and BatchNorm2d belong to bins[i], and the bilinear "
            "upsampling. " + _STRUCTURE_HINT)


def _compare(name: str, reference: PyramidPoolingModule, learner: Any, shape: tuple[int, ...], seed: int,
             hiding: Hiding) -> None:
    call = f"{name}({reference.branches[0].conv.in_channels}, bins={reference.bins})"
    x = torch.randn(shape, generator=torch.Generator().manual_seed(seed))
    for mode in ("train", "eval"):
        reference.train(mode == "train")
        learner.train(mode == "train")
        aligned = copy.deepcopy(reference)  # the same weights and statistics, upsampling with align_corners=True
        aligned.align_corners = True
        with torch.no_grad():
            expected = reference(x.clone())  # (B, C + N * C/N, H, W)
            expected_aligned = aligned(x.clone())
            with learner_code(name, f"{call} on a {tuple(shape)} input in {mode} mode", hiding):
                got = learner(x.clone())
        detail = differences(expected, got, rtol=1e-4, atol=1e-5)
        if detail is None:
            continue
        hint = _levels_hint(x, expected, got, expected_aligned, reference.bins)
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
