"""Tests for pspnet_edu/checks/dilation.py (the self-checks of notebook 02)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pspnet_edu.checks.dilation import (
    _REACHABLE_CASES,
    _atrous_cases,
    check_atrous_conv,
    check_reachable_offsets,
    reachable_offsets,
)
from pspnet_edu.dilation import atrous_by_subsampling


def right_atrous_conv(x, weight, dilation, padding=0):
    xp = F.pad(x, (padding,) * 4)  # (B, C, H + 2p, W + 2p)
    k, d = weight.shape[-1], dilation
    out = x.new_zeros(x.shape[0], weight.shape[0], xp.shape[-2] - d * (k - 1), xp.shape[-1] - d * (k - 1))
    for r in range(d):
        for c in range(d):
            out[..., r::d, c::d] = F.conv2d(xp[..., r::d, c::d], weight)
    return out


def brute_force_offsets(dilations, kernel=3):
    seen = {0}
    for rate in dilations:
        seen = {s + rate * (t - kernel // 2) for s in seen for t in range(kernel)}
    return sorted(seen)


# ------------------------------------------------------------------ the à trous identity


def test_the_cases_agree_with_the_packages_identity():
    for case in _atrous_cases():
        x, weight, dilation = case.args
        direct = F.conv2d(x, weight, padding=case.kwargs["padding"], dilation=dilation)
        torch.testing.assert_close(atrous_by_subsampling(x, weight, dilation, **case.kwargs), direct)


def test_a_right_atrous_conv_passes(capsys):
    def my_atrous_conv(x, weight, dilation, padding=0):
        return right_atrous_conv(x, weight, dilation, padding)

    check_atrous_conv(my_atrous_conv)
    verdict = "✓ my_atrous_conv matches F.conv2d(x, weight, padding=p, dilation=d) on 8 cases\n"
    assert capsys.readouterr().out == verdict


def test_nn_conv2d_without_dilation_is_allowed(capsys):
    def my_atrous_conv(x, weight, dilation, padding=0):
        conv = nn.Conv2d(weight.shape[1], weight.shape[0], weight.shape[-1], bias=False)
        with torch.no_grad():
            conv.weight.copy_(weight)
        xp = F.pad(x, (padding,) * 4)
        k, d = weight.shape[-1], dilation
        out = x.new_zeros(x.shape[0], weight.shape[0], xp.shape[-2] - d * (k - 1), xp.shape[-1] - d * (k - 1))
        with torch.no_grad():
            for r in range(d):
                for c in range(d):
                    out[..., r::d, c::d] = conv(xp[..., r::d, c::d])
        return out

    check_atrous_conv(my_atrous_conv)
    assert capsys.readouterr().out.startswith("✓ my_atrous_conv matches")


def nn_dilated(x, weight, dilation, padding=0):
    conv = nn.Conv2d(weight.shape[1], weight.shape[0], weight.shape[-1], padding=padding, dilation=dilation, bias=False)
    conv.weight.data.copy_(weight)
    return conv(x)


def caught(x, weight, dilation, padding=0):
    try:
        return F.conv2d(x, weight, padding=padding, dilation=dilation)
    except Exception:  # noqa: BLE001 - what the test is about
        return right_atrous_conv(x, weight, dilation, padding)


def unfolded(x, weight, dilation, padding=0):
    k = weight.shape[-1]
    cols = F.unfold(x, k, dilation=dilation, padding=padding)  # (B, C*k*k, L)
    h = x.shape[-2] + 2 * padding - dilation * (k - 1)
    out = weight.flatten(1) @ cols  # (B, C_out, L)
    return out.reshape(x.shape[0], weight.shape[0], h, -1)


@pytest.mark.parametrize(
    ("learner", "use"),
    [
        (lambda x, weight, dilation, padding=0: F.conv2d(x, weight, padding=padding, dilation=dilation), "F.conv2d"),
        (lambda x, weight, dilation, padding=0: torch.conv2d(x, weight, None, 1, padding, dilation), "F.conv2d"),
        (nn_dilated, "F.conv2d"),
        (caught, "F.conv2d"),
        (unfolded, "F.unfold"),
    ],
)
def test_a_dilated_convolution_is_refused_and_the_functions_are_back(learner, use):
    conv2d, functional_conv2d, unfold = torch.conv2d, F.conv2d, F.unfold
    with pytest.raises(AssertionError) as info:
        check_atrous_conv(learner)
    message = str(info.value)
    assert f"calls {use} with dilation=2, the dilated convolution it is meant to replace: write it yourself (" in message
    assert torch.conv2d is conv2d and F.conv2d is functional_conv2d and F.unfold is unfold
    assert torch.nn.modules.conv.F.conv2d is conv2d


def test_the_packages_identity_is_hidden():
    def my_atrous_conv(x, weight, dilation, padding=0):
        return atrous_by_subsampling(x, weight, dilation, padding)

    with pytest.raises(AssertionError, match="my_atrous_conv calls pspnet_edu.dilation.atrous_by_subsampling"):
        check_atrous_conv(my_atrous_conv)


def no_padding(x, weight, dilation, padding=0):
    return right_atrous_conv(x, weight, dilation, 0)


def padded_sub_images(x, weight, dilation, padding=0):
    k, d = weight.shape[-1], dilation
    out = x.new_zeros(x.shape[0], weight.shape[0], x.shape[-2] + 2 * padding - d * (k - 1),
                      x.shape[-1] + 2 * padding - d * (k - 1))
    for r in range(d):
        for c in range(d):
            y = F.conv2d(x[..., r::d, c::d], weight, padding=padding)  # the padding split, then padded again
            rows, cols = out[..., r::d, c::d].shape[-2:]
            out[..., r::d, c::d] = y[..., :rows, :cols]
    return out


def same_size(x, weight, dilation, padding=0):
    return right_atrous_conv(x, weight, dilation, dilation * (weight.shape[-1] - 1) // 2)


@pytest.mark.parametrize(
    ("wrong", "hint"),
    [
        (no_padding, "pad the input first"),
        (padded_sub_images, "pad the whole input ONCE"),
        (same_size, "keeps the input's size only with 'same' padding"),
    ],
)
def test_plausible_mistakes_are_named(wrong, hint):
    with pytest.raises(AssertionError, match="gave a wrong result") as info:
        check_atrous_conv(wrong)
    assert hint in str(info.value) and "0x" not in str(info.value)


def test_the_learner_cannot_spoil_the_cases(capsys):
    def my_atrous_conv(x, weight, dilation, padding=0):
        out = right_atrous_conv(x, weight, dilation, padding)
        x.zero_()  # in place, on the check's copy
        return out

    check_atrous_conv(my_atrous_conv)
    check_atrous_conv(right_atrous_conv)
    assert capsys.readouterr().out.count("✓") == 2


# ------------------------------------------------------------------ reachable offsets


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
