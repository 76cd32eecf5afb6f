"""Self-checks for notebooks/05_pspnet.ipynb (Zhao et al. 2017: Sec. 3.3, Fig. 3; Sec. 4, Fig. 4).

- :func:`check_pspnet_forward`: a learner's class ``MyPSPNet(backbone, ppm, head, aux_head=None,
  align_corners=False)`` whose ``forward`` assembles the package's parts into PSPNet (paper
  Fig. 3; the auxiliary head on layer3 of paper Sec. 4) and returns ``{"out": ..., "aux": ...}``
  at the input's size, against :class:`pspnet_edu.pspnet.PSPNet` with the same weights, on
  several input sizes (odd ones included), with and without the auxiliary head and the PPM,
  with ``align_corners`` True and False, in eval and in training mode;
- :func:`check_head_parameters`: ``my_head_parameters(in_channels, mid_channels,
  num_classes)``, the number of learnable parameters of a PSPNet head (3x3 conv without
  bias, BatchNorm, ReLU, Dropout, 1x1 conv with bias), against
  :class:`pspnet_edu.pspnet.SegmentationHead` counted by ``sum(p.numel() ...)``.

How :func:`check_pspnet_forward` gets the same weights into both: it builds a
:class:`~pspnet_edu.pspnet.PSPNet` (random weights and BatchNorm statistics, a fixed seed, the
global random state untouched) and hands the learner's class deep copies of its four
submodules (``backbone``, a :class:`~pspnet_edu.backbone.ResNet` returning ``{"out": layer4,
"aux": layer3}``; ``ppm``, a :class:`~pspnet_edu.ppm.PyramidPoolingModule` or ``nn.Identity``
for the no-PPM twin; ``head`` and ``aux_head``, :class:`~pspnet_edu.pspnet.SegmentationHead`
or ``None``). The parts are the bricks of the exercise; the assembly is the learner's.

While the learner's code runs, the package's code it re-derives is hidden (``*_HIDDEN`` below;
:func:`pspnet_edu.checks._core.hidden`): ``PSPNet`` itself (so also ``build_pspnet`` and
``model_from_checkpoint``, which build one) for the forward; for the parameter count, the
head class and the reference count. A subclass of ``PSPNet``, or a module that holds a
``PSPNet``, is refused too.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from pspnet_edu.checks._core import (
    Case,
    Hiding,
    check_cases,
    differences,
    fail,
    hidden,
    learner_code,
    learner_name,
    passed,
    refuse_reference,
    require_callable,
    short_repr,
    uses_reference_message,
)
from pspnet_edu.pspnet import PSPNet, SegmentationHead, preset_config

# ------------------------------------------------------------------ the forward pass

PSPNET_FORWARD_HIDDEN = (PSPNet,)  # hidden while the learner's code runs

FORWARD_RECIPE = (
    "features = self.backbone(x) is a dict {'out': layer4, 'aux': layer3} at 1/8 of the input; "
    "out = self.head(self.ppm(features['out'])); aux = self.aux_head(features['aux']) when there is an "
    "aux head; upsample both LOGITS with F.interpolate(..., size=x.shape[-2:], mode='bilinear', "
    "align_corners=self.align_corners) and return {'out': out, 'aux': aux} (only 'out' when aux_head is None)."
)

# (PSPNetConfig overrides of the tiny preset, input shape, mode, hint)
_FORWARD_SPECS: tuple[tuple[dict[str, Any], tuple[int, int, int, int], str, str], ...] = (
    ({}, (2, 3, 128, 256), "eval", "the tiny preset on a batch of Synthcity-sized images (128x256)."),
    ({"width": 0.125, "align_corners": True}, (2, 3, 97, 131), "eval",
     "odd sides (97 -> 13 feature rows) and align_corners=True, as in the author's code."),
    ({"width": 0.125, "aux": False}, (1, 3, 65, 65), "eval", "no auxiliary head (aux_head is None): only 'out'."),
    ({"width": 0.125, "use_ppm": False}, (2, 3, 72, 100), "eval",
     "the no-PPM twin: ppm is nn.Identity and the head sits directly on layer4."),
    ({"width": 0.125, "align_corners": True, "dropout": 0.0}, (2, 3, 113, 81), "train",
     "training mode (BatchNorm uses the batch's statistics): the same dict as in eval."),
    ({"width": 0.125, "num_classes": 5}, (2, 3, 41, 57), "eval",
     "5 classes and the smallest input for bins up to 6 (41 -> 6 feature rows)."),
)


class _Described:
    """A value shown in a message by a given text (a tensor inside a dict: its shape, not its numbers)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _summary(value: Any) -> Any:
    """A dict of tensors as a dict of their short descriptions, for the expected/got lines."""
    if isinstance(value, dict):
        return {key: _Described(short_repr(item)) for key, item in value.items()}
    return value


def _reference_model(overrides: dict[str, Any], seed: int) -> PSPNet:
    """The package's PSPNet with random weights and BatchNorm statistics; the global RNG is untouched."""
    import torch
    from torch import nn

    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        model = PSPNet(preset_config("tiny", **overrides))
        with torch.no_grad():
            for module in model.modules():
                if isinstance(module, nn.BatchNorm2d):
                    module.weight.uniform_(0.5, 1.5)
                    module.bias.normal_(0, 0.1)
                    module.running_mean.normal_(0, 0.1)
                    module.running_var.uniform_(0.5, 1.5)
    return model


def _call_text(name: str, model: PSPNet) -> str:
    aux = "aux_head" if model.aux_head is not None else "None"
    return f"{name}(backbone, ppm, head, {aux}, align_corners={model.config.align_corners})"


def _refuse_package_model(name: str, learner: Any) -> None:
    """AssertionError unless the learner's object is an nn.Module that holds no PSPNet."""
    from torch import nn

    if not isinstance(learner, nn.Module):
        raise AssertionError(f"{name}(...) returned {type(learner).__name__}, not an nn.Module: define "
                             f"`class {name}(nn.Module)` with __init__ and forward, and pass the class itself.")
    for part in learner.modules():
        for reference in PSPNET_FORWARD_HIDDEN:  # the tuple: the module's own name is hidden now
            if isinstance(part, reference):
                raise AssertionError(uses_reference_message(name, reference))


def _forward_diagnose(model: PSPNet, x: Any, mode: str, expected: dict[str, Any], got: Any) -> str:
    import torch
    import torch.nn.functional as F

    if not isinstance(got, dict):
        return f"return a dict, not {type(got).__name__}. " + FORWARD_RECIPE
    if set(got) != set(expected):
        if "aux" in got and "aux" not in expected:
            return "without an auxiliary head (aux_head is None) return only {'out': ...}. " + FORWARD_RECIPE
        if "aux" in expected and "aux" not in got:
            return "add 'aux': the auxiliary head's logits on features['aux'] (layer3). " + FORWARD_RECIPE
        return "use the keys 'out' and 'aux', as torchvision's segmentation models do. " + FORWARD_RECIPE
    size = tuple(x.shape[-2:])
    for key, value in got.items():
        shape = tuple(getattr(value, "shape", ()))[-2:]
        if shape != size:
            small = tuple(-(-n // model.config.output_stride) for n in size)
            if shape == small:
                return (f"'{key}' is still at 1/8 of the input {small}: upsample the logits to x.shape[-2:]. "
                        + FORWARD_RECIPE)
            if shape == tuple(8 * n for n in small):
                return (f"'{key}' is {shape}, not {size}: scale_factor=8 gives 8 * ceil(H / 8), which is not H "
                        "when 8 does not divide it; interpolate to size=x.shape[-2:]. " + FORWARD_RECIPE)
            return f"'{key}' must have the input's size {size}. " + FORWARD_RECIPE
    model.train(mode == "train")
    align = model.config.align_corners
    with torch.no_grad():
        features = model.backbone(x)  # {"out": (B, C4, h, w), "aux": (B, C3, h, w)}
        mapped = model.ppm(features["out"])  # (B, 2 * C4, h, w); unchanged without the PPM
        logits = model.head(mapped)  # (B, K, h, w)
        slips = {
            f"use align_corners=self.align_corners (here {align}), the value the network was built with. ":
                F.interpolate(logits, size, mode="bilinear", align_corners=not align),
            "upsample with mode='bilinear', not the default 'nearest'. ": F.interpolate(logits, size),
            "upsample the LOGITS after the head, not the features before it (the head runs at 1/8). ":
                model.head(F.interpolate(mapped, size, mode="bilinear", align_corners=align)),
        }
        if "aux" in expected:
            slips["'out' and 'aux' are swapped: 'out' comes from the PPM and the main head. "] = expected["aux"]
    for text, value in slips.items():
        if differences(value, got["out"], rtol=1e-4, atol=1e-5) is None:
            return text + FORWARD_RECIPE
    if "aux" in expected and differences(expected["out"], got["out"], rtol=1e-4, atol=1e-5) is None:
        return "'out' is right, 'aux' is not: the auxiliary head takes features['aux'] (layer3). " + FORWARD_RECIPE
    return FORWARD_RECIPE


def _forward_once(name: str, my_pspnet: Any, model: PSPNet, x: Any, mode: str, hiding: Hiding) -> Any:
    """Build the learner's module from copies of ``model``'s parts and run it on ``x``."""
    import torch

    call = _call_text(name, model)
    parts = copy.deepcopy((model.backbone, model.ppm, model.head, model.aux_head))  # the learner's own copies
    with learner_code(name, call, hiding):
        learner = my_pspnet(*parts, align_corners=model.config.align_corners)
    _refuse_package_model(name, learner)
    learner.train(mode == "train")
    try:
        with torch.no_grad(), learner_code(name, f"{call} on a {tuple(x.shape)} input in {mode} mode", hiding):
            return learner(x.clone())
    except AssertionError as error:
        if " raised " not in str(error):
            raise  # not implemented yet, write it yourself, or the learner's own assertion
        raise AssertionError(f"{error}\n  hint: {FORWARD_RECIPE}") from error.__cause__


def check_pspnet_forward(my_pspnet: Callable[..., Any]) -> None:
    """Check a class ``MyPSPNet(backbone, ppm, head, aux_head=None, align_corners=False)`` on 6 cases.

    ``forward(x)`` must return ``{"out": (B, K, H, W), "aux": (B, K, H, W)}`` (no "aux" without
    an aux head), equal to :class:`pspnet_edu.pspnet.PSPNet` on the same weights.

    >>> check_pspnet_forward(PSPNet)
    Traceback (most recent call last):
    AssertionError: PSPNet is the package's own module: write your own class
    """
    import torch

    name = learner_name(my_pspnet)
    if my_pspnet is PSPNET_FORWARD_HIDDEN[0]:
        raise AssertionError(f"{name} is the package's own module: write your own class")
    require_callable(my_pspnet)
    refuse_reference(my_pspnet, PSPNET_FORWARD_HIDDEN, name)
    # The references and their outputs, before PSPNet is hidden.
    generator = torch.Generator().manual_seed(0)
    cases = []
    for index, (overrides, shape, mode, hint) in enumerate(_FORWARD_SPECS):
        model = _reference_model(overrides, seed=index).train(mode == "train")
        x = torch.randn(shape, generator=generator)
        with torch.no_grad():
            expected = model(x.clone())  # {"out": (B, K, H, W)[, "aux": (B, K, H, W)]}
        cases.append((model, x, mode, hint, expected))
    failure = None
    with hidden(*PSPNET_FORWARD_HIDDEN) as hiding:
        for model, x, mode, hint, expected in cases:
            got = _forward_once(name, my_pspnet, model, x, mode, hiding)
            detail = differences(expected, got, rtol=1e-4, atol=1e-5)
            if detail is not None:
                failure = model, x, mode, hint, expected, got, detail
                break
    if failure is None:
        passed(name, "pspnet_edu.pspnet.PSPNet", len(cases))
        return
    model, x, mode, hint, expected, got, detail = failure  # diagnosed here: the hints run the reference's parts
    call = f"{_call_text(name, model)} on a {tuple(x.shape)} input in {mode} mode"
    hints = f"{hint} {_forward_diagnose(model, x, mode, expected, got)}"
    raise fail(call, _summary(expected), _summary(got), detail, hints)


# ------------------------------------------------------------------ parameters of a head


def head_parameters(in_channels: int, mid_channels: int, num_classes: int) -> int:
    """The reference: learnable parameters of ``SegmentationHead``, counted on the meta device.

    >>> head_parameters(4096, 512, 19)  # the main head of the "paper" preset
    18885139
    """
    import torch

    with torch.device("meta"):
        head = SegmentationHead(in_channels, mid_channels, num_classes, dropout=0.1)
    return sum(p.numel() for p in head.parameters())


HEAD_PARAMETERS_HIDDEN = (head_parameters, SegmentationHead)  # hidden while the learner's code runs

_HEAD_CASES = (
    Case((4096, 512, 19), hint="the main head of the paper's PSPNet-50 (Cityscapes)."),
    Case((1024, 256, 19), hint="its auxiliary head on layer3."),
    Case((4096, 512, 150), hint="ADE20K has 150 classes."),
    Case((256, 64, 19), hint="the main head of the tiny preset."),
    Case((64, 32, 19), hint="the auxiliary head of the tiny preset (on layer3, 64 channels)."),
    Case((8, 4, 2)),
)


def _head_diagnose(case: Case, expected: Any, got: Any) -> str:
    c, m, k = case.args
    base = ("count 3*3*in*mid for the 3x3 conv (no bias: BatchNorm follows), 2*mid for the "
            "BatchNorm's weight and bias, nothing for ReLU and Dropout, mid*classes + classes "
            "for the 1x1 classifier (it has a bias).")
    if got == expected + 2 * m:
        return "running_mean and running_var are buffers, not parameters. " + base
    if got == expected + m:
        return "the 3x3 conv has no bias (bias=False): the BatchNorm after it adds its own shift. " + base
    if got == expected - k:
        return "the final 1x1 conv has a bias, one per class. " + base
    if got == expected - 2 * m:
        return "BatchNorm has two learnable vectors: weight (gamma) and bias (beta). " + base
    if got == expected - 8 * c * m:
        return "the first conv is 3x3: 9 weights per (input, output) channel pair. " + base
    return base


def check_head_parameters(my_head_parameters: Callable[[int, int, int], int]) -> None:
    """Check ``my_head_parameters(in_channels, mid_channels, num_classes)`` on 6 heads.

    >>> check_head_parameters(lambda c, m, k: 9 * c * m + 2 * m + m * k + k)
    ✓ <lambda> matches pspnet_edu.pspnet.SegmentationHead on 6 cases
    """
    check_cases(my_head_parameters, head_parameters, _HEAD_CASES, hide=HEAD_PARAMETERS_HIDDEN, hint=_head_diagnose,
                against="pspnet_edu.pspnet.SegmentationHead")
