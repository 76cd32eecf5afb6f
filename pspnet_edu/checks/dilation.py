"""Self-checks for notebooks/02_dilated_convolutions.ipynb.

- :func:`check_output_size`: ``my_output_size(size, kernel, stride=1, padding=0, dilation=1)``
  against :func:`pspnet_edu.dilation.conv_output_size` (torch's formula);
- :func:`check_same_padding`: ``my_same_padding(kernel, dilation)`` against
  :func:`pspnet_edu.dilation.same_padding`;
- :func:`check_reachable_offsets`: ``my_reachable_offsets(dilations, kernel=3)``, the sorted
  offsets (along one axis, relative to the output pixel) that a stack of stride-1 dilated
  convolutions can see, against the non-zero entries of
  :func:`pspnet_edu.dilation.gridding_pattern` (gridding leaves holes among them).

While the learner's function runs, each check hides the package's function it re-derives
(``*_HIDDEN`` below; :func:`pspnet_edu.checks._core.hidden`). ``effective_kernel_size`` is not
hidden: it is a piece of the formula, taught in the same lesson.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pspnet_edu.checks._core import Case, check_cases
from pspnet_edu.dilation import conv_output_size, gridding_pattern, same_padding

# What each check hides while the learner's code runs.
OUTPUT_SIZE_HIDDEN = (conv_output_size,)
SAME_PADDING_HIDDEN = (same_padding,)

OUTPUT_SIZE_FORMULA = "output = (size + 2*padding - dilation*(kernel - 1) - 1) // stride + 1"

_OUTPUT_SIZE_CASES = (
    Case((7, 3)),
    Case((7, 3), {"padding": 1}),
    Case((224, 7), {"stride": 2, "padding": 3}, "ResNet's stem: 224 -> 112."),
    Case((112, 3), {"stride": 2, "padding": 1}, "ResNet's max-pool: 112 -> 56."),
    Case((113, 3), {"stride": 2, "padding": 1}, "an odd size with stride 2: the division rounds down."),
    Case((60, 3), {"padding": 2, "dilation": 2}, "a dilated 3x3 with padding 2 keeps 60 (PSPNet's layer3 at 473 px)."),
    Case((60, 3), {"padding": 1, "dilation": 2}, "dilation 2 with padding 1 shrinks the map."),
    Case((60, 3), {"padding": 4, "dilation": 4}, "PSPNet's layer4: dilation 4, padding 4."),
    Case((9, 3), {"dilation": 4}, "the dilated kernel spans the whole input: one output pixel."),
    Case((20, 1), {"stride": 2}, "a 1x1 shortcut with stride 2."),
    Case((33, 5), {"stride": 3, "padding": 2, "dilation": 2}),
    Case((17, 2), {"stride": 2}, "2x2 pooling, stride 2."),
)


def _output_size_diagnose(case: Case, expected: Any, got: Any) -> str:
    size, kernel = case.args
    s, p, d = (case.kwargs.get(name, default) for name, default in (("stride", 1), ("padding", 0), ("dilation", 1)))
    slips = {
        "the kernel of a dilation-d convolution spans d*(kernel-1)+1 pixels, not kernel": (size + 2 * p - kernel) // s + 1,
        "the padding is added on BOTH sides: + 2*padding": (size + p - d * (kernel - 1) - 1) // s + 1,
        "count the window positions: (span of the positions) // stride, plus 1 for the first window": (size + 2 * p - d * (kernel - 1) - 1) // s,
    }
    for hint, answer in slips.items():
        if got == answer != expected:
            return hint + ". " + OUTPUT_SIZE_FORMULA
    return OUTPUT_SIZE_FORMULA


def check_output_size(my_output_size: Callable[..., int]) -> None:
    """Check ``my_output_size(size, kernel, stride=1, padding=0, dilation=1)`` on 12 layers.

    >>> def my_output_size(size, kernel, stride=1, padding=0, dilation=1):
    ...     return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
    >>> check_output_size(my_output_size)
    ✓ my_output_size matches pspnet_edu.dilation.conv_output_size on 12 cases
    """
    check_cases(my_output_size, conv_output_size, _OUTPUT_SIZE_CASES, hide=OUTPUT_SIZE_HIDDEN,
                hint=_output_size_diagnose)


_SAME_PADDING_CASES = (
    Case((3, 1)),
    Case((3, 2), hint="PSPNet's layer3."),
    Case((3, 4), hint="PSPNet's layer4."),
    Case((1, 1), hint="a 1x1 convolution needs no padding."),
    Case((5, 1)),
    Case((5, 3)),
    Case((7, 2)),
    Case((3, 16)),
)


def _same_padding_diagnose(case: Case, expected: Any, got: Any) -> str:
    kernel, dilation = case.args
    if got == dilation * (kernel - 1) != expected:
        return "that is the total padding; split it between the two sides: d*(k-1)//2 on each."
    if got == (kernel - 1) // 2 != expected:
        return "the dilated kernel spans d*(k-1)+1 pixels; pad half of what it adds on each side."
    return "padding each side by (span - 1)/2, with span = d*(k-1)+1, keeps the size at stride 1."


def check_same_padding(my_same_padding: Callable[[int, int], int]) -> None:
    """Check ``my_same_padding(kernel, dilation)``: the padding per side that keeps the size.

    >>> check_same_padding(lambda kernel, dilation: dilation * (kernel - 1) // 2)
    ✓ <lambda> matches pspnet_edu.dilation.same_padding on 8 cases
    """
    check_cases(my_same_padding, same_padding, _SAME_PADDING_CASES, hide=SAME_PADDING_HIDDEN,
                hint=_same_padding_diagnose)


def reachable_offsets(dilations: Sequence[int], kernel: int = 3) -> list[int]:
    """The reference: offsets of the input pixels (one axis) a stack's centre output can see.

    Read from the non-zero entries of the centre row of
    :func:`pspnet_edu.dilation.gridding_pattern`.

    >>> reachable_offsets([2, 2])
    [-4, -2, 0, 2, 4]
    """
    pattern = gridding_pattern(list(dilations), kernel)  # (S, S)
    row = pattern[pattern.shape[0] // 2]
    centre = row.shape[0] // 2
    return [i - centre for i in row.nonzero().flatten().tolist()]


REACHABLE_OFFSETS_HIDDEN = (reachable_offsets, gridding_pattern)

_REACHABLE_CASES = (
    Case(([1],), hint="one 3x3 convolution."),
    Case(([2],), hint="one 3x3 convolution with dilation 2."),
    Case(([1, 1, 1],)),
    Case(([2, 2],), hint="two convolutions with dilation 2: gridding."),
    Case(([2, 2, 2],), hint="three convolutions with dilation 2: gridding."),
    Case(([1, 2, 5],), hint="the hybrid rates of Wang et al. 2018: no holes."),
    Case(([1, 2, 9],), hint="a rate too large for the layers before it: holes again."),
    Case(([4, 4],), hint="PSPNet's layer4 rate, twice."),
    Case(([1, 3],), {"kernel": 5}, hint="a 5x5 kernel."),
)


def _reachable_diagnose(case: Case, expected: Any, got: Any) -> str:
    base = ("each layer adds one of the offsets {-r, 0, r} (for a 3x3 kernel with rate r; -(k//2)*r ... (k//2)*r "
            "in steps of r for a k-tap kernel) to every offset reachable before it; start from {0}.")
    try:
        values = list(got)
    except TypeError:
        return "return a sorted list of ints. " + base
    if sorted(set(values)) == expected and values != expected:
        return "sort the offsets and list each only once. " + base
    return base


def check_reachable_offsets(my_reachable_offsets: Callable[..., Sequence[int]]) -> None:
    """Check ``my_reachable_offsets(dilations, kernel=3)`` -> the sorted list of visible offsets.

    >>> def my_reachable_offsets(dilations, kernel=3):
    ...     seen = {0}
    ...     for rate in dilations:
    ...         taps = [rate * (t - kernel // 2) for t in range(kernel)]
    ...         seen = {s + t for s in seen for t in taps}
    ...     return sorted(seen)
    >>> check_reachable_offsets(my_reachable_offsets)
    ✓ my_reachable_offsets matches pspnet_edu.dilation.gridding_pattern on 9 cases
    """
    check_cases(my_reachable_offsets, reachable_offsets, _REACHABLE_CASES, hide=REACHABLE_OFFSETS_HIDDEN,
                hint=_reachable_diagnose, against="pspnet_edu.dilation.gridding_pattern")
