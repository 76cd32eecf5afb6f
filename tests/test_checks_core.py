"""Tests for pspnet_edu/checks/_core.py: the machinery every self-check uses."""

from __future__ import annotations

import dataclasses
import sys

import pytest
import torch

import pspnet_edu.data.labels
import pspnet_edu.ppm
import pspnet_edu.schedule
from pspnet_edu.checks._core import (
    Case,
    ReferenceUsed,
    call_learner,
    check_cases,
    differences,
    fail,
    hidden,
    learner_code,
    not_implemented_message,
    reference_name,
    short_repr,
)


def reference_size(size: int, kernel: int, stride: int = 1) -> int:
    return (size - kernel) // stride + 1


CASES = [Case((7, 3)), Case((8, 3), {"stride": 2}), Case((9, 1), {"stride": 3})]


def test_passing_learner_prints_one_deterministic_line(capsys):
    def my_size(size, kernel, stride=1):
        return (size - kernel) // stride + 1

    check_cases(my_size, reference_size, CASES, against="the reference")
    assert capsys.readouterr().out == "✓ my_size matches the reference on 3 cases\n"


def test_default_verdict_names_the_reference_by_module_and_qualname(capsys):
    check_cases(lambda s, k, stride=1: (s - k) // stride + 1, reference_size, CASES[:1])
    assert capsys.readouterr().out == f"✓ <lambda> matches {__name__}.reference_size on 1 case\n"


def test_stub_becomes_not_implemented_assertion():
    def my_size(size, kernel, stride=1):
        # YOUR CODE HERE
        raise NotImplementedError()

    with pytest.raises(AssertionError) as info:
        check_cases(my_size, reference_size, CASES)
    assert str(info.value) == not_implemented_message("my_size")
    assert "my_size is not implemented yet" in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_wrong_answer_names_case_expected_got_and_hint(capsys):
    def my_size(size, kernel, stride=1):
        return (size - kernel) + 1  # forgot the stride

    def diagnose(case, expected, got):
        return "you ignored the stride" if got == case.args[0] - case.args[1] + 1 else None

    with pytest.raises(AssertionError) as info:
        check_cases(my_size, reference_size, CASES, hint=diagnose)
    message = str(info.value)
    assert message.splitlines() == [
        "my_size(8, 3, stride=2) gave a wrong result.",
        "  expected: 3",
        "  got:      6",
        "  hint: you ignored the stride",
    ]
    assert capsys.readouterr().out == ""  # no verdict line on failure


def test_case_hint_and_check_hint_are_both_shown():
    with pytest.raises(AssertionError, match="hint: a strided case. count the windows"):
        check_cases(lambda s, k, stride=1: 0, reference_size, [Case((8, 3), {"stride": 2}, hint="a strided case.")],
                    hint="count the windows")


def test_float_instead_of_int_is_explained():
    with pytest.raises(AssertionError, match=r"expected the int 3, got the float 3.0 \(use //"):
        check_cases(lambda s, k, stride=1: (s - k) / stride + 1, reference_size, [Case((7, 5))])


def test_other_exceptions_name_the_call_and_keep_the_cause():
    def my_size(size, kernel, stride=1):
        return size / 0

    with pytest.raises(AssertionError, match=r"my_size\(7, 3\) raised ZeroDivisionError") as info:
        check_cases(my_size, reference_size, CASES)
    assert isinstance(info.value.__cause__, ZeroDivisionError)


def test_learner_assertion_passes_through_unchanged():
    with pytest.raises(AssertionError, match="^my own message$"):
        with learner_code("my_f"):
            raise AssertionError("my own message")


def test_passing_the_reference_itself_or_a_result_is_refused():
    with pytest.raises(AssertionError, match="write your own version"):
        check_cases(reference_size, reference_size, CASES)
    with pytest.raises(AssertionError, match="pass the function itself"):
        check_cases(5, reference_size, CASES)


def test_arguments_are_copied_so_a_mutating_learner_cannot_spoil_the_reference():
    def my_total(values):
        values.append(100)  # mutates its argument
        return sum(values)

    data = [1, 2]
    with pytest.raises(AssertionError, match="expected: 3"):
        check_cases(my_total, lambda values: sum(values), [Case((data,))])
    assert data == [1, 2]
    assert call_learner(lambda v: v.append(0) or len(v), Case((data,))) == 3 and data == [1, 2]


def test_differences_on_numbers_sequences_and_mappings():
    assert differences(1.0, 1.0 + 1e-9) is None
    assert differences(1.0, 1.1) == "expected 1, got 1.1"
    assert differences(float("nan"), float("nan")) is None
    assert differences(2, True) == "expected the int 2, got bool True"
    assert differences(True, 1) == "expected True, got 1"
    assert differences((1, 2), [1, 2]) is None  # a list for a tuple is fine
    assert differences((1, 2), (1, 2, 3)) == "expected 2 items, got 3"
    assert differences({"a": [1, 2]}, {"a": [1, 3]}) == "at ['a'][1]: expected 2, got 3"
    assert "missing ['b']" in differences({"a": 1, "b": 2}, {"a": 1})
    assert differences("abc", "abd") == "expected 'abc', got 'abd'"


def test_differences_on_dataclasses_compares_fields_by_name():
    @dataclasses.dataclass(frozen=True)
    class Result:
        size: int
        stride: int

    @dataclasses.dataclass(frozen=True)
    class Other:
        size: int
        stride: int

    assert differences(Result(3, 1), Other(3, 1)) is None
    assert differences([Result(3, 1), Result(7, 2)], [Other(3, 1), Other(7, 4)]) == "at [1].stride: expected 2, got 4"
    assert "attribute .size" in differences(Result(3, 1), (3, 1))


def test_differences_on_tensors():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 4)
    assert differences(x, x.clone() + 1e-8) is None
    assert differences(x, x.double()) is None  # dtype may differ, values are compared
    assert differences(x, x[:, :2]) == "expected shape (2, 3, 4), got shape (2, 2, 4)"
    y = x.clone()
    y[1, 2, 3] += 1.0
    assert differences(x, y).startswith("1 of 24 values differ; the first at index (1, 2, 3)")
    assert "got list" in differences(x, x.tolist())
    assert differences(torch.tensor([1, 2]), torch.tensor([1, 3])).startswith("1 of 2 values differ")


def test_fail_shows_where_nested_results_differ():
    message = str(fail("my_rf([(3, 1, 1, 1)])", [(3, 1)], [(3, 2)], differences([(3, 1)], [(3, 2)]), "the jump"))
    assert message.splitlines() == [
        "my_rf([(3, 1, 1, 1)]) gave a wrong result.",
        "  expected: [(3, 1)]",
        "  got:      [(3, 2)]",
        "  difference: at [0][1]: expected 1, got 2",
        "  hint: the jump",
    ]


def test_short_repr_is_short_and_has_no_addresses():
    assert short_repr(torch.zeros(1, 3, 8, 8)) == "Tensor(shape=(1, 3, 8, 8), dtype=torch.float32)"
    assert short_repr(torch.tensor(2.5)) == "Tensor(2.5)"
    assert len(short_repr(list(range(1000)))) < 40
    assert short_repr(object()) == "<object object>"  # no memory address: nbval compares messages


# ------------------------------------------------------------------ hiding the references


def test_hidden_restores_the_references_after_an_exception():
    original = pspnet_edu.schedule.poly_lr
    with pytest.raises(ZeroDivisionError):
        with hidden(original):
            assert pspnet_edu.schedule.poly_lr is not original
            1 / 0
    assert pspnet_edu.schedule.poly_lr is original


def test_a_module_imported_while_hidden_gets_the_reference_back(tmp_path, monkeypatch):
    (tmp_path / "learner_helpers.py").write_text("from pspnet_edu.schedule import poly_lr\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "learner_helpers", raising=False)  # and removed again after the test

    def my_poly_lr(base_lr, iteration, max_iterations, power=0.9):
        import learner_helpers  # first imported here, while poly_lr is hidden

        return learner_helpers.poly_lr(base_lr, iteration, max_iterations, power)

    with pytest.raises(AssertionError, match="^my_poly_lr calls pspnet_edu.schedule.poly_lr"):
        check_cases(my_poly_lr, pspnet_edu.schedule.poly_lr, [Case((0.01, 0, 10))])
    assert sys.modules["learner_helpers"].poly_lr is pspnet_edu.schedule.poly_lr
    assert pspnet_edu.schedule.poly_lr(0.01, 0, 10) == 0.01


def test_subclassing_or_indexing_a_hidden_reference_counts_as_a_use():
    with hidden(pspnet_edu.ppm.PyramidPoolingModule, pspnet_edu.data.labels.LABEL_TO_TRAIN_TABLE) as hiding:
        with pytest.raises(AssertionError, match="^my_ppm uses pspnet_edu.ppm.PyramidPoolingModule, the class"):
            with learner_code("my_ppm", hiding=hiding):
                class Mine(pspnet_edu.ppm.PyramidPoolingModule):
                    pass
        with pytest.raises(ReferenceUsed, match="LABEL_TO_TRAIN_TABLE is hidden"):
            pspnet_edu.data.labels.LABEL_TO_TRAIN_TABLE[[7, 8]]
    assert pspnet_edu.data.labels.LABEL_TO_TRAIN_TABLE[7] == 0  # road


def test_reference_name_of_an_object_without_a_qualified_name_is_where_the_package_keeps_it():
    name = reference_name(pspnet_edu.data.labels.LABEL_TO_TRAIN_TABLE)
    assert name.startswith("pspnet_edu.data") and name.endswith(".LABEL_TO_TRAIN_TABLE")
    assert reference_name(pspnet_edu.schedule.poly_lr) == "pspnet_edu.schedule.poly_lr"


SEEDED_BUILDERS = [  # every self-check's seeded model, built inside fork_rng(devices=[])
    ("backbone", "_plain_template", (18,)),
    ("inference", "_network", ()),
    ("pspnet", "_reference_model", ({}, 3)),
    ("receptive_field", "_erf_models", ()),
    ("training", "_model", (2,)),
]


@pytest.mark.parametrize(("module", "builder", "arguments"), SEEDED_BUILDERS)
def test_the_checks_seed_the_cpu_only_and_leave_the_gpus_generators_alone(
        module: str, builder: str, arguments: tuple, monkeypatch: pytest.MonkeyPatch) -> None:
    """fork_rng(devices=[]) restores the CPU's generator only: a check must not reseed a GPU's."""
    import importlib

    build = getattr(importlib.import_module(f"pspnet_edu.checks.{module}"), builder)
    state = torch.get_rng_state()
    reseeded: list[int] = []
    for device in (torch.cuda, torch.xpu, torch.mtia):
        monkeypatch.setattr(device, "manual_seed_all", reseeded.append, raising=False)
    first, second = build(*arguments), build(*arguments)
    assert reseeded == []  # torch.manual_seed would reseed them
    assert torch.equal(torch.get_rng_state(), state)  # and the CPU's is left as it was
    models = [first, second] if module != "receptive_field" else [first[0][0], second[0][0]]
    a, b = (m.state_dict() for m in models)
    assert all(torch.equal(a[k], b[k]) for k in a)  # seeded: the same weights twice
