"""Self-checks for notebooks/02_dilated_convolutions.ipynb (the dilated network of Zhao et al. 2017, Sec. 3.3).

- :func:`check_atrous_conv`: ``my_atrous_conv(x, weight, dilation, padding=0)``, a dilated
  convolution computed with *undilated* convolutions on the d x d interleaved sub-images of
  the padded input (the à trous identity), against ``F.conv2d(x, weight, padding=padding,
  dilation=dilation)`` itself;
- :func:`check_reachable_offsets`: ``my_reachable_offsets(dilations, kernel=3)``, the sorted
  offsets (along one axis, relative to the output pixel) that a stack of stride-1 dilated
  convolutions can see, against the non-zero entries of
  :func:`pspnet_edu.dilation.gridding_pattern` (gridding leaves holes among them).

While the learner's function runs, each check hides the package's function it re-derives
(``*_HIDDEN`` below; :func:`pspnet_edu.checks._core.hidden`): ``atrous_by_subsampling`` for the
identity, ``gridding_pattern`` for the offsets. The à trous check also refuses a *dilated*
convolution: while the learner's code runs, ``torch.conv2d`` (which is ``F.conv2d``, also
behind ``nn.Conv2d``) and ``F.unfold`` only accept ``dilation=1``; any other dilation is
recorded and fails the check with "write it yourself", also when the learner's code caught
the error. Undilated convolutions, ``F.pad``, slicing and reshaping are the bricks of the
exercise and stay available.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from pspnet_edu.checks._core import (
    Case,
    _places,
    check_cases,
    differences,
    fail,
    hidden,
    learner_code,
    learner_name,
    passed,
    refuse_reference,
    require_callable,
)
from pspnet_edu.dilation import atrous_by_subsampling, gridding_pattern

# ------------------------------------------------------------------ the à trous identity

ATROUS_CONV_HIDDEN = (atrous_by_subsampling,)  # hidden while the learner's code runs

ATROUS_RECIPE = (
    "pad x once with `padding` zeros on every side (F.pad), then for every residue (r, c) in "
    "range(d) x range(d) take the sub-image xp[..., r::d, c::d], convolve it with F.conv2d(sub, "
    "weight) (no dilation, no padding) and write the result to out[..., r::d, c::d]; the output "
    "has H + 2*padding - d*(k - 1) rows."
)

# (input shape, weight shape, dilation, padding, hint); inputs and weights are drawn with a fixed seed.
_ATROUS_SPECS: tuple[tuple[tuple[int, ...], tuple[int, ...], int, int, str | None], ...] = (
    ((1, 1, 8, 8), (1, 1, 3, 3), 2, 2, "one channel, a side the dilation divides."),
    ((2, 3, 23, 17), (4, 3, 3, 3), 2, 2, "odd sides: the sub-images differ in size."),
    ((2, 3, 23, 17), (4, 3, 3, 3), 3, 3, "dilation 3: nine sub-images."),
    ((1, 4, 20, 20), (2, 4, 3, 3), 4, 4, "PSPNet's layer4: dilation 4, padding 4."),
    ((1, 2, 15, 12), (3, 2, 3, 3), 2, 0, "no padding: the output shrinks by d*(k-1) = 4."),
    ((1, 2, 11, 13), (2, 2, 3, 3), 2, 1, "padding 1 with dilation 2: not 'same', the output shrinks by 2."),
    ((1, 1, 31, 29), (1, 1, 5, 5), 3, 6, "a 5x5 kernel with dilation 3 spans 13 pixels."),
    ((2, 2, 9, 10), (2, 2, 3, 3), 1, 1, "dilation 1: a single sub-image, the input itself."),
)


def _atrous_cases() -> list[Case]:
    import torch

    generator = torch.Generator().manual_seed(0)
    cases = []
    for x_shape, w_shape, dilation, padding, hint in _ATROUS_SPECS:
        x = torch.randn(x_shape, generator=generator)
        weight = torch.randn(w_shape, generator=generator)
        cases.append(Case((x, weight, dilation), {"padding": padding}, hint))
    return cases


def _dilated_reference(x: Any, weight: Any, dilation: int, padding: int = 0) -> Any:
    """What the learner's function must equal: PyTorch's own dilated convolution."""
    import torch.nn.functional as F

    return F.conv2d(x, weight, padding=padding, dilation=dilation)


class _DilationRefused(AssertionError):
    """Raised by the guarded convolution when the learner's code asks for a dilation other than 1."""


@contextlib.contextmanager
def _undilated_only(name: str) -> Iterator[list[str]]:
    """While the block runs, ``torch.conv2d`` (= ``F.conv2d``) and ``F.unfold`` refuse ``dilation != 1``.

    Yields the list of refused calls (text such as "F.conv2d with dilation=2"); every module
    attribute that held the originals holds them again afterwards.
    """
    import torch
    import torch.nn.functional as F

    refused: list[str] = []
    conv2d, unfold = torch.conv2d, F.unfold

    def dilated(value: Any) -> bool:
        return any(v != 1 for v in (value if isinstance(value, (tuple, list)) else (value,)))

    def refuse(what: str, dilation: Any) -> _DilationRefused:
        if isinstance(dilation, (tuple, list)) and len(set(dilation)) == 1:
            dilation = dilation[0]  # nn.Conv2d passes (2, 2)
        refused.append(f"{what} with dilation={dilation}")
        return _DilationRefused(f"{name} calls {what} with dilation={dilation}")

    def guarded_conv2d(input: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0,
                       dilation: Any = 1, groups: int = 1) -> Any:
        if dilated(dilation):
            raise refuse("F.conv2d", dilation)
        return conv2d(input, weight, bias, stride, padding, dilation, groups)

    def guarded_unfold(input: Any, kernel_size: Any, dilation: Any = 1, padding: Any = 0, stride: Any = 1) -> Any:
        if dilated(dilation):
            raise refuse("F.unfold", dilation)
        return unfold(input, kernel_size, dilation, padding, stride)

    guards = {id(conv2d): guarded_conv2d, id(unfold): guarded_unfold}
    places = _places([conv2d, unfold])
    try:
        for _, namespace, key, value in places:
            namespace[key] = guards[id(value)]
        yield refused
    finally:
        for _, namespace, key, value in places:
            namespace[key] = value


def _dilation_message(name: str, use: str) -> str:
    return (f"{name} calls {use}, the dilated convolution it is meant to replace: write it yourself "
            "(convolve the d x d sub-images xp[..., r::d, c::d] with dilation 1; the check refuses any "
            "other dilation while it runs your code)")


def _atrous_diagnose(case: Case, expected: Any, got: Any) -> str:
    x, weight, dilation = case.args
    padding = case.kwargs["padding"]
    shape = getattr(got, "shape", None)
    if shape is None:
        return "return a tensor of shape (B, C_out, H_out, W_out). " + ATROUS_RECIPE
    if tuple(shape) != tuple(expected.shape):
        k = weight.shape[-1]
        unpadded = (x.shape[-2] - dilation * (k - 1), x.shape[-1] - dilation * (k - 1))
        if padding and tuple(shape[-2:]) == unpadded:
            return "the output is too small: pad the input first, F.pad(x, (p, p, p, p)). " + ATROUS_RECIPE
        if tuple(shape[-2:]) == tuple(x.shape[-2:]) != tuple(expected.shape[-2:]):
            return ("the output keeps the input's size only with 'same' padding d*(k-1)/2; here "
                    f"padding={padding}. " + ATROUS_RECIPE)
        return ATROUS_RECIPE
    return ("the shape is right, the values are not: pad the whole input ONCE before splitting (padding "
            "each sub-image would put the zeros d times too far out), and write sub-image (r, c)'s result "
            "back to out[..., r::d, c::d]. " + ATROUS_RECIPE)


def check_atrous_conv(my_atrous_conv: Callable[..., Any]) -> None:
    """Check ``my_atrous_conv(x, weight, dilation, padding=0)`` against ``F.conv2d(..., dilation=d)`` on 8 cases.

    >>> import torch, torch.nn.functional as F
    >>> def my_atrous_conv(x, weight, dilation, padding=0):
    ...     xp = F.pad(x, (padding,) * 4)
    ...     k, d = weight.shape[-1], dilation
    ...     out = x.new_zeros(x.shape[0], weight.shape[0], xp.shape[-2] - d * (k - 1), xp.shape[-1] - d * (k - 1))
    ...     for r in range(d):
    ...         for c in range(d):
    ...             out[..., r::d, c::d] = F.conv2d(xp[..., r::d, c::d], weight)
    ...     return out
    >>> check_atrous_conv(my_atrous_conv)
    ✓ my_atrous_conv matches F.conv2d(x, weight, padding=p, dilation=d) on 8 cases
    >>> check_atrous_conv(lambda x, weight, dilation, padding=0: F.conv2d(x, weight, padding=padding, dilation=dilation))
    Traceback (most recent call last):
    AssertionError: <lambda> calls F.conv2d with dilation=2, the dilated convolution it is meant to replace: write it yourself (convolve the d x d sub-images xp[..., r::d, c::d] with dilation 1; the check refuses any other dilation while it runs your code)
    """
    name = learner_name(my_atrous_conv)
    require_callable(my_atrous_conv)
    refuse_reference(my_atrous_conv, ATROUS_CONV_HIDDEN, name)
    cases = _atrous_cases()
    expected_values = [_dilated_reference(*case.args, **case.kwargs) for case in cases]
    failure = None
    with hidden(*ATROUS_CONV_HIDDEN) as hiding:
        for case, expected in zip(cases, expected_values):
            with _undilated_only(name) as refused:
                try:
                    args, kwargs = copy.deepcopy((case.args, dict(case.kwargs)))  # the cases stay intact
                    with learner_code(name, case.call_text(name), hiding):
                        got = my_atrous_conv(*args, **kwargs)
                except AssertionError:
                    if refused:
                        raise AssertionError(_dilation_message(name, refused[0])) from None
                    raise
            if refused:  # the learner's code caught the refusal and went on
                raise AssertionError(_dilation_message(name, refused[0]))
            detail = differences(expected, got, rtol=1e-4, atol=1e-4)
            if detail is not None:
                failure = case, expected, got, detail
                break
    if failure is None:
        passed(name, "F.conv2d(x, weight, padding=p, dilation=d)", len(cases))
        return
    case, expected, got, detail = failure
    hints = [case.hint] if case.hint else []
    hints.append(_atrous_diagnose(case, expected, got))
    raise fail(case.call_text(name), expected, got, detail, " ".join(hints))

# ------------------------------------------------------------------ gridding: reachable offsets


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
