"""Self-checks for notebooks/10_scaling_up.ipynb: released checkpoints and the paper's schedule.

- :func:`check_strip_module_prefix`: ``my_strip_module_prefix(state_dict)``, the state dict
  of a model saved under ``DataParallel``/``DistributedDataParallel`` (every key starts with
  ``module.``) with that prefix removed, against PyTorch's own
  :func:`torch.nn.modules.utils.consume_prefix_in_state_dict_if_present` applied to a copy
  (``pspnet_edu.convert.semseg_to_pspnet_edu`` does the same first step);
- :func:`check_schedule_length`: ``my_schedule_length(epochs, dataset_size, batch_size)``,
  the number of optimizer steps of a run of ``epochs`` epochs when incomplete batches are
  dropped, against the trainer's sampler :class:`pspnet_edu.training.sampling.EndlessBatches`.

While the learner's function runs, what it re-derives is hidden (:func:`pspnet_edu.checks._core.hidden`):
for the prefix, the reference and torch's ``consume_prefix_in_state_dict_if_present`` (the
exercise is to write that one step yourself); for the schedule, the reference and the
trainer's ``EndlessBatches`` (see :func:`schedule_length_hidden`).
"""

from __future__ import annotations

import copy
import math
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from torch.nn.modules.utils import consume_prefix_in_state_dict_if_present

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


# ------------------------------------------------------------------ schedule length


def schedule_length(epochs: int, dataset_size: int, batch_size: int) -> int:
    """The reference: optimizer steps in ``epochs`` epochs, incomplete batches dropped, one process.

    Read from the trainer's sampler (``EndlessBatches.per_epoch``: batches per epoch).

    >>> schedule_length(200, 2975, 16)  # hszhao/semseg's Cityscapes recipe: 200 epochs
    37000
    """
    from pspnet_edu.training.sampling import EndlessBatches

    return epochs * EndlessBatches(dataset_size, batch_size, seed=0).per_epoch


def schedule_length_hidden() -> tuple[Any, ...]:
    """What :func:`check_schedule_length` hides while the learner's code runs.

    A function, not a constant: importing the trainer takes a second, which the other checks
    of the lesson need not pay.
    """
    from pspnet_edu.training.sampling import EndlessBatches

    return (schedule_length, EndlessBatches)


_SCHEDULE_CASES = (
    Case((200, 2975, 16), hint="hszhao/semseg on Cityscapes: 200 epochs of 2975 images at batch 16."),
    Case((1, 2975, 16), hint="one epoch: 2975 / 16 = 185.9 batches; the incomplete last one is dropped."),
    Case((10, 300, 8), hint="the course: 300 Synthcity images at batch 8."),
    Case((3, 64, 8), hint="the batch divides the dataset: nothing is dropped."),
    Case((5, 100, 7)),
    Case((100, 20210, 16), hint="ADE20K's 20,210 training images."),
)


def _schedule_diagnose(case: Case, expected: Any, got: Any) -> str:
    epochs, size, batch = case.args
    base = "steps = epochs * (dataset_size // batch_size): the last, incomplete batch of every epoch is dropped."
    if got == epochs * math.ceil(size / batch) != expected:
        return "you counted the incomplete last batch (ceil); the trainer drops it (drop_last=True, as semseg). " + base
    if got == epochs * size // batch != expected:
        return "you dropped one incomplete batch in total, not one per epoch: round down per epoch. " + base
    if got == size // batch != expected:
        return "that is one epoch; multiply by the number of epochs. " + base
    return base


def check_schedule_length(my_schedule_length: Callable[[int, int, int], int]) -> None:
    """Check ``my_schedule_length(epochs, dataset_size, batch_size)`` -> optimizer steps, on 6 cases.

    >>> check_schedule_length(lambda epochs, size, batch: epochs * (size // batch))
    ✓ <lambda> matches pspnet_edu.training.sampling.EndlessBatches on 6 cases
    """
    check_cases(my_schedule_length, schedule_length, _SCHEDULE_CASES, hide=schedule_length_hidden(),
                hint=_schedule_diagnose, against="pspnet_edu.training.sampling.EndlessBatches")
