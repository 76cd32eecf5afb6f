"""Tests for pspnet_edu/checks/scaling.py (the self-checks of notebook 10)."""

from __future__ import annotations

import math

import pytest
import torch

from pspnet_edu.checks.scaling import (
    _PLAN_CASES,
    _PLAN_REFUSED,
    _miou_cases,
    _state_dict_cases,
    check_distributed_miou,
    check_strip_module_prefix,
    check_torchrun_plan,
    distributed_miou,
    strip_module_prefix,
    torchrun_plan,
)
from pspnet_edu.convert import semseg_to_pspnet_edu
from pspnet_edu.metrics import confusion_matrix, iou_per_class, reduce_confusion_matrices


def right_strip(state_dict):
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in state_dict.items()}


def test_strip_reference_leaves_its_input_untouched_and_agrees_with_convert():
    state = {"module.cls.4.bias": torch.zeros(3), "module.aux.submodule.weight": torch.ones(1)}
    assert strip_module_prefix(state) == {"cls.4.bias": state["module.cls.4.bias"],
                                          "aux.submodule.weight": state["module.aux.submodule.weight"]}
    assert list(state) == ["module.cls.4.bias", "module.aux.submodule.weight"]
    for case in _state_dict_cases():
        assert strip_module_prefix(*case.args).keys() == right_strip(*case.args).keys()


def test_convert_needs_the_prefix_stripped_the_same_way():
    # convert's error for a non-PSPNet dict lists the keys after stripping 'module.'.
    with pytest.raises(ValueError, match="cls.4.weight"):
        semseg_to_pspnet_edu({"state_dict": {"module.layer0.0.weight": torch.zeros(1)}})


def test_strip_right_answer_passes(capsys):
    def my_strip_module_prefix(state_dict):
        return right_strip(state_dict)

    check_strip_module_prefix(my_strip_module_prefix)
    assert capsys.readouterr().out == (
        "✓ my_strip_module_prefix matches torch.nn.modules.utils.consume_prefix_in_state_dict_if_present on 5 cases\n")


@pytest.mark.parametrize(
    ("wrong", "hint"),
    [
        (lambda sd: {k.replace("module.", ""): v for k, v in sd.items()}, "str.replace removes 'module.' everywhere"),
        (lambda sd: {k[7:]: v for k, v in sd.items()}, "k[7:] cuts 7 characters"),
        (lambda sd: {k.removeprefix("module.").removeprefix("module."): v for k, v in sd.items()}, "once"),
        (lambda sd: list(sd), "return a dict"),
    ],
)
def test_strip_plausible_mistakes_are_named(wrong, hint):
    with pytest.raises(AssertionError) as info:
        check_strip_module_prefix(wrong)
    assert "gave a wrong result" in str(info.value) and hint in str(info.value)


def test_strip_in_place_edit_is_caught():
    def in_place(state_dict):
        for key in list(state_dict):
            state_dict[key.removeprefix("module.")] = state_dict.pop(key)
        return state_dict

    with pytest.raises(AssertionError, match="modified its argument"):
        check_strip_module_prefix(in_place)


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
        (plan_with(iters=lambda n, e, size, b, lr: e * math.ceil(size / b)), "incomplete last batch"),
        (plan_with(iters=lambda n, e, size, b, lr: e * size // b), "round down per epoch"),
        (plan_with(iters=lambda n, e, size, b, lr: e * size / b), "is an int"),
        (lambda n, e, size, b=16, lr=0.01: (b // n, lr, e * (size // b)), "return a dict"),
    ],
)
def test_plan_plausible_mistakes_are_named(wrong, hint):
    with pytest.raises(AssertionError) as info:
        check_torchrun_plan(wrong)
    assert "gave a wrong result" in str(info.value) and hint in str(info.value), str(info.value)


def test_plan_that_splits_an_uneven_batch_is_refused():
    with pytest.raises(AssertionError, match=r"plan\(3, 200, 2975\) returned .*expected a ValueError"):
        check_torchrun_plan(plan_with(refuse=False))


# ------------------------------------------------------------------ evaluation under DDP


def miou_from_sum(shards, num_classes):
    total = sum(confusion_matrix(pred, target, num_classes) for pred, target in shards).double()
    tp = total.diagonal()
    union = total.sum(0) + total.sum(1) - tp
    iou = torch.where(union > 0, tp / union, float("nan"))
    return {"iou": iou, "miou": float(iou.nanmean())}


def iou_of(cm):
    cm = cm.double()
    tp = cm.diagonal()
    union = cm.sum(0) + cm.sum(1) - tp
    return torch.where(union > 0, tp / union, float("nan"))


def mean_of_rank_mious(shards, num_classes):
    per_rank = [iou_of(confusion_matrix(p, t, num_classes)) for p, t in shards]
    return {"iou": iou_of(sum(confusion_matrix(p, t, num_classes) for p, t in shards)),
            "miou": sum(float(i.nanmean()) for i in per_rank) / len(per_rank)}


def mean_of_rank_ious(shards, num_classes):
    iou = torch.stack([iou_of(confusion_matrix(p, t, num_classes)) for p, t in shards]).nanmean(dim=0)
    return {"iou": iou, "miou": float(iou.nanmean())}


def absent_as_zero(shards, num_classes):
    iou = torch.nan_to_num(miou_from_sum(shards, num_classes)["iou"], nan=0.0)
    return {"iou": iou, "miou": float(iou.mean())}


def test_reference_counts_the_whole_set_and_every_multi_rank_case_separates_the_two_means():
    for about, shards, k in _miou_cases():
        whole = confusion_matrix(torch.cat([p for p, _ in shards]), torch.cat([t for _, t in shards]), k)
        assert torch.allclose(distributed_miou(shards, k)["iou"], iou_of(whole), equal_nan=True), about
        if len(shards) > 1:
            assert not math.isclose(mean_of_rank_mious(shards, k)["miou"], distributed_miou(shards, k)["miou"],
                                    rel_tol=1e-3), about


def test_right_distributed_miou_passes(capsys):
    def my_distributed_miou(shards, num_classes):
        return miou_from_sum(shards, num_classes)

    check_distributed_miou(my_distributed_miou)
    assert capsys.readouterr().out == ("✓ my_distributed_miou matches pspnet_edu.metrics.reduce_confusion_matrices "
                                       "on 6 cases\n")


@pytest.mark.parametrize(
    ("wrong", "hint"),
    [
        (mean_of_rank_mious, "MEAN OF THE RANKS' mIoUs"),
        (mean_of_rank_ious, "mean of the ranks' per-class IoUs"),
        (absent_as_zero, "NaN, left out of the mean"),
        (lambda shards, k: miou_from_sum(shards, k)["miou"], 'return a dict {"iou"'),
    ],
)
def test_distributed_miou_mistakes_are_named(wrong, hint):
    with pytest.raises(AssertionError) as info:
        check_distributed_miou(wrong)
    assert "gave a wrong result" in str(info.value) and hint in str(info.value)


def test_distributed_miou_stub_and_shortcut_are_refused():
    def my_distributed_miou(shards, num_classes):
        raise NotImplementedError()

    with pytest.raises(AssertionError, match="not implemented yet"):
        check_distributed_miou(my_distributed_miou)

    def my_shortcut(shards, num_classes):
        total = reduce_confusion_matrices([confusion_matrix(p, t, num_classes) for p, t in shards])
        return {"iou": iou_per_class(total), "miou": 0.0}

    with pytest.raises(AssertionError, match="write it yourself"):
        check_distributed_miou(my_shortcut)
