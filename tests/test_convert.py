"""Tests for pspnet_edu.convert: the author's checkpoints load into the "paper" preset.

The official model is tests/reference/semseg_pspnet.py, a transcription of hszhao/semseg.
"""

import pytest
import torch
import torch.nn.functional as F
from reference import randomise_batchnorm
from reference.semseg_pspnet import PSPNet as OfficialPSPNet

from pspnet_edu.convert import semseg_to_pspnet_edu
from pspnet_edu.pspnet import build_pspnet


@pytest.fixture(scope="module")
def official():
    """The official PSPNet-50 with random weights and random BatchNorm statistics."""
    torch.manual_seed(0)
    model = OfficialPSPNet(layers=50, classes=19, pretrained=False)
    randomise_batchnorm(model)
    return model.eval()


@pytest.fixture(scope="module")
def checkpoint(official):
    """What hszhao/semseg's train.py saves: DataParallel keys under 'state_dict'."""
    return {"epoch": 200, "state_dict": {"module." + k: v for k, v in official.state_dict().items()}}


def test_official_weights_give_the_official_logits(official, checkpoint):
    ours = build_pspnet("paper", num_classes=19)
    ours.load_state_dict(semseg_to_pspnet_edu(checkpoint), strict=True)
    ours.eval()
    x = torch.randn(1, 3, 49, 57)  # 8n + 1, which the official code asserts
    captured = {}
    hook = official.layer3.register_forward_hook(lambda m, i, o: captured.update(layer3=o))
    with torch.no_grad():
        expected = official(x)
        expected_aux = F.interpolate(official.aux(captured["layer3"]), (49, 57), mode="bilinear",
                                     align_corners=True)
        got = ours(x)
    hook.remove()
    assert expected.abs().max() > 1  # not a trivially small output
    torch.testing.assert_close(got["out"], expected, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(got["aux"], expected_aux, rtol=1e-5, atol=1e-4)


def test_same_parameter_count_and_tensors(official, checkpoint):
    converted = semseg_to_pspnet_edu(checkpoint)
    assert sum(v.numel() for k, v in converted.items() if "running" not in k and "num_batches" not in k) \
        == sum(p.numel() for p in official.parameters()) == 49_080_038
    assert torch.equal(converted["backbone.conv2.weight"], official.layer0[3].weight)
    assert torch.equal(converted["ppm.branches.3.bn.running_var"], official.ppm.features[3][2].running_var)
    assert torch.equal(converted["head.classifier.bias"], official.cls[4].bias)


def test_bare_state_dicts_without_prefix_convert_too(official, checkpoint):
    bare = semseg_to_pspnet_edu(official.state_dict())
    prefixed = semseg_to_pspnet_edu(checkpoint)
    assert bare.keys() == prefixed.keys()
    assert all(torch.equal(bare[k], prefixed[k]) for k in bare)


def test_old_checkpoints_without_batch_counters_are_accepted(checkpoint):
    old = {k: v for k, v in checkpoint["state_dict"].items() if "num_batches_tracked" not in k}
    converted = semseg_to_pspnet_edu(old)
    assert converted["backbone.bn1.num_batches_tracked"].item() == 0


def test_a_resnet101_checkpoint_is_recognised_by_its_layer3(checkpoint):
    state = dict(checkpoint["state_dict"])
    for block in range(6, 23):  # ResNet-101 has 23 blocks in layer3
        for key, value in checkpoint["state_dict"].items():
            if key.startswith("module.layer3.5."):
                state[key.replace("layer3.5.", f"layer3.{block}.")] = value
    with pytest.raises(ValueError, match=r"layer3 has 23 blocks \(ResNet-101\).*has 6.*depth=101"):
        semseg_to_pspnet_edu(state)
    converted = semseg_to_pspnet_edu(state, depth=101)
    with torch.device("meta"):
        model = build_pspnet("paper", depth=101)
    assert converted.keys() == model.state_dict().keys()


def test_wrong_class_count_is_named(checkpoint):
    with pytest.raises(ValueError, match="19 classes.*not 21.*num_classes=19"):
        semseg_to_pspnet_edu(checkpoint, num_classes=21)


def test_missing_and_unexpected_keys_are_named(checkpoint):
    state = dict(checkpoint["state_dict"])
    del state["module.ppm.features.0.1.weight"]
    state["module.extra.weight"] = torch.zeros(1)
    with pytest.raises(ValueError) as error:
        semseg_to_pspnet_edu(state)
    message = str(error.value)
    assert "missing 1 key(s) ppm.branches.0.conv.weight" in message
    assert "unexpected 1 key(s) extra.weight" in message


def test_missing_aux_head_suggests_aux_false(checkpoint):
    state = {k: v for k, v in checkpoint["state_dict"].items() if ".aux." not in k}
    with pytest.raises(ValueError, match="aux=False"):
        semseg_to_pspnet_edu(state)


def test_checkpoint_without_aux_head_converts_with_aux_false(checkpoint):
    state = {k: v for k, v in checkpoint["state_dict"].items() if ".aux." not in k}
    converted = semseg_to_pspnet_edu(state, aux=False)
    with torch.device("meta"):
        model = build_pspnet("paper", aux=False)
    assert set(converted) == set(model.state_dict())
    assert not any(k.startswith("aux_head.") for k in converted)


def test_wrong_shapes_are_named(checkpoint):
    state = dict(checkpoint["state_dict"])
    state["module.ppm.features.1.1.weight"] = torch.zeros(256, 2048, 1, 1)
    with pytest.raises(ValueError, match=r"ppm.branches.1.conv.weight: \(256, 2048, 1, 1\) instead of \(512, 2048, 1, 1\)"):
        semseg_to_pspnet_edu(state)


@pytest.mark.parametrize("bad", [{"model": "x"}, [1, 2], {"state_dict": {"a": 1}}])
def test_something_else_is_not_a_checkpoint(bad):
    with pytest.raises(ValueError, match="hszhao/semseg checkpoint"):
        semseg_to_pspnet_edu(bad)
