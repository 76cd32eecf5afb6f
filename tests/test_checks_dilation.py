"""Tests for pspnet_edu/checks/dilation.py (the self-checks of notebook 02)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pspnet_edu.checks.dilation import (
    _OUTPUT_SIZE_CASES,
    _REACHABLE_CASES,
    check_output_size,
    check_reachable_offsets,
    check_same_padding,
    reachable_offsets,
)


def right_output_size(size, kernel, stride=1, padding=0, dilation=1):
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def brute_force_offsets(dilations, kernel=3):
    seen = {0}
    for rate in dilations:
        seen = {s + rate * (t - kernel // 2) for s in seen for t in range(kernel)}
    return sorted(seen)


def test_output_size_cases_agree_with_a_real_convolution():
    # The reference, conv_output_size, against torch itself on every case the check uses.
    for case in _OUTPUT_SIZE_CASES:
        size, kernel = case.args
        conv = nn.Conv2d(1, 1, kernel, **case.kwargs)
        assert conv(torch.zeros(1, 1, size, 1 + 2 * kernel * case.kwargs.get("dilation", 1))).shape[2] == right_output_size(size, kernel, **case.kwargs)


def test_output_size_reference_passes(capsys):
    def my_output_size(size, kernel, stride=1, padding=0, dilation=1):
        return right_output_size(size, kernel, stride, padding, dilation)

    check_output_size(my_output_size)
    assert capsys.readouterr().out == "✓ my_output_size matches pspnet_edu.dilation.conv_output_size on 12 cases\n"


@pytest.mark.parametrize(
    ("wrong", "hint"),
    [
        (lambda size, kernel, stride=1, padding=0, dilation=1: (size + 2 * padding - kernel) // stride + 1, "spans d*(kernel-1)+1"),
        (lambda size, kernel, stride=1, padding=0, dilation=1: (size + padding - dilation * (kernel - 1) - 1) // stride + 1, "BOTH sides"),
        (lambda size, kernel, stride=1, padding=0, dilation=1: (size + 2 * padding - dilation * (kernel - 1) - 1) // stride, "plus 1"),
    ],
)
def test_output_size_plausible_mistakes_are_named(wrong, hint):
    with pytest.raises(AssertionError) as info:
        check_output_size(wrong)
    assert "gave a wrong result" in str(info.value) and hint in str(info.value)


def test_output_size_true_division_is_explained():
    with pytest.raises(AssertionError, match=r"got the float 5.0 \(use // for integer division"):
        check_output_size(lambda size, kernel, stride=1, padding=0, dilation=1: (size + 2 * padding - dilation * (kernel - 1) - 1) / stride + 1)


def test_same_padding(capsys):
    def my_same_padding(kernel, dilation):
        return dilation * (kernel - 1) // 2

    check_same_padding(my_same_padding)
    assert capsys.readouterr().out == "✓ my_same_padding matches pspnet_edu.dilation.same_padding on 8 cases\n"
    with pytest.raises(AssertionError, match="that is the total padding"):
        check_same_padding(lambda kernel, dilation: dilation * (kernel - 1))
    with pytest.raises(AssertionError, match="spans d\\*\\(k-1\\)\\+1 pixels"):
        check_same_padding(lambda kernel, dilation: (kernel - 1) // 2)


def test_reachable_reference_equals_brute_force():
    for case in _REACHABLE_CASES:
        assert reachable_offsets(*case.args, **case.kwargs) == brute_force_offsets(*case.args, **case.kwargs)
    assert reachable_offsets([1, 2, 5]) == list(range(-8, 9))  # no holes
    assert 1 not in reachable_offsets([2, 2, 2])  # gridding: odd offsets are never seen


def test_reachable_offsets(capsys):
    def my_reachable_offsets(dilations, kernel=3):
        return brute_force_offsets(dilations, kernel)

    check_reachable_offsets(my_reachable_offsets)
    assert capsys.readouterr().out == "✓ my_reachable_offsets matches pspnet_edu.dilation.gridding_pattern on 9 cases\n"

    def unsorted(dilations, kernel=3):
        return list(reversed(brute_force_offsets(dilations, kernel)))

    with pytest.raises(AssertionError, match="sort the offsets"):
        check_reachable_offsets(unsorted)

    def full_range(dilations, kernel=3):  # ignores the holes
        reach = sum(d * (kernel // 2) for d in dilations)
        return list(range(-reach, reach + 1))

    with pytest.raises(AssertionError, match=r"full_range\(\[2\]\) gave a wrong result"):
        check_reachable_offsets(full_range)
