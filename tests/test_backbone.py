"""Tests for pspnet_edu.backbone: dilation, shapes, names, and equality with torchvision."""

import os

import pytest
import torch
import torchvision
from torch import nn
from torchvision.models.feature_extraction import create_feature_extractor

from pspnet_edu.backbone import (
    ResNet,
    dilation_plan,
    feature_size,
    load_torchvision_weights,
    scaled_channels,
)
from pspnet_edu.pspnet import build_pspnet
from reference import randomise_batchnorm


def without_fc(state_dict: dict) -> dict:
    return {k: v for k, v in state_dict.items() if not k.startswith("fc.")}


def test_equals_torchvision_dilated_resnet50_with_the_same_weights():
    torch.manual_seed(0)
    reference = torchvision.models.resnet50(replace_stride_with_dilation=[False, True, True])
    randomise_batchnorm(reference)
    ours = ResNet(depth=50, output_stride=8, stem="torchvision", dilation_schedule="torchvision")
    ours.load_state_dict(without_fc(reference.state_dict()), strict=True)
    extractor = create_feature_extractor(reference, {"layer3": "aux", "layer4": "out"})
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected, got = extractor.eval()(x), ours.eval()(x)
    for name in ("aux", "out"):
        assert got[name].shape == expected[name].shape == (2, 1024 * (name == "aux") + 2048 * (name == "out"), 8, 8)
        torch.testing.assert_close(got[name], expected[name], rtol=1e-4, atol=1e-4)


def test_equals_torchvision_resnet18_at_output_stride_32():
    torch.manual_seed(0)
    reference = torchvision.models.resnet18()
    randomise_batchnorm(reference)
    ours = ResNet(depth=18, output_stride=32)
    ours.load_state_dict(without_fc(reference.state_dict()), strict=True)
    extractor = create_feature_extractor(reference, {"layer3": "aux", "layer4": "out"})
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        expected, got = extractor.eval()(x), ours.eval()(x)
    for name in ("aux", "out"):
        torch.testing.assert_close(got[name], expected[name], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("depth", [18, 34, 50, 101, 152])
def test_state_dict_names_and_shapes_match_torchvision(depth):
    with torch.device("meta"):
        reference = getattr(torchvision.models, f"resnet{depth}")().state_dict()
        ours = ResNet(depth=depth).state_dict()
    assert {k: v.shape for k, v in ours.items()} == {
        k: v.shape for k, v in without_fc(reference).items()
    }


@pytest.mark.parametrize("output_stride", [8, 16, 32])
@pytest.mark.parametrize("depth", [18, 50])
def test_feature_sizes_follow_the_output_stride(depth, output_stride):
    net = ResNet(depth=depth, output_stride=output_stride, width=0.125).eval()
    for height, width in [(64, 64), (97, 131), (41, 45)]:
        with torch.no_grad():
            feats = net(torch.zeros(1, 3, height, width))
        expected = (feature_size(height, output_stride), feature_size(width, output_stride))
        assert feats["out"].shape[-2:] == expected
        aux_stride = min(output_stride, 16)  # layer3 is at 1/16 when layer4 has stride 2
        assert feats["aux"].shape[-2:] == (feature_size(height, aux_stride), feature_size(width, aux_stride))
        assert feats["out"].shape[1] == net.out_channels and feats["aux"].shape[1] == net.aux_channels


def conv2_dilations(stage: nn.Sequential) -> list[int]:
    """Dilation of the 3x3 conv of each block (conv2 in Bottleneck, conv1 and conv2 in BasicBlock)."""
    return [block.conv2.dilation[0] for block in stage]


def test_paper_schedule_dilates_every_block():
    net = ResNet(depth=50, output_stride=8, stem="deep", dilation_schedule="paper", width=0.125)
    assert conv2_dilations(net.layer3) == [2] * 6
    assert conv2_dilations(net.layer4) == [4] * 3
    assert all(block.conv2.stride == (1, 1) for block in [*net.layer3, *net.layer4])
    assert net.layer3[0].downsample[0].stride == (1, 1)
    assert net.layer2[0].conv2.stride == (2, 2)  # V1.5: the stride is in the 3x3 conv


def test_torchvision_schedule_keeps_the_previous_dilation_in_the_first_block():
    net = ResNet(depth=50, output_stride=8, dilation_schedule="torchvision", width=0.125)
    assert conv2_dilations(net.layer3) == [1, 2, 2, 2, 2, 2]
    assert conv2_dilations(net.layer4) == [2, 4, 4]
    net16 = ResNet(depth=50, output_stride=16, dilation_schedule="torchvision", width=0.125)
    assert conv2_dilations(net16.layer3) == [1] * 6 and conv2_dilations(net16.layer4) == [1, 2, 2]


def test_basic_block_is_dilated_in_both_convs():
    net = ResNet(depth=18, output_stride=8, dilation_schedule="paper", width=0.125)
    for block in net.layer4:
        assert block.conv1.dilation == block.conv2.dilation == (4, 4)
        assert block.conv1.padding == (4, 4)


def test_deep_stem_has_the_papers_channels_and_names():
    net = ResNet(depth=50, stem="deep")
    assert [net.conv1.out_channels, net.conv2.out_channels, net.conv3.out_channels] == [64, 64, 128]
    assert all(m.kernel_size == (3, 3) for m in (net.conv1, net.conv2, net.conv3))
    assert net.layer1[0].conv1.in_channels == 128


def test_width_multiplier_scales_every_stage():
    net = ResNet(depth=18, width=0.25)
    assert net.conv1.out_channels == 16
    assert [stage[-1].conv2.out_channels for stage in (net.layer1, net.layer2, net.layer3, net.layer4)] == [16, 32, 64, 128]
    assert scaled_channels(100, 0.3) % 8 == 0


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(depth=42), ["depth", "[18, 34, 50, 101, 152]"]),
        (dict(output_stride=4), ["output_stride", "(8, 16, 32)"]),
        (dict(stem="resnetd"), ["stem", "torchvision", "deep"]),
        (dict(dilation_schedule="hdc"), ["dilation_schedule", "paper"]),
        (dict(width=0), ["width"]),
    ],
)
def test_bad_arguments_name_the_choices(kwargs, words):
    with pytest.raises(ValueError) as error:
        ResNet(**kwargs)
    assert all(word in str(error.value) for word in words)


def test_dilation_plan_reaches_the_output_stride():
    for output_stride in (8, 16, 32):
        plan = dilation_plan(output_stride, "paper", (3, 4, 6, 3))
        strides = [stage[0][0] for stage in plan]
        assert 4 * strides[0] * strides[1] * strides[2] * strides[3] == output_stride


def write_fake_torchvision_weights(torch_home, depth: int = 50) -> dict:
    """A random torchvision ResNet state dict where torchvision's cache expects the real one."""
    torch.manual_seed(1)
    state_dict = getattr(torchvision.models, f"resnet{depth}")().state_dict()
    url = getattr(torchvision.models, f"ResNet{depth}_Weights").IMAGENET1K_V1.url
    folder = torch_home / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    torch.save(state_dict, folder / os.path.basename(url))
    return state_dict


def test_pretrained_backbone_loads_through_the_weights_api_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    saved = write_fake_torchvision_weights(tmp_path)
    model = build_pspnet("torchvision", num_classes=5, pretrained_backbone=True)
    loaded = model.backbone.state_dict()
    assert set(loaded) == set(without_fc(saved))
    for key, value in loaded.items():
        assert torch.equal(value, saved[key]), key


def test_missing_weights_file_says_where_to_put_it(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    backbone = ResNet(depth=18)
    with pytest.raises(FileNotFoundError) as error:
        load_torchvision_weights(backbone, download=False)
    message = str(error.value)
    assert str(tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth") in message
    assert "https://download.pytorch.org/models/resnet18-f37072fd.pth" in message


def test_imagenet_weights_refuse_the_deep_stem_and_narrow_nets():
    with pytest.raises(ValueError, match="stem"):
        load_torchvision_weights(ResNet(depth=18, stem="deep"), download=False)
    with pytest.raises(ValueError, match="width"):
        load_torchvision_weights(ResNet(depth=18, width=0.5), download=False)
    with pytest.raises(ValueError, match="IMAGENET1K_V1"):
        load_torchvision_weights(ResNet(depth=18), name="IMAGENET22K", download=False)
