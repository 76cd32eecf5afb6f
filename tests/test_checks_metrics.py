"""Tests for pspnet_edu/checks/metrics.py (the self-checks of notebook 08)."""

from __future__ import annotations

import pytest
import torch

from pspnet_edu.checks.metrics import _IOU_CASES, _confusion_cases, check_confusion_matrix, check_iou_per_class


def brute_force_cm(pred, target, num_classes, ignore_index=255):
    cm = torch.zeros(num_classes, num_classes, dtype=torch.int64)
    for p, t in zip(pred.reshape(-1).tolist(), target.reshape(-1).tolist()):
        if t != ignore_index:
            cm[t, p] += 1
    return cm


def right_cm(pred, target, num_classes, ignore_index=255):
    keep = target != ignore_index
    return torch.bincount(target[keep] * num_classes + pred[keep], minlength=num_classes ** 2).reshape(num_classes, num_classes)


def right_iou(cm):
    cm = cm.double()
    tp = cm.diagonal()
    return tp / (cm.sum(0) + cm.sum(1) - tp)


def test_confusion_cases_against_brute_force():
    from pspnet_edu.metrics import confusion_matrix

    for case in _confusion_cases():
        assert torch.equal(confusion_matrix(*case.args, **case.kwargs), brute_force_cm(*case.args, **case.kwargs))


def test_confusion_matrix_right_answer_passes(capsys):
    def my_confusion_matrix(pred, target, num_classes, ignore_index=255):
        return right_cm(pred, target, num_classes, ignore_index)

    check_confusion_matrix(my_confusion_matrix)
    assert capsys.readouterr().out == "✓ my_confusion_matrix matches pspnet_edu.metrics.confusion_matrix on 6 cases\n"


def test_confusion_matrix_mistakes_are_named():
    with pytest.raises(AssertionError, match=r"cm\[t, p\], not cm\[p, t\]"):
        check_confusion_matrix(lambda pred, target, num_classes, ignore_index=255: right_cm(pred, target, num_classes, ignore_index).T)

    def counts_ignored(pred, target, num_classes, ignore_index=255):  # 255 used as an index
        return torch.bincount(target.reshape(-1) * num_classes + pred.reshape(-1), minlength=num_classes ** 2).reshape(num_classes, num_classes)

    with pytest.raises(AssertionError, match="drop those pixels before counting"):
        check_confusion_matrix(counts_ignored)

    def clamps_ignored(pred, target, num_classes, ignore_index=255):  # counts void pixels as the last class
        return brute_force_cm(pred, target.clamp(max=num_classes - 1), num_classes, ignore_index)

    with pytest.raises(AssertionError, match="drop the pixels whose target is ignore_index"):
        check_confusion_matrix(clamps_ignored)

    def in_place(pred, target, num_classes, ignore_index=255):
        target[target == ignore_index] = 0  # "clean" the labels, in the caller's tensor
        pred[target == ignore_index] = 0
        return right_cm(pred, target, num_classes, ignore_index)

    with pytest.raises(AssertionError, match="changed its argument `target` in place"):
        check_confusion_matrix(in_place)


def test_iou_cases_and_right_answer(capsys):
    from pspnet_edu.metrics import iou_per_class

    for case in _IOU_CASES:
        assert torch.allclose(iou_per_class(*case.args), right_iou(*case.args), equal_nan=True)

    def my_iou_per_class(cm):
        return right_iou(cm)

    check_iou_per_class(my_iou_per_class)
    assert capsys.readouterr().out == "✓ my_iou_per_class matches pspnet_edu.metrics.iou_per_class on 6 cases\n"


@pytest.mark.parametrize(
    ("wrong", "hint"),
    [
        (lambda cm: torch.nan_to_num(right_iou(cm), nan=0.0), "return NaN, not 0"),
        (lambda cm: cm.double().diagonal() / cm.double().sum(1), "class accuracy"),
        (lambda cm: cm.double().diagonal() / (cm.double().sum(0) + cm.double().sum(1)), "counted twice"),
    ],
)
def test_iou_mistakes_are_named(wrong, hint):
    with pytest.raises(AssertionError) as info:
        check_iou_per_class(wrong)
    assert "gave a wrong result" in str(info.value) and hint in str(info.value)
