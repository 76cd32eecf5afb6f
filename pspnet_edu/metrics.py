"""Segmentation metrics from a confusion matrix: IoU per class, mIoU, pixel and class accuracy.

PSPNet reports mean IoU and pixel accuracy (Zhao et al. 2017, Sec. 5.2, "Evaluation
metrics"); the author's code reports mIoU, mAcc (mean class accuracy) and allAcc (pixel
accuracy). Every one of them is a function of a single ``(C, C)`` confusion matrix, so the
evaluation counts that matrix over the whole dataset and computes the scores once at the end
(averaging per-image mIoUs would give a different and wrong number). Under ``torchrun`` each
process counts the matrix of its own shard, and :func:`reduce_confusion_matrices` sums them
before any score is computed (averaging the processes' mIoUs would be wrong for the same reason).

Two mistakes this module avoids on purpose:

- writing into the caller's tensors (e.g. setting ignored pixels in place): these functions
  never modify their arguments;
- scoring a class absent from both prediction and ground truth as IoU 0: its IoU is
  undefined (0/0), reported as NaN, and left out of the mean.

Taught in ``notebooks/08_evaluation.ipynb``.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor


def _as_tensor(values: Tensor | np.ndarray, name: str) -> Tensor:
    """``values`` as a tensor: numpy arrays (and nested lists) are converted, never modified."""
    if isinstance(values, Tensor):
        return values
    if not isinstance(values, (np.ndarray, np.generic, list, tuple)):
        raise ValueError(f"{name} must be a tensor or a numpy array, got {type(values).__name__}")
    try:
        array = np.array(values)  # a copy: read-only arrays (np.asarray of a PIL image) are fine
    except ValueError as error:  # ragged nested lists
        raise ValueError(f"{name} is not a rectangular array ({error}); pass a tensor or a numpy array") from None
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{name} holds {array.dtype} values, not numbers; pass a tensor or a numpy array")
    return torch.from_numpy(array)


def _check_num_classes(num_classes: int) -> None:
    if isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}; "
                         "e.g. num_classes=19 for Cityscapes")


def _check_cm(cm: Tensor | np.ndarray) -> Tensor:
    """``cm`` as a tensor, after checking it is a (C, C) matrix of counts."""
    cm = _as_tensor(cm, "the confusion matrix")
    if cm.dim() != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] == 0:
        raise ValueError(f"a confusion matrix is square, (C, C), got shape {tuple(cm.shape)}; "
                         "build it with confusion_matrix(pred, target, num_classes)")
    if cm.dtype == torch.bool or cm.is_complex():
        raise ValueError(f"a confusion matrix holds pixel counts, got {cm.dtype}; build it with confusion_matrix")
    if cm.numel() and (cm.min() < 0 or (cm.is_floating_point() and not torch.isfinite(cm).all())):
        raise ValueError("a confusion matrix holds pixel counts, but this one has negative or non-finite "
                         "entries; build it with confusion_matrix(pred, target, num_classes)")
    return cm


def confusion_matrix(pred: Tensor | np.ndarray, target: Tensor | np.ndarray, num_classes: int,
                     ignore_index: int = 255) -> Tensor:
    """Count pixels: ``cm[t, p]`` is the number of pixels of true class ``t`` predicted as ``p``.

    ``pred`` and ``target`` are integer tensors (or numpy arrays) of the same shape (any
    shape, e.g. (B, H, W)); ``num_classes`` is a positive int. Pixels whose target is
    ``ignore_index`` are not counted. The result is a new ``int64`` tensor of shape (C, C) on
    the CPU; matrices add up, so a dataset's matrix is the sum of its images' matrices.

    >>> pred   = torch.tensor([[0, 1], [1, 1]])
    >>> target = torch.tensor([[0, 1], [0, 255]])
    >>> confusion_matrix(pred, target, num_classes=2)
    tensor([[1, 1],
            [0, 1]])
    >>> confusion_matrix(np.array([0, 1]), np.array([0, 0]), num_classes=2)   # numpy masks too
    tensor([[1, 1],
            [0, 0]])
    """
    pred, target = _as_tensor(pred, "pred"), _as_tensor(target, "target")
    _check_num_classes(num_classes)
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, numbers.Integral):
        raise ValueError(f"ignore_index must be an integer, got {ignore_index!r}; the course uses 255")
    num_classes = int(num_classes)
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have the same shape, got {tuple(pred.shape)} and {tuple(target.shape)}")
    if pred.is_floating_point() or target.is_floating_point() or pred.is_complex() or target.is_complex():
        raise ValueError("pred and target must hold integer class indices; for logits, take .argmax(dim=1) first")
    pred = pred.detach().reshape(-1).to("cpu", torch.int64)  # new tensors: the inputs stay untouched
    target = target.detach().reshape(-1).to("cpu", torch.int64)
    keep = target != ignore_index
    pred, target = pred[keep], target[keep]
    if target.numel() and (target.min() < 0 or target.max() >= num_classes):
        raise ValueError(
            f"target holds labels outside 0..{num_classes - 1} that are not ignore_index={ignore_index}; "
            "convert labelIds to trainIds (pspnet_edu.data.labels) or pass the right num_classes"
        )
    if pred.numel() and (pred.min() < 0 or pred.max() >= num_classes):
        raise ValueError(f"pred holds class indices outside 0..{num_classes - 1}; pass the right num_classes")
    # Each (t, p) pair gets a unique index t * C + p; one bincount counts them all.
    counts = torch.bincount(target * num_classes + pred, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)  # (C_true, C_pred)


def iou_per_class(cm: Tensor | np.ndarray) -> Tensor:
    """Intersection over union per class: TP / (TP + FP + FN), NaN where the class is absent.

    A class that appears in neither the prediction nor the ground truth has an undefined IoU
    (0/0) and gets NaN, not 0. A class predicted but absent from the ground truth gets 0.

    >>> cm = torch.tensor([[3, 1, 0], [0, 2, 0], [0, 0, 0]])   # class 2 never seen
    >>> iou_per_class(cm)
    tensor([0.7500, 0.6667,    nan], dtype=torch.float64)
    """
    cm = _check_cm(cm).to(torch.float64)
    true_positive = cm.diagonal()
    union = cm.sum(dim=0) + cm.sum(dim=1) - true_positive  # TP + FP + FN
    return torch.where(union > 0, true_positive / union.clamp(min=1), torch.full_like(union, float("nan")))


def mean_iou(cm: Tensor | np.ndarray) -> float:
    """Mean IoU over the classes present in the prediction or the ground truth.

    >>> cm = torch.tensor([[3, 1, 0], [0, 2, 0], [0, 0, 0]])
    >>> round(mean_iou(cm), 4)   # (0.75 + 0.6667) / 2, class 2 left out
    0.7083
    """
    return float(torch.nanmean(iou_per_class(cm)))


def reduce_confusion_matrices(cms: Sequence[Tensor | np.ndarray]) -> Tensor:
    """The sum of confusion matrices: this process's, then, under ``torchrun``, every process's.

    The matrices in ``cms`` (e.g. one per batch, or one per simulated rank) are added up; when
    a ``torch.distributed`` process group is initialised, the result is then summed over the
    processes with ``all_reduce(SUM)``, so that every rank holds the matrix of the whole
    dataset. Scores come after that sum: the mean of the ranks' mIoUs is not the dataset's mIoU
    (shards differ in size, and a class absent from one shard is left out of that shard's mean).
    Returns a new ``int64`` tensor on the CPU; the inputs are left untouched.

    >>> rank0 = torch.tensor([[3, 1], [0, 0]])   # no true pixel of class 1 on rank 0
    >>> rank1 = torch.tensor([[0, 0], [1, 1]])
    >>> reduce_confusion_matrices([rank0, rank1])
    tensor([[3, 1],
            [1, 1]])
    >>> round(mean_iou(reduce_confusion_matrices([rank0, rank1])), 4), (mean_iou(rank0) + mean_iou(rank1)) / 2
    (0.4667, 0.3125)
    """
    if len(cms) == 0:
        raise ValueError("reduce_confusion_matrices needs at least one confusion matrix")
    checked = [_check_cm(cm) for cm in cms]
    if any(cm.shape != checked[0].shape for cm in checked):
        raise ValueError(f"the confusion matrices have different shapes: {sorted({tuple(cm.shape) for cm in checked})}")
    total = torch.stack([cm.detach().to("cpu", torch.int64) for cm in checked]).sum(dim=0)  # (C, C), a new tensor
    if dist.is_available() and dist.is_initialized():
        backend_device = "cuda" if dist.get_backend() == "nccl" else "cpu"  # NCCL reduces GPU tensors only
        shared = total.to(backend_device)
        dist.all_reduce(shared, op=dist.ReduceOp.SUM)  # every rank now holds the sum over all ranks
        total = shared.to("cpu")
    return total


def pixel_accuracy(cm: Tensor | np.ndarray) -> float:
    """Fraction of counted (non-ignored) pixels classified correctly ("allAcc" in semseg).

    >>> pixel_accuracy(torch.tensor([[3, 1], [0, 2]]))
    0.8333333333333334
    """
    cm = _check_cm(cm)
    total = cm.sum()
    if total == 0:
        return float("nan")
    return float(cm.diagonal().sum().to(torch.float64) / total)


def class_accuracy(cm: Tensor | np.ndarray) -> Tensor:
    """Recall per class: TP / (pixels of that class in the ground truth); NaN if it has none.

    >>> class_accuracy(torch.tensor([[3, 1, 1], [0, 2, 0], [0, 0, 0]]))   # class 2 never true
    tensor([0.6000, 1.0000,    nan], dtype=torch.float64)
    """
    cm = _check_cm(cm).to(torch.float64)
    support = cm.sum(dim=1)
    return torch.where(support > 0, cm.diagonal() / support.clamp(min=1), torch.full_like(support, float("nan")))


def mean_class_accuracy(cm: Tensor | np.ndarray) -> float:
    """Mean of the per-class accuracies over classes present in the ground truth ("mAcc").

    >>> mean_class_accuracy(torch.tensor([[3, 1, 1], [0, 2, 0], [0, 0, 0]]))   # (0.6 + 1.0) / 2
    0.8
    """
    return float(torch.nanmean(class_accuracy(cm)))
