"""The Pyramid Pooling Module (Zhao et al. 2017, Sec. 3.2, Fig. 3(c)).

What: the feature map is pooled into 1x1, 2x2, 3x3 and 6x6 bins; each level is reduced by
its own 1x1 conv to 1/N of the channels (N = number of levels), upsampled back to the
feature map's size and concatenated after it.

Why: a dilated ResNet's *empirical* receptive field is much smaller than its theoretical one
(paper Sec. 3.2, after Zhou et al.), so a pixel does not "see" the whole scene. The pyramid gives every pixel a
summary of the whole image (1x1) and of its sub-regions (2x2 ... 6x6): global context that
tells, e.g., a boat from a car by the water around it.

Taught in notebooks/04_pyramid_pooling_module.ipynb: adaptive pooling windows
(:func:`adaptive_pool_windows`), the fixed-kernel AvgPool mistake of many tutorials
(:func:`fixed_kernel_avgpool`, a counter-example kept here so the notebook can compare it),
one conv per branch, and the batch-size-1 BatchNorm trap.

Deviation: none in the module itself. The paper's Caffe code and hszhao/semseg upsample with
align_corners=True; that is the ``align_corners`` argument (the "paper" preset sets it).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# "none" is the capacity control of the ablation (lesson 09): every branch keeps its 1x1 conv,
# BN and ReLU but sees only its own pixel, so the PPM's parameters stay and its context goes.
POOLINGS = ("avg", "max", "none")


def adaptive_pool_windows(size: int, bins: int) -> list[tuple[int, int]]:
    """[start, end) of each window adaptive pooling uses to cut ``size`` pixels into ``bins``.

    PyTorch's rule: window i covers ``floor(i * size / bins)`` to ``ceil((i + 1) * size / bins)``,
    so windows may overlap when ``bins`` does not divide ``size``, and every pixel is used.

    >>> adaptive_pool_windows(60, 6)[:2]
    [(0, 10), (10, 20)]
    >>> adaptive_pool_windows(5, 3)
    [(0, 2), (1, 4), (3, 5)]
    """
    return [(i * size // bins, math.ceil((i + 1) * size / bins)) for i in range(bins)]


def fixed_kernel_avgpool(x: Tensor, bins: int) -> Tensor:
    """COUNTER-EXAMPLE, do not use: the ``AvgPool2d(k, stride=k)`` pyramid of many tutorials.

    With ``k = size // bins`` it equals ``AdaptiveAvgPool2d(bins)`` only when ``bins`` divides
    the size (60 and 90, the feature sizes of 473 and 713 inputs); otherwise it ignores the
    last rows and columns, or returns a grid of the wrong size. Kept for notebook 04.

    >>> x = torch.arange(60.0).repeat(60, 1)[None, None]  # (1, 1, 60, 60)
    >>> torch.equal(fixed_kernel_avgpool(x, 6), F.adaptive_avg_pool2d(x, 6))
    True
    >>> tuple(fixed_kernel_avgpool(torch.zeros(1, 1, 23, 23), 6).shape)  # not 6x6
    (1, 1, 7, 7)
    """
    kernel_h, kernel_w = x.shape[-2] // bins, x.shape[-1] // bins
    return F.avg_pool2d(x, (kernel_h, kernel_w), stride=(kernel_h, kernel_w))


class PyramidBranch(nn.Sequential):
    """One pyramid level: pool to ``bins`` x ``bins``, its own 1x1 conv (no bias), BN, ReLU.

    ``pooling="none"`` keeps the map as it is (no pooled context: the ablation's control).
    """

    def __init__(self, in_channels: int, out_channels: int, bins: int, pooling: str) -> None:
        pools = {"avg": nn.AdaptiveAvgPool2d, "max": nn.AdaptiveMaxPool2d}
        pool = pools[pooling](bins) if pooling in pools else nn.Identity()
        super().__init__(
            OrderedDict(
                pool=pool,
                conv=nn.Conv2d(in_channels, out_channels, 1, bias=False),
                bn=nn.BatchNorm2d(out_channels),
                relu=nn.ReLU(inplace=True),
            )
        )
        self.bins = bins


class PyramidPoolingModule(nn.Module):
    """Concatenate the input with ``len(bins)`` pooled, reduced and upsampled copies of it.

    ``out_channels = in_channels + len(bins) * reduction_channels`` (2048 + 4 x 512 = 4096
    for ResNet-50, paper Sec. 3.2).

    >>> ppm = PyramidPoolingModule(64, bins=(1, 2, 3, 6))
    >>> ppm.out_channels
    128
    >>> tuple(ppm(torch.zeros(2, 64, 13, 17)).shape)
    (2, 128, 13, 17)
    """

    def __init__(
        self,
        in_channels: int,
        bins: Sequence[int] = (1, 2, 3, 6),  # paper Sec. 3.2: four levels, 1x1 to 6x6
        pooling: str = "avg",  # paper Table 1: average beats max pooling
        reduction_channels: int | None = None,  # None: in_channels / len(bins), paper Sec. 3.2
        align_corners: bool = False,  # hszhao/semseg: True
    ) -> None:
        super().__init__()
        bins = tuple(bins)
        if not bins or not all(isinstance(b, int) and b >= 1 for b in bins):
            raise ValueError(f"bins must be positive integers such as (1, 2, 3, 6), got {bins}")
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        if reduction_channels is None:
            if in_channels % len(bins) != 0:
                raise ValueError(
                    f"{len(bins)} bins {bins} do not divide the {in_channels} input channels: "
                    "each level gets in_channels / len(bins) channels. Choose a number of "
                    "bins that divides the channels, or pass reduction_channels (the "
                    "channels of each level) explicitly"
                )
            reduction_channels = in_channels // len(bins)
        self.bins, self.pooling, self.align_corners = bins, pooling, align_corners
        self.branches = nn.ModuleList(
            PyramidBranch(in_channels, reduction_channels, b, pooling) for b in bins
        )
        self.out_channels = in_channels + len(bins) * reduction_channels

    def check_batch_size(self, batch_size: int) -> None:
        """Raise a clear error where BatchNorm would fail on a 1x1 bin with one image."""
        for branch in self.branches:
            if branch.bins == 1 and self.pooling != "none" and branch.bn.training and batch_size == 1:
                raise ValueError(
                    "batch size 1 in training mode: the BatchNorm of the 1x1 pyramid bin would "
                    "see a single value per channel and cannot compute a variance. Train with "
                    "a batch of at least 2, call model.eval() for inference, or freeze the "
                    "BatchNorm layers (module.eval() on each nn.BatchNorm2d)."
                )

    def forward(self, x: Tensor) -> Tensor:
        self.check_batch_size(x.shape[0])
        size = x.shape[-2:]  # (H/8, W/8) of the image
        levels = [x]  # (B, C, h, w)
        for branch in self.branches:
            pooled = branch(x)  # (B, C/N, bins, bins); (B, C/N, h, w) without pooling
            if pooled.shape[-2:] != size:
                pooled = F.interpolate(pooled, size, mode="bilinear", align_corners=self.align_corners)
            levels.append(pooled)  # (B, C/N, h, w)
        return torch.cat(levels, dim=1)  # (B, C + N * C/N, h, w)
