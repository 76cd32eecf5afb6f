"""Inference as in the official evaluation: whole image, sliding window, flip and multi-scale.

PSPNet's reported numbers are not from a single forward pass over the image. The author's
evaluation (hszhao/semseg ``tool/test.py``; the multi-scale column of Zhao et al. 2017, Table 3,
Sec. 5.2) does three things:

1. **Sliding window.** The network is applied to ``crop x crop`` windows taken with a stride
   of ``ceil(2/3 * crop)``; an image smaller than the crop is padded with the mean colour
   (0 after normalisation); the softmax probabilities of overlapping windows are averaged.
2. **Flip.** Each window is also run mirrored; the mirrored probabilities are flipped back and
   averaged with the others (on by default in the author's code, so its "single-scale"
   numbers include the flip).
3. **Multi-scale.** The image is resized by each scale (0.5 ... 1.75), predicted as above,
   the probabilities resized back to the original size, and averaged over scales.

``predict_probs`` does all of that for a batch of normalised images; ``evaluate`` runs it over
a dataset and returns the confusion-matrix metrics of ``pspnet_edu.metrics``.

``prepare_for_inference`` makes a trained model faster without changing what it computes:
no auxiliary head (it only ever served the training loss), every BatchNorm folded into the
convolution before it (exact in eval mode: BN is then a fixed affine map per channel, so
``BN(W * x + b) = (g W) * x + (g (b - mu) + beta)`` with ``g = gamma / sqrt(var + eps)``),
the head's 3x3 conv over the upsampled pyramid levels done at the levels' own ``b x b`` size
(exact too: upsampling and the conv's channel mixing are both linear, so they commute;
``PyramidIntoHead``), channels_last activations, and optionally bfloat16 weights and
activations on hardware that has fast bfloat16.

Deviation: semseg resizes each scale relative to a fixed ``base_size`` (2048 for Cityscapes);
here a scale is relative to the image's own size, which is the same for full-size Cityscapes
and does the sensible thing for smaller images. Probabilities are resized with bilinear
interpolation and ``align_corners=False`` (semseg's OpenCV resize uses the same pixel-centre
convention).

Taught in ``notebooks/08_evaluation.ipynb``.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.fusion import fuse_conv_bn_eval
from tqdm import tqdm

from pspnet_edu.constants import IGNORE_INDEX
from pspnet_edu.metrics import confusion_matrix, iou_per_class, mean_class_accuracy, mean_iou, pixel_accuracy
from pspnet_edu.ppm import PyramidPoolingModule
from pspnet_edu.pspnet import PSPNet, PSPNetConfig

Mode = Literal["whole", "sliding"]
INFERENCE_PRECISIONS = ("fp32", "bf16")
MAX_INFERENCE_SCALE = 4.0  # scales beyond this would only blow up the memory (semseg uses 0.5-1.75)


def fold_batchnorm(module: nn.Module) -> nn.Module:
    """Fold every ``BatchNorm2d`` into the ``Conv2d`` registered just before it, in place; return ``module``.

    In this package (as in torchvision's ResNets) a BatchNorm registered right after a conv in
    the same parent normalises that conv's output (``conv1``/``bn1``, ``downsample.0``/``.1``,
    a branch's ``conv``/``bn``). Each such pair becomes one conv (``fuse_conv_bn_eval``,
    PyTorch's own) and the BN an ``nn.Identity``. Only for eval mode: training BN uses batch
    statistics, which no fixed conv can reproduce.
    """
    if module.training:
        raise ValueError("fold_batchnorm needs a model in eval mode (call model.eval() first)")
    for parent in list(module.modules()):
        children = list(parent.named_children())
        for (conv_name, conv), (bn_name, bn) in zip(children, children[1:]):
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d) and bn.track_running_stats:
                setattr(parent, conv_name, fuse_conv_bn_eval(conv, bn))
                setattr(parent, bn_name, nn.Identity())
    return module


def interpolation_matrix(size_in: int, size_out: int, align_corners: bool) -> Tensor:
    """(size_out, size_in): the weights with which 1-D linear interpolation mixes the inputs.

    Bilinear resizing is separable: ``F.interpolate(p, (H, W), mode="bilinear")`` equals
    ``A_H @ p @ A_W.T`` for every channel, with ``A_H = interpolation_matrix(h, H, ...)``.

    >>> interpolation_matrix(2, 4, align_corners=False)
    tensor([[1.0000, 0.0000],
            [0.7500, 0.2500],
            [0.2500, 0.7500],
            [0.0000, 1.0000]])
    """
    basis = torch.eye(size_in).unsqueeze(0)  # (1, size_in, size_in): channel c is the one-hot e_c
    return F.interpolate(basis, size=size_out, mode="linear", align_corners=align_corners)[0].T


def shifted_interpolation(bins: int, size: int, align_corners: bool, kernel: int, dilation: int,
                          padding: int) -> Tensor:
    """(kernel, size, bins): :func:`interpolation_matrix` read at each tap's offset, 0 off the map.

    Tap ``t`` of a conv reads row ``y + t * dilation - padding`` for output row ``y``; rows
    outside the map are the conv's zero padding.
    """
    matrix = interpolation_matrix(bins, size, align_corners)  # (size, bins)
    shifted = torch.zeros(kernel, size, bins)
    for tap in range(kernel):
        offset = tap * dilation - padding
        first, last = max(0, -offset), min(size, size - offset)  # the output rows whose input row exists
        shifted[tap, first:last] = matrix[first + offset:last + offset]
    return shifted


class PyramidIntoHead(nn.Module):
    """The pyramid pooling module and the head's 3x3 conv in one, the pooled levels never upsampled.

    The head's conv over the concatenation ``[x, up(p_1), ..., up(p_N)]`` is the sum of one conv
    per part. A pooled level ``p`` is ``b x b``; upsampling (``A_H p A_W^T`` per channel) and
    the conv's channel mixing are both linear, so they commute: mix the channels of ``p`` once
    per kernel tap, at ``b x b``, and interpolate the ``k x k`` results, each shifted by its tap
    (:func:`shifted_interpolation`). For ResNet-50 this halves the head conv, the network's
    largest (4096 -> 512 input channels at 1/8 of the image). The same function up to float
    rounding (``tests/test_inference.py``).
    """

    def __init__(self, ppm: PyramidPoolingModule, conv: nn.Conv2d) -> None:
        super().__init__()  # no layer is built here: that would draw from the global random generator
        (kh, kw), (dh, dw), padding = conv.kernel_size, conv.dilation, conv.padding
        if conv.stride != (1, 1) or conv.groups != 1 or conv.padding_mode != "zeros" \
                or padding != ((kh - 1) * dh // 2, (kw - 1) * dw // 2):
            raise ValueError("PyramidIntoHead folds a stride-1, ungrouped conv with zero padding that keeps the "
                             f"map's size; got {conv}")
        channels = ppm.branches[0].conv.in_channels  # x's; the levels' channels follow in the concatenation
        self.branches, self.align_corners = ppm.branches, ppm.align_corners
        self.kernel_size, self.padding, self.dilation = conv.kernel_size, padding, conv.dilation
        weight = conv.weight.detach()  # (O, C + N * C/N, kh, kw)
        self.weight = nn.Parameter(weight[:, :channels].clone(), requires_grad=False)  # the part on x
        self.bias = None if conv.bias is None else nn.Parameter(conv.bias.detach().clone(), requires_grad=False)
        levels = weight[:, channels:].split([branch.conv.out_channels for branch in ppm.branches], dim=1)
        self.level_weights = nn.ParameterList(  # each level's part, one output channel per (o, tap): a 1x1 conv
            nn.Parameter(w.permute(0, 2, 3, 1).reshape(-1, w.shape[1], 1, 1).clone(), requires_grad=False)
            for w in levels  # (O * kh * kw, C/N, 1, 1)
        )

    def forward(self, x: Tensor) -> Tensor:
        height, width = x.shape[-2:]
        out = F.conv2d(x, self.weight, self.bias, padding=self.padding, dilation=self.dilation)  # (B, O, h, w)
        kh, kw = self.kernel_size
        for branch, weight in zip(self.branches, self.level_weights):
            pooled = branch(x)  # (B, C/N, b, b)
            mixed = F.conv2d(pooled, weight).unflatten(1, (-1, kh, kw))  # (B, O, kh, kw, b, b)
            rows = shifted_interpolation(pooled.shape[-2], height, self.align_corners, kh, self.dilation[0],
                                         self.padding[0]).to(x)  # (kh, h, b)
            cols = shifted_interpolation(pooled.shape[-1], width, self.align_corners, kw, self.dilation[1],
                                         self.padding[1]).to(x)  # (kw, w, b)
            # n: image, o: output channel, t/u: tap along the rows/columns, i/j: bin row/column
            resized_columns = torch.einsum("notuij,uwj->notiw", mixed, cols)  # (B, O, kh, b, w)
            out = out + torch.einsum("thi,notiw->nohw", rows, resized_columns)  # (B, O, h, w)
        return out


def fold_pyramid_into_head(model: PSPNet) -> PSPNet:
    """Replace ``model.ppm`` and ``model.head.conv`` by one :class:`PyramidIntoHead`, in place.

    Only for a PSPNet with a pooling pyramid (``pooling="none"``, the control, has nothing to
    fold) in eval mode, with its BatchNorm folded first (:func:`fold_batchnorm`): the head's BN
    is folded into the very conv that this replaces.
    """
    head = model.head
    if model.training or not isinstance(head.bn, nn.Identity):
        raise ValueError("fold_pyramid_into_head needs a model in eval mode whose BatchNorm is folded first (the "
                         "head's BN folds into the conv replaced here): model.eval(), then fold_batchnorm(model)")
    if isinstance(model.ppm, PyramidPoolingModule) and model.ppm.pooling != "none":
        model.ppm = PyramidIntoHead(model.ppm, head.conv)
        head.conv = nn.Identity()
    return model


def has_fast_bf16(device: torch.device) -> bool:
    """True where bfloat16 matrix units exist: CUDA with bf16, or a CPU with AVX512-BF16 or AMX."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type != "cpu" or not sys.platform.startswith("linux"):
        return False
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


class InferenceModel(nn.Module):
    """A trained model prepared for inference (see :func:`prepare_for_inference`); returns ``{"out": logits}``."""

    def __init__(self, model: nn.Module, precision: str, channels_last: bool) -> None:
        super().__init__()
        self.model, self.precision, self.channels_last = model, precision, channels_last

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        if self.precision == "bf16":
            x = x.to(torch.bfloat16)  # the weights are stored in bfloat16 (prepare_for_inference)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        out = self.model(x)["out"]  # (B, K, H, W)
        return {"out": out.float().contiguous()}


def prepare_for_inference(model: nn.Module, precision: str = "fp32", device: str | torch.device = "cpu",
                          channels_last: bool = True) -> InferenceModel:
    """A new model that computes the same logits faster; ``model`` itself is left untouched.

    Eval mode, no auxiliary head (a PSPNet is rebuilt with ``aux=False``), BatchNorm folded into
    the convolutions (:func:`fold_batchnorm`), the pyramid's levels folded into the head's conv
    at their own resolution (:func:`fold_pyramid_into_head`), channels_last activations (faster
    on CPUs and recent GPUs, ``benchmarks/bench_model.py``), and with ``precision="bf16"`` the weights stored
    in bfloat16 and the images cast to it (the logits agree with fp32 on about 99.4 % of the
    pixels' argmax): on hardware without fast bf16 that is slower, and a one-line warning says
    so. Its forward returns ``{"out": logits}`` in float32.
    """
    if precision not in INFERENCE_PRECISIONS:
        raise ValueError(f"precision must be one of {INFERENCE_PRECISIONS}, got {precision!r}")
    device = torch.device(device)
    if isinstance(model, PSPNet):
        with torch.random.fork_rng(devices=[]):  # the new layers' random init must not move the caller's RNG:
            copy_ = PSPNet(dataclasses.replace(model.config, aux=False))  # an evaluation mid-training would
        state = {k: v for k, v in model.state_dict().items() if not k.startswith("aux_head.")}  # change the run
        copy_.load_state_dict(state)
    else:
        copy_ = copy.deepcopy(model)
    folded = fold_batchnorm(copy_.to(device).eval())
    if isinstance(folded, PSPNet):
        fold_pyramid_into_head(folded)
    if channels_last:
        folded = folded.to(memory_format=torch.channels_last)
    if precision == "bf16":  # weights cast once, not at every call as autocast would (0.47x -> 0.42x the
        folded = folded.to(torch.bfloat16)  # official fp32 time on an AVX512-BF16 CPU: benchmarks/bench_model.py)
    if precision == "bf16" and not has_fast_bf16(device):
        warnings.warn(f"this {device.type} has no fast bfloat16 (no AVX512-BF16 or AMX); bf16 inference will be "
                      "slower than fp32 here", stacklevel=2)
    return InferenceModel(folded, precision, channels_last).eval()


def _logits(model: nn.Module, images: Tensor) -> Tensor:
    """The main head's logits at input size (the auxiliary output is for training only)."""
    output = model(images)
    logits = output["out"] if isinstance(output, dict) else output  # (B, C, h, w)
    if logits.shape[-2:] != images.shape[-2:]:
        logits = F.interpolate(logits, size=images.shape[-2:], mode="bilinear", align_corners=False)
    return logits  # (B, C, H, W)


def _net_probs(model: nn.Module, images: Tensor, flip: bool) -> Tensor:
    """Softmax probabilities of one forward pass, averaged with the mirrored pass if ``flip``."""
    if not flip:
        return _logits(model, images).softmax(dim=1)  # (B, C, H, W)
    batch = images.shape[0]
    both = torch.cat([images, images.flip(-1)], dim=0)  # (2B, 3, H, W): one pass for both
    probs = _logits(model, both).softmax(dim=1)  # (2B, C, H, W)
    return (probs[:batch] + probs[batch:].flip(-1)) / 2  # (B, C, H, W)


def window_starts(size: int, crop: int, stride: int) -> list[int]:
    """Window origins along one axis: a regular grid whose last window ends at the border.

    >>> window_starts(10, 4, 3)
    [0, 3, 6]
    >>> window_starts(4, 4, 3)
    [0]
    """
    count = math.ceil(max(size - crop, 0) / stride) + 1
    return [min(i * stride, size - crop) for i in range(count)]


def sliding_window_probs(model: nn.Module, images: Tensor, crop: tuple[int, int], stride: tuple[int, int],
                         flip: bool = False) -> Tensor:
    """Softmax probabilities (B, C, H, W) from overlapping ``crop`` windows placed every ``stride``
    pixels (:func:`window_starts`), averaged where they overlap (hszhao/semseg ``tool/test.py``).

    ``predict_probs(mode="sliding")`` calls it at every scale; lesson 08's exercise rebuilds it.
    """
    height, width = images.shape[-2:]
    crop_h, crop_w = crop
    # Pad images smaller than the crop, split evenly on both sides as in semseg. Zero is the
    # mean colour once images are normalised with the dataset mean and std.
    pad_h, pad_w = max(crop_h - height, 0), max(crop_w - width, 0)
    top, left = pad_h // 2, pad_w // 2
    padded = F.pad(images, (left, pad_w - left, top, pad_h - top), value=0.0)  # (B, 3, H', W')
    padded_h, padded_w = padded.shape[-2:]

    probs_sum: Tensor | None = None
    counts = torch.zeros(padded_h, padded_w, device=images.device)  # windows covering each pixel
    for y in window_starts(padded_h, crop_h, stride[0]):
        for x in window_starts(padded_w, crop_w, stride[1]):
            window = padded[..., y : y + crop_h, x : x + crop_w]  # (B, 3, crop_h, crop_w)
            probs = _net_probs(model, window, flip)  # (B, C, crop_h, crop_w)
            if probs_sum is None:
                probs_sum = probs.new_zeros(probs.shape[:2] + (padded_h, padded_w))
            probs_sum[..., y : y + crop_h, x : x + crop_w] += probs
            counts[y : y + crop_h, x : x + crop_w] += 1
    assert probs_sum is not None
    probs = probs_sum / counts  # (B, C, H', W')
    return probs[..., top : top + height, left : left + width]  # (B, C, H, W)


def predict_probs(
    model: nn.Module,
    images: Tensor,
    *,
    mode: Mode = "whole",
    crop: int | tuple[int, int] | None = None,
    stride_rate: float = 2 / 3,
    flip: bool = False,
    scales: Sequence[float] = (1.0,),
) -> Tensor:
    """Class probabilities (B, C, H, W) for normalised images (B, 3, H, W) or (3, H, W).

    ``mode="whole"`` runs the network once on the whole image; ``mode="sliding"`` runs it on
    ``crop`` windows with a stride of ``ceil(stride_rate * crop)`` (2/3 in semseg). ``flip``
    averages with the mirrored image; ``scales`` averages over resized copies (semseg's
    multi-scale test uses 0.5, 0.75, 1.0, 1.25, 1.5, 1.75). The model is used as it is: call
    ``model.eval()`` first (``evaluate`` does).
    """
    if mode not in ("whole", "sliding"):
        raise ValueError(f"mode must be 'whole' or 'sliding', got {mode!r}")
    if not scales or any(not (math.isfinite(s) and 0 < s <= MAX_INFERENCE_SCALE) for s in scales):
        raise ValueError(f"scales must be a non-empty list of numbers in (0, {MAX_INFERENCE_SCALE:g}], got {list(scales)}")
    squeeze = images.dim() == 3
    if squeeze:
        images = images.unsqueeze(0)  # (1, 3, H, W)
    if images.dim() != 4:
        raise ValueError(f"images must be (B, 3, H, W) or (3, H, W), got shape {tuple(images.shape)}")
    if mode == "sliding":
        if crop is None:
            raise ValueError("sliding-window inference needs a crop size, e.g. crop=713 (the paper's) or --crop")
        crop_hw = (crop, crop) if isinstance(crop, int) else tuple(crop)
        if len(crop_hw) != 2 or any(not isinstance(c, int) or c <= 0 for c in crop_hw):
            raise ValueError(f"crop must be a positive size (H, W) or one int, got {crop!r}")
        if not 0 < stride_rate <= 1:
            raise ValueError(f"stride_rate must be in (0, 1] (semseg: 2/3), got {stride_rate}")
        stride_hw = tuple(int(math.ceil(c * stride_rate)) for c in crop_hw)

    height, width = images.shape[-2:]
    total: Tensor | None = None
    with torch.no_grad():
        for scale in scales:
            scaled = images
            if scale != 1.0:
                size = (max(1, round(height * scale)), max(1, round(width * scale)))
                scaled = F.interpolate(images, size=size, mode="bilinear", align_corners=False)
            if mode == "whole":
                probs = _net_probs(model, scaled, flip)
            else:
                probs = sliding_window_probs(model, scaled, crop_hw, stride_hw, flip)  # type: ignore[arg-type]
            if probs.shape[-2:] != (height, width):
                probs = F.interpolate(probs, size=(height, width), mode="bilinear", align_corners=False)
            total = probs if total is None else total + probs
    assert total is not None
    probs = total / len(scales)  # (B, C, H, W)
    return probs[0] if squeeze else probs


def memory_estimate(config: PSPNetConfig, height: int, width: int, *, mode: Mode = "whole",
                    crop: tuple[int, int] | None = None, flip: bool = False, scales: Sequence[float] = (1.0,)) -> int:
    """About how many bytes ``predict_probs`` needs for one (3, H, W) image: measured on the meta device.

    The network runs once on meta tensors (shapes only, no memory) at the size each scale and
    window gives; the peak is taken as its three largest activations plus the logits and
    probabilities, and the full-size probability sums kept across scales and windows.
    """
    totals = []
    for scale in scales:
        h, w = max(1, round(height * scale)), max(1, round(width * scale))
        if mode == "sliding" and crop is not None:
            h, w = max(min(h, crop[0]), crop[0]), max(min(w, crop[1]), crop[1])  # one window, padded to the crop
        totals.append(_forward_bytes(config, h, w, batch=2 if flip else 1))
    probability_sums = 4 * config.num_classes * height * width * 2  # the running sum and this scale's map
    return max(totals) + probability_sums


def _forward_bytes(config: PSPNetConfig, height: int, width: int, batch: int) -> int:
    sizes: list[int] = []
    with torch.device("meta"):
        model = PSPNet(dataclasses.replace(config, aux=False)).eval()
        for module in model.modules():
            if not list(module.children()):
                module.register_forward_hook(lambda m, i, o: sizes.append(o.numel()) if isinstance(o, Tensor) else None)
        with torch.no_grad():
            logits = model(torch.empty(batch, 3, height, width))["out"]
    return 4 * (sum(sorted(sizes)[-3:]) + 2 * logits.numel())


def available_memory() -> int | None:
    """Bytes the system can still give (Linux ``MemAvailable``); None where it cannot tell."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def predict(model: nn.Module, images: Tensor, **kwargs: object) -> Tensor:
    """Class indices (B, H, W) (or (H, W) for one image): the argmax of ``predict_probs``."""
    return classes_of(predict_probs(model, images, **kwargs))  # type: ignore[arg-type]


def classes_of(probs: Tensor) -> Tensor:
    """``probs.argmax(dim=-3)`` (the class of each pixel; ties go to the first), read along rows of scores.

    The same indices; but an argmax across the planes of a (B, C, H, W) tensor took 34 ms for
    (8, 19, 128, 256), against 10 ms for a copy with each pixel's scores side by side and its
    argmax (AMD EPYC, 2 threads, 2026-12-07): a quarter of the training command's evaluation.

    >>> probs = torch.tensor([[[[0.2]], [[0.5]], [[0.5]]]])  # (1, 3, 1, 1): a tie of classes 1 and 2
    >>> classes_of(probs).tolist(), probs.argmax(dim=-3).tolist()
    ([[[1]]], [[[1]]])
    """
    return probs.movedim(-3, -1).contiguous().argmax(dim=-1)


def _batches_by_size(samples: list[tuple[Tensor, Tensor]]) -> list[tuple[Tensor, Tensor]]:
    """A loader's batch of (image, mask) pairs as one stacked (images, masks) batch per image size.

    Validation images need not share a size (a Cityscapes subset mixes cameras); stacking
    them all would fail with "stack expects each tensor to be equal size".
    """
    groups: dict[tuple[int, ...], list[tuple[Tensor, Tensor]]] = {}
    for image, mask in samples:
        groups.setdefault(tuple(image.shape), []).append((image, mask))
    return [(torch.stack([image for image, _ in group]), torch.stack([mask for _, mask in group]))
            for group in groups.values()]


def evaluate(
    model: nn.Module,
    dataset: torch.utils.data.Dataset,
    *,
    num_classes: int | None = None,
    ignore_index: int = IGNORE_INDEX,
    device: str | torch.device = "cpu",
    batch_size: int = 1,
    num_workers: int = 0,
    mode: Mode = "whole",
    crop: int | tuple[int, int] | None = None,
    flip: bool = False,
    scales: Sequence[float] = (1.0,),
    progress: bool = False,
) -> dict:
    """Evaluate ``model`` on every (image, mask) pair of ``dataset``.

    One confusion matrix is accumulated over the whole dataset and the scores are computed from
    it at the end (``num_classes``: its size; default: the model's number of output channels).
    Returns a dict with ``confusion_matrix`` (a (C, C) int64 tensor), ``iou``
    (a list of C floats, NaN for classes absent from prediction and ground truth), ``miou``,
    ``pixel_acc`` and ``mean_acc``. Images of different sizes may share a batch (each size is
    predicted as its own batch). The model is put in eval mode and returned to its previous
    mode afterwards. A dataset without one labelled pixel (every label void) has nothing to
    score: a ValueError says so, rather than an mIoU of NaN.
    """
    if len(dataset) == 0:  # type: ignore[arg-type]
        raise ValueError("the evaluation dataset is empty: check --data and --val-split")

    # A private generator: creating a loader must not consume the global RNG (training resumes exactly).
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                                         generator=torch.Generator(), collate_fn=_batches_by_size)
    was_training = model.training
    model.eval()
    cm: Tensor | None = None
    try:
        for batches in tqdm(loader, desc="evaluate", disable=not progress, leave=False):
            for images, masks in batches:
                images = images.to(device)  # (B, 3, H, W)
                probs = predict_probs(model, images, mode=mode, crop=crop, flip=flip, scales=scales)  # (B, C, H, W)
                classes = probs.shape[1] if num_classes is None else num_classes
                batch_cm = confusion_matrix(classes_of(probs).cpu(), masks, classes, ignore_index)
                cm = batch_cm if cm is None else cm + batch_cm
    finally:
        model.train(was_training)
    assert cm is not None  # the dataset is not empty
    if cm.sum() == 0:
        raise ValueError(f"nothing to score: none of the {len(dataset)} evaluation images has a labelled pixel "  # type: ignore[arg-type]
                         f"(every label is void, {ignore_index}); evaluate on annotated images (check --data and "
                         "--val-split)")
    return {
        "confusion_matrix": cm,
        "iou": iou_per_class(cm).tolist(),
        "miou": mean_iou(cm),
        "pixel_acc": pixel_accuracy(cm),
        "mean_acc": mean_class_accuracy(cm),
    }
