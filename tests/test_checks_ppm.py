"""Tests for pspnet_edu/checks/ppm.py (the self-checks of notebook 04)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pspnet_edu.checks.ppm import (
    _WINDOW_CASES,
    _resize_cases,
    _resize_with_mistake,
    check_adaptive_windows,
    check_bilinear_resize,
    check_pyramid_pooling,
)
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


# ------------------------------------------------------------------ bilinear resizing


def resize_with(mapping="given", clamp=True, rounding="floor", integer=False, swap=False, clamp_low=True,
                clamp_high=True, high_wraps=False, float32=False, first_plane=False, swap_axes=False,
                one_pixel="first", promote=False):
    """A learner's vectorised bilinear resize; the keywords put in one typical mistake each."""

    def my_bilinear_resize(x, size, align_corners):
        def axis(n_in, n_out):
            j = torch.arange(n_out) if float32 else torch.arange(n_out, dtype=torch.float64 if promote else x.dtype)
            corner = align_corners if mapping == "given" else mapping == "corner"
            if corner:
                if n_out == 1 and one_pixel == "first":
                    src = j * 0.0
                elif one_pixel == "tensor":
                    src = j * ((n_in - 1) / torch.tensor(n_out - 1, dtype=x.dtype))  # 0 * inf = NaN for one pixel
                else:
                    src = j * ((n_in - 1) // (n_out - 1) if integer else (n_in - 1) / (n_out - 1))
            else:
                src = (j + 0.5) * (n_in // n_out if integer else n_in / n_out) - 0.5
                src = src.clamp(min=0) if clamp else src
            low = (src.floor() if rounding == "floor" else src.trunc()).long()
            low = low.clamp(min=0) if clamp_low else low
            low = low.clamp(max=n_in - 1) if clamp_high else low
            high = (low + 1) % n_in if high_wraps else (low + 1).clamp(max=n_in - 1) if clamp_high else low + 1
            t = src - low
            return low, high, 1 - t if swap else t

        height, width = size[::-1] if swap_axes else size
        r0, r1, tr = axis(x.shape[-2], height)
        c0, c1, tc = axis(x.shape[-1], width)
        rows = x[..., r0, :] * (1 - tr[:, None]) + x[..., r1, :] * tr[:, None]
        out = rows[..., c0] * (1 - tc) + rows[..., c1] * tc
        return out[0, 0].expand_as(out).clone() if first_plane else out

    return my_bilinear_resize


def matrices_resize(x, size, align_corners):
    """Right, written another way: one (n_out, n_in) weight matrix per axis, built with Python floats."""

    def weights(n_in, n_out):
        w = torch.zeros(n_out, n_in, dtype=x.dtype)
        for j in range(n_out):
            if align_corners:
                src = j * (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
            else:
                src = max((j + 0.5) * n_in / n_out - 0.5, 0.0)
            low = min(math.floor(src), n_in - 1)
            w[j, low] += 1 - (src - low)
            w[j, min(low + 1, n_in - 1)] += src - low
        return w

    return weights(x.shape[-2], size[0]) @ x @ weights(x.shape[-1], size[1]).T


def test_right_resizes_pass(capsys):
    check_bilinear_resize(resize_with())
    check_bilinear_resize(matrices_resize)
    assert capsys.readouterr().out == (
        "✓ my_bilinear_resize matches F.interpolate(x, size, mode='bilinear', align_corners=...) on 20 cases\n"
        "✓ matrices_resize matches F.interpolate(x, size, mode='bilinear', align_corners=...) on 20 cases\n")


def test_a_resize_that_always_computes_in_float64_is_told_the_dtype():
    with pytest.raises(AssertionError) as info:
        check_bilinear_resize(resize_with(promote=True))  # right values, but a float32 input comes back float64
    message = str(info.value)
    assert "expected a torch.float32 result, got torch.float64" in message, message
    assert "compute in the input's dtype" in message, message


def test_cases_cover_both_conventions_and_the_pyramid_sizes():
    cases = _resize_cases()
    assert {c.kwargs["align_corners"] for c in cases} == {False, True}
    assert {c.args[0].shape[-1] for c in cases} >= {1, 2, 3, 6} and {c.args[1][0] for c in cases} >= {1, 13, 60}
    assert [c.args[0].dtype for c in cases].count(torch.float32) == 2  # both conventions, the rest float64
    assert all(c.args[0].dtype in (torch.float32, torch.float64) for c in cases)


@pytest.mark.parametrize("mistake", ["unclamped", "integer", "swapped"])
def test_each_recognised_mistake_is_wrong_somewhere(mistake):
    assert any(not torch.allclose(_resize_with_mistake(*c.args, c.kwargs["align_corners"], mistake),
                                  F.interpolate(*c.args, mode="bilinear", **c.kwargs)) for c in _resize_cases())


@pytest.mark.parametrize(
    ("mistake", "message"),
    [
        ({"mapping": "corner"},
         r"this equals align_corners=True, but the case asks for False\. align_corners=False is the half-pixel"),
        ({"mapping": "half"},
         r"this equals align_corners=False, but the case asks for True\. align_corners=True: the centres"),
        ({"clamp": False, "rounding": "trunc"}, "the border rows or columns extrapolate"),
        ({"clamp": False, "clamp_low": False},
         r"only the first rows or columns are wrong.*wraps around to the LAST pixel"),
        ({"high_wraps": True}, "only the last rows or columns are wrong"),
        ({"clamp_high": False}, r"raised IndexError.*\n  case: .*\n  hint: an index outside the input"),
        ({"integer": True}, "integer division"),
        ({"swap": True}, "the two weights are swapped"),
        ({"float32": True}, r"right to about 1e-6 only: part of the computation runs in float32"),
        ({"first_plane": True}, r"resize every \(batch, channel\) plane the same way"),
        ({"swap_axes": True}, r"size is \(height, width\)"),
        ({"one_pixel": "python"},
         r"\(1, 1\), align_corners=True\) raised ZeroDivisionError(?s:.*)hint: an output of one pixel"),
        ({"one_pixel": "tensor"}, "NaN in the result: with align_corners=True and an output of one pixel"),
        ({"one_pixel": "tensor", "clamp_low": False}, r"raised IndexError(?s:.*)hint: an output of one pixel"),
    ],
)
def test_resize_mistakes_are_named(mistake, message):
    with pytest.raises(AssertionError, match=message):
        check_bilinear_resize(resize_with(**mistake))


def test_wrong_dtype_and_shape_are_named():
    with pytest.raises(AssertionError, match="the result is torch.float32 for a torch.float64 input"):
        check_bilinear_resize(lambda x, size, align_corners: resize_with()(x, size, align_corners).float())
    with pytest.raises(AssertionError, match=r"keep the batch and channel dimensions"):
        check_bilinear_resize(lambda x, size, align_corners: resize_with()(x, size, align_corners)[0, 0])


def test_torch_resizers_are_hidden_and_restored():
    import torchvision.transforms.v2.functional as TF

    def through_interpolate(x, size, align_corners):
        return F.interpolate(x, size, mode="bilinear", align_corners=align_corners)

    def through_upsample(x, size, align_corners):
        return nn.Upsample(size, mode="bilinear", align_corners=align_corners)(x)

    def through_torchvision(x, size, align_corners):
        return TF.resize(x, list(size), antialias=False)  # torchvision's resize calls F.interpolate

    interpolate = F.interpolate
    for learner, message in [
        (through_interpolate, "^through_interpolate calls torch.nn.functional.interpolate, the function"),
        (through_upsample, "^through_upsample uses torch.nn.modules.upsampling.Upsample, the class"),
        (through_torchvision, "^through_torchvision calls torch.nn.functional.interpolate, the function"),
    ]:
        with pytest.raises(AssertionError, match=message):
            check_bilinear_resize(learner)
    assert F.interpolate is interpolate and torch.nn.functional.interpolate is interpolate


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


class AlignedCorners(SplitLayout):
    def forward(self, x):
        levels = [F.interpolate(self.level(x, i, b), x.shape[-2:], mode="bilinear", align_corners=True)
                  for i, b in enumerate(self.bins)]
        return torch.cat([x, *levels], dim=1)


class LevelsReversed(SplitLayout):
    def forward(self, x):
        out = super().forward(x)
        levels = out[:, x.shape[1]:].split(x.shape[1] // len(self.bins), dim=1)
        return torch.cat([x, *levels[::-1]], dim=1)


class NoReLU(SplitLayout):
    def level(self, x, i, b):
        return self.norms[i](self.convs[i](F.adaptive_avg_pool2d(x, b)))


class InputMissing(SplitLayout):
    def forward(self, x):
        return super().forward(x)[:, x.shape[1]:]


class QuarterChannels(SplitLayout):
    """Four levels' worth of channels, C // 4, whatever the number of bins."""

    def __init__(self, in_channels, bins=(1, 2, 3, 6)):
        super().__init__(in_channels, bins)
        self.convs = nn.ModuleList(nn.Conv2d(in_channels, in_channels // 4, 1, bias=False) for _ in bins)
        self.norms = nn.ModuleList(nn.BatchNorm2d(in_channels // 4) for _ in bins)


class OwnResize(SplitLayout):
    """Right, upsampling with a hand-written bilinear resize (the lesson's optional step)."""

    def forward(self, x):
        levels = [matrices_resize(self.level(x, i, b), tuple(x.shape[-2:]), align_corners=False)
                  for i, b in enumerate(self.bins)]
        return torch.cat([x, *levels], dim=1)


def test_a_right_module_with_other_names_passes(capsys):
    check_pyramid_pooling(SplitLayout)
    check_pyramid_pooling(OwnResize)
    assert capsys.readouterr().out == ("✓ SplitLayout matches pspnet_edu.ppm.PyramidPoolingModule on 10 cases\n"
                                       "✓ OwnResize matches pspnet_edu.ppm.PyramidPoolingModule on 10 cases\n")


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
        (FixedKernel, "adaptive average, not a fixed kernel"),
        (AlignedCorners, "the levels equal the package's with align_corners=True"),
        (LevelsReversed,
         r"in the order of bins \(6, 3, 2, 1\): concatenate them in the order of `bins`, \(1, 2, 3, 6\)"),
        (NoReLU, "the levels have negative values: each ends with a ReLU"),
        (InputMissing, "the input itself is missing"),
        (QuarterChannels,
         r"has weight shape \(2, 8, 1, 1\), expected \(4, 8, 1, 1\) \(out = in_channels // len\(bins\)"),
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
