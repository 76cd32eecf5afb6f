"""Self-checks for notebooks/08_evaluation.ipynb: the confusion matrix and IoU behind the paper's scores.

The paper reports mean IoU and pixel accuracy (Zhao et al. 2017, Sec. 5.2, Tables 1-3 on ADE20K;
Sec. 5.3 and 5.4 give mIoU on PASCAL VOC and Cityscapes); both come from one confusion matrix
summed over the dataset.

- :func:`check_confusion_matrix`: ``my_confusion_matrix(pred, target, num_classes,
  ignore_index=255)`` -> a (C, C) matrix with ``cm[t, p]`` = pixels of true class ``t``
  predicted as ``p``, ignored pixels not counted, the inputs left untouched; against
  :func:`pspnet_edu.metrics.confusion_matrix`.
- :func:`check_iou_per_class`: ``my_iou_per_class(cm)`` -> IoU per class, NaN for a class
  absent from both prediction and ground truth; against :func:`pspnet_edu.metrics.iou_per_class`.

The cases are built from a fixed seed, so the verdicts are the same on every machine. While the
learner's function runs, the package's function it re-derives is hidden (``*_HIDDEN`` below;
:func:`pspnet_edu.checks._core.hidden`); torch's building blocks (``bincount``, ...) are not.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from pspnet_edu.checks._core import (
    Case,
    check_cases,
    differences,
    fail,
    hidden,
    learner_code,
    learner_name,
    passed,
    refuse_reference,
    require_callable,
)
from pspnet_edu.metrics import confusion_matrix, iou_per_class

# What each check hides while the learner's code runs.
CONFUSION_MATRIX_HIDDEN = (confusion_matrix,)
IOU_PER_CLASS_HIDDEN = (iou_per_class,)

CM_HINT = ("keep the pixels whose target is not ignore_index, then count each (true, predicted) pair: "
           "cm[t, p] += 1, e.g. with torch.bincount(target * C + pred, minlength=C * C).reshape(C, C).")


def _confusion_cases() -> tuple[Case, ...]:
    generator = torch.Generator().manual_seed(0)
    pred = torch.randint(0, 4, (2, 6, 7), generator=generator)  # (B, H, W)
    target = torch.randint(0, 4, (2, 6, 7), generator=generator)
    with_ignore = target.clone()
    with_ignore[:, :2] = 255  # the top rows are "void"
    other_ignore = torch.where(torch.rand(5, 9, generator=generator) < 0.3, torch.tensor(-1),
                               torch.randint(0, 3, (5, 9), generator=generator))
    return (
        Case((torch.tensor([[0, 1], [1, 1]]), torch.tensor([[0, 1], [0, 1]]), 2), hint="a 2x2 image."),
        Case((torch.tensor([0, 0, 2, 2]), torch.tensor([0, 1, 1, 2]), 3), hint="pred 2 where the truth is 1: cm[1, 2]."),
        Case((pred, target, 4), hint="a batch (B, H, W) of 4 classes."),
        Case((pred, with_ignore, 4), hint="the top rows of the target are 255: ignored pixels are not counted."),
        Case((pred[0, :5, :6] % 3, other_ignore[:, :6].clone(), 3), {"ignore_index": -1},
             hint="here the ignore label is -1."),
        Case((torch.tensor([1, 1, 1]), torch.tensor([1, 1, 1]), 5), hint="classes 0, 2, 3, 4 never occur: zero rows and columns."),
    )


def _cm_diagnose(case: Case, expected: Tensor, got: Any) -> str:
    if isinstance(got, Tensor) and got.shape == expected.shape:
        if torch.equal(got.to(torch.int64), expected.T):
            return "rows are the TRUE class and columns the prediction: cm[t, p], not cm[p, t]. " + CM_HINT
        if int(got.sum()) > int(expected.sum()):
            return "you counted more pixels than there are: drop the pixels whose target is ignore_index. " + CM_HINT
    return CM_HINT


def check_confusion_matrix(my_confusion_matrix: Callable[..., Tensor]) -> None:
    """Check ``my_confusion_matrix(pred, target, num_classes, ignore_index=255)`` on 6 cases,
    and that it leaves ``pred`` and ``target`` unchanged.

    >>> def my_confusion_matrix(pred, target, num_classes, ignore_index=255):
    ...     keep = target != ignore_index
    ...     index = target[keep] * num_classes + pred[keep]
    ...     return torch.bincount(index, minlength=num_classes ** 2).reshape(num_classes, num_classes)
    >>> check_confusion_matrix(my_confusion_matrix)
    ✓ my_confusion_matrix matches pspnet_edu.metrics.confusion_matrix on 6 cases
    """
    require_callable(my_confusion_matrix)
    name = learner_name(my_confusion_matrix)
    refuse_reference(my_confusion_matrix, CONFUSION_MATRIX_HIDDEN, name)
    cases = _confusion_cases()
    expected_values = [confusion_matrix(*case.args, **case.kwargs) for case in cases]  # before hiding it
    with hidden(*CONFUSION_MATRIX_HIDDEN) as hiding:
        for case, expected in zip(cases, expected_values):
            call = case.call_text(name)
            pred, target = case.args[0].clone(), case.args[1].clone()  # the learner's own copies, watched
            with learner_code(name, call, hiding):
                try:
                    got = my_confusion_matrix(pred, target, *case.args[2:], **case.kwargs)
                except (IndexError, RuntimeError) as error:  # typically 255 used as an index
                    ignore = case.kwargs.get("ignore_index", 255)
                    if (case.args[1] == ignore).any():
                        raise AssertionError(
                            f"{call} raised {type(error).__name__}: {error}\n  hint: the target holds ignore_index "
                            f"({ignore}); drop those pixels before counting. {CM_HINT}") from error
                    raise
            for label, before, after in (("pred", case.args[0], pred), ("target", case.args[1], target)):
                if not torch.equal(before, after):
                    raise AssertionError(
                        f"{call} changed its argument `{label}` in place. A metric must never modify the caller's "
                        "tensors (the next image, or the figure, would use the damaged labels): work on new tensors, "
                        "e.g. pred[keep] (boolean indexing copies) or .clone().")
            detail = differences(expected, got)
            if detail:
                hints = " ".join(h for h in (case.hint, _cm_diagnose(case, expected, got)) if h)
                raise fail(call, expected, got, detail, hints)
    passed(name, "pspnet_edu.metrics.confusion_matrix", len(cases))


IOU_HINT = ("IoU = TP / (TP + FP + FN): TP on the diagonal, FN = row sum - TP (missed pixels of the class), "
            "FP = column sum - TP (pixels wrongly given the class); NaN where TP + FP + FN = 0.")

_IOU_CASES = (
    Case((torch.tensor([[3, 1], [0, 2]]),), hint="two classes."),
    Case((torch.tensor([[3, 1, 0], [0, 2, 0], [0, 0, 0]]),), hint="class 2 is in neither the prediction nor the truth: NaN."),
    Case((torch.tensor([[5, 0, 2], [0, 0, 0], [1, 0, 4]]),), hint="class 1 never occurs: NaN, and it must not drag the mean down."),
    Case((torch.tensor([[4, 2], [0, 0]]),), hint="class 1 is predicted but never true: IoU 0 (a real mistake)."),
    Case((torch.tensor([[10, 2, 0, 1], [3, 7, 1, 0], [0, 0, 0, 0], [2, 0, 0, 9]]),)),
    Case((torch.zeros(3, 3, dtype=torch.int64),), hint="an empty matrix: every class is absent."),
)


def _iou_diagnose(case: Case, expected: Tensor, got: Any) -> str:
    if not isinstance(got, Tensor) or got.shape != expected.shape:
        return "return a tensor with one value per class. " + IOU_HINT
    cm = case.args[0].to(torch.float64)
    got = got.to(torch.float64)
    absent = torch.isnan(expected)
    if absent.any() and bool((got[absent] == 0).all()):
        return ("a class absent from both the prediction and the ground truth has no IoU (0/0): return NaN, not 0, "
                "so that mean IoU can leave it out (torch.nanmean). " + IOU_HINT)
    present = ~absent
    tp, rows, cols = cm.diagonal(), cm.sum(1), cm.sum(0)
    slips = {
        "that is the class accuracy (recall, TP / row sum); the union also counts false positives": tp / rows,
        "that is the precision (TP / column sum); the union also counts false negatives": tp / cols,
        "TP is counted twice in row sum + column sum: subtract it once": tp / (rows + cols),
    }
    for hint, answer in slips.items():
        if torch.allclose(got[present], answer[present], equal_nan=True) and not torch.allclose(
                answer[present], expected[present], equal_nan=True):
            return hint + ". " + IOU_HINT
    return IOU_HINT


def check_iou_per_class(my_iou_per_class: Callable[[Tensor], Tensor]) -> None:
    """Check ``my_iou_per_class(cm)`` on 6 confusion matrices (NaN must match NaN).

    >>> def my_iou_per_class(cm):
    ...     cm = cm.double()
    ...     tp = cm.diagonal()
    ...     union = cm.sum(0) + cm.sum(1) - tp
    ...     return tp / union   # 0 / 0 = NaN for absent classes
    >>> check_iou_per_class(my_iou_per_class)
    ✓ my_iou_per_class matches pspnet_edu.metrics.iou_per_class on 6 cases
    """
    check_cases(my_iou_per_class, iou_per_class, _IOU_CASES, hide=IOU_PER_CLASS_HIDDEN, hint=_iou_diagnose)
