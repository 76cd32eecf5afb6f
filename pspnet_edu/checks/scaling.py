"""Self-checks for notebooks/10_scaling_up.ipynb: the paper's recipe under torchrun, and evaluation under DDP.

- :func:`check_torchrun_plan`: ``my_torchrun_plan(world_size, epochs, dataset_size,
  global_batch=16, base_lr=0.01)``, what a run of the paper's recipe becomes under ``torchrun``
  with N processes: the images per process, the learning rate and the number of optimizer
  steps of ``epochs`` epochs, against :func:`torchrun_plan`, which reads them from the trainer
  itself (its split of the global batch, its per-process sampler
  :class:`pspnet_edu.training.sampling.EndlessBatches`). The paper trains with a batch of 16
  (Zhao et al. 2017, Sec. 5.1 "Implementation Details"); hszhao/semseg counts epochs.
- :func:`check_sharded_evaluate`: ``my_sharded_evaluate(model, dataset, world_size,
  num_classes, batch_size=2)``, what N ranks do when they evaluate under DDP: rank ``r`` takes
  images ``r, r + N, ...`` (``DistributedSampler(shuffle=False)``'s shard, without the padding
  that would count images twice), predicts them in eval mode, batch by batch, and counts a
  confusion matrix; the matrices are summed (what ``all_reduce(SUM)`` leaves on every rank)
  and scored once. Returns ``{"per_rank": [N matrices], "confusion_matrix": their sum,
  "miou": float}``, compared with :func:`sharded_evaluate`, which runs the package's public
  :func:`pspnet_edu.inference.evaluate` on each shard (and whose sum equals ``evaluate`` on the
  whole set, ``tests/test_checks_scaling.py``). The cases: 7 scenes with void rows over 1, 2,
  3, 4 and 8 ranks (the last leaves a rank empty), the model handed over in train mode, as a
  trainer holds it mid-run, and once more over 2 ranks in eval mode (it must come back in the mode
  it came in). A wrong matrix is explained from its counts: more pixels than the
  rank's shard holds (the sampler's padding, the whole set on every rank), fewer (a dropped
  last batch, ``drop_last`` in the sampler), the same pixels predicted otherwise (train mode).

While the learner's function runs, what it re-derives is hidden (:func:`pspnet_edu.checks._core.hidden`):
for the plan, the reference and the trainer's ``EndlessBatches`` (see
:func:`torchrun_plan_hidden`); for the evaluation, the reference, ``evaluate``, ``predict``,
``predict_probs`` and ``reduce_confusion_matrices`` (see :func:`sharded_evaluate_hidden`), but
not ``confusion_matrix`` and ``mean_iou``, lesson 08's bricks, nor ``torch.utils.data``.
"""

from __future__ import annotations

import copy
import math
import operator
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor, nn

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

PLAN_HINT = ("three facts decide the plan: the batch size you pass is GLOBAL, split over the N processes (a split "
             "that is not even is refused with ValueError); DDP AVERAGES the N processes' gradients after every "
             "backward pass (what is one step then, and what must that do to the rate?); each process sees only its "
             "own shard of an epoch, and the trainer's sampler keeps only whole global batches (drop_last=True).")


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
    padded_shard = math.ceil(size / world) // (batch // world)  # DistributedSampler's defaults: shards padded
    if iters == epochs * padded_shard != expected["iters"]:
        slips.append(f"{padded_shard} steps per epoch is what DistributedSampler's defaults give (every shard padded "
                     "to ceil(n / N) images by repeating some), or rounding up; the trainer's sampler drops the "
                     "incomplete last global batch instead (drop_last, as semseg): no image is repeated and "
                     "every step is a whole global batch")
    elif iters == epochs * (size // (batch // world)) != expected["iters"]:
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

PROBE_CLASSES = 4
SCENES = 7  # fewer than the 8 ranks of the last case: one rank holds no image
SCENE_BLOCKS = (4, 4)  # rows and columns of uniformly coloured blocks
BLOCK = (6, 8)  # pixels per block: the scenes are 24 x 32


class ColourProbe(nn.Module):
    """A stand-in for a trained network: it labels each pixel with the class whose colour is nearest.

    Per pixel (1x1 convolutions): ``[x, -x]``, BatchNorm, ReLU, then the classifier
    ``2 p_k . x - |p_k|^2`` applied to ``relu(x) - relu(-x) = x`` (``p_k``: the colour of class
    ``k``). The BatchNorm's affine parameters undo its running statistics exactly, so in eval
    mode the probe *is* that classifier, and a pixel's logits depend on its colour alone; the
    running statistics are seeded far from a batch's own, so in train mode (batch statistics)
    it predicts other classes. Returns ``{"out": logits (B, C, H, W)}``, as PSPNet does.
    """

    def __init__(self, palette: Tensor, seed: int = 0) -> None:
        super().__init__()
        classes = palette.shape[0]
        generator = torch.Generator().manual_seed(seed)
        self.split = nn.Conv2d(3, 6, 1, bias=False)
        self.bn = nn.BatchNorm2d(6)
        self.classify = nn.Conv2d(6, classes, 1)
        with torch.no_grad():
            eye = torch.eye(3)
            self.split.weight.copy_(torch.cat([eye, -eye]).view(6, 3, 1, 1))
            self.bn.running_mean.copy_(2 * torch.randn(6, generator=generator))
            self.bn.running_var.copy_(0.25 + 4 * torch.rand(6, generator=generator))
            self.bn.weight.copy_((self.bn.running_var + self.bn.eps).sqrt())  # eval mode: the identity
            self.bn.bias.copy_(self.bn.running_mean)
            self.classify.weight.copy_(torch.cat([2 * palette, -2 * palette], dim=1).view(classes, 6, 1, 1))
            self.classify.bias.copy_(-(palette**2).sum(dim=1))

    def forward(self, x: Tensor) -> dict[str, Tensor]:  # x: (B, 3, H, W)
        return {"out": self.classify(torch.relu(self.bn(self.split(x))))}  # (B, C, H, W)


class Scenes(torch.utils.data.Dataset):
    """A validation set of ``(image (3, H, W) float32, mask (H, W) int64)`` pairs, 255 = void.

    Read one image at a time, ``dataset[i]``, as a real dataset (``CityscapesSegmentation``);
    every read returns new tensors, so a learner's code cannot spoil the set.
    """

    def __init__(self, images: Tensor, masks: Tensor) -> None:
        self.images, self.masks = images, masks

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        index = operator.index(index)  # an int, not a slice
        return self.images[index].clone(), self.masks[index].clone()


def probe_evaluation(seed: int = 0) -> tuple[ColourProbe, Scenes]:
    """The check's model, in train mode as a trainer holds it mid-run, and its 7 validation scenes.

    Each scene is a grid of uniformly coloured blocks, one class per block; 70 % of the blocks
    have their class's colour, the others a random colour of the palette or of two decoys (which
    the probe maps to the nearest class). The bottom 1 to 3 rows of every mask are void (255),
    like Cityscapes' ego vehicle.

    >>> model, scenes = probe_evaluation()
    >>> len(scenes), tuple(scenes[0][0].shape), tuple(scenes[0][1].shape), model.training
    (7, (3, 24, 32), (24, 32), True)
    """
    generator = torch.Generator().manual_seed(seed)
    palette = torch.randn(PROBE_CLASSES, 3, generator=generator)
    colours = torch.cat([palette, torch.randn(2, 3, generator=generator)])  # the classes' and two decoys
    labels = torch.randint(0, PROBE_CLASSES, (SCENES, *SCENE_BLOCKS), generator=generator)
    honest = torch.rand(labels.shape, generator=generator) < 0.7
    painted = torch.where(honest, labels, torch.randint(0, len(colours), labels.shape, generator=generator))
    images = colours[painted].permute(0, 3, 1, 2)  # (N, 3, rows, columns)
    images = images.repeat_interleave(BLOCK[0], dim=2).repeat_interleave(BLOCK[1], dim=3).contiguous()
    masks = labels.repeat_interleave(BLOCK[0], dim=1).repeat_interleave(BLOCK[1], dim=2)
    for i in range(SCENES):
        masks[i, -(1 + i % 3):] = 255
    return ColourProbe(palette, seed).train(), Scenes(images, masks)


def shard(dataset_size: int, world_size: int, rank: int) -> list[int]:
    """The images of rank ``rank``: ``DistributedSampler(shuffle=False)``'s shard without its padding.

    >>> [shard(7, 3, rank) for rank in range(3)]
    [[0, 3, 6], [1, 4], [2, 5]]
    """
    return list(range(rank, dataset_size, world_size))


def sharded_evaluate(model: nn.Module, dataset: Any, world_size: int, num_classes: int,
                     batch_size: int = 2) -> dict[str, Any]:
    """The reference: ``evaluate`` on each rank's shard, the matrices summed, the mIoU of the sum.

    A rank without an image holds a matrix of zeros. ``evaluate`` puts the model in eval mode
    and back.

    >>> model, scenes = probe_evaluation()
    >>> result = sharded_evaluate(model, scenes, 3, PROBE_CLASSES)
    >>> [int(cm.sum()) for cm in result["per_rank"]], int(result["confusion_matrix"].sum())
    ([2208, 1408, 1344], 4960)
    """
    from pspnet_edu.inference import evaluate
    from pspnet_edu.metrics import mean_iou, reduce_confusion_matrices

    per_rank = []
    for rank in range(world_size):
        images = torch.utils.data.Subset(dataset, shard(len(dataset), world_size, rank))
        per_rank.append(evaluate(model, images, num_classes=num_classes, batch_size=batch_size)["confusion_matrix"]
                        if len(images) else torch.zeros(num_classes, num_classes, dtype=torch.int64))
    total = reduce_confusion_matrices(per_rank)
    return {"per_rank": per_rank, "confusion_matrix": total, "miou": mean_iou(total)}


def sharded_evaluate_hidden() -> tuple[Any, ...]:
    """What :func:`check_sharded_evaluate` hides: the reference, the package's evaluation and its reduction."""
    from pspnet_edu import inference, metrics

    return (sharded_evaluate, inference.evaluate, inference.predict, inference.predict_probs,
            metrics.reduce_confusion_matrices)


# (world size, batch size, the mode the model is handed over in, what the case is about)
_EVAL_CASES: tuple[tuple[int, int, bool, str], ...] = (
    (1, 2, True, "one rank: the whole set, as evaluate on one process"),
    (2, 2, True, "2 ranks: images 0, 2, 4, 6 and 1, 3, 5"),
    (3, 2, True, "3 ranks: images 0, 3, 6 and 1, 4 and 2, 5"),
    (4, 3, True, "4 ranks, batches of 3: every batch is incomplete"),
    (8, 2, True, "8 ranks for 7 images: rank 7 holds none"),
    (2, 2, False, "2 ranks, the model handed over in eval mode"),
)

EVAL_KEYS = ("per_rank", "confusion_matrix", "miou")
EVAL_HINT = ("rank r evaluates the images r, r + N, r + 2N, ... (each image on one rank, once), in eval mode, batch "
             "by batch, and counts confusion_matrix(pred, mask, num_classes) into its own (C, C) matrix, zeros if "
             "it holds no image; 'confusion_matrix' is the sum of the N matrices (what all_reduce(SUM) leaves on "
             "every rank), 'miou' the mIoU of that sum (mean_iou), and the model leaves in the mode it came in.")


def _counts(model: nn.Module, dataset: Any, indices: list[int], num_classes: int, batch_size: int,
            training: bool = False) -> Tensor:
    """The confusion matrix of ``dataset[i] for i in indices``, batch by batch, a copy of the model in that mode."""
    from pspnet_edu.metrics import confusion_matrix

    model = copy.deepcopy(model).train(training)
    cm = torch.zeros(num_classes, num_classes, dtype=torch.int64)
    with torch.no_grad():
        for start in range(0, len(indices), batch_size):
            pairs = [dataset[i] for i in indices[start:start + batch_size]]
            images, masks = torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])
            cm += confusion_matrix(model(images)["out"].argmax(dim=1), masks, num_classes)
    return cm


def _shard_slips(size: int, world_size: int, rank: int, batch_size: int) -> list[tuple[list[int], str]]:
    """The images a plausible mistake gives rank ``rank``, and what to say about it."""
    from torch.utils.data import DistributedSampler

    own = shard(size, world_size, rank)

    def sampler(drop_last: bool) -> list[int]:
        return list(DistributedSampler(range(size), world_size, rank, shuffle=False, drop_last=drop_last))

    padded, trimmed = sampler(False), sampler(True)
    block = math.ceil(size / world_size)
    return [
        (padded, f"DistributedSampler pads every shard to the same length, ceil({size} / {world_size}) = {block} "
                 f"images, by repeating images from the start of the set: here images "
                 f"{sorted(set(padded) - set(own))} are counted twice. Training needs that padding (every rank must "
                 "take the same number of steps); an evaluation must count each image once, so give each rank its "
                 "shard without it."),
        (trimmed, f"DistributedSampler(drop_last=True) cuts the set to a multiple of {world_size}: images "
                  f"{sorted(set(own) - set(trimmed))} are never evaluated."),
        (own[: len(own) // batch_size * batch_size],
         f"the incomplete last batch was dropped (DataLoader(drop_last=True)?), so images "
         f"{own[len(own) // batch_size * batch_size:]} are never evaluated; an evaluation counts every image, and "
         "the last batch may be smaller."),
        (list(range(size)), f"every rank evaluated the whole set: the sum then counts every image {world_size} times."),
        (list(range(rank * block, min(size, (rank + 1) * block))),
         "that is a contiguous block of the set; DistributedSampler(shuffle=False) deals the images out in turn: "
         "rank r holds r, r + N, r + 2N, ..."),
        (torch.arange(size).tensor_split(world_size)[rank].tolist(),
         "that is a contiguous block of the set; DistributedSampler(shuffle=False) deals the images out in turn: "
         "rank r holds r, r + N, r + 2N, ..."),
    ]


def _rank_diagnose(model: nn.Module, dataset: Any, world_size: int, num_classes: int, batch_size: int,
                   rank: int, expected: Tensor, got: Any) -> str:
    """Name the slip behind rank ``rank``'s wrong matrix, from the images it counted and their predictions."""
    own = shard(len(dataset), world_size, rank)
    head = f"rank {rank}'s images are {own}, "
    if not (isinstance(got, Tensor) and got.shape == expected.shape):
        return head + f"its matrix a ({num_classes}, {num_classes}) tensor of counts (zeros for a rank with no image)."
    for indices, why in _shard_slips(len(dataset), world_size, rank, batch_size):
        if indices != own and torch.equal(got.long(), _counts(model, dataset, indices, num_classes, batch_size)):
            return head + f"but it counted images {indices}: " + why
    if torch.equal(got.long(), _counts(model, dataset, own, num_classes, batch_size, training=True)):
        return head + ("the right images, but predicted in train mode: BatchNorm then normalises with the statistics "
                       "of the batch (a pixel's class depends on the other images of its batch) and updates its "
                       "running statistics. Predict in eval mode (model.eval()), then restore the mode the model "
                       "came in.")
    counted, labelled = int(got.sum()), int(expected.sum())
    void = sum(int((dataset[i][1] == 255).sum()) for i in own)
    if counted == labelled + void:
        return head + (f"with {labelled} labelled pixels, but its matrix counts {counted}: the {void} void (255) "
                       "pixels of their masks too. Void pixels have no class: every count leaves them out "
                       "(confusion_matrix drops the pixels whose target is 255).")
    if counted > labelled:
        return head + (f"with {labelled} labelled pixels, but its matrix counts {counted}: an image counted twice, "
                       "or void (255) pixels counted? " + EVAL_HINT)
    if counted < labelled:
        return head + (f"with {labelled} labelled pixels, but its matrix counts only {counted}: an image left out? "
                       + EVAL_HINT)
    if torch.equal(got.long(), expected.T):
        return head + ("but its matrix is transposed: cm[t, p] counts the pixels of true class t predicted as p; "
                       "confusion_matrix(pred, target, num_classes) takes the prediction first.")
    return head + ("the right number of pixels, predicted otherwise: in eval mode? The class of a pixel is the argmax "
                   "over the class dimension, dim=1 of the (B, C, H, W) logits. " + EVAL_HINT)


def _evaluate_diagnose(model: nn.Module, dataset: Any, world_size: int, num_classes: int, batch_size: int,
                       expected: Mapping[str, Any], got: Any) -> str:
    """Explain a wrong result: the first wrong rank, then the sum, then the score."""
    from pspnet_edu.metrics import mean_iou

    if not isinstance(got, Mapping) or set(got) != set(EVAL_KEYS):
        return f"return a dict with the keys {list(EVAL_KEYS)}. " + EVAL_HINT
    per_rank = got["per_rank"]
    if not isinstance(per_rank, (list, tuple)) or len(per_rank) != world_size:
        return (f"'per_rank' is a list of {world_size} matrices, one per rank, a rank without an image included. "
                + EVAL_HINT)
    for rank, (want, have) in enumerate(zip(expected["per_rank"], per_rank)):
        if differences(want, have) is not None:
            return _rank_diagnose(model, dataset, world_size, num_classes, batch_size, rank, want, have)
    if differences(expected["confusion_matrix"], got["confusion_matrix"]) is not None:
        return ("the ranks' matrices are right: 'confusion_matrix' is their SUM, what all_reduce(cm, op=SUM) leaves "
                "on every rank.")
    rank_mious = [mean_iou(cm) if cm.sum() else float("nan") for cm in expected["per_rank"]]
    means = (sum(rank_mious) / world_size, sum(m for m in rank_mious if m == m) / sum(m == m for m in rank_mious))
    miou = got["miou"]
    empty = "; a rank without an image has no mIoU at all (0/0, NaN)" if world_size > len(dataset) else ""
    if isinstance(miou, float) and (math.isnan(miou) or any(math.isclose(miou, m, rel_tol=1e-6) for m in means)):
        return ("the matrices are right, the score is not: that is the mean of the ranks' mIoUs. IoU is a ratio of "
                "pixel counts, and the mean of ratios is not the ratio of the sums: a rank of few images weighs as "
                "much as a rank of many, and a class absent from a rank drops out of that rank's mean" + empty +
                ". Score once, from the summed matrix.")
    return "the matrices are right: 'miou' is the mean IoU of the summed matrix, a float. " + EVAL_HINT


def _crash_hint(message: str, world_size: int) -> str:
    """A hint for an exception of the learner's code, from its message and the case."""
    hints = []
    if "same shape" in message:
        hints.append("the logits are (B, C, H, W): a pixel's class is the argmax over dim=1.")
    if "pred holds class indices outside" in message:
        hints.append("confusion_matrix(pred, target, num_classes) takes the prediction first; the void (255) "
                     "pixels are in the masks.")
    if "slice" in message or "interpreted as an integer" in message:
        hints.append("a dataset is read one image at a time, dataset[i]; torch.utils.data.Subset(dataset, indices) "
                     "is a dataset of some of its images.")
    if world_size > SCENES:
        hints.append(f"with {world_size} ranks for {SCENES} images, rank {SCENES} holds no image: its matrix is "
                     "(C, C) zeros.")
    return " ".join(hints) or EVAL_HINT


def check_sharded_evaluate(my_sharded_evaluate: Callable[..., Mapping[str, Any]]) -> None:
    """Check ``my_sharded_evaluate(model, dataset, world_size, num_classes, batch_size=2)`` on 6 evaluations.

    >>> from pspnet_edu.metrics import confusion_matrix, mean_iou
    >>> def my_sharded_evaluate(model, dataset, world_size, num_classes, batch_size=2):
    ...     was_training = model.training
    ...     model.eval()
    ...     per_rank = []
    ...     with torch.no_grad():
    ...         for rank in range(world_size):
    ...             cm = torch.zeros(num_classes, num_classes, dtype=torch.int64)
    ...             images = torch.utils.data.Subset(dataset, range(rank, len(dataset), world_size))
    ...             for x, y in torch.utils.data.DataLoader(images, batch_size=batch_size):
    ...                 cm += confusion_matrix(model(x)["out"].argmax(dim=1), y, num_classes)
    ...             per_rank.append(cm)
    ...     model.train(was_training)
    ...     return {"per_rank": per_rank, "confusion_matrix": sum(per_rank), "miou": mean_iou(sum(per_rank))}
    >>> check_sharded_evaluate(my_sharded_evaluate)
    ✓ my_sharded_evaluate matches pspnet_edu.inference.evaluate on 6 cases
    """
    name = learner_name(my_sharded_evaluate)
    require_callable(my_sharded_evaluate)
    hide = sharded_evaluate_hidden()
    refuse_reference(my_sharded_evaluate, hide, name)
    model, scenes = probe_evaluation()
    expected_values = [sharded_evaluate(model, scenes, world, PROBE_CLASSES, batch)
                       for world, batch, _, _ in _EVAL_CASES]
    failure = None
    with hidden(*hide) as hiding:
        for (world, batch, training, about), expected in zip(_EVAL_CASES, expected_values):
            call = (f"{name}(model, dataset, world_size={world}, num_classes={PROBE_CLASSES}, batch_size={batch})  "
                    f"[{about}]")
            given = copy.deepcopy(model).train(training)
            try:
                with learner_code(name, call, hiding):
                    got = my_sharded_evaluate(given, scenes, world, PROBE_CLASSES, batch_size=batch)
            except AssertionError as error:
                if not str(error).startswith(f"{call} raised "):
                    raise  # not implemented yet, write it yourself, or the learner's own assertion
                raise AssertionError(f"{error}\n  hint: {_crash_hint(str(error), world)}") from error.__cause__
            detail = differences(expected, got, rtol=1e-9, atol=1e-12)
            if detail is not None:
                failure = call, world, batch, expected, got, detail
                break
            if given.training != training:
                came, left = ("train", "eval") if training else ("eval", "train")
                raise AssertionError(
                    f"{call} counted right, but left the model in {left} mode; it came in {came} mode.\n  hint: "
                    + ("a trainer that evaluates every few thousand steps goes on training the model it handed over: "
                       "left in eval mode, its BatchNorm layers would stop using and updating batch statistics for "
                       "the rest of the run." if training else
                       "a model handed over in eval mode (a finished one, evaluated for a report) must come back in "
                       "it: in train mode its next forward pass would normalise with the batch's statistics and "
                       "update the running ones.")
                    + " Note model.training first and restore it at the end (model.train(was_training)), as "
                    "pspnet_edu.inference.evaluate does.")
    if failure is not None:  # diagnosed here: the diagnosis evaluates too, and needs what was hidden
        call, world, batch, expected, got, detail = failure
        hint = _evaluate_diagnose(model, scenes, world, PROBE_CLASSES, batch, expected, got)
        raise AssertionError(f"{call} gave a wrong result.\n  expected: {_summary(expected)}\n  got:      "
                             f"{_summary(got)}\n  difference: {detail}\n  hint: {hint}")
    passed(name, "pspnet_edu.inference.evaluate", len(_EVAL_CASES))


def _summary(result: Any) -> str:
    """A result as a message shows it: the pixels each matrix counts, and the mIoU."""
    if not isinstance(result, Mapping) or set(result) != set(EVAL_KEYS):
        return short_repr(result)

    def pixels(cm: Any) -> str:
        return str(int(cm.sum())) if isinstance(cm, Tensor) else short_repr(cm)

    per_rank = result["per_rank"]
    ranks = [pixels(cm) for cm in per_rank] if isinstance(per_rank, (list, tuple)) else [short_repr(per_rank)]
    miou = result["miou"]
    score = f"{miou:.4f}" if isinstance(miou, float) else short_repr(miou)
    return (f"pixels counted per rank [{', '.join(ranks)}], in the sum {pixels(result['confusion_matrix'])}; "
            f"mIoU {score}")
