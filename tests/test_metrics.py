"""Tests for pspnet_edu.metrics against brute-force per-pixel counting."""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from pspnet_edu.metrics import (
    class_accuracy,
    confusion_matrix,
    iou_per_class,
    mean_class_accuracy,
    mean_iou,
    pixel_accuracy,
    reduce_confusion_matrices,
)

IGNORE = 255


def brute_force(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> dict:
    """Count every pixel in a plain Python loop, independently of the module."""
    tp = [0] * num_classes
    fp = [0] * num_classes
    fn = [0] * num_classes
    correct = total = 0
    for p, t in zip(pred.flatten().tolist(), target.flatten().tolist()):
        if t == IGNORE:
            continue
        total += 1
        if p == t:
            tp[t] += 1
            correct += 1
        else:
            fp[p] += 1
            fn[t] += 1
    ious = [tp[c] / (tp[c] + fp[c] + fn[c]) if tp[c] + fp[c] + fn[c] else None for c in range(num_classes)]
    accs = [tp[c] / (tp[c] + fn[c]) if tp[c] + fn[c] else None for c in range(num_classes)]
    present = [v for v in ious if v is not None]
    present_acc = [v for v in accs if v is not None]
    return {
        "iou": ious,
        "miou": sum(present) / len(present),
        "pixel_acc": correct / total,
        "macc": sum(present_acc) / len(present_acc),
    }


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_against_brute_force_with_ignore_and_absent_classes(seed: int) -> None:
    torch.manual_seed(seed)
    num_classes = 7
    # Classes 5 and 6 never occur in target; class 6 never in pred either -> NaN IoU.
    target = torch.randint(0, 5, (2, 9, 11))
    target[torch.rand(target.shape) < 0.2] = IGNORE
    pred = torch.randint(0, 6, (2, 9, 11))
    cm = confusion_matrix(pred, target, num_classes)
    ref = brute_force(pred, target, num_classes)

    assert cm.shape == (num_classes, num_classes) and cm.dtype == torch.int64
    assert int(cm.sum()) == int((target != IGNORE).sum())
    ious = iou_per_class(cm)
    for c in range(num_classes):
        if ref["iou"][c] is None:
            assert math.isnan(ious[c])
        else:
            assert float(ious[c]) == pytest.approx(ref["iou"][c], rel=1e-12)
    assert float(ious[5]) == 0.0  # predicted but never true: IoU 0, not NaN
    assert math.isnan(float(ious[6]))  # absent from both: excluded
    assert mean_iou(cm) == pytest.approx(ref["miou"], rel=1e-12)
    assert pixel_accuracy(cm) == pytest.approx(ref["pixel_acc"], rel=1e-12)
    assert mean_class_accuracy(cm) == pytest.approx(ref["macc"], rel=1e-12)


def test_absent_class_is_not_counted_as_zero() -> None:
    pred = torch.tensor([0, 0, 1, 1])
    target = torch.tensor([0, 0, 1, 1])
    cm = confusion_matrix(pred, target, num_classes=19)
    assert mean_iou(cm) == 1.0  # 17 absent classes do not drag the mean to 2/19


def test_accumulates_over_batches() -> None:
    torch.manual_seed(0)
    pred = torch.randint(0, 4, (6, 5, 5))
    target = torch.randint(0, 4, (6, 5, 5))
    whole = confusion_matrix(pred, target, 4)
    summed = sum(confusion_matrix(p, t, 4) for p, t in zip(pred, target))
    assert torch.equal(whole, summed)


def test_inputs_are_not_modified() -> None:
    torch.manual_seed(0)
    pred = torch.randint(0, 3, (4, 6))
    target = torch.randint(0, 3, (4, 6))
    target[0, :3] = IGNORE
    pred_copy, target_copy = pred.clone(), target.clone()
    cm = confusion_matrix(pred, target, 3)
    cm_copy = cm.clone()
    iou_per_class(cm), mean_iou(cm), pixel_accuracy(cm), class_accuracy(cm), mean_class_accuracy(cm)
    assert torch.equal(pred, pred_copy) and torch.equal(target, target_copy) and torch.equal(cm, cm_copy)


def test_rows_are_truth_columns_are_prediction() -> None:
    cm = confusion_matrix(torch.tensor([1, 1, 1]), torch.tensor([0, 0, 1]), 2)
    assert cm.tolist() == [[0, 2], [0, 1]]


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="same shape"):
        confusion_matrix(torch.zeros(2, 3, dtype=torch.long), torch.zeros(3, 2, dtype=torch.long), 2)
    with pytest.raises(ValueError, match="argmax"):
        confusion_matrix(torch.zeros(2, 3), torch.zeros(2, 3, dtype=torch.long), 2)
    with pytest.raises(ValueError, match="trainIds"):
        confusion_matrix(torch.zeros(3, dtype=torch.long), torch.tensor([0, 7, 1]), 2)
    with pytest.raises(ValueError, match="num_classes"):
        confusion_matrix(torch.tensor([0, 5, 1]), torch.zeros(3, dtype=torch.long), 2)


def test_numpy_masks_are_accepted_and_left_untouched() -> None:
    pred = np.array([[0, 1], [1, 1]], dtype=np.uint8)
    target = np.array([[0, 1], [0, 255]], dtype=np.uint8)
    target.setflags(write=False)  # as np.asarray(PIL image) gives
    cm = confusion_matrix(pred, target, num_classes=2)
    assert cm.dtype == torch.int64 and cm.tolist() == [[1, 1], [0, 1]]
    assert target.tolist() == [[0, 1], [0, 255]] and pred.tolist() == [[0, 1], [1, 1]]
    assert confusion_matrix([0, 1], np.array([1, 1], np.int32), 2).tolist() == [[0, 0], [1, 1]]
    assert mean_iou(cm.numpy()) == mean_iou(cm)  # the scores take numpy matrices too
    assert pixel_accuracy(cm.numpy()) == pixel_accuracy(cm)


@pytest.mark.parametrize("num_classes", [-1, 0, 2.0, True, "19", None])
def test_num_classes_must_be_a_positive_int(num_classes: object) -> None:
    pred = torch.zeros(3, dtype=torch.long)
    with pytest.raises(ValueError, match=r"num_classes must be a positive integer, got .*num_classes=19"):
        confusion_matrix(pred, pred, num_classes)  # type: ignore[arg-type]
    assert confusion_matrix(pred, pred, np.int64(2)).tolist() == [[3, 0], [0, 0]]


@pytest.mark.parametrize("bad, text", [
    ("ab", "pred must be a tensor or a numpy array, got str"),
    (np.array(["a", "b"]), "pred holds <U1 values, not numbers"),
    ([[0, 1], [0]], "pred is not a rectangular array"),
])
def test_pred_that_is_no_array_of_numbers(bad: object, text: str) -> None:
    with pytest.raises(ValueError, match=text):
        confusion_matrix(bad, torch.zeros(2, dtype=torch.long), 2)  # type: ignore[arg-type]


@pytest.mark.parametrize("score", [iou_per_class, mean_iou, pixel_accuracy, class_accuracy, mean_class_accuracy])
@pytest.mark.parametrize("cm, text", [
    (torch.zeros(2, 3), r"square, \(C, C\), got shape \(2, 3\)"),
    (torch.zeros(4), r"square, \(C, C\), got shape \(4,\)"),
    (torch.tensor([[1, -1], [0, 1]]), "negative or non-finite"),
    (torch.tensor([[1.0, float("nan")], [0.0, 1.0]]), "negative or non-finite"),
    ("cm", "must be a tensor or a numpy array"),
])
def test_scores_reject_what_is_no_confusion_matrix(score, cm: object, text: str) -> None:
    with pytest.raises(ValueError, match=text):
        score(cm)


def test_reduce_sums_simulated_ranks_and_leaves_them_untouched() -> None:
    g = torch.Generator().manual_seed(3)
    shards = [(torch.randint(0, 4, (n, 5, 6), generator=g), torch.randint(0, 4, (n, 5, 6), generator=g))
              for n in (1, 3)]  # uneven shards
    cms = [confusion_matrix(p, t, 4) for p, t in shards]
    kept = [cm.clone() for cm in cms]
    whole = confusion_matrix(torch.cat([p for p, _ in shards]), torch.cat([t for _, t in shards]), 4)
    assert torch.equal(reduce_confusion_matrices(cms), whole)
    assert all(torch.equal(a, b) for a, b in zip(cms, kept))
    assert torch.equal(reduce_confusion_matrices(np.stack([cm.numpy() for cm in cms])), whole)  # numpy rows too


def test_reduce_refuses_no_matrix_and_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="at least one"):
        reduce_confusion_matrices([])
    with pytest.raises(ValueError, match="different shapes"):
        reduce_confusion_matrices([torch.zeros(2, 2, dtype=torch.long), torch.zeros(3, 3, dtype=torch.long)])


# Each of 2 gloo processes counts its own shard (rank 1 has 3 images, rank 0 one); after the
# reduction both must hold the matrix of the whole dataset.
REDUCE_SCRIPT = textwrap.dedent(
    """
    import sys
    import torch
    import torch.distributed as dist
    from pspnet_edu.metrics import confusion_matrix, reduce_confusion_matrices

    dist.init_process_group("gloo")
    rank = dist.get_rank()
    g = torch.Generator().manual_seed(0)
    preds, targets = torch.randint(0, 3, (4, 4, 5), generator=g), torch.randint(0, 3, (4, 4, 5), generator=g)
    mine = slice(0, 1) if rank == 0 else slice(1, 4)
    total = reduce_confusion_matrices([confusion_matrix(preds[mine], targets[mine], 3)])
    assert torch.equal(total, confusion_matrix(preds, targets, 3)), (rank, total)
    dist.destroy_process_group()
    """
)


def test_reduce_sums_over_two_gloo_processes(tmp_path) -> None:
    script = tmp_path / "reduce.py"
    script.write_text(REDUCE_SCRIPT)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
               f"--master_port={port}", str(script)]
    done = subprocess.run(command, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
