"""Tests for pspnet_edu.inference: sliding window, flip, multi-scale, evaluate."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from pspnet_edu.inference import evaluate, predict, predict_probs, prepare_for_inference

NUM_CLASSES = 4


class DictModel(nn.Module):
    """Wraps a module so that it returns {"out", "aux"} like PSPNet."""

    def __init__(self, body: nn.Module) -> None:
        super().__init__()
        self.body = body

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self.body(x)
        return {"out": out, "aux": out}


class GlobalContext(nn.Module):
    """A 3x3 conv plus the image's global mean: every output depends on the whole input."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, NUM_CLASSES, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return y + y.mean(dim=(2, 3), keepdim=True)


def pointwise_model() -> nn.Module:
    torch.manual_seed(0)
    return DictModel(nn.Conv2d(3, NUM_CLASSES, 1)).eval()


def test_sliding_equals_whole_when_crop_covers_image() -> None:
    torch.manual_seed(0)
    model = DictModel(GlobalContext()).eval()
    images = torch.randn(2, 3, 12, 20)
    whole = predict_probs(model, images)
    sliding = predict_probs(model, images, mode="sliding", crop=(12, 20))
    assert torch.equal(whole, sliding)


def test_sliding_window_bookkeeping_with_many_windows_and_padding() -> None:
    # A pointwise model sees no context, so however the windows overlap, their averaged
    # probabilities must equal the whole-image ones: this checks the window grid, the
    # per-pixel counts and the padding/cropping.
    model = pointwise_model()
    torch.manual_seed(1)
    images = torch.randn(2, 3, 17, 23)
    whole = predict_probs(model, images)
    for crop in [5, (6, 9), (17, 4), 30]:  # 30: larger than the image, so padded
        sliding = predict_probs(model, images, mode="sliding", crop=crop)
        assert sliding.shape == whole.shape == (2, NUM_CLASSES, 17, 23)
        torch.testing.assert_close(sliding, whole, rtol=1e-5, atol=1e-6)


def test_sliding_differs_for_a_context_model_when_windows_are_small() -> None:
    torch.manual_seed(0)
    model = DictModel(GlobalContext()).eval()
    images = torch.randn(1, 3, 16, 16)
    assert not torch.allclose(predict_probs(model, images), predict_probs(model, images, mode="sliding", crop=6))


def test_flip_is_a_no_op_for_a_flip_equivariant_model() -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(3, NUM_CLASSES, 3, padding=1)
    with torch.no_grad():  # a left-right symmetric kernel makes the model commute with hflip
        conv.weight.copy_((conv.weight + conv.weight.flip(-1)) / 2)
    model = DictModel(conv).eval()
    images = torch.randn(2, 3, 8, 11)
    torch.testing.assert_close(predict_probs(model, images, flip=True), predict_probs(model, images), rtol=1e-5, atol=1e-6)


def test_flip_averages_with_the_mirrored_prediction() -> None:
    torch.manual_seed(0)
    model = DictModel(nn.Conv2d(3, NUM_CLASSES, 3, padding=1)).eval()
    images = torch.randn(1, 3, 8, 11)
    with torch.no_grad():
        plain = model(images)["out"].softmax(1)
        mirrored = model(images.flip(-1))["out"].softmax(1).flip(-1)
    torch.testing.assert_close(predict_probs(model, images, flip=True), (plain + mirrored) / 2)
    assert not torch.allclose(plain, mirrored)  # so the test above is not trivial


def test_multiscale_shapes_and_probabilities() -> None:
    model = pointwise_model()
    images = torch.randn(3, 9, 14)  # a single image without batch dimension
    probs = predict_probs(model, images, scales=(0.5, 1.0, 1.75), flip=True, mode="sliding", crop=8)
    assert probs.shape == (NUM_CLASSES, 9, 14)
    torch.testing.assert_close(probs.sum(0), torch.ones(9, 14))
    assert torch.equal(predict_probs(model, images, scales=(1.0,)), predict_probs(model, images))
    assert predict(model, images).shape == (9, 14)


def test_bad_arguments() -> None:
    model = pointwise_model()
    images = torch.randn(1, 3, 8, 8)
    with pytest.raises(ValueError, match="crop"):
        predict_probs(model, images, mode="sliding")
    with pytest.raises(ValueError, match="mode"):
        predict_probs(model, images, mode="tiles")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="scales"):
        predict_probs(model, images, scales=())
    for scales in ((math.inf,), (math.nan,), (-0.5,), (1e9,)):  # from Python as from the command line
        with pytest.raises(ValueError, match="scales"):
            predict_probs(model, images, scales=scales)
    for crop in (0, (0, 8), (8, -1), (8.5, 8)):
        with pytest.raises(ValueError, match="crop must be a positive size"):
            predict_probs(model, images, mode="sliding", crop=crop)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="stride_rate"):
        predict_probs(model, images, mode="sliding", crop=4, stride_rate=0)


class LabelInImage(torch.utils.data.Dataset):
    """Images whose first channel holds the label: an oracle model can read it off."""

    def __init__(self) -> None:
        torch.manual_seed(0)
        self.masks = torch.randint(0, 3, (5, 6, 7))  # class 3 never appears
        self.masks[:, 0, :] = 255  # an ignored row

    def __len__(self) -> int:
        return len(self.masks)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        label = self.masks[i].clamp(max=NUM_CLASSES - 1).float()
        return torch.stack([label, torch.zeros_like(label), torch.zeros_like(label)]), self.masks[i]


class Oracle(nn.Module):
    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = 10 * nn.functional.one_hot(x[:, 0].long(), NUM_CLASSES).permute(0, 3, 1, 2).float()
        return {"out": logits, "aux": logits}


class AlwaysZero(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.tensor([5.0, 0.0, 0.0, 0.0]))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = self.bias.view(1, -1, 1, 1).expand(x.shape[0], -1, *x.shape[-2:])
        return {"out": logits, "aux": logits}


def test_evaluate_oracle_and_constant_models() -> None:
    dataset = LabelInImage()
    result = evaluate(Oracle(), dataset, num_classes=NUM_CLASSES, batch_size=2)
    assert result["miou"] == 1.0 and result["pixel_acc"] == 1.0 and result["mean_acc"] == 1.0
    assert math.isnan(result["iou"][3])  # absent class: excluded, not 0
    assert int(result["confusion_matrix"].sum()) == int((dataset.masks != 255).sum())

    model = AlwaysZero().train()
    result = evaluate(model, dataset, num_classes=NUM_CLASSES, mode="sliding", crop=4, flip=True)
    assert model.training  # evaluate restores the mode it found
    share_of_zero = float((dataset.masks == 0).sum() / (dataset.masks != 255).sum())
    assert result["pixel_acc"] == pytest.approx(share_of_zero)
    assert result["iou"][1] == 0.0 and result["iou"][2] == 0.0
    assert result["miou"] == pytest.approx(share_of_zero / 3)


def test_evaluate_empty_dataset() -> None:
    with pytest.raises(ValueError, match="empty"):
        evaluate(Oracle(), [], num_classes=NUM_CLASSES)


def test_evaluate_batches_images_of_different_sizes() -> None:
    """A validation set that mixes sizes failed at batch_size > 1: "stack expects each tensor to be equal size"."""
    big, small = LabelInImage(), LabelInImage()
    small.masks = small.masks[..., :5].clone()  # 6x5 images beside 6x7 ones
    mixed = torch.utils.data.ConcatDataset([big, small])
    result = evaluate(Oracle(), mixed, num_classes=NUM_CLASSES, batch_size=2 * len(big))
    assert result["miou"] == 1.0
    assert int(result["confusion_matrix"].sum()) == int((big.masks != 255).sum() + (small.masks != 255).sum())


def test_evaluate_with_nothing_to_score_says_so() -> None:
    """All labels void: the mIoU was NaN, printed as "mIoU: nan" with exit status 0."""
    void = LabelInImage()
    void.masks[:] = 255
    with pytest.raises(ValueError, match="nothing to score: none of the .* evaluation images has a labelled pixel"):
        evaluate(Oracle(), void, num_classes=NUM_CLASSES)


def test_prepare_for_inference_leaves_the_global_rng_as_it_was() -> None:
    """The trainer evaluates with it mid-training: a draw from the global RNG there changed every later dropout mask."""
    from pspnet_edu.pspnet import build_pspnet

    model = build_pspnet("tiny", num_classes=5)
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    prepare_for_inference(model)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("align_corners", [False, True])
def test_interpolation_matrix_is_bilinear_resizing_one_axis_at_a_time(align_corners: bool) -> None:
    from pspnet_edu.inference import interpolation_matrix

    pooled = torch.randn(2, 3, 4, 5)
    rows, cols = interpolation_matrix(4, 11, align_corners), interpolation_matrix(5, 13, align_corners)
    separable = torch.einsum("hi,bcij,wj->bchw", rows, pooled, cols)
    expected = torch.nn.functional.interpolate(pooled, (11, 13), mode="bilinear", align_corners=align_corners)
    torch.testing.assert_close(separable, expected, rtol=0, atol=1e-6)
    assert torch.equal(interpolation_matrix(6, 6, align_corners), torch.eye(6))  # no resizing, no mixing


@pytest.mark.parametrize("overrides", [{}, {"align_corners": True}, {"bins": (1,), "pooling": "max"},
                                       {"bins": (2, 5), "ppm_channels": 16}, {"pooling": "none"}, {"use_ppm": False}])
def test_the_prepared_model_computes_the_plain_models_logits(overrides: dict) -> None:
    """BatchNorm folded and the pyramid folded into the head's conv: the same function, up to float rounding."""
    from pspnet_edu.inference import PyramidIntoHead
    from pspnet_edu.pspnet import build_pspnet

    torch.manual_seed(0)
    model = build_pspnet("tiny", num_classes=5, **overrides).eval()
    for module in model.modules():  # statistics far from (0, 1), or folding them would be trivial
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.normal_(), module.running_var.uniform_(0.5, 2.0)
            module.weight.data.normal_(), module.bias.data.normal_()
    images = torch.randn(2, 3, 97, 131)  # odd sizes: a 13 x 17 feature map, not a multiple of any bin
    with torch.no_grad():
        expected = model(images)["out"]
        prepared = prepare_for_inference(model)
        logits = prepared(images)["out"]
    torch.testing.assert_close(logits, expected, rtol=0, atol=1e-4 * expected.abs().max().item())
    folded = isinstance(prepared.model.ppm, PyramidIntoHead)
    assert folded == (overrides.get("pooling") != "none" and overrides.get("use_ppm", True))
    assert isinstance(prepared.model.head.conv, nn.Identity) == folded


def test_fold_pyramid_into_head_wants_eval_mode_and_folded_batchnorm() -> None:
    from pspnet_edu.inference import fold_batchnorm, fold_pyramid_into_head
    from pspnet_edu.pspnet import build_pspnet

    model = build_pspnet("tiny", num_classes=5)
    with pytest.raises(ValueError, match=r"eval mode whose BatchNorm is folded first .* model.eval\(\), then fold_batchnorm\(model\)"):
        fold_pyramid_into_head(model)
    with pytest.raises(ValueError, match="BatchNorm is folded first"):
        fold_pyramid_into_head(model.eval())
    assert isinstance(fold_pyramid_into_head(fold_batchnorm(model)).head.conv, nn.Identity)


def test_the_folded_model_in_nchw_and_in_bf16() -> None:
    import warnings

    from pspnet_edu.pspnet import build_pspnet

    torch.manual_seed(0)
    model = build_pspnet("tiny", num_classes=5).eval()
    images = torch.randn(2, 3, 48, 48)  # a 6 x 6 feature map: the largest bin covers it exactly
    with torch.no_grad():
        expected = model(images)["out"]
        nchw = prepare_for_inference(model, channels_last=False)(images)["out"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "no fast bfloat16" on CPUs without it
            bf16 = prepare_for_inference(model, "bf16")(images)["out"]
    torch.testing.assert_close(nchw, expected, rtol=0, atol=1e-4 * expected.abs().max().item())
    assert bf16.dtype == torch.float32 and (bf16.argmax(1) == expected.argmax(1)).float().mean() > 0.95


def test_the_folded_pyramid_traces_into_one_graph() -> None:
    """torch.compile must see the whole fold: a data-dependent op (e.g. a boolean mask) would split it."""
    from pspnet_edu.pspnet import build_pspnet

    ppm = prepare_for_inference(build_pspnet("tiny", num_classes=5).eval()).model.ppm
    explained = torch._dynamo.explain(ppm)(torch.randn(1, 128, 13, 17))
    assert explained.graph_break_count == 0 and explained.graph_count == 1, explained.break_reasons


def test_classes_of_is_the_argmax_over_the_classes_ties_included():
    from pspnet_edu.inference import classes_of

    generator = torch.Generator().manual_seed(0)
    probs = torch.randint(0, 3, (2, 19, 8, 16), generator=generator).float()  # many ties
    assert torch.equal(classes_of(probs), probs.argmax(dim=1))
    assert torch.equal(classes_of(probs[0]), probs[0].argmax(dim=0))
    cl = probs.contiguous(memory_format=torch.channels_last)
    assert torch.equal(classes_of(cl), probs.argmax(dim=1))
