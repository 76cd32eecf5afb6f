"""Self-checks for notebooks/10_scaling_up.ipynb: released checkpoints and the paper's recipe under torchrun.

- :func:`check_strip_module_prefix`: ``my_strip_module_prefix(state_dict)``, the state dict
  of a model saved under ``DataParallel``/``DistributedDataParallel`` (every key starts with
  ``module.``) with that prefix removed, against PyTorch's own
  :func:`torch.nn.modules.utils.consume_prefix_in_state_dict_if_present` applied to a copy
  (``pspnet_edu.convert.semseg_to_pspnet_edu`` does the same first step);
- :func:`check_torchrun_plan`: ``my_torchrun_plan(world_size, epochs, dataset_size,
  global_batch=16, base_lr=0.01)``, what a run of the paper's recipe becomes under ``torchrun``
  with N processes: the images per process, the learning rate and the number of optimizer
  steps of ``epochs`` epochs, against :func:`torchrun_plan`, which reads them from the trainer
  itself (its split of the global batch, its per-process sampler
  :class:`pspnet_edu.training.sampling.EndlessBatches`). The paper trains with a batch of 16
  (Zhao et al. 2017, Sec. 5.1 "Implementation Details"); hszhao/semseg counts epochs.
- :func:`check_distributed_miou`: ``my_distributed_miou(shards, num_classes)``, the scores of
  an evaluation split over ranks (``shards``: one ``(pred, target)`` pair of trainId tensors
  per rank), ``{"iou": per-class IoU, "miou": float}``, against
  :func:`pspnet_edu.metrics.reduce_confusion_matrices` followed by ``iou_per_class`` and
  ``mean_iou``; the cases are those where the mean of the ranks' mIoUs differs from the mIoU of
  the whole set (uneven shards, a class absent from one rank).

While the learner's function runs, what it re-derives is hidden (:func:`pspnet_edu.checks._core.hidden`):
for the prefix, the reference and torch's ``consume_prefix_in_state_dict_if_present`` (the
exercise is to write that one step yourself); for the plan, the reference and the trainer's
``EndlessBatches`` (see :func:`torchrun_plan_hidden`); for the distributed mIoU, the reduction
and the two scores (:data:`DISTRIBUTED_MIOU_HIDDEN`), but not ``confusion_matrix``, lesson 08's
brick, which each rank still needs.
"""

from __future__ import annotations

import copy
import math
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from torch.nn.modules.utils import consume_prefix_in_state_dict_if_present

from pspnet_edu.checks._core import (
    Case,
    differences,
    fail,
    hidden,
    learner_code,
    learner_name,
    passed,
    refuse_reference,
    require_callable,
    short_repr,
)

PREFIX = "module."  # what torch.nn.DataParallel / DistributedDataParallel put before every name


def strip_module_prefix(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """The reference: a new dict without the leading ``module.``, the input left untouched.

    >>> strip_module_prefix({"module.cls.4.bias": 1, "module.layer0.0.weight": 2})
    {'cls.4.bias': 1, 'layer0.0.weight': 2}
    """
    result = OrderedDict(state_dict)  # the library function edits in place: work on a copy
    consume_prefix_in_state_dict_if_present(result, PREFIX)
    return dict(result)


STRIP_MODULE_PREFIX_HIDDEN = (strip_module_prefix, consume_prefix_in_state_dict_if_present)  # while the learner runs


def _state_dict_cases() -> tuple[Case, ...]:
    import torch

    def tensors(*names: str) -> dict[str, Any]:
        return {name: torch.full((2,), float(i)) for i, name in enumerate(names)}

    return (
        Case((tensors("module.layer0.0.weight", "module.layer0.1.running_mean", "module.cls.4.bias"),),
             hint="a checkpoint saved under DDP: every key starts with 'module.'."),
        Case((tensors("layer0.0.weight", "cls.4.bias"),),
             hint="a checkpoint saved without DDP: nothing to strip, keys stay as they are."),
        Case((tensors("module.ppm.features.0.1.weight", "module.aux.submodule.weight"),),
             hint="'module.' also occurs INSIDE a name ('aux.submodule.'): strip it only at the start."),
        Case((tensors("module.module.head.weight"),),
             hint="saved after wrapping twice: strip one prefix per wrapping, i.e. once."),
        Case(({},), hint="an empty state dict."),
    )


def _strip_diagnose(state_dict: Mapping[str, Any], expected: Mapping[str, Any], got: Any) -> str:
    base = "for every key, remove 'module.' if the key starts with it (key.removeprefix('module.'))."
    if not isinstance(got, Mapping):
        return "return a dict {name: tensor}. " + base
    if set(got) == {k.replace(PREFIX, "") for k in state_dict} != set(expected):
        return "str.replace removes 'module.' everywhere, also inside names such as 'aux.submodule.weight'. " + base
    if set(got) == {k[len(PREFIX):] for k in state_dict} != set(expected):
        return "k[7:] cuts 7 characters off keys that have no prefix too. " + base
    return base


def check_strip_module_prefix(my_strip_module_prefix: Callable[[Mapping[str, Any]], Mapping[str, Any]]) -> None:
    """Check ``my_strip_module_prefix(state_dict)`` on 5 state dicts; the input must stay untouched.

    >>> check_strip_module_prefix(lambda sd: {k.removeprefix("module."): v for k, v in sd.items()})
    ✓ <lambda> matches torch.nn.modules.utils.consume_prefix_in_state_dict_if_present on 5 cases
    """
    import torch

    name = learner_name(my_strip_module_prefix)
    require_callable(my_strip_module_prefix)
    refuse_reference(my_strip_module_prefix, STRIP_MODULE_PREFIX_HIDDEN, name)
    cases = _state_dict_cases()
    expected_values = [strip_module_prefix(*case.args) for case in cases]  # before hiding it
    with hidden(*STRIP_MODULE_PREFIX_HIDDEN) as hiding:
        for case, expected in zip(cases, expected_values):
            (state_dict,) = case.args
            given = copy.deepcopy(state_dict)  # the learner's own copy, to see whether it is modified
            call = case.call_text(name)
            with learner_code(name, call, hiding):
                got = my_strip_module_prefix(given)
            detail = differences(expected, got)
            if detail is not None:
                hint = " ".join([case.hint or "", _strip_diagnose(state_dict, expected, got)]).strip()
                raise fail(call, expected, got, detail, hint)
            if list(given) != list(state_dict) or any(not torch.equal(given[k], state_dict[k]) for k in state_dict):
                raise AssertionError(
                    f"{call} modified its argument: the keys are now {sorted(given)}.\n"
                    "  hint: build and return a NEW dict; the caller may still need the original "
                    "(torch's consume_prefix_in_state_dict_if_present edits in place, so copy first)."
                )
    passed(name, "torch.nn.modules.utils.consume_prefix_in_state_dict_if_present", len(cases))


# ------------------------------------------------------------------ a run under torchrun

PLAN_KEYS = ("per_process_batch", "lr", "iters")


def torchrun_plan(world_size: int, epochs: int, dataset_size: int, global_batch: int = 16,
                  base_lr: float = 0.01) -> dict[str, Any]:
    """The reference: what the trainer does with ``--batch-size global_batch`` under ``torchrun`` with N processes.

    - ``per_process_batch``: the global batch split evenly (the trainer refuses a batch that N
      does not divide, ``pspnet_edu.training.loop``);
    - ``lr``: unchanged, since DDP averages the gradients of the N processes, so one step on the
      global batch split over N processes is the step one process would take on all of it;
    - ``iters``: ``epochs`` epochs of the trainer's own sampler for this process
      (``EndlessBatches``: a ``DistributedSampler`` shard per process, incomplete batches dropped).

    >>> torchrun_plan(4, 200, 2975)  # hszhao/semseg's Cityscapes recipe on 4 GPUs
    {'per_process_batch': 4, 'lr': 0.01, 'iters': 37000}
    """
    from pspnet_edu.training.sampling import EndlessBatches

    if global_batch % world_size:
        raise ValueError(f"a global batch of {global_batch} cannot be split evenly over {world_size} processes")
    per_process = global_batch // world_size
    per_epoch = EndlessBatches(dataset_size, per_process, seed=0, rank=0, world_size=world_size).per_epoch
    return {"per_process_batch": per_process, "lr": base_lr, "iters": epochs * per_epoch}


def torchrun_plan_hidden() -> tuple[Any, ...]:
    """What :func:`check_torchrun_plan` hides while the learner's code runs.

    A function, not a constant: importing the trainer takes a second, which the other check of
    the lesson need not pay.
    """
    from pspnet_edu.training.sampling import EndlessBatches

    return (torchrun_plan, EndlessBatches)


# (args, kwargs, hint): the paper's and semseg's Cityscapes recipes, the course's, and odd splits
_PLAN_CASES: tuple[tuple[tuple[int, ...], dict[str, Any], str], ...] = (
    ((4, 200, 2975), {}, "hszhao/semseg on Cityscapes: 200 epochs of 2,975 images, batch 16 over 4 GPUs."),
    ((1, 200, 2975), {}, "the same recipe in one process: the same steps at the same rate."),
    ((8, 200, 2975), {}, "8 GPUs: 2 images each (SyncBatchNorm matters most here)."),
    ((2, 10, 300), {"global_batch": 8, "base_lr": 0.02}, "the course's demo recipe on 2 CPU processes (gloo)."),
    ((3, 5, 100), {"global_batch": 12, "base_lr": 0.005}, "3 processes of 4 images."),
    ((16, 1, 2975), {}, "16 GPUs: one image each."),
)
_PLAN_REFUSED = (
    ((3, 200, 2975), {}, "16 images cannot be split evenly over 3 processes."),
    ((32, 200, 2975), {}, "32 processes for 16 images: half an image each."),
)

PLAN_HINT = ("the batch size is GLOBAL: each of the N processes takes global_batch // N images (raise ValueError when "
             "N does not divide it); DDP averages the N gradients, so one step is the step of the whole global batch "
             "and the rate stays base_lr; an epoch is dataset_size // global_batch steps (the incomplete last batch "
             "is dropped), so iters = epochs * (dataset_size // global_batch).")


def _plan_diagnose(args: tuple[int, ...], kwargs: dict[str, Any], expected: dict[str, Any], got: Any) -> str:
    world, epochs, size = args
    batch, lr = kwargs.get("global_batch", 16), kwargs.get("base_lr", 0.01)
    if not isinstance(got, dict) or set(got) != set(PLAN_KEYS):
        return f"return a dict with the keys {list(PLAN_KEYS)}. " + PLAN_HINT
    slips = []
    if got["per_process_batch"] == batch and world > 1:
        slips.append("every process taking the whole global batch would make the run's batch N times larger")
    if isinstance(got["lr"], (int, float)) and world > 1 and math.isclose(got["lr"], lr * world):
        slips.append("do not multiply the rate by N: the gradients are AVERAGED over the processes, and the global "
                     "batch did not change")
    if isinstance(got["lr"], (int, float)) and world > 1 and math.isclose(got["lr"], lr / world):
        slips.append("do not divide the rate by N: each process computes the mean loss of its own images, and DDP "
                     "averages them, which is the mean over the global batch")
    iters = got["iters"]
    if iters == epochs * (size // (batch // world)) != expected["iters"]:
        slips.append("that counts the batches of one process over the WHOLE dataset; each process sees only its "
                     "shard (1/N of the images), so the steps are those of the global batch")
    elif iters == epochs * math.ceil(size / batch) != expected["iters"]:
        slips.append("the incomplete last batch of every epoch is dropped (drop_last, as semseg): round down")
    elif iters == epochs * size // batch != expected["iters"]:
        slips.append("round down per epoch (each epoch drops its own incomplete batch), then multiply by the epochs")
    elif isinstance(iters, float):
        slips.append("the number of steps is an int: use //")
    return " ".join(s + "." for s in slips) + (" " if slips else "") + PLAN_HINT


def check_torchrun_plan(my_torchrun_plan: Callable[..., dict[str, Any]]) -> None:
    """Check ``my_torchrun_plan(world_size, epochs, dataset_size, global_batch=16, base_lr=0.01)`` on 8 cases.

    It must return ``{"per_process_batch": ..., "lr": ..., "iters": ...}`` as the trainer runs
    them under ``torchrun --nproc_per_node=world_size``, and raise ``ValueError`` when the global
    batch cannot be split evenly.

    >>> def my_torchrun_plan(world_size, epochs, dataset_size, global_batch=16, base_lr=0.01):
    ...     if global_batch % world_size:
    ...         raise ValueError("the global batch must split evenly")
    ...     return {"per_process_batch": global_batch // world_size, "lr": base_lr,
    ...             "iters": epochs * (dataset_size // global_batch)}
    >>> check_torchrun_plan(my_torchrun_plan)
    ✓ my_torchrun_plan matches pspnet_edu.training.sampling.EndlessBatches on 8 cases
    """
    name = learner_name(my_torchrun_plan)
    require_callable(my_torchrun_plan)
    hide = torchrun_plan_hidden()
    refuse_reference(my_torchrun_plan, hide, name)
    expected_values = [torchrun_plan(*args, **kwargs) for args, kwargs, _ in _PLAN_CASES]  # before hiding
    with hidden(*hide) as hiding:
        for (args, kwargs, hint), expected in zip(_PLAN_CASES, expected_values):
            call = Case(args, kwargs).call_text(name)
            with learner_code(name, call, hiding):
                got = my_torchrun_plan(*args, **kwargs)
            detail = differences(expected, got, rtol=1e-12, atol=0.0)
            if detail is not None:
                raise fail(call, expected, got, detail, f"{hint} {_plan_diagnose(args, kwargs, expected, got)}")
        for args, kwargs, hint in _PLAN_REFUSED:
            call = Case(args, kwargs).call_text(name)
            with learner_code(name, call, hiding):
                try:
                    got = my_torchrun_plan(*args, **kwargs)
                except ValueError:
                    continue
            raise AssertionError(
                f"{call} returned {short_repr(got)}; expected a ValueError.\n  hint: {hint} The trainer refuses such a "
                f"run (pspnet-edu train says so before it starts): raise ValueError when global_batch % world_size "
                f"!= 0. {PLAN_HINT}")
    passed(name, "pspnet_edu.training.sampling.EndlessBatches", len(_PLAN_CASES) + len(_PLAN_REFUSED))


# ------------------------------------------------------------------ evaluation under DDP


def distributed_miou(shards: Sequence[tuple[Any, Any]], num_classes: int) -> dict[str, Any]:
    """The reference: each rank's confusion matrix, summed over the ranks, then the scores.

    >>> import torch
    >>> shards = [(torch.tensor([0, 0, 1]), torch.tensor([0, 0, 0])), (torch.tensor([1]), torch.tensor([1]))]
    >>> result = distributed_miou(shards, 2)
    >>> result["iou"], round(result["miou"], 4)
    (tensor([0.6667, 0.5000], dtype=torch.float64), 0.5833)
    """
    from pspnet_edu.metrics import confusion_matrix, iou_per_class, mean_iou, reduce_confusion_matrices

    total = reduce_confusion_matrices([confusion_matrix(pred, target, num_classes) for pred, target in shards])
    return {"iou": iou_per_class(total), "miou": mean_iou(total)}


def distributed_miou_hidden() -> tuple[Any, ...]:
    """What :func:`check_distributed_miou` hides: the reference, the reduction and the two scores."""
    from pspnet_edu import metrics

    return (distributed_miou, metrics.reduce_confusion_matrices, metrics.iou_per_class, metrics.mean_iou)


def _shards(seed: int, images: Sequence[int], num_classes: int, size: tuple[int, int] = (6, 8),
            absent: Mapping[int, int] | None = None, void: bool = False) -> list[tuple[Any, Any]]:
    """One (pred, target) pair of (N, H, W) int64 tensors per rank, ``images[r]`` images on rank ``r``.

    ``absent`` maps a rank to a class that neither its predictions nor its targets contain;
    ``void`` puts a row of 255 (ignored) pixels at the top of every target.
    """
    import torch

    generator = torch.Generator().manual_seed(seed)
    shards = []
    for rank, count in enumerate(images):
        target = torch.randint(0, num_classes, (count, *size), generator=generator)
        right = torch.rand(target.shape, generator=generator) < 0.7  # 70 % of the pixels predicted right
        pred = torch.where(right, target, torch.randint(0, num_classes, target.shape, generator=generator))
        missing = (absent or {}).get(rank)
        if missing is not None:  # move the class's pixels to the next class, in the labels and the predictions
            target = torch.where(target == missing, (missing + 1) % num_classes, target)
            pred = torch.where(pred == missing, (missing + 1) % num_classes, pred)
        if void:
            target[:, 0] = 255
        shards.append((pred, target))
    return shards


# (what the case is about, the shards, the number of classes)
def _miou_cases() -> tuple[tuple[str, list[tuple[Any, Any]], int], ...]:
    return (
        ("2 ranks, 1 and 3 images (uneven shards)", _shards(0, (1, 3), 4), 4),
        ("2 ranks of 2 images; class 2 is absent from rank 1", _shards(1, (2, 2), 4, absent={1: 2}), 4),
        ("3 ranks, 2, 1 and 1 images; rank 0 never sees class 0, rank 2 never sees class 3",
         _shards(2, (2, 1, 1), 5, absent={0: 0, 2: 3}), 5),
        ("4 ranks with void (255) rows in every target", _shards(3, (1, 2, 1, 3), 3, void=True), 3),
        ("class 4 is absent from every rank: its IoU is undefined (NaN) and left out of the mean",
         _shards(4, (2, 1), 6, absent={0: 4, 1: 4}), 6),
        ("a single rank: the whole set", _shards(5, (3,), 4), 4),
    )


MIOU_HINT = ("each rank counts a confusion matrix of its own pixels (confusion_matrix(pred, target, num_classes)); "
             "add the matrices of all ranks (under torchrun: torch.distributed.all_reduce with SUM) and compute IoU "
             "= TP / (TP + FP + FN) per class from the SUM, NaN where a class has no pixel in either, and the mIoU "
             "as the mean over the classes that are not NaN.")


def _per_rank_scores(shards: Sequence[tuple[Any, Any]], num_classes: int) -> list[dict[str, Any]]:
    return [distributed_miou([shard], num_classes) for shard in shards]


def _miou_diagnose(shards: Sequence[tuple[Any, Any]], num_classes: int, expected: Mapping[str, Any],
                   got: Any) -> str:
    """Name the slip whose result equals the learner's (computed after the learner ran: it needs what was hidden)."""
    import torch

    if not isinstance(got, Mapping) or set(got) != {"iou", "miou"}:
        return 'return a dict {"iou": a tensor of one IoU per class, "miou": a float}. ' + MIOU_HINT
    per_rank = _per_rank_scores(shards, num_classes)
    miou, iou = got["miou"], got["iou"]
    try:
        iou = torch.as_tensor(iou, dtype=torch.float64)
    except Exception:  # noqa: BLE001 - anything that is not a list of numbers
        return 'the "iou" entry must be a tensor of one IoU per class. ' + MIOU_HINT
    if iou.shape == expected["iou"].shape and len(shards) > 1:
        mean_of_ious = torch.nanmean(torch.stack([r["iou"] for r in per_rank]), dim=0)
        if torch.allclose(iou, mean_of_ious, equal_nan=True):
            return ("that is the mean of the ranks' per-class IoUs: IoU is a ratio, and the mean of ratios is not the "
                    "ratio of the sums. Sum the confusion matrices first. " + MIOU_HINT)
    if isinstance(miou, (int, float)) and len(shards) > 1:
        mean_of_mious = sum(r["miou"] for r in per_rank) / len(per_rank)
        if math.isclose(miou, mean_of_mious, rel_tol=1e-6, abs_tol=1e-9):
            return ("that is the MEAN OF THE RANKS' mIoUs: it weighs a small shard like a large one, and a class "
                    "absent from a rank drops out of that rank's mean only. Sum the confusion matrices first, then "
                    "score once. " + MIOU_HINT)
    nan = torch.isnan(expected["iou"])
    if iou.shape == nan.shape and nan.any() and not torch.isnan(iou[nan]).any():
        return (f"class(es) {nan.nonzero().flatten().tolist()} have no pixel in the targets nor in the predictions: "
                "their IoU is 0/0, undefined: NaN, left out of the mean (torch.nanmean), not 0. " + MIOU_HINT)
    return MIOU_HINT


def check_distributed_miou(my_distributed_miou: Callable[..., Mapping[str, Any]]) -> None:
    """Check ``my_distributed_miou(shards, num_classes)`` on 6 evaluations split over 1 to 4 ranks.

    >>> import torch
    >>> from pspnet_edu.metrics import confusion_matrix
    >>> def my_distributed_miou(shards, num_classes):
    ...     total = sum(confusion_matrix(pred, target, num_classes) for pred, target in shards).double()
    ...     tp = total.diagonal()
    ...     union = total.sum(0) + total.sum(1) - tp
    ...     iou = torch.where(union > 0, tp / union, float("nan"))
    ...     return {"iou": iou, "miou": float(iou.nanmean())}
    >>> check_distributed_miou(my_distributed_miou)
    ✓ my_distributed_miou matches pspnet_edu.metrics.reduce_confusion_matrices on 6 cases
    """
    name = learner_name(my_distributed_miou)
    require_callable(my_distributed_miou)
    hide = distributed_miou_hidden()
    refuse_reference(my_distributed_miou, hide, name)
    cases = _miou_cases()
    expected_values = [distributed_miou(shards, k) for _, shards, k in cases]  # before hiding
    failure = None
    with hidden(*hide) as hiding:
        for (about, shards, num_classes), expected in zip(cases, expected_values):
            call = f"{name}(shards, num_classes={num_classes})  [{about}]"
            with learner_code(name, call, hiding):
                got = my_distributed_miou(copy.deepcopy(shards), num_classes)
            detail = differences(expected, got, rtol=1e-6, atol=1e-9)
            if detail is not None:
                failure = call, shards, num_classes, expected, got, detail
                break
    if failure is not None:
        call, shards, num_classes, expected, got, detail = failure
        raise fail(call, expected, got, detail, _miou_diagnose(shards, num_classes, expected, got))
    passed(name, "pspnet_edu.metrics.reduce_confusion_matrices", len(cases))
