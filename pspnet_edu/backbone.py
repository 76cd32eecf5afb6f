"""Dilated ResNet backbones for PSPNet (Zhao et al. 2017, Sec. 3.3 and 5.1).

What: ResNet-18/34/50/101/152 (He et al. 2016) written out for reading, with BasicBlock and
Bottleneck, and with *dilation* chosen by constructor arguments so that the last stages keep
their resolution: output stride 32 (ImageNet classification), 16 or 8 (PSPNet).

Why: PSPNet classifies every pixel, so it needs a feature map much finer than the 1/32 of a
classification ResNet. Replacing the stride-2 of layer3 and layer4 by dilation 2 and 4 keeps
the receptive field growing while the feature map stays at 1/8 of the input ("dilated
network strategy", paper Sec. 3.3, following Chen et al. and Yu & Koltun).

Taught in notebooks/03_dilated_resnet.ipynb (output stride 32 -> 8, feature-map sizes, cost).

Two stems:
  * ``"torchvision"``: 7x7 conv (64) + max-pool, the state dict of torchvision's ResNets, so
    ImageNet weights load through torchvision's weights API (:func:`load_torchvision_weights`).
  * ``"deep"``: the author's "deep base" stem, three 3x3 convs 64-64-128 + max-pool
    (hszhao/semseg ``model/resnet.py``); named ``conv1/bn1/conv2/bn2/conv3/bn3``.

Two dilation schedules for the stages that trade their stride for dilation:
  * ``"torchvision"``: the first block of a dilated stage keeps the previous dilation
    (torchvision ``replace_stride_with_dilation``), the other blocks use the new one;
  * ``"paper"``: every block of the stage uses the new dilation, the first one too
    (hszhao/semseg sets dilation 2 on every ``conv2`` of layer3 and 4 on every one of layer4).

Deviation: the blocks are ResNet V1.5 (stride in the 3x3 conv of a Bottleneck), as in
torchvision and in the author's PyTorch code; the original ResNet and the author's Caffe
model put the stride in the first 1x1 conv.
Deviation: torchvision's BasicBlock refuses dilation; here a BasicBlock applies its dilation
to both of its 3x3 convs (as the DRN of Yu et al. 2017), so ResNet-18/34 can be dilated too.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

if TYPE_CHECKING:
    from torchvision.models import WeightsEnum

STEMS = ("torchvision", "deep")
DILATION_SCHEDULES = ("torchvision", "paper")
OUTPUT_STRIDES = (8, 16, 32)


def scaled_channels(channels: int, width: float, divisor: int = 8) -> int:
    """Channels after a width multiplier, rounded to the nearest multiple of ``divisor``.

    Multiples of 8 keep convolutions fast on CPUs and GPUs (the rule of MobileNet's
    ``make_divisible``); the result never drops below ``divisor`` nor more than 10% below
    ``channels * width``.

    >>> scaled_channels(64, 1.0), scaled_channels(64, 0.25), scaled_channels(2048, 0.25)
    (64, 16, 512)
    >>> scaled_channels(64, 0.1)
    8
    """
    if width <= 0:
        raise ValueError(f"width must be positive, got {width}; use e.g. 1.0 (full) or 0.25")
    target = channels * width
    rounded = max(divisor, int(target + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * target:  # never round down by more than 10%
        rounded += divisor
    return rounded


def feature_size(input_size: int, output_stride: int) -> int:
    """Side of the backbone's output for an input side of ``input_size`` pixels.

    Every strided layer here is "same"-padded (3x3 with padding 1, 7x7 with padding 3, the
    3x3 max-pool with padding 1, 1x1 with padding 0), so each maps n to ceil(n / 2), and
    ``log2(output_stride)`` of them map n to ceil(n / output_stride).

    >>> feature_size(473, 8), feature_size(713, 8), feature_size(224, 32)
    (60, 90, 7)
    """
    return math.ceil(input_size / output_stride)


def dilation_plan(
    output_stride: int, schedule: str, blocks_per_stage: Sequence[int]
) -> list[list[tuple[int, int]]]:
    """(stride, dilation) of every block of layer1..layer4.

    Each of layer2..layer4 halves the resolution with stride 2 unless the output stride is
    reached; then it keeps the resolution and multiplies the dilation by 2 instead.

    >>> dilation_plan(32, "torchvision", (2, 2, 2, 2))
    [[(1, 1), (1, 1)], [(2, 1), (1, 1)], [(2, 1), (1, 1)], [(2, 1), (1, 1)]]
    >>> dilation_plan(8, "torchvision", (2, 2, 2, 2))
    [[(1, 1), (1, 1)], [(2, 1), (1, 1)], [(1, 1), (1, 2)], [(1, 2), (1, 4)]]
    >>> dilation_plan(8, "paper", (2, 2, 2, 2))
    [[(1, 1), (1, 1)], [(2, 1), (1, 1)], [(1, 2), (1, 2)], [(1, 4), (1, 4)]]
    """
    if output_stride not in OUTPUT_STRIDES:
        raise ValueError(f"output_stride must be one of {OUTPUT_STRIDES}, got {output_stride}")
    if schedule not in DILATION_SCHEDULES:
        raise ValueError(
            f"dilation_schedule must be one of {DILATION_SCHEDULES}, got {schedule!r}"
        )
    plan = []
    current_stride, dilation = 4, 1  # the stem (stride-2 conv + stride-2 max-pool) gives 1/4
    for stage, num_blocks in enumerate(blocks_per_stage):
        previous_dilation = dilation
        stride = 1 if stage == 0 else 2
        if stride == 2 and current_stride >= output_stride:
            dilation *= stride  # trade the stride for dilation
            stride = 1
        current_stride *= stride
        first_dilation = previous_dilation if schedule == "torchvision" else dilation
        plan.append([(stride, first_dilation)] + [(1, dilation)] * (num_blocks - 1))
    return plan


def conv3x3(in_channels: int, out_channels: int, stride: int = 1, dilation: int = 1) -> nn.Conv2d:
    """3x3 convolution, padded so that stride 1 keeps the size for any dilation."""
    return nn.Conv2d(
        in_channels, out_channels, 3, stride=stride, padding=dilation, dilation=dilation, bias=False
    )


class BasicBlock(nn.Module):
    """Two 3x3 convs and a shortcut (ResNet-18/34). The stride sits in the first conv."""

    expansion = 1

    def __init__(
        self,
        in_channels: int,
        planes: int,
        stride: int = 1,
        dilation: int = 1,
        downsample: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.conv1 = conv3x3(in_channels, planes, stride, dilation)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes, 1, dilation)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += identity  # in place, as torchvision: one activation less to keep
        return self.relu(out)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (stride and dilation here: V1.5), 1x1 expand by 4, and a shortcut."""

    expansion = 4

    def __init__(
        self,
        in_channels: int,
        planes: int,
        stride: int = 1,
        dilation: int = 1,
        downsample: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride, dilation)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        out += identity  # in place, as torchvision: one activation less to keep
        return self.relu(out)


# depth -> (block, blocks per stage), He et al. 2016, Table 1.
RESNET_LAYOUTS: dict[int, tuple[type[BasicBlock] | type[Bottleneck], tuple[int, int, int, int]]] = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
    152: (Bottleneck, (3, 8, 36, 3)),
}


class ResNet(nn.Module):
    """A ResNet trunk (no pooling, no classifier) returning layer3 and layer4 features.

    ``forward(x)`` returns ``{"aux": layer3 output, "out": layer4 output}``, both at
    ``1 / output_stride`` of the input (rounded up, see :func:`feature_size`), with
    ``aux_channels`` and ``out_channels`` channels.

    >>> net = ResNet(depth=18, output_stride=8, width=0.25)
    >>> feats = net(torch.zeros(2, 3, 64, 96))
    >>> tuple(feats["aux"].shape), tuple(feats["out"].shape), net.out_channels
    ((2, 64, 8, 12), (2, 128, 8, 12), 128)
    """

    def __init__(
        self,
        depth: int = 50,
        output_stride: int = 8,
        stem: str = "torchvision",
        dilation_schedule: str = "torchvision",
        width: float = 1.0,
    ) -> None:
        super().__init__()
        if depth not in RESNET_LAYOUTS:
            raise ValueError(f"depth must be one of {sorted(RESNET_LAYOUTS)}, got {depth}")
        if stem not in STEMS:
            raise ValueError(f"stem must be one of {STEMS}, got {stem!r}")
        block, blocks_per_stage = RESNET_LAYOUTS[depth]
        plan = dilation_plan(output_stride, dilation_schedule, blocks_per_stage)
        self.depth, self.stem, self.output_stride = depth, stem, output_stride

        # Stem: 1/4 of the input. Both versions keep their torchvision / semseg names.
        if stem == "torchvision":
            stem_channels = scaled_channels(64, width)
            self.conv1 = nn.Conv2d(3, stem_channels, 7, stride=2, padding=3, bias=False)
            self.bn1 = nn.BatchNorm2d(stem_channels)
        else:  # "deep": 3x3 convs 64-64-128 (hszhao/semseg, "deep_base=True")
            half, stem_channels = scaled_channels(64, width), scaled_channels(128, width)
            self.conv1 = conv3x3(3, half, stride=2)
            self.bn1 = nn.BatchNorm2d(half)
            self.conv2 = conv3x3(half, half)
            self.bn2 = nn.BatchNorm2d(half)
            self.conv3 = conv3x3(half, stem_channels)
            self.bn3 = nn.BatchNorm2d(stem_channels)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)

        in_channels = stem_channels
        stage_channels = []
        for index, stage_plan in enumerate(plan):
            planes = scaled_channels(64 * 2**index, width)  # 64, 128, 256, 512 at width 1
            stage, in_channels = self._make_stage(block, in_channels, planes, stage_plan)
            setattr(self, f"layer{index + 1}", stage)
            stage_channels.append(in_channels)
        self.aux_channels, self.out_channels = stage_channels[2], stage_channels[3]

        # Initialisation of torchvision and hszhao/semseg (He et al. 2015 for convs).
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    @staticmethod
    def _make_stage(
        block: type[BasicBlock] | type[Bottleneck],
        in_channels: int,
        planes: int,
        stage_plan: Sequence[tuple[int, int]],
    ) -> tuple[nn.Sequential, int]:
        out_channels = planes * block.expansion
        blocks = []
        for stride, dilation in stage_plan:
            downsample = None
            if stride != 1 or in_channels != out_channels:  # projection shortcut
                downsample = nn.Sequential(
                    nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                    nn.BatchNorm2d(out_channels),
                )
            blocks.append(block(in_channels, planes, stride, dilation, downsample))
            in_channels = out_channels
        return nn.Sequential(*blocks), out_channels

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        x = self.relu(self.bn1(self.conv1(x)))  # (B, C0, H/2, W/2)
        if self.stem == "deep":
            x = self.relu(self.bn2(self.conv2(x)))
            x = self.relu(self.bn3(self.conv3(x)))
        x = self.maxpool(x)  # (B, C0, H/4, W/4)
        x = self.layer1(x)  # (B, C1, H/4, W/4)
        x = self.layer2(x)  # (B, C2, H/8, W/8)
        aux = self.layer3(x)  # (B, C3, H/8, W/8) at output stride 8 (H/16 at 16 or 32)
        out = self.layer4(aux)  # (B, C4, H/8, W/8) at output stride 8 (H/32 at 32)
        return {"aux": aux, "out": out}


def torchvision_weights(depth: int, name: str = "IMAGENET1K_V1") -> WeightsEnum:
    """The torchvision weights entry for a ResNet depth, e.g. ``ResNet50_Weights.IMAGENET1K_V1``.

    ``name`` is a member of the enum (``"IMAGENET1K_V1"``, ``"IMAGENET1K_V2"`` for 50/101/152,
    or ``"DEFAULT"``).
    """
    from torchvision import models

    if depth not in RESNET_LAYOUTS:
        raise ValueError(f"depth must be one of {sorted(RESNET_LAYOUTS)}, got {depth}")
    enum = getattr(models, f"ResNet{depth}_Weights")
    choices = [member.name for member in enum] + ["DEFAULT"]
    if name not in choices:
        raise ValueError(f"unknown weights {name!r} for ResNet-{depth}; choose one of {choices}")
    return enum[name]


def load_torchvision_weights(
    backbone: ResNet, name: str = "IMAGENET1K_V1", download: bool = True
) -> ResNet:
    """Load torchvision's ImageNet weights into ``backbone`` (in place) and return it.

    The file is read through torchvision's weights API from its local cache,
    ``$TORCH_HOME/hub/checkpoints/`` (``~/.cache/torch/hub/checkpoints`` by default), and
    downloaded there first if it is missing and ``download`` is true. Without it (or without
    network), the error says which file to put where. Only a full-width backbone with the
    torchvision stem has torchvision's shapes; the classifier ``fc.*`` is dropped and
    everything else must load strictly.

    Note: the hash in the file name is not checked (``check_hash=False``, the default of
    torchvision's ``get_state_dict``), so a file copied in by hand is accepted as it is.
    """
    import torch.hub

    if backbone.stem != "torchvision":
        raise ValueError(
            "torchvision's ImageNet weights fit only the 'torchvision' stem (7x7 conv); this "
            "backbone has the deep stem. Use build_pspnet('torchvision', ...), or load the "
            "author's weights with pspnet_edu.convert.semseg_to_pspnet_edu."
        )
    if backbone.out_channels != 512 * RESNET_LAYOUTS[backbone.depth][0].expansion:
        raise ValueError("ImageNet weights need width=1.0; this backbone is narrower.")
    weights = torchvision_weights(backbone.depth, name)
    cached = os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(weights.url))
    how = (f"download {weights.url} (on a machine with network access) and copy it to "
           f"{cached}, or set TORCH_HOME to the folder whose hub/checkpoints/ holds it")
    if not download and not os.path.exists(cached):
        raise FileNotFoundError(f"{weights} is not in torchvision's cache: {how}")
    try:
        state_dict = weights.get_state_dict(progress=False)
    except OSError as error:  # no network: urllib's URLError is an OSError
        raise FileNotFoundError(f"could not load {weights} ({error}): {how}") from error
    state_dict = {k: v for k, v in state_dict.items() if not k.startswith("fc.")}
    backbone.load_state_dict(state_dict, strict=True)
    return backbone
