"""Tests for pspnet_edu/checks/pspnet.py (the self-checks of notebook 05)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pspnet_edu.checks.pspnet import (
    _FORWARD_SPECS,
    _reference_model,
    check_head_parameters,
    check_pspnet_forward,
    head_parameters,
)
from pspnet_edu.pspnet import PSPNet, build_pspnet


def count(module):
    return sum(p.numel() for p in module.parameters())


def test_head_reference_counts_the_real_heads():
    with torch.device("meta"):
        paper = build_pspnet("paper")
    tiny = build_pspnet("tiny")
    assert head_parameters(4096, 512, 19) == count(paper.head) == 9 * 4096 * 512 + 2 * 512 + 512 * 19 + 19
    assert head_parameters(1024, 256, 19) == count(paper.aux_head)
    assert head_parameters(256, 64, 19) == count(tiny.head)
    assert head_parameters(64, 32, 19) == count(tiny.aux_head)


def test_head_parameters_check(capsys):
    def my_head_parameters(in_channels, mid_channels, num_classes):
        return 9 * in_channels * mid_channels + 2 * mid_channels + mid_channels * num_classes + num_classes

    check_head_parameters(my_head_parameters)
    assert capsys.readouterr().out == "✓ my_head_parameters matches pspnet_edu.pspnet.SegmentationHead on 6 cases\n"


@pytest.mark.parametrize(
    ("wrong", "hint"),
    [
        (lambda c, m, k: 9 * c * m + 4 * m + m * k + k, "buffers, not parameters"),
        (lambda c, m, k: 9 * c * m + m + 2 * m + m * k + k, "has no bias"),
        (lambda c, m, k: 9 * c * m + 2 * m + m * k, "has a bias, one per class"),
        (lambda c, m, k: c * m + 2 * m + m * k + k, "the first conv is 3x3"),
    ],
)
def test_head_parameters_mistakes_are_named(wrong, hint):
    with pytest.raises(AssertionError, match="gave a wrong result") as info:
        check_head_parameters(wrong)
    assert hint in str(info.value)


# ------------------------------------------------------------------ the forward pass


class RightPSPNet(nn.Module):
    def __init__(self, backbone, ppm, head, aux_head=None, align_corners=False):
        super().__init__()
        self.backbone, self.ppm, self.head, self.aux_head = backbone, ppm, head, aux_head
        self.align_corners = align_corners

    def upsample(self, logits, size):
        return F.interpolate(logits, size, mode="bilinear", align_corners=self.align_corners)

    def logits(self, features):
        return self.head(self.ppm(features["out"]))

    def forward(self, x):
        features = self.backbone(x)
        result = {"out": self.upsample(self.logits(features), x.shape[-2:])}
        if self.aux_head is not None:
            result["aux"] = self.upsample(self.aux_head(features["aux"]), x.shape[-2:])
        return result


class ScaleFactor(RightPSPNet):
    def upsample(self, logits, size):
        return F.interpolate(logits, scale_factor=8, mode="bilinear", align_corners=self.align_corners)


class AlwaysAlignFalse(RightPSPNet):
    def upsample(self, logits, size):
        return F.interpolate(logits, size, mode="bilinear", align_corners=False)


class Nearest(RightPSPNet):
    def upsample(self, logits, size):
        return F.interpolate(logits, size)


class NotUpsampled(RightPSPNet):
    def upsample(self, logits, size):
        return logits


class FeaturesUpsampled(RightPSPNet):
    def forward(self, x):
        features = self.backbone(x)
        mapped = self.upsample(self.ppm(features["out"]), x.shape[-2:])
        result = {"out": self.head(mapped)}
        if self.aux_head is not None:
            result["aux"] = self.upsample(self.aux_head(features["aux"]), x.shape[-2:])
        return result


class Swapped(RightPSPNet):
    def forward(self, x):
        result = super().forward(x)
        return {"out": result["aux"], "aux": result["out"]} if "aux" in result else result


class AuxOnLayer4(RightPSPNet):
    def forward(self, x):
        features = self.backbone(x)
        return {"out": self.upsample(self.logits(features), x.shape[-2:]),
                "aux": self.upsample(self.aux_head(features["out"]), x.shape[-2:])}


class AlwaysAux(RightPSPNet):
    def forward(self, x):
        result = super().forward(x)
        result.setdefault("aux", result["out"])
        return result


def test_forward_check_passes_a_right_module_and_leaves_the_global_rng_alone(capsys):
    torch.manual_seed(5)
    before = torch.random.get_rng_state()
    check_pspnet_forward(RightPSPNet)
    assert torch.equal(torch.random.get_rng_state(), before)
    assert capsys.readouterr().out == "✓ RightPSPNet matches pspnet_edu.pspnet.PSPNet on 6 cases\n"


def test_forward_cases_cover_what_the_brief_needs():
    sizes = [shape[-2:] for _, shape, _, _ in _FORWARD_SPECS]
    assert any(h % 8 and w % 8 for h, w in sizes)  # sides 8 does not divide
    assert {spec.get("align_corners", False) for spec, *_ in _FORWARD_SPECS} == {True, False}
    assert {spec.get("aux", True) for spec, *_ in _FORWARD_SPECS} == {True, False}
    assert {mode for *_, mode, _ in _FORWARD_SPECS} == {"train", "eval"}
    model = _reference_model({"aux": False}, seed=0)
    assert model.aux_head is None and sorted(model.eval()(torch.zeros(1, 3, 41, 41))) == ["out"]


@pytest.mark.parametrize(
    ("wrong", "hint"),
    [
        (ScaleFactor, "scale_factor=8 gives 8 * ceil(H / 8)"),
        (NotUpsampled, "is still at 1/8 of the input"),
        (AlwaysAlignFalse, "use align_corners=self.align_corners (here True)"),
        (Nearest, "not the default 'nearest'"),
        (FeaturesUpsampled, "upsample the LOGITS after the head"),
        (Swapped, "'out' and 'aux' are swapped"),
        (AlwaysAux, "without an auxiliary head (aux_head is None) return only"),
    ],
)
def test_forward_plausible_mistakes_are_named(wrong, hint):
    with pytest.raises(AssertionError, match="gave a wrong result") as info:
        check_pspnet_forward(wrong)
    message = str(info.value)
    assert hint in message and "0x" not in message and "tensor([" not in message, message


def test_forward_an_error_in_the_learners_forward_gets_the_recipe():
    with pytest.raises(AssertionError, match=r"raised RuntimeError: (.|\n)*hint: features = self.backbone\(x\)"):
        check_pspnet_forward(AuxOnLayer4)


def test_forward_refuses_the_package_model_in_every_form():
    with pytest.raises(AssertionError, match="PSPNet is the package's own module"):
        check_pspnet_forward(PSPNet)

    class MyPSPNet(PSPNet):
        pass

    with pytest.raises(AssertionError, match="MyPSPNet subclasses pspnet_edu.pspnet.PSPNet"):
        check_pspnet_forward(MyPSPNet)

    prebuilt = build_pspnet("tiny")

    def holds_one(backbone, ppm, head, aux_head=None, align_corners=False):
        return nn.Sequential(prebuilt)

    with pytest.raises(AssertionError, match="holds_one uses pspnet_edu.pspnet.PSPNet, the class"):
        check_pspnet_forward(holds_one)

    def builds_one(backbone, ppm, head, aux_head=None, align_corners=False):
        return build_pspnet("tiny")

    with pytest.raises(AssertionError, match="builds_one uses pspnet_edu.pspnet.PSPNet, the class"):
        check_pspnet_forward(builds_one)
    assert isinstance(build_pspnet("tiny", aux=False), PSPNet)  # back afterwards


def test_forward_a_function_instead_of_a_module_is_explained():
    def my_pspnet(backbone, ppm, head, aux_head=None, align_corners=False):
        return lambda x: {"out": x}

    with pytest.raises(AssertionError, match="not an nn.Module: define `class my_pspnet"):
        check_pspnet_forward(my_pspnet)
