"""Tests for pspnet_edu/checks/scaling.py (the self-checks of notebook 10)."""

from __future__ import annotations

import math

import pytest
import torch

from pspnet_edu.checks.scaling import (
    _SCHEDULE_CASES,
    _state_dict_cases,
    check_schedule_length,
    check_strip_module_prefix,
    schedule_length,
    strip_module_prefix,
)
from pspnet_edu.convert import semseg_to_pspnet_edu


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


def test_schedule_reference_equals_the_formula():
    for case in _SCHEDULE_CASES:
        epochs, size, batch = case.args
        assert schedule_length(epochs, size, batch) == epochs * (size // batch)
    assert schedule_length(200, 2975, 16) == 37_000  # semseg's 200 epochs: far fewer than the paper's 90K


def test_schedule_right_answer_passes(capsys):
    def my_schedule_length(epochs, dataset_size, batch_size):
        return epochs * (dataset_size // batch_size)

    check_schedule_length(my_schedule_length)
    assert capsys.readouterr().out == "✓ my_schedule_length matches pspnet_edu.training.sampling.EndlessBatches on 6 cases\n"


@pytest.mark.parametrize(
    ("wrong", "hint"),
    [
        (lambda e, n, b: e * math.ceil(n / b), "incomplete last batch"),
        (lambda e, n, b: e * n // b, "one incomplete batch in total"),
        (lambda e, n, b: n // b, "that is one epoch"),
        (lambda e, n, b: e * n / b, "float"),
    ],
)
def test_schedule_plausible_mistakes_are_named(wrong, hint):
    with pytest.raises(AssertionError) as info:
        check_schedule_length(wrong)
    assert "gave a wrong result" in str(info.value) and hint in str(info.value)
