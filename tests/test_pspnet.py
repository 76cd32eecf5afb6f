"""Tests for pspnet_edu.pspnet: presets, parameter counts, shapes, structure, config, errors."""

import dataclasses
import json

import pytest
import torch
import torchvision
from reference.semseg_pspnet import PSPNet as OfficialPSPNet
from torch import nn

from pspnet_edu.backbone import feature_size
from pspnet_edu.ppm import PyramidPoolingModule
from pspnet_edu.pspnet import PSPNet, PSPNetConfig, build_pspnet


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# Parameter counts with 19 classes (Cityscapes):
#  * paper:       49,080,038 = hszhao/semseg PSPNet(layers=50, classes=19) (transcribed in
#                 tests/reference/semseg_pspnet.py; counted in the next test);
#  * torchvision: 48,956,262 = torchvision resnet50 without fc (23,508,032) + the same PPM
#                 and heads as the paper (25,448,230);
#  * tiny:           886,678 (ResNet-18 at width 0.25 + PPM 128 -> 4 x 32 + heads 64 / 32).
PARAMETERS = {"paper": 49_080_038, "torchvision": 48_956_262, "tiny": 886_678}


@pytest.mark.parametrize("preset", sorted(PARAMETERS))
def test_parameter_counts(preset):
    with torch.device("meta"):
        assert count(build_pspnet(preset)) == PARAMETERS[preset]


def test_paper_preset_has_as_many_parameters_as_the_official_code():
    with torch.device("meta"):
        official = OfficialPSPNet(layers=50, classes=19)
        ours = build_pspnet("paper")
    assert count(ours) == count(official) == PARAMETERS["paper"]
    resnet50 = torchvision.models.resnet50()
    head = count(ours) - count(ours.backbone)
    assert count(build_pspnet("torchvision")) == count(resnet50) - count(resnet50.fc) + head


def test_top_level_modules_are_the_names_training_relies_on():
    model = build_pspnet("tiny")
    assert [name for name, _ in model.named_children()] == ["backbone", "ppm", "head", "aux_head"]
    groups = {name.split(".")[0] for name, _ in model.named_parameters()}
    assert groups == {"backbone", "ppm", "head", "aux_head"}


@pytest.mark.parametrize("training", [True, False])
def test_returns_out_and_aux_at_input_size_in_train_and_eval(training):
    torch.manual_seed(0)
    model = build_pspnet("tiny", num_classes=7).train(training)
    out = model(torch.randn(2, 3, 97, 131))
    assert sorted(out) == ["aux", "out"]
    assert out["out"].shape == out["aux"].shape == (2, 7, 97, 131)


def test_paper_preset_runs_at_an_odd_size():
    model = build_pspnet("paper", num_classes=3).eval()
    assert model.config.align_corners and model.ppm.align_corners
    with torch.no_grad():
        out = model(torch.randn(1, 3, 50, 66))  # not 8n+1
    assert out["out"].shape == out["aux"].shape == (1, 3, 50, 66)


def test_eval_is_deterministic_and_train_uses_dropout():
    torch.manual_seed(0)
    model = build_pspnet("tiny", dropout=0.5)
    x = torch.randn(2, 3, 64, 64)
    model.eval()
    torch.testing.assert_close(model(x)["out"], model(x)["out"])
    model.train()  # BatchNorm in train mode is deterministic too: any difference is dropout's
    with torch.no_grad():
        first, second = model(x), model(x)
    assert not torch.equal(first["out"], second["out"]) and not torch.equal(first["aux"], second["aux"])
    without = build_pspnet("tiny", dropout=0.0).train()
    with torch.no_grad():
        torch.testing.assert_close(without(x)["out"], without(x)["out"])


def test_channels_last_training_reads_the_logits_in_place_with_the_plain_losses_gradients():
    # In channels_last (the trainer's layout) the logits stay channels_last through the
    # upsampling, and the loss reads them as rows of scores (pspnet_edu.loss), with no copy to
    # (B, K, H, W): the same loss and gradients as the loss of that copy, to float rounding
    # (the sums run in another order).
    from pspnet_edu.loss import pspnet_loss

    def run(copy: bool) -> tuple[dict[str, torch.Tensor], torch.Tensor, dict[str, torch.Tensor]]:
        torch.manual_seed(0)
        model = build_pspnet("tiny", dropout=0.0).train().to(memory_format=torch.channels_last)
        outputs = model(torch.randn(4, 3, 128, 256).contiguous(memory_format=torch.channels_last))
        target = torch.randint(0, 19, (4, 128, 256))
        target[:, :8] = 255
        loss, _ = pspnet_loss({k: v.contiguous() for k, v in outputs.items()} if copy else outputs, target,
                              class_weights=torch.linspace(0.5, 2.0, 19))
        loss.backward()
        return outputs, loss, {name: p.grad for name, p in model.named_parameters()}

    outputs, loss, in_place = run(copy=False)
    _, copied_loss, copied = run(copy=True)
    assert all(out.is_contiguous(memory_format=torch.channels_last) and not out.is_contiguous()
               for out in outputs.values())
    torch.testing.assert_close(loss, copied_loss, rtol=1e-6, atol=1e-6)
    for name in copied:
        torch.testing.assert_close(in_place[name], copied[name], rtol=1e-4, atol=1e-6, msg=name)


def test_without_aux_head_there_is_no_aux_output():
    model = build_pspnet("tiny", aux=False)
    assert model.aux_head is None
    assert sorted(model(torch.randn(2, 3, 64, 64))) == ["out"]


def test_without_ppm_the_head_sits_on_layer4():
    model = build_pspnet("tiny", use_ppm=False)
    assert isinstance(model.ppm, nn.Identity)
    assert model.head.conv.in_channels == model.backbone.out_channels
    out = model(torch.randn(1, 3, 16, 24))  # no PPM: batch 1 trains, small inputs work
    assert out["out"].shape[-2:] == (16, 24)


@pytest.mark.parametrize("overrides", [dict(bins=(1,)), dict(pooling="max"),
                                       dict(bins=(1, 2, 4, 8), ppm_channels=16)])
def test_table1_ablation_variants_build_and_run(overrides):
    model = build_pspnet("tiny", **overrides).eval()
    assert isinstance(model.ppm, PyramidPoolingModule)
    pooled = [tuple(branch.pool(torch.zeros(1, 1, 65, 65)).shape[-2:]) for branch in model.ppm.branches]
    expected = overrides.get("bins", PSPNetConfig().bins)
    assert pooled == [(b, b) for b in expected]  # each branch pools to its own bins x bins grid
    pools = {type(branch.pool) for branch in model.ppm.branches}
    assert pools == {nn.AdaptiveMaxPool2d if overrides.get("pooling") == "max" else nn.AdaptiveAvgPool2d}
    assert model(torch.randn(1, 3, 65, 65))["out"].shape == (1, 19, 65, 65)


def test_config_round_trips_through_asdict_and_json():
    config = build_pspnet("tiny", bins=(1, 3), pooling="max").config
    saved = json.loads(json.dumps(dataclasses.asdict(config)))  # tuples become lists
    assert saved["bins"] == [1, 3]
    rebuilt = PSPNet(PSPNetConfig(**saved))
    assert rebuilt.config == config
    original = build_pspnet("tiny", bins=(1, 3), pooling="max").state_dict()
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {
        k: v.shape for k, v in original.items()}


def test_minimum_input_size_is_where_the_feature_map_covers_the_largest_bin():
    model = build_pspnet("tiny").eval()
    assert model.min_input_size == 41 and feature_size(41, 8) == 6 and feature_size(40, 8) == 5
    model(torch.randn(1, 3, 41, 41))
    with pytest.raises(ValueError, match=r"40x64 is too small.*at least 41x41.*5x8"):
        model(torch.randn(1, 3, 40, 64))


@pytest.mark.parametrize(
    "x, text",
    [
        (torch.zeros(3, 64, 64), r"\(B, 3, H, W\), got \(3, 64, 64\).*unsqueeze"),
        (torch.zeros(2, 4, 64, 64), r"\(B, 3, H, W\), got \(2, 4, 64, 64\)"),
        (torch.zeros(2, 3, 64, 64, dtype=torch.uint8), "float images.*uint8"),
        ([[0.0]], r"\(B, 3, H, W\), got list"),
    ],
)
def test_bad_inputs_get_clear_errors(x, text):
    with pytest.raises(ValueError, match=text):
        build_pspnet("tiny").eval()(x)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_images_of_another_float_dtype_than_the_weights(dtype):
    """Once a dtype-mismatch traceback from deep inside the first conv."""
    with pytest.raises(ValueError, match=rf"PSPNet got {dtype} images but its weights are torch.float32; convert "
                                         rf"the images with x.float\(\), or the model with model.to\({dtype}\)"):
        build_pspnet("tiny").eval()(torch.zeros(1, 3, 64, 64, dtype=dtype))


def test_a_float64_model_takes_float64_images_and_names_the_fix_for_float32():
    model = build_pspnet("tiny").eval().to(torch.float64)
    assert model(torch.zeros(1, 3, 64, 64, dtype=torch.float64))["out"].dtype == torch.float64
    with pytest.raises(ValueError, match=r"weights are torch.float64; convert the images with x.to\(torch.float64\)"):
        model(torch.zeros(1, 3, 64, 64))


def test_autocast_may_mix_dtypes_except_float64():
    model = build_pspnet("tiny").eval()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert model(torch.zeros(1, 3, 64, 64, dtype=torch.bfloat16))["out"].dtype == torch.bfloat16
        with pytest.raises(ValueError, match="PSPNet got torch.float64 images"):
            model(torch.zeros(1, 3, 64, 64, dtype=torch.float64))  # autocast never casts float64


def test_batch_size_one_in_training_is_explained():
    model = build_pspnet("tiny")
    with pytest.raises(ValueError, match="batch size 1 in training mode.*BatchNorm"):
        model(torch.randn(1, 3, 64, 64))
    model.eval()(torch.randn(1, 3, 64, 64))


@pytest.mark.parametrize(
    "preset, overrides, text",
    [
        ("large", {}, r"unknown preset 'large'; choose one of \['paper', 'tiny', 'torchvision'\]"),
        ("tiny", dict(colour=1), r"unknown PSPNetConfig field\(s\) \['colour'\]; valid fields: num_classes"),
        ("tiny", dict(depth=42), r"depth must be one of \[18, 34, 50, 101, 152\]"),
        ("tiny", dict(pooling="median"), r"pooling must be one of \('avg', 'max', 'none'\)"),
        ("tiny", dict(stem="resnetd"), "stem must be one of"),
        ("tiny", dict(output_stride=4), "output_stride must be one of"),
        ("tiny", dict(bins=(1, 2, 3)), "3 bins .* do not divide the 128 input channels"),
        ("tiny", dict(bins=(0,)), "bins must be positive"),
        ("tiny", dict(num_classes=1), "num_classes must be at least 2"),
        ("tiny", dict(num_classes="19"), r"num_classes must be an integer, got '19' \(str\)"),
        ("tiny", dict(bins=(1, 2.0)), "bins must be a tuple of integers"),
    ],
)
def test_bad_configurations_name_the_choices(preset, overrides, text):
    with pytest.raises(ValueError, match=text):
        build_pspnet(preset, **overrides)
