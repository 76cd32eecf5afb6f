"""Tests for pspnet_edu.dilation: sizes against torch, the à trous identity against
F.conv2d(dilation=d), gridding against back-propagation through a real stack of convolutions."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pspnet_edu.dilation import (
    atrous_by_subsampling,
    conv_output_size,
    effective_kernel_size,
    gridding_pattern,
    has_gridding,
    receptive_field_of_stack,
    same_padding,
)


def test_effective_kernel_size() -> None:
    assert [effective_kernel_size(3, d) for d in (1, 2, 4)] == [3, 5, 9]
    assert effective_kernel_size(1, 8) == 1 and effective_kernel_size(7, 3) == 19


@pytest.mark.parametrize(
    ("size", "k", "stride", "padding", "dilation"),
    [
        case
        for case in itertools.product((7, 16, 33), (1, 3, 4), (1, 2, 3), (0, 1, 2), (1, 2, 3))
        if case[0] + 2 * case[3] >= case[4] * (case[1] - 1) + 1
    ],
)
def test_conv_output_size_matches_torch(
    size: int, k: int, stride: int, padding: int, dilation: int
) -> None:
    conv = nn.Conv2d(1, 1, k, stride=stride, padding=padding, dilation=dilation)
    with torch.device("meta"):
        out = conv.to("meta")(torch.empty(1, 1, size, size + 1))
    assert out.shape[-2:] == (
        conv_output_size(size, k, stride, padding, dilation),
        conv_output_size(size + 1, k, stride, padding, dilation),
    )


def test_conv_output_size_too_small_input() -> None:
    with pytest.raises(ValueError, match="smaller than the effective kernel 9; use .* at least 5"):
        conv_output_size(4, 3, padding=2, dilation=4)


@pytest.mark.parametrize(("k", "d"), list(itertools.product((1, 3, 5, 7), (1, 2, 3, 4))))
def test_same_padding_keeps_the_size(k: int, d: int) -> None:
    conv = nn.Conv2d(1, 1, k, padding=same_padding(k, d), dilation=d)
    assert conv(torch.zeros(1, 1, 19, 20)).shape[-2:] == (19, 20)


def test_same_padding_rejects_even_effective_kernels() -> None:
    with pytest.raises(ValueError, match="spans 4 pixels, an even number.*odd kernel"):
        same_padding(4, 1)
    assert same_padding(4, 2) == 3  # d(k-1)+1 = 7 is odd: fine


@pytest.mark.parametrize(
    ("height", "width", "dilation", "padding", "kernel"),
    [
        (12, 12, 2, 2, (3, 3)),
        (13, 11, 2, 0, (3, 3)),  # not divisible by d
        (17, 20, 3, 3, (3, 3)),
        (23, 19, 4, 4, (3, 3)),
        (10, 14, 3, 1, (2, 3)),  # even and non-square kernel
        (9, 9, 1, 1, (3, 3)),  # d = 1: an ordinary convolution
        (5, 7, 2, 0, (3, 3)),  # smallest input with an output
    ],
)
def test_atrous_identity_equals_dilated_conv(
    height: int, width: int, dilation: int, padding: int, kernel: tuple[int, int]
) -> None:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, height, width, generator=generator, dtype=torch.float64)
    weight = torch.randn(4, 3, *kernel, generator=generator, dtype=torch.float64)
    expected = F.conv2d(x, weight, padding=padding, dilation=dilation)
    got = atrous_by_subsampling(x, weight, dilation, padding)
    assert got.shape == expected.shape
    assert (got - expected).abs().max() < 1e-6


def test_atrous_identity_bad_inputs() -> None:
    x, w = torch.zeros(1, 3, 8, 8), torch.zeros(2, 3, 3, 3)
    with pytest.raises(ValueError, match="dilation must be a positive int"):
        atrous_by_subsampling(x, w, 0)
    with pytest.raises(ValueError, match="same C"):
        atrous_by_subsampling(x, torch.zeros(2, 4, 3, 3), 2)
    with pytest.raises(ValueError, match="smaller than the effective kernel 9x9"):
        atrous_by_subsampling(x, w, 4)


def _paths_by_backprop(dilations: list[int], k: int = 3) -> torch.Tensor:
    """Number of paths from each input pixel to the centre output: the gradient of the centre
    unit of a real stack of dilated convolutions with all-ones weights."""
    size = 2 * sum(d * (k - 1) for d in dilations) + 1
    x = torch.zeros(1, 1, size, size, dtype=torch.float64, requires_grad=True)
    y = x
    for d in dilations:
        ones = torch.ones(1, 1, k, k, dtype=torch.float64)
        y = F.conv2d(y, ones, padding=same_padding(k, d), dilation=d)
    y[0, 0, size // 2, size // 2].backward()
    r = receptive_field_of_stack(dilations, k).size
    margin = (size - r) // 2
    return x.grad[0, 0, margin : margin + r, margin : margin + r].round().to(torch.int64)


@pytest.mark.parametrize("dilations", [[1, 1], [2, 2, 2], [1, 2, 5], [1, 2, 9], [3], [2, 3]])
def test_gridding_pattern_counts_paths(dilations: list[int]) -> None:
    assert torch.equal(gridding_pattern(dilations), _paths_by_backprop(dilations))


def test_gridding_holes() -> None:
    pattern = gridding_pattern([2, 2, 2])
    assert pattern.shape == (13, 13)
    assert (pattern[1::2, :] == 0).all() and (pattern[::2, ::2] > 0).all()  # odd offsets: holes
    assert has_gridding([2, 2, 2]) and has_gridding([2, 4, 8])
    # Wang et al. 2018 (HDC): rates (1, 2, 5) cover every pixel, (1, 2, 9) do not
    assert not has_gridding([1, 2, 5]) and has_gridding([1, 2, 9])
    assert not has_gridding([1, 1, 1]) and not has_gridding([2], kernel_size=1)


def test_gridding_pattern_size_embeds_centred() -> None:
    small = gridding_pattern([1, 2])
    big = gridding_pattern([1, 2], size=11)
    assert big.shape == (11, 11) and torch.equal(big[2:9, 2:9], small) and big.sum() == small.sum()
    with pytest.raises(ValueError, match="odd and at least the receptive field 7"):
        gridding_pattern([1, 2], size=6)


def test_receptive_field_of_stack() -> None:
    assert receptive_field_of_stack([1, 2, 5]).size == 17  # 1 + 2*(1+2+5)
    assert receptive_field_of_stack([2, 2, 2]).size == 13
    rf = receptive_field_of_stack([1, 2, 4], kernel_size=5)
    assert (rf.size, rf.stride, rf.padding) == (1 + 4 * 7, 1, 2 * 7)


@pytest.mark.parametrize("dilations", [[], [1, 0], [2, -1]])
def test_bad_dilations(dilations: list[int]) -> None:
    with pytest.raises(ValueError, match="dilation|dilations is empty"):
        gridding_pattern(dilations)
    with pytest.raises(ValueError):
        receptive_field_of_stack(dilations)
