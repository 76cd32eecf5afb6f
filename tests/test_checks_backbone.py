"""Tests for pspnet_edu/checks/backbone.py (the self-checks of notebook 03)."""

from __future__ import annotations

import math

import pytest
import torch
import torchvision

from pspnet_edu.checks.backbone import (
    DILATE_CASES,
    check_dilate,
    check_feature_sizes,
    dilated_reference,
    feature_sizes,
    plain_resnet,
    stage_outputs,
)


def right_feature_sizes(input_size, output_stride):
    return [math.ceil(input_size / s) for s in (2, 4, 8, min(16, output_stride), min(32, output_stride))]


@pytest.mark.parametrize(("size", "output_stride"), [(97, 8), (65, 16), (100, 32)])
def test_reference_equals_torchvision_resnet50(size, output_stride):
    # An independent network: torchvision's ResNet-50 with replace_stride_with_dilation.
    dilate = {8: [False, True, True], 16: [False, False, True], 32: [False, False, False]}[output_stride]
    with torch.device("meta"):  # shapes only: no memory, no arithmetic
        net = torchvision.models.resnet50(replace_stride_with_dilation=dilate)
        sizes = {}
        for name in ("conv1", "layer1", "layer2", "layer3", "layer4"):
            net.get_submodule(name).register_forward_hook(lambda m, i, o, name=name: sizes.__setitem__(name, o.shape[-1]))
        net(torch.zeros(1, 3, size, size))
    assert feature_sizes(size, output_stride) == list(sizes.values()) == right_feature_sizes(size, output_stride)


def test_feature_sizes_reference_passes(capsys):
    def my_feature_sizes(input_size, output_stride):
        return right_feature_sizes(input_size, output_stride)

    check_feature_sizes(my_feature_sizes)
    assert capsys.readouterr().out == "✓ my_feature_sizes matches pspnet_edu.backbone.ResNet on 9 cases\n"


@pytest.mark.parametrize(
    ("wrong", "hint"),
    [
        (lambda n, os: [n // s for s in (2, 4, 8, min(16, os), min(32, os))], "round UP"),
        (lambda n, os: [math.ceil(n / s) for s in (2, 4, 8, 16, 32)], "stop halving"),
        (lambda n, os: [math.ceil(n / s) for s in (2, 2, 4, min(8, os), min(16, os))], "max-pool"),
    ],
)
def test_feature_sizes_plausible_mistakes_are_named(wrong, hint):
    with pytest.raises(AssertionError, match="gave a wrong result") as info:
        check_feature_sizes(wrong)
    assert hint in str(info.value)


# ------------------------------------------------------------------ my_dilate_


def surgery(resnet, output_stride, *, pick=None, unstride=None, pad=lambda d: d, first_keeps=True,
            downsample=True, carry=True, double=True, respect_output_stride=True):
    """A right answer by default; each keyword makes one of the usual mistakes."""
    pick = pick or (lambda block: [c for c in (block.conv1, block.conv2) if c.kernel_size == (3, 3)])
    unstride = unstride or (lambda block: [block.conv1, block.conv2])
    stride, dilation = 8, 1
    for stage in (resnet.layer3, resnet.layer4):
        if respect_output_stride and stride < output_stride:
            stride *= 2
            continue
        previous = dilation if carry else 1
        dilation = 2 * dilation if double or dilation == 1 else dilation
        for index, block in enumerate(stage):
            d = previous if index == 0 and first_keeps else dilation
            for conv in unstride(block):
                conv.stride = (1, 1)
            for conv in pick(block):
                conv.dilation, conv.padding = (d, d), (pad(d), pad(d))
            if downsample and block.downsample is not None:
                block.downsample[0].stride = (1, 1)
    return resnet


def right_dilate_(resnet, output_stride):
    return surgery(resnet, output_stride)


def test_reference_is_torchvision_replace_stride_with_dilation_for_bottlenecks():
    for output_stride, dilate in ((8, [False, True, True]), (16, [False, False, True])):
        with torch.device("meta"):  # no initialisation: the weights are loaded next
            theirs = torchvision.models.resnet50(replace_stride_with_dilation=dilate)
        theirs = theirs.to_empty(device="cpu").eval()
        theirs.load_state_dict(plain_resnet(50).state_dict())
        ours = dilated_reference(50, output_stride)
        x = torch.randn(1, 3, 97, 81, generator=torch.Generator().manual_seed(1))
        for a, b in zip(stage_outputs(theirs, x), stage_outputs(ours, x)):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_reference_has_torchvision_names_and_a_fresh_plain_network_each_time():
    plain = plain_resnet(18)
    assert {k for k in plain.state_dict() if not k.startswith("fc.")} == set(dilated_reference(18, 8).state_dict())
    assert plain_resnet(18) is not plain and plain_resnet(18).layer3[0].conv1.stride == (2, 2)
    state = torch.random.get_rng_state()
    plain_resnet(50)
    assert torch.equal(torch.random.get_rng_state(), state)


def test_dilate_right_answer_passes_and_leaves_the_rng_alone(capsys):
    state = torch.random.get_rng_state()
    check_dilate(right_dilate_)
    assert capsys.readouterr().out == "✓ right_dilate_ matches pspnet_edu.backbone.ResNet on 12 cases\n"
    assert torch.equal(torch.random.get_rng_state(), state)
    assert {depth for depth, _ in DILATE_CASES} == {18, 34, 50, 101}


def test_dilate_accepts_int_attributes_and_same_padding(capsys):
    def my_dilate_(resnet, output_stride):
        surgery(resnet, output_stride)
        for module in resnet.modules():
            if isinstance(module, torch.nn.Conv2d) and module.stride == (1, 1) and module.kernel_size == (3, 3):
                module.padding, module.dilation = "same", module.dilation[0]
        return resnet

    check_dilate(my_dilate_)
    assert capsys.readouterr().out.startswith("✓ my_dilate_ matches")


BOTTLENECK_ONLY_CONV2 = {"pick": lambda block: [block.conv2], "unstride": lambda block: [block.conv2]}


@pytest.mark.parametrize(
    ("mistake", "message"),
    [
        ({"downsample": False}, "The shortcut (downsample) of this block still halves the map"),
        ({"pad": lambda d: 1}, "with dilation 2 spans 5 pixels: it keeps the size of its map only with padding 2"),
        ({"first_keeps": False}, "The first block of a dilated stage keeps the dilation of the stage before (1)"),
        ({"respect_output_stride": False}, "At output stride 16 only layer4 gives up its stride; layer3 still halves"),
        ({"carry": False}, "The first block of layer4 keeps the dilation of the stage before, 2"),
        ({"double": False}, "doubles the dilation it received: at output stride 8, 2 in layer3 and 4 in layer4"),
        ({"pick": lambda block: []},
         "layer3.1.conv1, a 3x3 convolution of the BasicBlock, has stride 1, padding 1, dilation 1"),
        ({"pick": lambda block: [block.conv1, block.conv2]}, "A 1x1 convolution has no neighbours to spread apart"),
        (BOTTLENECK_ONLY_CONV2, "layer3.0.conv1, a 3x3 convolution of the BasicBlock, has stride 2"),
        ({"pick": lambda block: [block.conv2]}, "every 3x3 convolution of a block (conv1 and conv2 in a BasicBlock"),
    ],
    ids=["downsample", "padding", "paper-schedule", "os16-dilates-layer3", "no-carry", "no-doubling",
         "strides-only", "bottleneck-conv1", "stride-in-conv2", "basicblock-conv2-only"],
)
def test_dilate_usual_mistakes_are_named(mistake, message):
    def my_dilate_(resnet, output_stride):
        return surgery(resnet, output_stride, **mistake)

    with pytest.raises(AssertionError) as info:
        check_dilate(my_dilate_)
    assert message in str(info.value), str(info.value)
    assert str(info.value).startswith("my_dilate_(torchvision.models.resnet"), str(info.value)


def test_dilate_the_exact_basicblock_is_told_the_packages_convention():
    def my_dilate_(resnet, output_stride):
        surgery(resnet, output_stride)
        for stage in (resnet.layer3, resnet.layer4):
            d = stage[1].conv1.dilation
            stage[0].conv2.dilation = stage[0].conv2.padding = d  # after the removed stride: exact, not the package's
        return resnet

    with pytest.raises(AssertionError, match=r"both 3x3 convolutions of that first block keep it.*question 6"):
        check_dilate(my_dilate_)


def test_dilate_must_change_the_network_in_place_and_keep_its_weights():
    import copy

    def returns_nothing(resnet, output_stride):
        surgery(resnet, output_stride)

    def returns_a_copy(resnet, output_stride):
        return surgery(copy.deepcopy(resnet), output_stride)

    def new_convolutions(resnet, output_stride):
        surgery(resnet, output_stride)
        for block in resnet.layer4:
            old = block.conv1
            block.conv1 = torch.nn.Conv2d(old.in_channels, old.out_channels, 3, old.stride, old.padding, old.dilation,
                                          bias=False)
            block.conv1.weight.data.copy_(old.weight.data)
        return resnet

    def reinitialised(resnet, output_stride):
        surgery(resnet, output_stride)
        resnet.layer4[1].conv2.reset_parameters()
        return resnet

    def init_again(resnet, output_stride):
        surgery(resnet, output_stride)
        conv = resnet.layer4[1].conv2
        conv.__init__(conv.in_channels, conv.out_channels, 3, padding=conv.padding, dilation=conv.dilation, bias=False)
        return resnet

    for learner, message in [
        (returns_nothing, "returned None: return the network you changed"),
        (returns_a_copy, "returned another ResNet, not the network it was given"),
        (new_convolutions, "replaced the module layer4.0.conv1"),
        (reinitialised, "changed the values of layer4.1.conv2.weight"),
        (init_again, "replaced the tensor layer4.1.conv2.weight"),
    ]:
        with pytest.raises(AssertionError, match=message.replace(".", r"\.")):
            check_dilate(learner)


def test_dilate_refuses_torchvisions_and_the_packages_dilated_resnets():
    import pspnet_edu.backbone as backbone

    def via_torchvision(resnet, output_stride):
        dilated = torchvision.models.resnet50(replace_stride_with_dilation=[False, output_stride == 8, True])
        dilated.load_state_dict(resnet.state_dict())
        resnet.layer3, resnet.layer4 = dilated.layer3, dilated.layer4
        return resnet

    def via_get_model(resnet, output_stride):
        dilated = torchvision.models.get_model("resnet18", replace_stride_with_dilation=[False, True, True])
        return dilated

    def via_package(resnet, output_stride):
        layers = [len(resnet.layer3), 0]
        return backbone.ResNet(depth=18 if layers[0] == 2 else 50, output_stride=output_stride)

    for learner, reference in [(via_torchvision, "torchvision.models.resnet.resnet50"),
                               (via_get_model, "torchvision.models.resnet._resnet"),
                               (via_package, "pspnet_edu.backbone.ResNet")]:
        message = f"^{learner.__name__} (calls|uses) {reference}, the .* write it yourself"
        with pytest.raises(AssertionError, match=message):
            check_dilate(learner)
    assert backbone.ResNet.__name__ == "ResNet" and torchvision.models.resnet50.__name__ == "resnet50"  # back


def test_dilate_stub_is_not_implemented_yet():
    def my_dilate_(resnet, output_stride):
        raise NotImplementedError()

    with pytest.raises(AssertionError, match="^my_dilate_ is not implemented yet"):
        check_dilate(my_dilate_)
