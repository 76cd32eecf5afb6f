"""Tests for pspnet_edu/checks/ppm.py (the self-checks of notebook 04)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pspnet_edu.checks.ppm import _WINDOW_CASES, check_adaptive_windows, check_pyramid_pooling
from pspnet_edu.ppm import PyramidPoolingModule, adaptive_pool_windows

# ------------------------------------------------------------------ windows


def test_window_reference_equals_torch_adaptive_pooling():
    torch.manual_seed(0)
    for case in _WINDOW_CASES:
        size, bins = case.args
        x = torch.randn(1, 1, 1, size)
        pooled = F.adaptive_avg_pool2d(x, (1, bins)).flatten()
        means = torch.stack([x[..., start:end].mean() for start, end in adaptive_pool_windows(size, bins)])
        torch.testing.assert_close(pooled, means)


def test_windows_check(capsys):
    def my_adaptive_windows(size, bins):
        return [(i * size // bins, math.ceil((i + 1) * size / bins)) for i in range(bins)]

    check_adaptive_windows(my_adaptive_windows)
    assert capsys.readouterr().out == "✓ my_adaptive_windows matches pspnet_edu.ppm.adaptive_pool_windows on 9 cases\n"
    with pytest.raises(AssertionError, match="round the END up"):
        check_adaptive_windows(lambda size, bins: [(i * size // bins, (i + 1) * size // bins) for i in range(bins)])
    with pytest.raises(AssertionError, match="the AvgPool2d mistake"):
        check_adaptive_windows(lambda size, bins: [(i * (size // bins), (i + 1) * (size // bins)) for i in range(bins)])


# ------------------------------------------------------------------ the module


class SplitLayout(nn.Module):
    """Right, with another layout and other names than the package: lists of convs and of norms."""

    def __init__(self, in_channels, bins=(1, 2, 3, 6)):
        super().__init__()
        self.bins = bins
        reduced = in_channels // len(bins)
        self.convs = nn.ModuleList(nn.Conv2d(in_channels, reduced, 1, bias=False) for _ in bins)
        self.norms = nn.ModuleList(nn.BatchNorm2d(reduced) for _ in bins)

    def level(self, x, i, b):
        return F.relu(self.norms[i](self.convs[i](F.adaptive_avg_pool2d(x, b))))

    def forward(self, x):
        levels = [F.interpolate(self.level(x, i, b), x.shape[-2:], mode="bilinear", align_corners=False)
                  for i, b in enumerate(self.bins)]
        return torch.cat([x, *levels], dim=1)


class InputLast(SplitLayout):
    def forward(self, x):
        return torch.cat([*torch.split(super().forward(x), [x.shape[1], x.shape[1]], 1)][::-1], 1)


class FixedKernel(SplitLayout):
    def level(self, x, i, b):
        k = (x.shape[-2] // b, x.shape[-1] // b)
        return F.relu(self.norms[i](self.convs[i](F.avg_pool2d(x, k, stride=k))))


class SharedConv(nn.Module):
    def __init__(self, in_channels, bins=(1, 2, 3, 6)):
        super().__init__()
        self.bins = bins
        self.conv = nn.Conv2d(in_channels, in_channels // len(bins), 1, bias=False)
        self.norms = nn.ModuleList(nn.BatchNorm2d(in_channels // len(bins)) for _ in bins)

    def forward(self, x):
        return x


class WithBias(SplitLayout):
    def __init__(self, in_channels, bins=(1, 2, 3, 6)):
        super().__init__(in_channels, bins)
        self.convs = nn.ModuleList(nn.Conv2d(in_channels, in_channels // len(bins), 1) for _ in bins)


def test_a_right_module_with_other_names_passes(capsys):
    check_pyramid_pooling(SplitLayout)
    assert capsys.readouterr().out == "✓ SplitLayout matches pspnet_edu.ppm.PyramidPoolingModule on 10 cases\n"


def test_the_packages_layout_passes_when_written_out(capsys):
    class MyPyramidPooling(nn.Module):  # the package's layout (one Sequential per bin), not its classes
        def __init__(self, in_channels, bins=(1, 2, 3, 6)):
            super().__init__()
            reduced = in_channels // len(bins)
            self.branches = nn.ModuleList(
                nn.Sequential(nn.AdaptiveAvgPool2d(b), nn.Conv2d(in_channels, reduced, 1, bias=False),
                              nn.BatchNorm2d(reduced), nn.ReLU()) for b in bins)

        def forward(self, x):
            levels = [F.interpolate(branch(x), x.shape[-2:], mode="bilinear", align_corners=False)
                      for branch in self.branches]
            return torch.cat([x, *levels], dim=1)

    check_pyramid_pooling(MyPyramidPooling)
    assert capsys.readouterr().out == "✓ MyPyramidPooling matches pspnet_edu.ppm.PyramidPoolingModule on 10 cases\n"
    with pytest.raises(AssertionError, match="package's own module"):
        check_pyramid_pooling(PyramidPoolingModule)


def test_a_module_holding_a_prebuilt_package_module_is_refused():
    prebuilt = PyramidPoolingModule(16, (1, 2, 3, 6))  # built before the check: hiding the name cannot stop it

    def my_pyramid_pooling(in_channels, bins):
        return prebuilt

    with pytest.raises(AssertionError, match="my_pyramid_pooling uses pspnet_edu.ppm.PyramidPoolingModule, the class"):
        check_pyramid_pooling(my_pyramid_pooling)


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        (InputLast, "the input goes FIRST"),
        (FixedKernel, "adaptive, not a fixed kernel"),
        (SharedConv, "One conv shared by all branches"),
        (WithBias, "use bias=False"),
    ],
)
def test_plausible_mistakes_are_named(wrong, message):
    with pytest.raises(AssertionError, match=message):
        check_pyramid_pooling(wrong)


def test_fixed_kernel_fails_only_where_bins_do_not_divide():
    with pytest.raises(AssertionError, match=r"on a \(2, 16, 13, 17\) input"):
        check_pyramid_pooling(FixedKernel)  # passed the 12x12 case first


def test_learner_weights_untouched():
    made = []

    def factory(in_channels, bins):
        made.append(SplitLayout(in_channels, bins))
        made[-1].before = made[-1].convs[0].weight.detach().clone()
        return made[-1]

    check_pyramid_pooling(factory)
    assert all(torch.equal(m.convs[0].weight, m.before) for m in made)  # the check works on a copy
