"""Tests for pspnet_edu.loss: main + alpha * aux cross-entropy, ignore index 255."""

import pytest
import torch
import torch.nn.functional as F

from pspnet_edu.constants import IGNORE_INDEX
from pspnet_edu.loss import pspnet_loss


def make_batch(num_classes: int = 5, ignored: float = 0.2):
    torch.manual_seed(0)
    out = torch.randn(2, num_classes, 6, 7, requires_grad=True)
    aux = torch.randn(2, num_classes, 6, 7, requires_grad=True)
    target = torch.randint(0, num_classes, (2, 6, 7))
    target[torch.rand(2, 6, 7) < ignored] = IGNORE_INDEX
    return {"out": out, "aux": aux}, target


def manual_cross_entropy(logits, target):
    """Mean of -log softmax at the true class over the pixels that are not ignored."""
    log_probs = logits.log_softmax(dim=1).permute(0, 2, 3, 1)[target != 255]  # (N, K)
    labels = target[target != 255]
    return -log_probs[torch.arange(len(labels)), labels].mean()


def test_pixels_the_data_marks_void_do_not_count_in_the_loss():
    from pspnet_edu.data.labels import label_ids_to_train_ids

    label_ids = torch.tensor([[[7, 0, 26], [0, 11, 7]]])  # road, unlabeled, car / unlabeled, building, road
    target = label_ids_to_train_ids(label_ids)  # as the dataset turns a Cityscapes labelIds mask into a target
    logits = torch.randn(1, 19, 2, 3)
    changed = logits.clone()
    changed[..., label_ids[0] == 0] = torch.randn(19, 2)  # other scores where the data says "unlabeled"
    total, _ = pspnet_loss({"out": logits}, target, aux_weight=0.0)
    torch.testing.assert_close(pspnet_loss({"out": changed}, target, aux_weight=0.0)[0], total)
    labelled = label_ids[0] != 0
    expected = F.cross_entropy(logits[0].permute(1, 2, 0)[labelled], target[0][labelled])
    torch.testing.assert_close(total, expected)  # the mean over the four labelled pixels only


@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.4, 0.9])
def test_total_is_main_plus_alpha_aux(alpha):
    outputs, target = make_batch()
    total, parts = pspnet_loss(outputs, target, aux_weight=alpha)
    main = manual_cross_entropy(outputs["out"], target)
    aux = manual_cross_entropy(outputs["aux"], target)
    torch.testing.assert_close(total, main + alpha * aux)
    torch.testing.assert_close(parts["main"], main.detach())
    torch.testing.assert_close(parts["aux"], aux.detach())
    assert not parts["main"].requires_grad


def test_default_weight_is_the_papers_0_4():
    outputs, target = make_batch()
    total, _ = pspnet_loss(outputs, target)
    expected = F.cross_entropy(outputs["out"], target, ignore_index=255) + 0.4 * F.cross_entropy(
        outputs["aux"], target, ignore_index=255)
    torch.testing.assert_close(total, expected)


def test_ignored_pixels_do_not_matter():
    outputs, target = make_batch(ignored=0.5)
    total, _ = pspnet_loss(outputs, target)
    changed = {k: v.detach().clone() for k, v in outputs.items()}
    for v in changed.values():
        v.permute(0, 2, 3, 1)[target == 255] = 100.0  # garbage where the label is void
    torch.testing.assert_close(pspnet_loss(changed, target)[0], total.detach())
    total.backward()
    grad = outputs["out"].grad.permute(0, 2, 3, 1)
    assert torch.all(grad[target == 255] == 0) and torch.any(grad[target != 255] != 0)


def test_alpha_zero_ignores_the_aux_output():
    outputs, target = make_batch()
    total, parts = pspnet_loss(outputs, target, aux_weight=0.0)
    total.backward()
    assert outputs["aux"].grad is None
    torch.testing.assert_close(total, parts["main"])
    total_without, parts_without = pspnet_loss({"out": outputs["out"]}, target, aux_weight=0.0)
    assert sorted(parts_without) == ["main"]
    torch.testing.assert_close(total_without, total)


def test_missing_aux_with_positive_weight_is_an_error():
    outputs, target = make_batch()
    with pytest.raises(ValueError, match="aux=False.*aux_weight=0"):
        pspnet_loss({"out": outputs["out"]}, target, aux_weight=0.4)


@pytest.mark.parametrize(
    "change, text",
    [
        (lambda o, t: (o, t.clone().fill_(19)), r"0\.\.4 or 255.*found \[19\].*trainIds"),
        (lambda o, t: (o, t[:, :5]), r"shape \(2, 5, 6, 7\).*\(2, 5, 7\)"),
        (lambda o, t: (o, t.float()), "integer class indices"),
        (lambda o, t: ({"aux": o["aux"]}, t), "must contain 'out'"),
    ],
)
def test_bad_targets_get_clear_errors(change, text):
    outputs, target = make_batch()
    outputs, target = change(outputs, target)
    with pytest.raises(ValueError, match=text):
        pspnet_loss(outputs, target)


def test_a_batch_without_a_labelled_pixel_has_loss_zero_not_nan():
    """An unannotated frame (all void) made the mean over no pixel 0/0 = NaN, which the trainer took for divergence."""
    outputs, target = make_batch()
    target[:] = IGNORE_INDEX
    total, parts = pspnet_loss(outputs, target)
    assert total.item() == 0.0 and parts["main"].item() == 0.0 and parts["aux"].item() == 0.0
    total.backward()
    assert torch.equal(outputs["out"].grad, torch.zeros_like(outputs["out"]))


def test_class_weights_scale_each_pixel_by_its_class_and_equal_the_manual_weighted_mean():
    from pspnet_edu.loss import class_weights

    outputs, target = make_batch(num_classes=4)
    weights = torch.tensor([0.5, 2.0, 1.0, 4.0])
    total, parts = pspnet_loss(outputs, target, aux_weight=0.0, class_weights=weights)
    log_probs = outputs["out"].log_softmax(dim=1).permute(0, 2, 3, 1)[target != 255]
    labels = target[target != 255]
    w = weights[labels]
    expected = -(w * log_probs[torch.arange(len(labels)), labels]).sum() / w.sum()
    assert torch.allclose(total, expected, atol=1e-6)
    assert not torch.allclose(total, manual_cross_entropy(outputs["out"], target))  # the weights changed it
    uniform, _ = pspnet_loss(outputs, target, aux_weight=0.0, class_weights=torch.full((4,), 3.0))
    assert torch.allclose(uniform, manual_cross_entropy(outputs["out"], target), atol=1e-6)  # only ratios count
    with pytest.raises(ValueError, match="one weight per class"):
        pspnet_loss(outputs, target, class_weights=torch.ones(5))
    shares = torch.tensor([0.5, 0.3, 0.2, 0.0], dtype=torch.float64)
    with pytest.raises(ValueError, match="unknown class weighting 'inverse'"):
        class_weights(shares, "inverse")
    with pytest.raises(ValueError, match="sum to 1"):
        class_weights(shares * 2, "enet")


@pytest.mark.parametrize("method", ["median-frequency", "sqrt-median-frequency", "enet"])
def test_class_weights_favour_rare_classes_keep_the_mean_pixel_at_one_and_skip_absent_classes(method):
    from pspnet_edu.loss import class_weights

    shares = torch.tensor([0.6, 0.25, 0.1, 0.05, 0.0], dtype=torch.float64)
    weights = class_weights(shares, method).double()
    assert weights[:4].diff().gt(0).all()  # rarer class, larger weight
    assert weights[4] == 0  # never a target
    assert abs(float((weights * shares).sum()) - 1) < 1e-6
    if method == "median-frequency":  # every class then adds the same total weight: w_c * p_c constant
        assert torch.allclose(weights[:4] * shares[:4], torch.full((4,), 0.25, dtype=torch.float64))
    if method == "sqrt-median-frequency":
        assert torch.allclose(weights[:4] ** 2 * shares[:4] / (weights[0] ** 2 * shares[0]), torch.ones(4, dtype=torch.float64))
