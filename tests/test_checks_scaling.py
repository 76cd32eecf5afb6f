"""Tests for pspnet_edu/checks/scaling.py (the self-checks of notebook 10)."""

from __future__ import annotations

import math

import pytest
import torch
from torch.utils.data import DataLoader, DistributedSampler, Subset

from pspnet_edu.checks.scaling import (
    _EVAL_CASES,
    _PLAN_CASES,
    _PLAN_REFUSED,
    PROBE_CLASSES,
    SCENES,
    check_sharded_evaluate,
    check_torchrun_plan,
    probe_evaluation,
    shard,
    sharded_evaluate,
    torchrun_plan,
)
from pspnet_edu.inference import evaluate
from pspnet_edu.metrics import confusion_matrix, mean_iou


def right_plan(world_size, epochs, dataset_size, global_batch=16, base_lr=0.01):
    if global_batch % world_size:
        raise ValueError("the global batch must split evenly over the processes")
    return {"per_process_batch": global_batch // world_size, "lr": base_lr,
            "iters": epochs * (dataset_size // global_batch)}


def test_plan_reference_is_the_trainers_sampler_and_equals_the_formula():
    for args, kwargs, _ in _PLAN_CASES:
        assert torchrun_plan(*args, **kwargs) == right_plan(*args, **kwargs)
    assert torchrun_plan(4, 200, 2975)["iters"] == 37_000  # semseg's 200 epochs: far fewer than the paper's 90K
    for args, kwargs, _ in _PLAN_REFUSED:
        with pytest.raises(ValueError):
            torchrun_plan(*args, **kwargs)


def test_plan_reference_agrees_with_the_trainers_refusal():
    from pspnet_edu.training import TrainConfig
    from pspnet_edu.training.distributed import Distributed
    from pspnet_edu.training.loop import _check_machine

    for args, kwargs, _ in _PLAN_REFUSED:
        with pytest.raises(ValueError, match="not divisible"):
            _check_machine(TrainConfig(batch_size=16), torch.device("cpu"), Distributed(world_size=args[0]))


def test_plan_right_answer_passes(capsys):
    def my_torchrun_plan(world_size, epochs, dataset_size, global_batch=16, base_lr=0.01):
        return right_plan(world_size, epochs, dataset_size, global_batch, base_lr)

    check_torchrun_plan(my_torchrun_plan)
    assert capsys.readouterr().out == "✓ my_torchrun_plan matches pspnet_edu.training.sampling.EndlessBatches on 8 cases\n"


def plan_with(per_process=None, lr=None, iters=None, refuse=True):
    def plan(world_size, epochs, dataset_size, global_batch=16, base_lr=0.01):
        if refuse and global_batch % world_size:
            raise ValueError("uneven")
        right = right_plan(world_size, epochs, dataset_size, global_batch, base_lr) if not global_batch % world_size \
            else {"per_process_batch": global_batch // world_size, "lr": base_lr, "iters": 0}
        args = (world_size, epochs, dataset_size, global_batch, base_lr)
        for key, slip in (("per_process_batch", per_process), ("lr", lr), ("iters", iters)):
            if slip is not None:
                right[key] = slip(*args)
        return right

    return plan


@pytest.mark.parametrize(
    ("wrong", "hint"),
    [
        (plan_with(lr=lambda n, e, size, b, lr: lr * n), "do not multiply the rate by N"),
        (plan_with(lr=lambda n, e, size, b, lr: lr / n), "do not divide the rate by N"),
        (plan_with(per_process=lambda n, e, size, b, lr: b), "N times larger"),
        (plan_with(iters=lambda n, e, size, b, lr: e * (size // (b // n))), "each process sees only its shard"),
        (plan_with(iters=lambda n, e, size, b, lr: e * math.ceil(size / b)), "drops the incomplete last"),
        (plan_with(iters=lambda n, e, size, b, lr: e * (math.ceil(size / n) // (b // n))),
         "DistributedSampler's defaults"),
        (plan_with(iters=lambda n, e, size, b, lr: e * size // b), "round down per epoch"),
        (plan_with(iters=lambda n, e, size, b, lr: e * size / b), "is an int"),
        (lambda n, e, size, b=16, lr=0.01: (b // n, lr, e * (size // b)), "return a dict"),
    ],
)
def test_plan_plausible_mistakes_are_named(wrong, hint):
    with pytest.raises(AssertionError) as info:
        check_torchrun_plan(wrong)
    assert "gave a wrong result" in str(info.value) and hint in str(info.value), str(info.value)
    assert "dataset_size // global_batch" not in str(info.value)  # the hints explain, they do not give the formula


def test_plan_that_splits_an_uneven_batch_is_refused():
    with pytest.raises(AssertionError, match=r"plan\(3, 200, 2975\) returned .*expected a ValueError"):
        check_torchrun_plan(plan_with(refuse=False))


# ------------------------------------------------------------------ evaluation under DDP


def test_shard_is_the_distributed_samplers_without_its_padding():
    for world in (1, 2, 3, 4, 8):
        shards = [shard(SCENES, world, rank) for rank in range(world)]
        assert sorted(i for s in shards for i in s) == list(range(SCENES))  # every image once
        for rank, images in enumerate(shards):
            padded = list(DistributedSampler(range(SCENES), world, rank, shuffle=False))
            assert padded[: len(images)] == images


def test_reference_sums_to_evaluate_on_the_whole_set_and_leaves_the_model_in_its_mode():
    model, scenes = probe_evaluation()
    whole = evaluate(model, scenes, num_classes=PROBE_CLASSES)
    labelled = [int((scenes[i][1] != 255).sum()) for i in range(SCENES)]
    for world, batch, training, about in _EVAL_CASES:
        model.train(training)
        result = sharded_evaluate(model, scenes, world, PROBE_CLASSES, batch)
        assert torch.equal(result["confusion_matrix"], whole["confusion_matrix"]), about
        assert result["miou"] == pytest.approx(whole["miou"], abs=1e-12), about
        assert [int(cm.sum()) for cm in result["per_rank"]] == [
            sum(labelled[i] for i in shard(SCENES, world, rank)) for rank in range(world)], about
        if world > 1:  # every multi-rank case separates the mean of the ranks' mIoUs from the mIoU of the sum
            ranks = [mean_iou(cm) for cm in result["per_rank"] if cm.sum()]
            assert not math.isclose(sum(ranks) / len(ranks), result["miou"], rel_tol=1e-4), about
        assert model.training == training, about  # the mode it came in
    assert {training for _, _, training, _ in _EVAL_CASES} == {True, False}  # both modes are handed over


def test_probe_is_robust_in_eval_mode_and_different_in_train_mode():
    model, scenes = probe_evaluation()
    images = torch.stack([scenes[i][0] for i in range(SCENES)])
    with torch.no_grad():
        logits = model.eval()(images)["out"]
        top2 = logits.topk(2, dim=1).values
        assert float((top2[:, 0] - top2[:, 1]).min()) > 1.0  # no float noise can flip an argmax
        for start, stop in ((0, 1), (0, 2), (3, 6)):  # eval mode: an image's prediction ignores its batch mates
            assert torch.equal(model(images[start:stop])["out"].argmax(1), logits[start:stop].argmax(1))
        train = model.train()(images[:2])["out"].argmax(1)
    assert float((train != logits[:2].argmax(1)).float().mean()) > 0.2
    assert len(torch.unique(logits.argmax(1))) == PROBE_CLASSES


def make_learner(sampler="own", drop_last=False, eval_mode=True, restore=True, reduce="sum", score="sum",
                 void_as=None, transposed=False, empty_rank=True, argmin=False):
    """my_sharded_evaluate, right by default; each argument brings in one typical mistake."""

    def images_of(dataset, world, rank):
        if sampler == "padded":
            return list(DistributedSampler(dataset, world, rank, shuffle=False))
        if sampler == "trimmed":
            return list(DistributedSampler(dataset, world, rank, shuffle=False, drop_last=True))
        if sampler == "block":
            return torch.arange(len(dataset)).tensor_split(world)[rank].tolist()
        if sampler == "whole":
            return list(range(len(dataset)))
        own = list(range(rank, len(dataset), world))
        if sampler == "repeat_first":
            return own + own[:1]
        return own[1:] if sampler == "skip_first" else own

    def my_sharded_evaluate(model, dataset, world_size, num_classes, batch_size=2):
        was_training = model.training
        if eval_mode:
            model.eval()
        per_rank = []
        with torch.no_grad():
            for rank in range(world_size):
                cm = torch.zeros(num_classes, num_classes, dtype=torch.int64) if empty_rank else None
                loader = DataLoader(Subset(dataset, images_of(dataset, world_size, rank)), batch_size=batch_size,
                                    drop_last=drop_last)
                for images, masks in loader:
                    logits = model(images)["out"]
                    pred = logits.argmin(dim=1) if argmin else logits.argmax(dim=1)
                    if void_as is not None:
                        masks[masks == 255] = void_as
                    counts = confusion_matrix(pred, masks, num_classes)
                    counts = counts.T if transposed else counts
                    cm = counts if cm is None else cm + counts
                per_rank.append(cm)
        if restore == "always train":
            model.train()
        elif restore:
            model.train(was_training)
        total = sum(per_rank) if reduce == "sum" else sum(per_rank) / world_size
        miou = mean_iou(total) if score == "sum" else sum(mean_iou(cm) for cm in per_rank) / world_size
        return {"per_rank": per_rank, "confusion_matrix": total, "miou": miou}

    return my_sharded_evaluate


def test_right_sharded_evaluate_passes(capsys):
    check_sharded_evaluate(make_learner())
    assert capsys.readouterr().out == "✓ my_sharded_evaluate matches pspnet_edu.inference.evaluate on 6 cases\n"


@pytest.mark.parametrize(
    ("slip", "hint"),
    [
        ({"sampler": "padded"}, "DistributedSampler pads every shard to the same length"),
        ({"sampler": "trimmed"}, "DistributedSampler(drop_last=True) cuts the set to a multiple of 2: images [6]"),
        ({"drop_last": True}, "the incomplete last batch was dropped"),
        ({"sampler": "whole"}, "every rank evaluated the whole set"),
        ({"sampler": "block"}, "contiguous block"),
        ({"eval_mode": False}, "predicted in train mode"),
        ({"void_as": 0}, "the 416 void (255) pixels of their masks too"),
        ({"transposed": True}, "its matrix is transposed"),
        ({"sampler": "repeat_first"}, "with 4960 labelled pixels, but its matrix counts 5696: an image counted twice"),
        ({"sampler": "skip_first"}, "with 4960 labelled pixels, but its matrix counts only 4224: an image left out?"),
        ({"argmin": True}, "the right number of pixels, predicted otherwise"),
        ({"reduce": "mean"}, "is their SUM"),
        ({"score": "mean"}, "the mean of the ranks' mIoUs"),
    ],
)
def test_sharded_evaluate_mistakes_are_named(slip, hint):
    with pytest.raises(AssertionError) as info:
        check_sharded_evaluate(make_learner(**slip))
    message = str(info.value)
    assert "gave a wrong result" in message and hint in message, message
    assert "expected: pixels counted per rank" in message, message


@pytest.mark.parametrize(
    ("result", "hint"),
    [
        (lambda cms: (cms, sum(cms), mean_iou(sum(cms))), "return a dict with the keys"),
        (lambda cms: {"per_rank": sum(cms), "confusion_matrix": sum(cms), "miou": mean_iou(sum(cms))},
         "'per_rank' is a list of 1 matrices"),
        (lambda cms: {"per_rank": cms, "confusion_matrix": sum(cms), "miou": torch.tensor(mean_iou(sum(cms)))},
         "'miou' is the mean IoU of the summed matrix, a float"),
    ],
)
def test_sharded_evaluate_wrong_result_types_are_told(result, hint):
    right = make_learner()

    def my_sharded_evaluate(model, dataset, world_size, num_classes, batch_size=2):
        return result(right(model, dataset, world_size, num_classes, batch_size)["per_rank"])

    with pytest.raises(AssertionError) as info:
        check_sharded_evaluate(my_sharded_evaluate)
    assert "gave a wrong result" in str(info.value) and hint in str(info.value), str(info.value)


def test_sharded_evaluate_that_forgets_the_mode_or_an_empty_rank_is_told():
    with pytest.raises(AssertionError, match="left the model in eval mode; it came in train mode"):
        check_sharded_evaluate(make_learner(restore=False))
    with pytest.raises(AssertionError, match=r"in eval mode\] counted right, but left the model in train mode; "
                                             r"it came in eval mode"):
        check_sharded_evaluate(make_learner(restore="always train"))
    with pytest.raises(AssertionError, match=r"world_size=8.*raised TypeError(.|\n)*rank 7 holds no image"):
        check_sharded_evaluate(make_learner(empty_rank=False))


def test_sharded_evaluate_arguments_swapped_is_told():
    def my_sharded_evaluate(model, dataset, world_size, num_classes, batch_size=2):
        model.eval()
        images, masks = next(iter(DataLoader(dataset, batch_size=batch_size)))
        confusion_matrix(masks, model(images)["out"].argmax(dim=1), num_classes)

    with pytest.raises(AssertionError, match=r"raised ValueError: pred holds class indices outside(.|\n)*"
                                             r"takes the prediction first"):
        check_sharded_evaluate(my_sharded_evaluate)


def test_sharded_evaluate_argmax_over_the_wrong_dim_is_told():
    def my_sharded_evaluate(model, dataset, world_size, num_classes, batch_size=2):
        model.eval()
        images, masks = next(iter(DataLoader(dataset, batch_size=batch_size)))
        confusion_matrix(model(images)["out"].argmax(dim=0), masks, num_classes)

    with pytest.raises(AssertionError, match=r"raised ValueError: pred and target must have the same shape(.|\n)*"
                                             r"argmax over dim=1"):
        check_sharded_evaluate(my_sharded_evaluate)


def test_sharded_evaluate_stub_and_shortcut_are_refused():
    def my_sharded_evaluate(model, dataset, world_size, num_classes, batch_size=2):
        raise NotImplementedError()

    with pytest.raises(AssertionError, match="not implemented yet"):
        check_sharded_evaluate(my_sharded_evaluate)

    def my_shortcut(model, dataset, world_size, num_classes, batch_size=2):
        per_rank = [evaluate(model, Subset(dataset, range(r, len(dataset), world_size)), num_classes=num_classes)
                    ["confusion_matrix"] for r in range(world_size)]
        return {"per_rank": per_rank, "confusion_matrix": sum(per_rank), "miou": mean_iou(sum(per_rank))}

    with pytest.raises(AssertionError, match="calls pspnet_edu.inference.evaluate.*write it yourself"):
        check_sharded_evaluate(my_shortcut)
