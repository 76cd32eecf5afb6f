"""PSPNet: dilated ResNet, Pyramid Pooling Module, head and auxiliary head (Zhao et al. 2017).

What: ``image -> backbone (1/8) -> PPM -> 3x3 conv, BN, ReLU, Dropout, 1x1 conv -> upsample``
(paper Sec. 3.3, Fig. 3), plus an auxiliary classifier on layer3 (the paper's "res4b22", ResNet-101's
name for the last block of the fourth stage, res4f in ResNet-50; paper Sec. 4, Fig. 4)
that only adds a loss during training. ``forward`` returns ``{"out": logits, "aux": logits}``
at the input's size, in train and in eval, and computes no loss (see ``pspnet_edu.loss``).

Why: the PPM gives every pixel the global context a dilated FCN lacks; the auxiliary loss
eases the optimisation of the deep ResNet (paper Table 2).

Taught in notebooks/05_pspnet.ipynb (assembly, parameter counts against the author's code,
loading released weights); the ablations of notebook 09 use ``use_ppm``, ``bins``, ``pooling``.

Presets (:func:`build_pspnet`):
  * ``"paper"``: hszhao/semseg ``PSPNet(layers=50)`` exactly: deep stem, dilation on every
    block of layer3 (2) and layer4 (4), PPM 2048 -> 4 x 512, heads 512 and 256,
    align_corners=True. Its weights load through ``pspnet_edu.convert``.
  * ``"torchvision"``: ResNet-50 with torchvision's stem and dilation schedule (the backbone
    of ``torchvision.models.segmentation``), so ImageNet weights of torchvision load
    (``build_pspnet("torchvision", pretrained_backbone=True)``).
  * ``"tiny"``: ResNet-18 layout at width 0.25 (16/32/64/128 channels), output stride 8, the
    same PPM (128 -> 4 x 32), heads 64 and 32, align_corners=False: 886,678 parameters. It
    must train two models (with and without PPM) in about 90 s each on 2 CPU cores, at
    batch 8 and 128x256. Measured with ``python benchmarks/bench_model.py --tiny`` (one SGD
    step = forward, loss, backward, update; 2 threads; FLOPs counted, times on 2 cores that
    other jobs shared, so they are upper bounds):

        depth  width  head/aux  parameters  GFLOP/step  s/step
        18     0.125  32/16        223,454         5.8  0.14
        18     0.25   64/32        886,678        22.6  0.23  (0.46 without PPM, load rising)
        18     0.5    128/64     3,532,550        88.9  4.0   (load average ~7)
        34     0.25   64/32      1,519,830        38.4  5.1   (load average ~7)
        50     0.125  64/32        774,030        17.8  2.5   (load average ~7)

    At the ~100 GFLOP/s two lightly loaded cores reach, 22.6 GFLOP is ~0.2 s, so ~400 steps
    of batch 8 fit in 90 s. Width 0.125 would be 4x cheaper, but its stem and layer1 have
    only 8 channels (its accuracy was not measured); width 0.5 and depth 34 cost 2-4x more
    FLOPs than the budget allows. A 128x256 input gives a 16x32 feature map, larger than
    the 6x6 bin.

Deviation: any input size works (logits are interpolated to ``x.shape[-2:]``); the author's
code asserts sizes 8n+1. The auxiliary logits are returned in eval too (torchvision's
convention); build with ``aux=False`` for inference without that cost.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pspnet_edu.backbone import (
    DILATION_SCHEDULES,
    OUTPUT_STRIDES,
    RESNET_LAYOUTS,
    STEMS,
    ResNet,
    feature_size,
    load_torchvision_weights,
)
from pspnet_edu.constants import NUM_CLASSES
from pspnet_edu.fields import type_problems
from pspnet_edu.ppm import POOLINGS, PyramidPoolingModule


@dataclass(frozen=True)
class PSPNetConfig:
    """Everything that defines a PSPNet's architecture. The defaults are the "paper" preset.

    Saved inside training checkpoints as ``dataclasses.asdict(config)``;
    ``PSPNetConfig(**saved)`` rebuilds it (lists are turned back into tuples).
    """

    num_classes: int = NUM_CLASSES  # Cityscapes trainIds
    depth: int = 50  # paper Sec. 5.2: ResNet-50 for the ablations
    width: float = 1.0  # channel multiplier of the backbone (1.0 = the real ResNet)
    stem: str = "deep"  # hszhao/semseg "deep base": 3x3 convs 64-64-128
    dilation_schedule: str = "paper"  # every block of layer3 at 2, of layer4 at 4 (semseg)
    output_stride: int = 8  # paper Sec. 3.3: feature map at 1/8 of the input
    use_ppm: bool = True  # False: the dilated-FCN baseline of paper Table 1
    bins: tuple[int, ...] = (1, 2, 3, 6)  # paper Sec. 3.2, Table 1 "B1236"
    pooling: str = "avg"  # paper Table 1: "AVE" beats "MAX"
    ppm_channels: int | None = None  # per level; None: backbone channels / len(bins), Sec. 3.2
    head_channels: int = 512  # hszhao/semseg: 3x3 conv 4096 -> 512
    aux: bool = True  # auxiliary head on layer3, paper Sec. 4
    aux_channels: int = 256  # hszhao/semseg: 3x3 conv 1024 -> 256
    dropout: float = 0.1  # hszhao/semseg: Dropout2d(0.1) in both heads
    align_corners: bool = True  # hszhao/semseg upsamples with align_corners=True

    def __post_init__(self) -> None:
        if isinstance(self.bins, list):  # lists come back from JSON/asdict
            object.__setattr__(self, "bins", tuple(self.bins))
        for message in type_problems(self):  # before the checks below compare values
            raise ValueError(f"{message}; got PSPNetConfig({self._describe()})")
        checks = [
            (self.depth in RESNET_LAYOUTS, f"depth must be one of {sorted(RESNET_LAYOUTS)}"),
            (self.stem in STEMS, f"stem must be one of {STEMS}"),
            (self.dilation_schedule in DILATION_SCHEDULES,
             f"dilation_schedule must be one of {DILATION_SCHEDULES}"),
            (self.output_stride in OUTPUT_STRIDES,
             f"output_stride must be one of {OUTPUT_STRIDES}"),
            (self.pooling in POOLINGS, f"pooling must be one of {POOLINGS}"),
            (self.num_classes >= 2, "num_classes must be at least 2"),
            (self.width > 0, "width must be positive (1.0 = full ResNet)"),
            (0 <= self.dropout < 1, "dropout must be in [0, 1)"),
            (len(self.bins) > 0 and all(isinstance(b, int) and b >= 1 for b in self.bins),
             "bins must be positive integers such as (1, 2, 3, 6)"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"{message}; got PSPNetConfig({self._describe()})")

    def _describe(self) -> str:
        return ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in dataclasses.fields(self))


PRESETS: dict[str, PSPNetConfig] = {
    "paper": PSPNetConfig(),
    "torchvision": PSPNetConfig(stem="torchvision", dilation_schedule="torchvision",
                                align_corners=False),
    # Measured, see the module docstring: the smallest net that still has a dilated ResNet
    # (output stride 8), the full PPM and the auxiliary head.
    "tiny": PSPNetConfig(depth=18, width=0.25, stem="torchvision",
                         dilation_schedule="torchvision", head_channels=64, aux_channels=32,
                         align_corners=False),
}


def min_input_size(output_stride: int, largest_bin: int) -> int:
    """Smallest image side whose feature map has at least ``largest_bin`` pixels.

    Below it the largest pyramid level would pool windows of less than one pixel and only
    repeat values. The feature side is ceil(n / output_stride) (see
    ``pspnet_edu.backbone.feature_size``).

    >>> min_input_size(8, 6)  # 41 -> 6x6 features
    41
    >>> min_input_size(8, 1)
    1
    """
    return output_stride * (largest_bin - 1) + 1


class SegmentationHead(nn.Sequential):
    """3x3 conv (no bias), BN, ReLU, Dropout2d, 1x1 conv to the classes (paper Fig. 3(d))."""

    def __init__(
        self, in_channels: int, mid_channels: int, num_classes: int, dropout: float
    ) -> None:
        super().__init__(
            OrderedDict(
                conv=nn.Conv2d(in_channels, mid_channels, 3, padding=1, bias=False),
                bn=nn.BatchNorm2d(mid_channels),
                relu=nn.ReLU(inplace=True),
                dropout=nn.Dropout2d(dropout),
                classifier=nn.Conv2d(mid_channels, num_classes, 1),
            )
        )


class PSPNet(nn.Module):
    """PSPNet with submodules ``backbone``, ``ppm``, ``head`` and ``aux_head``.

    ``forward(x)`` maps images ``(B, 3, H, W)`` to ``{"out": (B, K, H, W), "aux": (B, K, H, W)}``
    logits, in train and in eval mode. With ``config.aux=False`` there is no ``aux_head``
    (it is ``None``) and no "aux" key. With ``config.use_ppm=False``, ``ppm`` is an
    ``nn.Identity`` and the head sits directly on layer4 (the dilated-FCN baseline).

    >>> model = build_pspnet("tiny", num_classes=5).eval()
    >>> out = model(torch.zeros(1, 3, 97, 131))
    >>> sorted(out), tuple(out["out"].shape), tuple(out["aux"].shape)
    (['aux', 'out'], (1, 5, 97, 131), (1, 5, 97, 131))
    """

    def __init__(self, config: PSPNetConfig) -> None:
        super().__init__()
        self.config = config
        self.backbone = ResNet(
            depth=config.depth,
            output_stride=config.output_stride,
            stem=config.stem,
            dilation_schedule=config.dilation_schedule,
            width=config.width,
        )
        if config.use_ppm:
            self.ppm = PyramidPoolingModule(
                self.backbone.out_channels,
                bins=config.bins,
                pooling=config.pooling,
                reduction_channels=config.ppm_channels,
                align_corners=config.align_corners,
            )
            head_in = self.ppm.out_channels
        else:
            self.ppm = nn.Identity()
            head_in = self.backbone.out_channels
        self.head = SegmentationHead(head_in, config.head_channels, config.num_classes,
                                     config.dropout)
        self.aux_head = (
            SegmentationHead(self.backbone.aux_channels, config.aux_channels,
                             config.num_classes, config.dropout)
            if config.aux else None
        )
        self.min_input_size = min_input_size(
            config.output_stride, max(config.bins) if config.use_ppm else 1
        )

    def check_input(self, x: Tensor) -> None:
        """Raise a ValueError that names the problem and the fix for a bad batch of images."""
        if not isinstance(x, Tensor) or x.dim() != 4 or x.shape[1] != 3:
            is_tensor = isinstance(x, Tensor)
            shape = tuple(x.shape) if is_tensor else type(x).__name__
            hint = " (one image? use x.unsqueeze(0))" if is_tensor and x.dim() == 3 else ""
            raise ValueError(f"PSPNet expects images of shape (B, 3, H, W), got {shape}{hint}")
        if not x.is_floating_point():
            raise ValueError(
                f"PSPNet expects float images, got {x.dtype}; convert with x.float() / 255 and "
                "normalise with the ImageNet mean and std"
            )
        weights = next(self.parameters()).dtype
        try:  # autocast casts float16/bfloat16/float32 to one dtype for us (never float64)
            autocast = torch.is_autocast_enabled(x.device.type) and torch.float64 not in (x.dtype, weights)
        except RuntimeError:  # a device type autocast does not know, e.g. meta
            autocast = False
        if x.dtype != weights and not autocast:
            fix = "x.float()" if weights == torch.float32 else f"x.to({weights})"
            raise ValueError(
                f"PSPNet got {x.dtype} images but its weights are {weights}; convert the images with "
                f"{fix}, or the model with model.to({x.dtype})"
            )
        height, width = x.shape[-2:]
        if min(height, width) < self.min_input_size:
            raise ValueError(
                f"input {height}x{width} is too small: this network needs at least "
                f"{self.min_input_size}x{self.min_input_size}, so that its "
                f"1/{self.config.output_stride} feature map (here "
                f"{feature_size(height, self.config.output_stride)}x"
                f"{feature_size(width, self.config.output_stride)}) covers the largest "
                f"pyramid bin ({max(self.config.bins)}x{max(self.config.bins)}); resize or pad "
                "the image"
            )
        if isinstance(self.ppm, PyramidPoolingModule):
            self.ppm.check_batch_size(x.shape[0])  # fail before the expensive backbone

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        self.check_input(x)
        size = x.shape[-2:]  # (H, W)
        features = self.backbone(x)
        aux, x = features["aux"], features["out"]  # (B, C3, H/8, W/8), (B, C4, H/8, W/8)
        del features  # rebinding x below lets inference free each output once it is used
        x = self.ppm(x)  # (B, 2 * C4, H/8, W/8) with the PPM, unchanged without
        x = self.head(x)  # (B, K, H/8, W/8)
        result = {"out": self._upsample(x, size)}  # (B, K, H, W)
        if self.aux_head is not None:
            result["aux"] = self._upsample(self.aux_head(aux), size)  # (B, K, H, W)
        return result

    def _upsample(self, logits: Tensor, size: Any) -> Tensor:
        # In channels_last (the trainer's layout) the upsampled logits stay channels_last, and the
        # loss reads them in place (pspnet_edu.loss): no copy either way.
        return F.interpolate(logits, size, mode="bilinear", align_corners=self.config.align_corners)


def preset_config(preset: str, num_classes: int = NUM_CLASSES, **overrides: Any) -> PSPNetConfig:
    """The :class:`PSPNetConfig` of a preset ("paper", "torchvision", "tiny") with field overrides.

    >>> preset_config("tiny", use_ppm=False).use_ppm
    False
    >>> preset_config("tiny", colour=3)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: unknown PSPNetConfig field(s) ['colour']; valid fields: num_classes, depth, ...
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    valid = [f.name for f in dataclasses.fields(PSPNetConfig)]
    unknown = sorted(set(overrides) - set(valid))
    if unknown:
        raise ValueError(f"unknown PSPNetConfig field(s) {unknown}; valid fields: {', '.join(valid)}")
    return dataclasses.replace(PRESETS[preset], num_classes=num_classes, **overrides)


def model_config_from_dict(saved: dict[str, Any], where: str = "the checkpoint") -> PSPNetConfig:
    """Rebuild a :class:`PSPNetConfig` from ``dataclasses.asdict`` (lists back to tuples).

    A field this release does not know, or a value of the wrong type (``"num_classes": "19"``),
    is a ValueError that names ``where``, rather than a TypeError.

    >>> model_config_from_dict(dataclasses.asdict(PRESETS["tiny"])) == PRESETS["tiny"]
    True
    """
    valid = {f.name for f in dataclasses.fields(PSPNetConfig)}
    if not isinstance(saved, dict):
        raise ValueError(f"{where} holds no model configuration (got {type(saved).__name__}); it was not "
                         "written by pspnet-edu train")
    unknown = sorted(set(saved) - valid)
    if unknown:
        raise ValueError(f"{where} describes a model with fields this release does not know ({', '.join(unknown)}): "
                         "it was written by another version of pspnet-edu; load it with that version, or rebuild "
                         "the model yourself and load its state dict")
    try:
        return PSPNetConfig(**saved)
    except ValueError as error:
        raise ValueError(f"{where} describes a model that cannot be built ({error}); the file was edited or "
                         "damaged: re-train or pick another file") from None


def build_pspnet(
    preset: str,
    num_classes: int = NUM_CLASSES,
    pretrained_backbone: bool | str = False,
    **overrides: Any,
) -> PSPNet:
    """Build a PSPNet from a preset ("paper", "torchvision", "tiny") and field overrides.

    ``overrides`` are fields of :class:`PSPNetConfig` (``use_ppm=False``, ``bins=(1,)``,
    ``pooling="max"``, ``aux=False``, ``depth=101``, ...), see :func:`preset_config`.
    ``pretrained_backbone`` loads torchvision's ImageNet weights into the backbone (``True``:
    ``"IMAGENET1K_V1"``, or the name of another member of ``torchvision.models.ResNet50_Weights``
    and its siblings); it is an initialisation, not part of the architecture, so it is not in
    the config.

    >>> build_pspnet("tiny", use_ppm=False).ppm
    Identity()
    """
    model = PSPNet(preset_config(preset, num_classes, **overrides))
    if pretrained_backbone:
        name = "IMAGENET1K_V1" if pretrained_backbone is True else pretrained_backbone
        load_torchvision_weights(model.backbone, name)
    return model
